// Issue 9, active health checks end to end: an App Mesh VirtualNode listener's healthCheck → the model's
// TrafficPolicy.healthChecks → Envoy cluster health_checks → the real Sidecar's health checker, against real
// endpoints. App Mesh's own limits apply (interval ≥ 5 s, thresholds ≥ 2), so recovery takes two passes
// five seconds apart: between 5 and 10 s after the endpoint heals (14 s allowed for a loaded machine).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ControlPlane } from "../src/control-plane/control-plane.js";
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

const SIDECAR = "127.0.14.50";
const HOST = "inventory.shop:8080";
const CLUSTER = "outbound|8080||inventory.shop.svc.cluster.local";

let good: Upstream;
let flaky: Upstream;
let flakyHealthy = false;
let cp: ControlPlane;
let proxy: RunningSidecar;

const appMesh = (goodPort: number, flakyPort: number) => `apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: { name: shop }
spec:
  egressFilter: { type: ALLOW_ALL }
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata: { name: inventory, namespace: shop }
spec:
  meshRef: { name: shop, uid: "1" }
  podSelector: { matchLabels: { app: inventory } }
  listeners:
    - portMapping: { port: 8080, protocol: http }
      healthCheck:
        protocol: http
        path: /health
        healthyThreshold: 2
        unhealthyThreshold: 2
        timeoutMillis: 2000
        intervalMillis: 5000
  serviceDiscovery:
    dns: { hostname: inventory.shop.svc.cluster.local }
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: { name: inventory, namespace: shop }
spec:
  meshRef: { name: shop, uid: "1" }
  awsName: inventory.shop.svc.cluster.local
  provider:
    virtualNode: { virtualNodeRef: { name: inventory } }
---
apiVersion: skein.dev/v1alpha1
kind: Workload
metadata: { name: inventory-1, namespace: shop, labels: { app: inventory } }
spec: { address: 127.0.14.51, ports: { http-8080: ${goodPort} } }
---
apiVersion: skein.dev/v1alpha1
kind: Workload
metadata: { name: inventory-2, namespace: shop, labels: { app: inventory } }
spec: { address: 127.0.14.52, ports: { http-8080: ${flakyPort} } }
`;

/** Traffic requests a server received (health checks left out). */
const traffic = (u: Upstream) => u.seen.filter((r) => r.url !== "/health").length;

before(async () => {
  good = await upstream("127.0.14.51");
  flaky = await upstream("127.0.14.52", (req, res) => {
    if (req.url === "/health") res.writeHead(flakyHealthy ? 200 : 503).end();
    else res.writeHead(200).end("flaky");
  });
  const started = await startControlPlane({ "appmesh.yaml": appMesh(good.port, flaky.port) });
  cp = started.cp;
  proxy = await startSidecar(started.xds, SIDECAR, "client", "shop");
});

after(async () => {
  await proxy?.stop();
  await cp?.stop();
  await good?.close();
  await flaky?.close();
});

test("an endpoint failing its App Mesh health check receives no traffic until two checks pass again", async (t) => {
  const hosts = () => proxy.sidecar.clusters.get(CLUSTER)?.hosts() ?? [];
  await until(
    "the first checks are in",
    () => hosts().length === 2 && hosts().every((h) => !h.activeHealthCheckPending),
  );
  const check = flaky.seen.find((r) => r.url === "/health");
  assert.equal(check?.method, "GET");
  assert.equal(check?.headers.host, CLUSTER, "Envoy's default Host for a check: the cluster's name");

  for (let i = 0; i < 20; i++) assert.equal((await send(SIDECAR, HOST, "/items")).status, 200);
  assert.equal(traffic(flaky), 0, "the failing endpoint got none of 20 requests");
  assert.equal(traffic(good), 20);

  flakyHealthy = true;
  const healed = performance.now();
  while (traffic(flaky) === 0) {
    assert.equal((await send(SIDECAR, HOST, "/items")).status, 200);
    assert.ok(performance.now() - healed < 14_000, "the endpoint came back");
    await sleep(50);
  }
  const after = performance.now() - healed;
  assert.ok(after > 4900, `back after ${after} ms: two passes 5 s apart were needed`);
  t.diagnostic(`the healed endpoint took traffic again ${Math.round(after)} ms after it recovered`);
});
