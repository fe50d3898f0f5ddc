// Issue 9: what retries and outlier detection buy a client. Three endpoints serve one service; one of them
// flaps, failing half its requests with 503. The same load goes through the real Sidecar twice: to a host
// without retries or outlier detection, and to a host (same endpoints) with Istio retries (2, on 5xx, to
// other endpoints) and outlier detection (3 consecutive 5xx). Both numbers are printed.
//
// Statistics: n = 1000 requests each, 20 at a time. Without resilience a request fails when it lands on the
// flapping endpoint (1/3) and that endpoint fails (1/2): failures ~ Binomial(1000, 1/6), mean 167, sd 11.8;
// accepted ≥ 100 (5.7 sd below). With it, a request fails only if every attempt fails, but retries go to
// other endpoints, which do not fail: expected 0, accepted ≤ 5.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { ControlPlane } from "../src/control-plane/control-plane.js";
import {
  type RunningSidecar,
  send,
  sendMany,
  startControlPlane,
  startSidecar,
  type Upstream,
  upstream,
} from "./resilience-harness.js";

const SIDECAR = "127.0.14.70";

let endpoints: Upstream[] = [];
let cp: ControlPlane;
let proxy: RunningSidecar;

function mesh(ups: Upstream[]): string {
  let out = "";
  for (const name of ["catalog-plain", "catalog-resilient"])
    out += `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: ${name}, namespace: production }
spec:
  selector: { app: catalog }
  ports: [{ name: http, port: 8080 }]
---
`;
  ups.forEach((u, i) => {
    out += `apiVersion: skein.dev/v1alpha1
kind: Workload
metadata: { name: catalog-${i + 1}, namespace: production, labels: { app: catalog } }
spec: { address: ${u.address}, ports: { http: ${u.port} } }
---
`;
  });
  return `${out}apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: catalog-plain, namespace: production }
spec:
  hosts: [catalog-plain]
  http:
    - retries: { attempts: 0 }
      route: [{ destination: { host: catalog-plain } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: catalog-resilient, namespace: production }
spec:
  hosts: [catalog-resilient]
  http:
    - retries: { attempts: 2, retryOn: 5xx }
      route: [{ destination: { host: catalog-resilient } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: catalog-resilient, namespace: production }
spec:
  host: catalog-resilient
  trafficPolicy:
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 1s
      baseEjectionTime: 2s
      maxEjectionPercent: 34
`;
}

before(async () => {
  endpoints = [
    await upstream("127.0.14.71"),
    await upstream("127.0.14.72"),
    await upstream("127.0.14.73", (_req, res) => {
      if (Math.random() < 0.5) res.writeHead(503).end("flapping");
      else res.writeHead(200).end("ok");
    }),
  ];
  const started = await startControlPlane({ "mesh.yaml": mesh(endpoints) });
  cp = started.cp;
  proxy = await startSidecar(started.xds, SIDECAR);
});

after(async () => {
  await proxy?.stop();
  await cp?.stop();
  for (const u of endpoints) await u.close();
});

test("a flapping endpoint under load costs the client fewer failed requests with retries and outlier detection than without (n = 1000 each)", async (t) => {
  const n = 1000;
  const run = async (service: string) => {
    const first = proxy.completed.length;
    const rs = await sendMany(n, 20, () => send(SIDECAR, `${service}.production:8080`, "/items"));
    const infos = proxy.completed.slice(first);
    return {
      failed: rs.filter((r) => r.status !== 200).length,
      attempts: infos.reduce((s, i) => s + i.attempts, 0),
    };
  };
  const plain = await run("catalog-plain");
  const resilient = await run("catalog-resilient");
  const ejections =
    proxy.sidecar.clusters.stats()["outbound|8080||catalog-resilient.production.svc.cluster.local"]
      ?.ejectionsTotal ?? 0;
  t.diagnostic(`without retries or outlier detection: ${plain.failed} of ${n} requests failed`);
  t.diagnostic(
    `with retries (2, on 5xx) and outlier detection: ${resilient.failed} of ${n} failed ` +
      `(${resilient.attempts - n} retries, ${ejections} ejections of the flapping endpoint)`,
  );
  assert.ok(plain.failed >= 100, `without: ${plain.failed} failures`);
  assert.ok(resilient.failed <= 5, `with: ${resilient.failed} failures`);
  assert.ok(resilient.failed < plain.failed);
  assert.ok(ejections >= 1, "outlier detection ejected the flapping endpoint");
});
