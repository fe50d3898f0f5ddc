// 200 simulated proxies connect to a real control plane; a configuration change must reach (and be
// ACKed by) all of them. The time it takes is reported, not asserted: speed belongs to bench/.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { createLogger } from "../src/lib/log.js";
import { ROUTE } from "../src/xds/protos.js";
import { SimulatedProxy } from "./sim-proxy.js";

const PROXIES = 200;

const services = ["order-service", "payment-service", "inventory-service", "api-gateway"]
  .map(
    (name) => `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: ${name}, namespace: production }
spec:
  selector: { app: ${name} }
  ports: [{ name: http, port: 8080 }]
`,
  )
  .join("---\n");

const routes = (canary: number) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: order-service, namespace: production }
spec:
  hosts: [order-service]
  http:
    - route:
        - destination: { host: order-service, subset: stable }
          weight: ${100 - canary}
        - destination: { host: order-service, subset: canary }
          weight: ${canary}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: order-service, namespace: production }
spec:
  host: order-service
  subsets:
    - { name: stable, labels: { version: v1 } }
    - { name: canary, labels: { version: v2 } }
`;

test(`a config change reaches all ${PROXIES} connected proxies (ACKed)`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "skein-scale-"));
  writeFileSync(join(dir, "services.yaml"), services);
  writeFileSync(join(dir, "routes.yaml"), routes(10));
  const cp = new ControlPlane({
    configDir: dir,
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: createLogger("control-plane", "warn"),
  });
  await cp.start();
  const proxies: SimulatedProxy[] = [];
  try {
    for (let i = 0; i < PROXIES; i++) {
      const app = ["order-service", "payment-service", "inventory-service", "api-gateway"][i % 4] as string;
      proxies.push(
        new SimulatedProxy(
          cp.ports.xds,
          `sidecar~127.0.${10 + (i >> 8)}.${i & 255}~${app}-${i}.production~production.svc.cluster.local`,
          {
            LABELS: { app, version: i % 2 ? "v2" : "v1" },
            SERVICE_ACCOUNT: app,
          },
        ),
      );
    }
    const connectStart = Date.now();
    await Promise.all(proxies.map((p) => p.until((x) => x.versions.has(ROUTE), 30_000)));
    // Let registrations settle (every proxy's workload joins EDS of the others) before measuring.
    await new Promise((r) => setTimeout(r, 300));
    const connected = Date.now() - connectStart;
    const before = new Map(proxies.map((p) => [p.nodeId, p.versions.get(ROUTE)]));

    const t0 = Date.now();
    writeFileSync(join(dir, "routes.yaml"), routes(50));
    const outcome = await cp.pipeline.reload("test");
    assert.equal(outcome.accepted, true);
    await Promise.all(
      proxies.map((p) => p.until((x) => x.versions.get(ROUTE) !== before.get(x.nodeId), 30_000)),
    );
    const reached =
      Math.max(...proxies.map((p) => p.updates.filter((u) => u.typeUrl === ROUTE).at(-1)?.at ?? 0)) - t0;

    // The control plane saw the ACKs: every proxy is SYNCED on RDS at the new version.
    await new Promise((r) => setTimeout(r, 100));
    const status = cp.proxyStatus();
    assert.equal(status.length, PROXIES);
    for (const s of status) {
      assert.equal(s.types.rds?.acked, s.types.rds?.sent, `${s.id} acked the new routes`);
      assert.equal(s.types.rds?.nack, undefined);
    }
    t.diagnostic(`${PROXIES} proxies connected and configured in ${connected} ms`);
    t.diagnostic(`config change to all ${PROXIES} proxies ACKed: ${reached} ms (including 100 ms debounce)`);
  } finally {
    for (const p of proxies) p.close();
    await cp.stop();
  }
});
