// Issue 9, local rate limiting end to end: a Skein RateLimit → the model → Envoy's local_ratelimit filter and
// per-route LocalRateLimit on the selected workload's inbound listener → the real server-side Sidecar, reached
// through a real client-side Sidecar. Deterministic numbers: a bucket of 5 tokens, 5 back every second; 10
// requests sent within that second → exactly 5 pass and 5 are refused.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ControlPlane } from "../src/control-plane/control-plane.js";
import { formatResponseFlags } from "../src/proxy/router/stream-info.js";
import {
  type RunningSidecar,
  send,
  sleep,
  startControlPlane,
  startSidecar,
  type Upstream,
  until,
  upstream,
} from "./resilience-harness.js";

const CLIENT = "127.0.14.60";
const SERVER = "127.0.14.61";
const HOST = "order-service.production:8080";

let app: Upstream;
let cp: ControlPlane;
let write: (name: string, text: string) => void;
let client: RunningSidecar;
let server: RunningSidecar;

const mesh = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: order-service, namespace: production }
spec:
  selector: { app: order-service }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: order-writes, namespace: production }
spec:
  service: order-service
  match:
    uri: { prefix: /orders }
    method: { exact: POST }
  tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: 1s }
---
apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: all-requests, namespace: production }
spec:
  selector: { app: order-service }
  port: 8080
  tokenBucket: { maxTokens: 100, tokensPerFill: 100, fillInterval: 1s }
---
apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: slow, namespace: production }
spec:
  service: order-service
  match: { uri: { prefix: /slow } }
  tokenBucket: { maxTokens: 1, fillInterval: 60s }
`;

before(async () => {
  // The application behind the server-side sidecar, on 127.0.0.1 as `skein run` places it.
  app = await upstream("127.0.0.1");
  const started = await startControlPlane({ "mesh.yaml": mesh });
  cp = started.cp;
  write = started.write;
  server = await startSidecar(started.xds, SERVER, "order-service", "production", { "app:http": app.port });
  client = await startSidecar(started.xds, CLIENT);
  // The client's sidecar learns the server's sidecar as the endpoint once it registered.
  await until(
    "the order-service endpoint is known",
    async () => (await send(CLIENT, HOST, "/")).status === 200,
  );
  await sleep(1100); // that request took a token from the catch-all bucket; start the test on fresh buckets
});

after(async () => {
  await client?.stop();
  await server?.stop();
  await cp?.stop();
  await app?.close();
});

test("5 tokens, 5 per second: of 10 POST /orders within a second, 5 pass and 5 get 429 RL with x-ratelimit headers", async () => {
  const received = app.received;
  const first = server.completed.length;
  const rs = [];
  for (let i = 0; i < 10; i++) rs.push(await send(CLIENT, HOST, "/orders", { body: `{"n":${i}}` }));
  const t = rs.map((r) => r.ms).reduce((a, b) => a + b, 0);
  assert.ok(t < 900, `the 10 requests took ${t} ms, within one fill interval`);
  assert.deepEqual(
    rs.map((r) => r.status),
    [200, 200, 200, 200, 200, 429, 429, 429, 429, 429],
  );
  assert.deepEqual(
    rs.map((r) => r.headers["x-ratelimit-remaining"]),
    ["4", "3", "2", "1", "0", "0", "0", "0", "0", "0"],
  );
  for (const r of rs) {
    assert.equal(r.headers["x-ratelimit-limit"], "5");
    assert.equal(r.headers["x-ratelimit-reset"], "1");
  }
  assert.equal(rs[5]?.body, "local_rate_limited");
  assert.equal(app.received - received, 5, "refused requests never reach the application");
  const flags = server.completed.slice(first).map((i) => formatResponseFlags(i.responseFlags));
  assert.equal(flags.filter((f) => f === "RL").length, 5);
  const stats = server.sidecar.listeners.stats;
  assert.equal(
    stats.counter("ratelimit.production.order-writes.http_local_rate_limit.rate_limited").value,
    5,
  );
});

test("other requests count against the catch-all RateLimit; a second later the narrow bucket is full again", async () => {
  const get = await send(CLIENT, HOST, "/orders");
  assert.equal(get.status, 200);
  assert.equal(get.headers["x-ratelimit-limit"], "100", "a GET is not a write: the catch-all bucket");
  await sleep(1000);
  const rs = [];
  for (let i = 0; i < 6; i++) rs.push(await send(CLIENT, HOST, "/orders", { body: "{}" }));
  assert.deepEqual(
    rs.map((r) => r.status),
    [200, 200, 200, 200, 200, 429],
  );
});

/** The route names of the server sidecar's inbound listener, as it has them now. */
function inboundRoutes(): string[] {
  const l = server.sidecar.store.config.listeners.get(`${SERVER}_8080`);
  return l?.config.kind === "http" ? (l.config.routes?.virtualHosts[0]?.routes.map((r) => r.name) ?? []) : [];
}

test("a config update that keeps a RateLimit keeps its bucket; changing its settings starts a fresh one", async () => {
  assert.equal((await send(CLIENT, HOST, "/slow")).status, 200);
  assert.equal((await send(CLIENT, HOST, "/slow")).status, 429, "1 token per minute");
  const extra = `---
apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: extra, namespace: production }
spec:
  selector: { app: order-service }
  match: { uri: { prefix: /extra } }
  tokenBucket: { maxTokens: 1, fillInterval: 1s }
`;
  write("mesh.yaml", mesh + extra);
  await until("the server's inbound listener is updated", () => inboundRoutes().includes("ratelimit/extra"));
  assert.equal((await send(CLIENT, HOST, "/slow")).status, 429, "the listener was rebuilt, the bucket kept");
  write(
    "mesh.yaml",
    mesh.replace("maxTokens: 1, fillInterval: 60s", "maxTokens: 2, fillInterval: 60s") + extra,
  );
  await until("the new bucket size arrives", () => {
    const l = server.sidecar.store.config.listeners.get(`${SERVER}_8080`);
    const route =
      l?.config.kind === "http"
        ? l.config.routes?.virtualHosts[0]?.routes.find((r) => r.name === "ratelimit/slow")
        : undefined;
    const c = route?.filterConfig.get("envoy.filters.http.local_ratelimit") as
      | { tokenBucket?: { maxTokens: number } }
      | undefined;
    return c?.tokenBucket?.maxTokens === 2;
  });
  assert.equal((await send(CLIENT, HOST, "/slow")).status, 200, "new settings, new bucket");
});
