// Issue 9, traffic shaping end to end: a VirtualService's corsPolicy (the cors filter answering preflights and
// decorating responses) and mirror (the router's fire-and-forget shadow requests), through a real control
// plane, the real Sidecar and real upstreams.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ControlPlane } from "../src/control-plane/control-plane.js";
import {
  type RunningSidecar,
  send,
  serviceYaml,
  sleep,
  startControlPlane,
  startSidecar,
  type Upstream,
  until,
  upstream,
} from "./resilience-harness.js";

const SIDECAR = "127.0.14.30";
const HOST = "order-service.production:8080";
const ORIGIN = "https://shop.example";

let primary: Upstream;
let mirror: Upstream;
let mirrorMode: "ok" | "slow" | "error" = "ok";
let cp: ControlPlane;
let proxy: RunningSidecar;

const routing = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: order-service, namespace: production }
spec:
  hosts: [order-service]
  http:
    - match: [{ uri: { prefix: /api } }]
      corsPolicy:
        allowOrigins: [{ exact: "${ORIGIN}" }]
        allowMethods: [GET, POST]
        allowHeaders: [x-token]
        exposeHeaders: [x-upstream]
        maxAge: 10m
        allowCredentials: true
      route: [{ destination: { host: order-service } }]
    - match: [{ uri: { prefix: /mirrored } }]
      mirror: { host: audit }
      mirrorPercentage: { value: 100 }
      timeout: 5s
      route: [{ destination: { host: order-service } }]
`;

before(async () => {
  primary = await upstream("127.0.14.21", (_req, res) => {
    res.writeHead(200, { "x-upstream": "primary" }).end("primary");
  });
  mirror = await upstream("127.0.14.22", async (_req, res) => {
    if (mirrorMode === "slow") await sleep(2000);
    if (mirrorMode === "error") res.writeHead(500).end("mirror failed");
    else res.writeHead(200).end("mirror");
  });
  const started = await startControlPlane({
    "mesh.yaml": `${serviceYaml("order-service", [primary])}---\n${serviceYaml("audit", [mirror])}`,
    "routing.yaml": routing,
  });
  cp = started.cp;
  proxy = await startSidecar(started.xds, SIDECAR);
});

after(async () => {
  await proxy?.stop();
  await cp?.stop();
  await primary?.close();
  await mirror?.close();
});

test("CORS: a preflight from an allowed origin is answered by the sidecar with the route's policy", async () => {
  const received = primary.received;
  const r = await send(SIDECAR, HOST, "/api/orders", {
    method: "OPTIONS",
    headers: {
      origin: ORIGIN,
      "access-control-request-method": "POST",
      "access-control-request-headers": "x-token",
    },
  });
  assert.equal(r.status, 200);
  assert.equal(r.headers["access-control-allow-origin"], ORIGIN);
  assert.equal(r.headers["access-control-allow-methods"], "GET,POST");
  assert.equal(r.headers["access-control-allow-headers"], "x-token");
  assert.equal(r.headers["access-control-max-age"], "600");
  assert.equal(r.headers["access-control-allow-credentials"], "true");
  assert.equal(primary.received, received, "the upstream never saw the preflight");
});

test("CORS: a preflight from another origin goes upstream and gets no CORS headers", async () => {
  const received = primary.received;
  const r = await send(SIDECAR, HOST, "/api/orders", {
    method: "OPTIONS",
    headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
  });
  assert.equal(r.status, 200);
  assert.equal(r.body, "primary");
  assert.equal(r.headers["access-control-allow-origin"], undefined);
  assert.equal(primary.received, received + 1, "forwarded (Envoy's forward_not_matching_preflights default)");
});

test("CORS: actual requests from an allowed origin get Allow-Origin, Allow-Credentials and Expose-Headers", async () => {
  const ok = await send(SIDECAR, HOST, "/api/orders", { headers: { origin: ORIGIN } });
  assert.equal(ok.status, 200);
  assert.equal(ok.body, "primary");
  assert.equal(ok.headers["access-control-allow-origin"], ORIGIN);
  assert.equal(ok.headers["access-control-allow-credentials"], "true");
  assert.equal(ok.headers["access-control-expose-headers"], "x-upstream");
  const other = await send(SIDECAR, HOST, "/api/orders", { headers: { origin: "https://evil.example" } });
  assert.equal(other.headers["access-control-allow-origin"], undefined);
  const none = await send(SIDECAR, HOST, "/api/orders");
  assert.equal(none.headers["access-control-allow-origin"], undefined);
  const elsewhere = await send(SIDECAR, HOST, "/mirrored", { headers: { origin: ORIGIN } });
  assert.equal(elsewhere.headers["access-control-allow-origin"], undefined, "a route without a policy");
});

test("mirroring: the mirror gets a copy with -shadow in its host; the client sees only the primary's answer", async () => {
  const seen = mirror.received;
  const r = await send(SIDECAR, HOST, "/mirrored/1?x=1", { headers: { "x-trace": "abc" } });
  assert.equal(r.status, 200);
  assert.equal(r.body, "primary");
  await until("the mirror gets its copy", () => mirror.received === seen + 1);
  const copy = mirror.seen.at(-1);
  assert.equal(copy?.url, "/mirrored/1?x=1");
  assert.equal(copy?.headers.host, "order-service.production-shadow:8080");
  assert.equal(copy?.headers["x-trace"], "abc");

  // A body that fits the replay buffer is mirrored; one that does not is only sent to the primary.
  const small = await send(SIDECAR, HOST, "/mirrored/2", { body: "hello" });
  assert.equal(small.body, "primary");
  await until("the mirror gets the small body", () => mirror.received === seen + 2);
  assert.equal(mirror.seen.at(-1)?.body, "hello");
  const big = "x".repeat(100 * 1024);
  const large = await send(SIDECAR, HOST, "/mirrored/3", { body: big });
  assert.equal(large.status, 200);
  assert.equal(primary.seen.at(-1)?.body.length, big.length);
  await sleep(200);
  assert.equal(mirror.received, seen + 2, "a body past the buffer is not mirrored");
});

test("mirroring: a slow, failing or absent mirror never affects the client", async () => {
  mirrorMode = "slow";
  const seen = mirror.received;
  const slow = await send(SIDECAR, HOST, "/mirrored/slow");
  assert.equal(slow.status, 200);
  assert.ok(slow.ms < 1000, `the client did not wait for the 2 s mirror: ${slow.ms} ms`);
  await until("the slow mirror got it", () => mirror.received === seen + 1);

  mirrorMode = "error";
  for (let i = 0; i < 5; i++) {
    const r = await send(SIDECAR, HOST, "/mirrored/error");
    assert.equal(r.status, 200);
    assert.equal(r.body, "primary");
  }
  await until("the failing mirror got them", () => mirror.received === seen + 6);

  await mirror.close();
  for (let i = 0; i < 5; i++) {
    const r = await send(SIDECAR, HOST, "/mirrored/down");
    assert.equal(r.status, 200, "the mirror refuses connections; the client does not notice");
    assert.equal(r.body, "primary");
  }
});
