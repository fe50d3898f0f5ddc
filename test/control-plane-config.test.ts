import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigPipeline } from "../src/control-plane/config.js";
import { Debouncer } from "../src/control-plane/debounce.js";
import { identify, Registry } from "../src/control-plane/registry.js";
import { AppliedStore, DirectorySource } from "../src/control-plane/sources.js";

const svc = (name: string) => `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: ${name}, namespace: production }
spec:
  selector: { app: ${name} }
  ports: [{ name: http, port: 8080 }]
`;
const vs = (host: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: routes, namespace: production }
spec:
  hosts: [order-service]
  http: [{ route: [{ destination: { host: ${host} } }] }]
`;

function setup() {
  const dir = mkdtempSync(join(tmpdir(), "skein-cfg-"));
  const state = mkdtempSync(join(tmpdir(), "skein-state-"));
  writeFileSync(join(dir, "svc.yaml"), svc("order-service"));
  const pipeline = new ConfigPipeline(new DirectorySource(dir), new AppliedStore(state));
  return { dir, state, pipeline };
}

test("a bad change is rejected as a whole and the last good configuration stays in force", async () => {
  const { dir, pipeline } = setup();
  const first = await pipeline.reload("start");
  assert.equal(first.accepted, true);
  const good = pipeline.current?.version;
  writeFileSync(join(dir, "vs.yaml"), vs("order-service"));
  assert.equal((await pipeline.reload()).accepted, true);
  assert.notEqual(pipeline.current?.version, good);
  const v2 = pipeline.current?.version;
  assert.equal(pipeline.current?.model.routeTables.length, 1);

  // Breaks analysis (unknown host) and adds a good file in the same change: nothing of it applies.
  writeFileSync(join(dir, "vs.yaml"), vs("billing"));
  writeFileSync(join(dir, "more.yaml"), svc("payment-service"));
  const bad = await pipeline.reload();
  assert.equal(bad.accepted, false);
  assert.deepEqual(
    bad.diagnostics.filter((d) => d.severity === "error").map((d) => d.code),
    ["SKEIN_E_HOST_NOT_FOUND"],
  );
  assert.equal(pipeline.current?.version, v2);
  assert.equal(pipeline.current?.model.services.length, 1);
  assert.equal(pipeline.rejections, 1);
  assert.equal(pipeline.lastRejection?.diagnostics[0]?.file, join(dir, "vs.yaml"));
});

test("apply and delete go through the same checks, and survive a restart", async () => {
  const { dir, state, pipeline } = setup();
  await pipeline.reload("start");
  const rejected = await pipeline.apply("routes.yaml", vs("billing"));
  assert.equal(rejected.accepted, false);
  assert.equal(pipeline.applied.sources().length, 0);

  const ok = await pipeline.apply("routes.yaml", vs("order-service"));
  assert.equal(ok.accepted, true);
  const same = await pipeline.apply("routes.yaml", vs("order-service"));
  assert.equal(same.unchanged, true);

  const restarted = new ConfigPipeline(new DirectorySource(dir), new AppliedStore(state));
  await restarted.applied.load();
  await restarted.reload("start");
  assert.equal(restarted.current?.model.routeTables[0]?.name, "routes");
  assert.equal(restarted.current?.version, pipeline.current?.version);

  const missing = await restarted.delete("VirtualService", "production", "nope");
  assert.equal(missing.found, false);
  const del = await restarted.delete("VirtualService", "production", "routes");
  assert.equal(del.found, true);
  assert.equal(del.accepted, true);
  assert.equal(restarted.current?.model.routeTables.length, 0);
  const again = new AppliedStore(state);
  await again.load();
  assert.equal(again.sources().length, 0);
});

test("the directory is watched: a change is picked up without a reload call", async () => {
  const { dir, pipeline } = setup();
  await pipeline.reload("start");
  const source = new DirectorySource(dir, 100);
  const seen = new Promise<void>((resolve) => source.watch(() => resolve()));
  await new Promise((r) => setTimeout(r, 150));
  writeFileSync(join(dir, "vs.yaml"), vs("order-service"));
  await seen;
  source.close();
});

test("registry: proxies register from node id and metadata, leave after the grace period", async () => {
  const reg = new Registry(50);
  let changes = 0;
  reg.on("changed", () => changes++);
  const id = reg.connect({
    id: "sidecar~127.0.3.7~order-v2-abc.production~production.svc.cluster.local",
    metadata: { LABELS: { app: "order-service", version: "v2" }, SERVICE_ACCOUNT: "order-service" },
  });
  assert.equal(id.kind, "sidecar");
  assert.equal(id.namespace, "production");
  assert.deepEqual(
    reg.instances().map((i) => [i.name, i.address, i.labels.version, i.serviceAccount]),
    [["order-v2-abc", "127.0.3.7", "v2", "order-service"]],
  );
  reg.disconnect(id.id);
  assert.equal(reg.instances().length, 1, "still there during the grace period");
  // Reconnecting within the grace period keeps it.
  reg.connect({ id: id.id, metadata: { LABELS: { app: "order-service", version: "v2" } } });
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(reg.instances().length, 1);
  reg.disconnect(id.id);
  await new Promise((r) => setTimeout(r, 80));
  assert.equal(reg.instances().length, 0);
  assert.ok(changes >= 3);

  const client = identify({ id: "grpc-client-1", metadata: { GENERATOR: "grpc", NAMESPACE: "production" } });
  assert.equal(client.identity.kind, "proxyless");
  assert.equal(client.instance, undefined, "a proxyless client with no address is not an endpoint");
  reg.close();
});

test("debouncer: quiet period, bounded delay", async () => {
  const runs: string[][] = [];
  const d = new Debouncer((r) => runs.push(r), 40, 120);
  const t0 = Date.now();
  const timer = setInterval(() => d.trigger("tick"), 10);
  await new Promise((r) => setTimeout(r, 200));
  const duringStream = runs.length;
  clearInterval(timer);
  await new Promise((r) => setTimeout(r, 60));
  assert.ok(duringStream >= 1, "a steady stream of changes still runs within the max delay");
  assert.ok(Date.now() - t0 >= 200);
  runs.length = 0;
  d.trigger("a");
  d.trigger("b");
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(runs, [["a", "b"]]);
});

test("address allocator: skips used and reserved addresses, .0 and .255, and expires reservations", async () => {
  const { AddressAllocator } = await import("../src/control-plane/addresses.js");
  const used = new Set(["127.0.1.1"]);
  const a = new AddressAllocator(() => used, 1000, 0x7f0001fe, 0x7f000202);
  assert.equal(a.allocate(0), "127.0.1.254"); // .1 is not in this small pool; .254 is its first usable
  assert.equal(a.allocate(0), "127.0.2.1"); // skipped 127.0.1.255 and 127.0.2.0
  assert.equal(a.allocate(0), "127.0.2.2");
  assert.equal(a.allocate(0), undefined, "pool exhausted");
  assert.equal(a.allocate(2000), "127.0.1.254", "reservations expire");
  a.release("127.0.2.1");
  used.add("127.0.2.2");
  assert.equal(a.allocate(2000), "127.0.2.1");
});

test("skein apply overrides a watched file's resource until deleted; applying moves a resource between names", async () => {
  const { dir, pipeline } = setup();
  writeFileSync(join(dir, "vs.yaml"), vs("order-service"));
  await pipeline.reload("start");
  const override = vs("order-service").replace("http: [{ route", "http: [{ timeout: 3s, route");
  const applied = await pipeline.apply("chaos.yaml", override);
  assert.equal(applied.accepted, true);
  assert.equal(pipeline.current?.model.routeTables.length, 1, "one VirtualService, not a conflict");
  assert.equal(pipeline.current?.model.routeTables[0]?.http[0]?.timeoutMs, 3000);
  const info = applied.diagnostics.find((d) => d.code === "SKEIN_I_OVERRIDDEN");
  assert.match(
    info?.message ?? "",
    /VirtualService production\/routes is overridden by the one applied as chaos\.yaml/,
  );
  assert.equal(info?.file, join(dir, "vs.yaml"));

  // The same resource applied under another name moves there (upsert by identity), no duplicate.
  assert.equal((await pipeline.apply("other.yaml", override)).accepted, true);
  assert.deepEqual(
    pipeline.applied.sources().map((s) => s.file),
    ["api:other.yaml"],
  );

  const del = await pipeline.delete("VirtualService", "production", "routes");
  assert.equal(del.accepted, true);
  assert.equal(
    pipeline.current?.model.routeTables[0]?.http[0]?.timeoutMs,
    undefined,
    "the file's version is back",
  );
});
