// Who gets pushed when the registry changes: a proxy whose workload no service selects changes nobody else's
// configuration, so connecting it pushes only to itself; a workload a service selects (a new endpoint) is pushed
// to every proxy that sees that service.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { createLogger } from "../src/lib/log.js";
import { AdsClient } from "../src/xds/client.js";
import { ENDPOINT, LISTENER } from "../src/xds/protos.js";

const mesh = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: orders, namespace: shop }
spec:
  selector: { app: orders }
  ports: [{ name: http, port: 8080 }]
`;

let cp: ControlPlane;
const clients: AdsClient[] = [];
/** Responses each node received, by type URL. */
const received = new Map<string, Map<string, number>>();

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "skein-push-"));
  writeFileSync(join(dir, "mesh.yaml"), mesh);
  cp = new ControlPlane({
    configDir: dir,
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: createLogger("test", "error"),
    debounceMs: 50,
    maxDebounceMs: 200,
  });
  await cp.start();
});

after(async () => {
  for (const c of clients) c.close();
  await cp.stop();
});

function connect(name: string, app: string, address: string): void {
  const id = `sidecar~${address}~${name}.shop~shop.svc.cluster.local`;
  const counts = new Map<string, number>();
  received.set(id, counts);
  const client = new AdsClient({
    address: `127.0.0.1:${cp.ports.xds}`,
    node: {
      id,
      metadata: { NAMESPACE: "shop", LABELS: { app }, SERVICE_ACCOUNT: app, INSTANCE_IPS: address },
    },
    validate: (typeUrl) => {
      counts.set(typeUrl, (counts.get(typeUrl) ?? 0) + 1);
      return { ok: true };
    },
  });
  // As a sidecar's config store does once it has the cluster: the service's endpoints.
  client.subscribe(ENDPOINT, ["outbound|8080||orders.shop.svc.cluster.local"]);
  clients.push(client);
}

const count = (name: string, address: string, type: string) =>
  received.get(`sidecar~${address}~${name}.shop~shop.svc.cluster.local`)?.get(type) ?? 0;

async function until(what: string, pred: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** How many pushes to every proxy the control plane has built (skein_push_build_seconds observations). */
async function pushes(): Promise<number> {
  const m = await cp.metrics.pushDuration.get();
  return m.values.find((v) => v.metricName === "skein_push_build_seconds_count")?.value ?? 0;
}

const settle = () => new Promise((r) => setTimeout(r, 600)); // well past the 200 ms debounce cap

test("a workload behind no service: connecting it pushes nothing to the others", async () => {
  connect("client-a", "client-a", "127.0.7.1");
  await until("a configured", () => count("client-a", "127.0.7.1", LISTENER) > 0);
  await settle();
  const before = [...(received.get("sidecar~127.0.7.1~client-a.shop~shop.svc.cluster.local") ?? [])];
  const pushesBefore = await pushes();
  connect("client-b", "client-b", "127.0.7.2");
  await until("b configured", () => count("client-b", "127.0.7.2", LISTENER) > 0);
  await settle();
  assert.deepEqual(
    [...(received.get("sidecar~127.0.7.1~client-a.shop~shop.svc.cluster.local") ?? [])],
    before,
    "client-a got nothing new",
  );
  // And nothing was translated for the others: no push to every proxy was built.
  assert.equal(await pushes(), pushesBefore, "no push to all proxies");
});

test("a workload a service selects: every proxy that sees the service gets the new endpoint", async () => {
  const edsBefore = count("client-a", "127.0.7.1", ENDPOINT);
  const edsB = count("client-b", "127.0.7.2", ENDPOINT);
  assert.ok(edsBefore > 0, "client-a has the service's (empty) endpoints");
  connect("orders-1", "orders", "127.0.7.3");
  await until("client-a gets the new endpoint", () => count("client-a", "127.0.7.1", ENDPOINT) > edsBefore);
  await until("client-b too", () => count("client-b", "127.0.7.2", ENDPOINT) > edsB);
});
