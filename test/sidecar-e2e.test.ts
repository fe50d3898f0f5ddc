// Issue 4 end to end: the real sidecar (Sidecar: ADS client, config store, cluster manager, listeners)
// with a real control plane and real upstream servers on 127.0.0.1.
//  - the control plane is stopped and restarted under load: no request fails, the proxy resynchronises;
//  - the control plane sends a resource the proxy cannot honour: it NACKs with a clear reason and keeps
//    routing on its previous config.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { Agent, createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { createLogger } from "../src/lib/log.js";
import { Sidecar } from "../src/proxy/sidecar.js";
import { translate } from "../src/translate/index.js";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from "../src/xds/protos.js";
import { AdsServer } from "../src/xds/server.js";
import { Snapshot, SnapshotCache } from "../src/xds/snapshot.js";
import { check } from "./helpers.js";

const quiet = createLogger("test", "error");

function upstream(address: string, version: string): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200, { "content-type": "text/plain" }).end(version));
  });
  return new Promise((resolve) =>
    server.listen(0, address, () => resolve({ server, port: (server.address() as { port: number }).port })),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 });
/** One request through the sidecar's outbound listener, HTTP_PROXY style. */
function get(proxy: string, url: string): Promise<{ status: number; body: string }> {
  const p = new URL(proxy);
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: p.hostname, port: p.port, path: url, headers: { host: u.host }, agent },
      (res) => {
        let body = "";
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const mesh = (p1: number, p2: number, canary: number) => `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: order-service, namespace: production }
spec:
  selector: { app: order-service }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: skein.dev/v1alpha1
kind: Workload
metadata: { name: order-v1, namespace: production, labels: { app: order-service, version: v1 } }
spec: { address: 127.0.3.1, ports: { http: ${p1} } }
---
apiVersion: skein.dev/v1alpha1
kind: Workload
metadata: { name: order-v2, namespace: production, labels: { app: order-service, version: v2 } }
spec: { address: 127.0.3.2, ports: { http: ${p2} } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: order-service, namespace: production }
spec:
  host: order-service
  subsets: [{ name: stable, labels: { version: v1 } }, { name: canary, labels: { version: v2 } }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: order-service, namespace: production }
spec:
  hosts: [order-service]
  http:
    - route:
        - { destination: { host: order-service, subset: stable }, weight: ${100 - canary} }
        - { destination: { host: order-service, subset: canary }, weight: ${canary} }
`;

const node = (address: string) => ({
  id: `sidecar~${address}~api-gateway.production~production.svc.cluster.local`,
  metadata: {
    NAMESPACE: "production",
    LABELS: { app: "api-gateway" },
    SERVICE_ACCOUNT: "api-gateway",
    INSTANCE_IPS: address,
  },
});

test("control plane stopped and restarted under load: no request fails; the proxy resynchronises", async (t) => {
  const v1 = await upstream("127.0.3.1", "v1");
  const v2 = await upstream("127.0.3.2", "v2");
  const dir = mkdtempSync(join(tmpdir(), "skein-e2e-"));
  writeFileSync(join(dir, "mesh.yaml"), mesh(v1.port, v2.port, 0));
  const xdsPort = await freePort();
  const options = {
    configDir: dir,
    host: "127.0.0.1",
    xdsPort,
    httpPort: 0,
    metricsPort: 0,
    logger: quiet,
    graceMs: 60_000,
  };
  let cp = new ControlPlane(options);
  await cp.start();
  const address = "127.0.3.10";
  const sidecar = new Sidecar({
    xds: `127.0.0.1:${xdsPort}`,
    node: node(address),
    adminAddress: address,
    adminPort: 0,
    drainMs: 1000,
    logger: quiet,
  });
  await sidecar.start();
  const proxy = `http://${address}:15001`;
  const target = "http://order-service.production:8080/orders/1";
  try {
    await until("sidecar ready", () => sidecar.ready());
    assert.equal((await get(proxy, target)).body, "v1");

    // Steady load for the whole test.
    let stop = false;
    const results = { ok: 0, failed: [] as string[], v2: 0 };
    const loop = async () => {
      while (!stop) {
        try {
          const r = await get(proxy, target);
          if (r.status === 200) {
            results.ok++;
            if (r.body === "v2") results.v2++;
          } else results.failed.push(`${r.status} ${r.body}`);
        } catch (err) {
          results.failed.push((err as Error).message);
        }
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    await new Promise((r) => setTimeout(r, 300));
    await cp.stop();
    await until("the proxy notices", () => !sidecar.client.connected, 5000);
    const during = results.ok;
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(
      results.ok > during,
      "requests keep flowing on the last good config while the control plane is down",
    );

    // Restarted with a change made while it was down: the proxy reconnects and takes it.
    writeFileSync(join(dir, "mesh.yaml"), mesh(v1.port, v2.port, 100));
    cp = new ControlPlane(options);
    await cp.start();
    await until("the proxy resynchronises", () => results.v2 > 0, 20_000);
    const resynced = results.ok;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);
    assert.deepEqual(results.failed, [], "no request failed");
    assert.ok(results.ok > resynced);
    const status = cp.proxyStatus().find((p) => p.id === node(address).id);
    for (const type of ["lds", "rds", "cds", "eds"])
      assert.equal(status?.types[type]?.acked, status?.types[type]?.sent, type);
    t.diagnostic(`${results.ok} requests, none failed, across a control-plane restart`);
  } finally {
    await sidecar.stop();
    await cp.stop();
    v1.server.close();
    v2.server.close();
  }
});

test("a resource the proxy cannot honour is NACKed with its reason; routing goes on with the previous config", async () => {
  const v1 = await upstream("127.0.3.1", "v1");
  const v2 = await upstream("127.0.3.2", "v2");
  const address = "127.0.3.11";
  // The control plane's own translation of a real mesh, served by hand so a bad resource can be slipped in.
  const built = check(mesh(v1.port, v2.port, 0), { analyze: true });
  assert.ok(built.model);
  // With its workload, so the outbound listener binds the workload's own address (not 0.0.0.0:15001).
  const identity = {
    id: node(address).id,
    kind: "sidecar" as const,
    namespace: "production",
    workload: {
      id: node(address).id,
      name: "api-gateway",
      namespace: "production",
      labels: { app: "api-gateway" },
      serviceAccount: "api-gateway",
      address,
      ports: {},
      origin: "proxy" as const,
      healthy: true,
    },
  };
  const workloads = built.model.workloads.map((w) => ({
    id: w.name,
    name: w.name,
    namespace: w.namespace,
    labels: w.labels,
    serviceAccount: w.serviceAccount,
    address: w.address as string,
    ports: Object.fromEntries(w.ports.map((p) => [p.name, p.number])),
    origin: "static" as const,
    healthy: true,
  }));
  const good = translate({ version: "1", model: built.model, workloads }, identity);
  const byName = <T extends { name?: string; clusterName?: string }>(l: T[]) =>
    new Map(l.map((x) => [(x.name ?? x.clusterName) as string, x]));
  const snapshot = (listeners: typeof good.listeners) =>
    new Snapshot({
      [LISTENER]: byName(listeners),
      [ROUTE]: byName(good.routes),
      [CLUSTER]: byName(good.clusters),
      [ENDPOINT]: byName(good.endpoints),
    });
  const cache = new SnapshotCache();
  const ads = new AdsServer({ cache, address: "127.0.0.1:0" });
  const nacks: string[] = [];
  ads.on("nack", (_n, _t, _v, message) => nacks.push(message));
  const port = await ads.listen();
  cache.setSnapshot(identity.id, snapshot(good.listeners));
  const sidecar = new Sidecar({
    xds: `127.0.0.1:${port}`,
    node: node(address),
    adminAddress: address,
    adminPort: 0,
    drainMs: 500,
    logger: quiet,
  });
  await sidecar.start();
  const proxy = `http://${address}:15001`;
  try {
    await until("sidecar ready", () => sidecar.ready());
    assert.equal((await get(proxy, "http://order-service.production:8080/")).body, "v1");

    const bad = structuredClone(good.listeners);
    const outbound = bad.find((l) => l.name === "virtualOutbound");
    assert.ok(outbound?.filterChains?.[0]?.filters);
    outbound.filterChains[0].filters.unshift({
      name: "envoy.filters.network.redis_proxy",
      typedConfig: { "@type": "type.googleapis.com/google.protobuf.Empty" },
    } as never);
    cache.setSnapshot(identity.id, snapshot(bad));
    await until("the NACK arrives", () => nacks.length > 0);
    assert.match(
      nacks[0] ?? "",
      /Listener "virtualOutbound": filter_chains\[0\]\.filters\[0\]: .*redis_proxy/,
    );
    for (let i = 0; i < 20; i++)
      assert.equal((await get(proxy, "http://order-service.production:8080/")).body, "v1");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(nacks.length, 1, "the NACK is not retried in a loop");
  } finally {
    await sidecar.stop();
    await ads.close();
    v1.server.close();
    v2.server.close();
  }
});
