// Issue 9, connection-pool limits and outlier detection end to end: DestinationRule connectionPool and
// outlierDetection → translation (circuit breakers, outlier_detection) → the real Sidecar's upstream layer,
// against instrumented upstreams that count what reaches them and how much at once.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ControlPlane } from "../src/control-plane/control-plane.js";
import { formatResponseFlags } from "../src/proxy/router/stream-info.js";
import {
  type Reply,
  type RunningSidecar,
  send,
  serviceYaml,
  sleep,
  startControlPlane,
  startSidecar,
  type Upstream,
  upstream,
} from "./resilience-harness.js";

const SIDECAR = "127.0.14.40";
const cluster = (service: string) => `outbound|8080||${service}.production.svc.cluster.local`;

let orders: Upstream;
let payments: Upstream;
let stockGood: Upstream;
let stockBad: Upstream;
let cp: ControlPlane;
let proxy: RunningSidecar;

const hold =
  (ms: number) => async (_req: unknown, res: { writeHead(s: number): { end(b: string): void } }) => {
    await sleep(ms);
    res.writeHead(200).end("ok");
  };

const policies = `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: order-service, namespace: production }
spec:
  host: order-service
  trafficPolicy:
    connectionPool:
      tcp: { maxConnections: 4 }
      http: { http1MaxPendingRequests: 2 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: payment-service, namespace: production }
spec:
  host: payment-service
  trafficPolicy:
    connectionPool:
      http: { http2MaxRequests: 3 }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: stock-service, namespace: production }
spec:
  host: stock-service
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBIN }
    outlierDetection:
      consecutive5xxErrors: 3
      # Long enough that no sweep forgives an ejection during the test (returns are checked on every response).
      interval: 10s
      baseEjectionTime: 500ms
      maxEjectionPercent: 50
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: stock-service, namespace: production }
spec:
  hosts: [stock-service]
  http:
    - retries: { attempts: 0 }
      route: [{ destination: { host: stock-service } }]
`;

before(async () => {
  orders = await upstream("127.0.14.41", hold(500));
  payments = await upstream("127.0.14.42", hold(500));
  stockGood = await upstream("127.0.14.43");
  stockBad = await upstream("127.0.14.44", (_req, res) => {
    res.writeHead(500).end("broken");
  });
  const started = await startControlPlane({
    "mesh.yaml": [
      serviceYaml("order-service", [orders]),
      serviceYaml("payment-service", [payments]),
      serviceYaml("stock-service", [stockGood, stockBad]),
    ].join("---\n"),
    "policies.yaml": policies,
  });
  cp = started.cp;
  proxy = await startSidecar(started.xds, SIDECAR);
});

after(async () => {
  await proxy?.stop();
  await cp?.stop();
  for (const u of [orders, payments, stockGood, stockBad]) await u?.close();
});

/** Fires `n` requests at once at `host`; resolves with every reply and the flags each ended with. */
async function burst(n: number, host: string): Promise<{ replies: Reply[]; flags: string[] }> {
  const first = proxy.completed.length;
  const replies = await Promise.all(Array.from({ length: n }, () => send(SIDECAR, host, "/")));
  const flags = proxy.completed.slice(first).map((i) => formatResponseFlags(i.responseFlags));
  return { replies, flags };
}

test("max connections 4 + 2 pending: 6 of 20 simultaneous requests are served, never more than 4 at once; 14 get 503 UO", async () => {
  const { replies, flags } = await burst(20, "order-service.production:8080");
  const ok = replies.filter((r) => r.status === 200);
  const overflow = replies.filter((r) => r.status === 503);
  assert.equal(ok.length, 6, "4 on the connections, then the 2 that waited");
  assert.equal(overflow.length, 14);
  for (const r of overflow) {
    assert.equal(r.headers["x-envoy-overloaded"], "true");
    assert.match(r.body, /reset reason: overflow/);
    assert.ok(r.ms < 400, `refused at once, not queued: ${r.ms} ms`);
  }
  assert.equal(flags.filter((f) => f === "UO").length, 14);
  assert.equal(orders.maxInFlight, 4, "never more than 4 requests reached the upstream at once");
  assert.equal(orders.received, 6);
  const stats = proxy.sidecar.clusters.stats()[cluster("order-service")];
  assert.equal(stats?.overflowsTotal, 14);
  assert.equal(stats?.connectionsActive, 4);
});

test("max requests 3: 3 of 10 simultaneous requests reach the upstream; 7 get 503 UO with x-envoy-overloaded", async () => {
  const { replies, flags } = await burst(10, "payment-service.production:8080");
  assert.equal(replies.filter((r) => r.status === 200).length, 3);
  const overflow = replies.filter((r) => r.status === 503);
  assert.equal(overflow.length, 7);
  assert.ok(overflow.every((r) => r.headers["x-envoy-overloaded"] === "true"));
  assert.equal(flags.filter((f) => f === "UO").length, 7);
  assert.equal(payments.maxInFlight, 3);
});

test("outlier detection: a failing endpoint is ejected after 3 consecutive 5xx, returns after 500 ms, and is ejected for twice as long the next time", async (t) => {
  const host = "stock-service.production:8080";
  let failures = 0;
  let lastFailureAt = 0;
  const get = async () => {
    const r = await send(SIDECAR, host, "/");
    if (r.status !== 200) {
      failures++;
      lastFailureAt = performance.now();
    }
    return r;
  };
  // Round robin alternates the two endpoints until the third failure ejects the bad one.
  for (let i = 0; i < 30; i++) await get();
  assert.equal(stockBad.received, 3, "ejected after exactly 3 consecutive errors");
  assert.equal(failures, 3);
  const ejectedAt = lastFailureAt;

  const waitForBad = async (count: number) => {
    while (stockBad.received < count) {
      await get();
      await sleep(5);
    }
    return performance.now();
  };
  const back = await waitForBad(4);
  const first = back - ejectedAt;
  assert.ok(first >= 500 && first < 900, `first ejection lasted ${first} ms (base 500 ms)`);

  await waitForBad(6);
  await get();
  const ejectedAgainAt = lastFailureAt;
  assert.equal(stockBad.received, 6, "ejected again after 3 more errors");
  const backAgain = await waitForBad(7);
  const second = backAgain - ejectedAgainAt;
  assert.ok(second >= 1000 && second < 1400, `second ejection lasted ${second} ms (2 × base)`);
  const bad = proxy.sidecar.clusters
    .get(cluster("stock-service"))
    ?.hosts()
    .find((h) => h.key === `${stockBad.address}:${stockBad.port}`);
  assert.equal(bad?.ejections, 2);
  t.diagnostic(`ejections lasted ${Math.round(first)} ms and ${Math.round(second)} ms`);
});
