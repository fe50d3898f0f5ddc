// Issue 3's interop test: real gRPC clients using @grpc/grpc-js-xds (bootstrap pointing at a real
// control plane) call real gRPC servers registered in the registry (static Skein Workloads), with the
// seed's canary VirtualService and DestinationRule applied. Its own file: grpc-js-xds reads its
// bootstrap once per process.
//
// Statistics (binomial, each call independent):
//  - canary share with weights 90/10, n = 1000: sd = 0.0095; accepted 0.10 ± 0.045 (> 4.5 sd).
//    A 50/50, 80/20 or 100/0 implementation fails.
//  - after the change to 50/50, n = 400: sd = 0.025; accepted 0.50 ± 0.12 (4.8 sd).
//  - fault pattern, n = 1000: aborts 5% (sd 0.0069) accepted 0.05 ± 0.03; delays 10% (sd 0.0095)
//    accepted 0.10 ± 0.045. Swapping the two percentages, or faulting every request, fails.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { register } from "@grpc/grpc-js-xds";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { createLogger } from "../src/lib/log.js";

const TARGET = "order-service.production:8080";
const PATH = "/shop.Orders/Get";
const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as { version: string },
};
const seed = (name: string) => readFileSync(new URL(`./fixtures/seed/${name}`, import.meta.url), "utf8");

const servers: grpc.Server[] = [];
let cp: ControlPlane;
let dir: string;
let client: grpc.Client;

function startServer(address: string, version: string): Promise<number> {
  const server = new grpc.Server();
  server.addService(
    {
      Get: {
        path: PATH,
        requestStream: false,
        responseStream: false,
        requestSerialize: json.serialize,
        requestDeserialize: json.deserialize,
        responseSerialize: json.serialize,
        responseDeserialize: json.deserialize,
      },
    },
    { Get: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { version }) },
  );
  servers.push(server);
  return new Promise((resolve, reject) =>
    server.bindAsync(`${address}:0`, grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
}

const mesh = (v1Port: number, v2Port: number) => `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: order-service, namespace: production }
spec:
  selector: { app: order-service }
  ports: [{ name: grpc, port: 8080, protocol: GRPC }]
---
apiVersion: skein.dev/v1alpha1
kind: Workload
metadata: { name: order-v1, namespace: production, labels: { app: order-service, version: v1 } }
spec: { serviceAccount: order-service, address: 127.0.2.1, ports: { grpc: ${v1Port} } }
---
apiVersion: skein.dev/v1alpha1
kind: Workload
metadata: { name: order-v2, namespace: production, labels: { app: order-service, version: v2 } }
spec: { serviceAccount: order-service, address: 127.0.2.2, ports: { grpc: ${v2Port} } }
`;

/** The seed's pattern 1, placed in the production namespace, optionally with other weights. */
function canaryRouting(stable = 90, canary = 10): string {
  return seed("pattern1-traffic-management.yaml")
    .replace("  name: order-service\nspec:", "  name: order-service\n  namespace: production\nspec:")
    .replace("  name: order-service\nspec:", "  name: order-service\n  namespace: production\nspec:")
    .replace("weight: 90", `weight: ${stable}`)
    .replace("weight: 10", `weight: ${canary}`);
}

type Result = { version?: string; code?: number; ms: number };
function call(headers: Record<string, string> = {}): Promise<Result> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  const start = Date.now();
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      PATH,
      json.serialize,
      json.deserialize,
      {},
      md,
      { deadline: Date.now() + 20_000 },
      (err, res) =>
        resolve(
          err
            ? { code: err.code, ms: Date.now() - start }
            : { version: res?.version, ms: Date.now() - start },
        ),
    ),
  );
}

async function calls(n: number, headers: Record<string, string> = {}): Promise<Result[]> {
  const out: Result[] = [];
  // Batches keep the number of calls in flight reasonable while delays of 5 s overlap.
  for (let i = 0; i < n; i += 250)
    out.push(...(await Promise.all(Array.from({ length: Math.min(250, n - i) }, () => call(headers)))));
  return out;
}

const share = (rs: Result[], version: string) => rs.filter((r) => r.version === version).length / rs.length;

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  const v1 = await startServer("127.0.2.1", "v1");
  const v2 = await startServer("127.0.2.2", "v2");
  dir = mkdtempSync(join(tmpdir(), "skein-interop-"));
  writeFileSync(join(dir, "mesh.yaml"), mesh(v1, v2));
  writeFileSync(join(dir, "routing.yaml"), canaryRouting());
  cp = new ControlPlane({
    configDir: dir,
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: createLogger("control-plane", "warn"),
  });
  await cp.start();
  assert.ok(cp.pipeline.current, "the initial configuration is accepted");
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [
      {
        server_uri: `127.0.0.1:${cp.ports.xds}`,
        channel_creds: [{ type: "insecure" }],
        server_features: ["xds_v3"],
      },
    ],
    node: { id: "grpc-client~shop", locality: {}, metadata: { GENERATOR: "grpc", NAMESPACE: "production" } },
  });
  register();
  client = new grpc.Client(`xds:///${TARGET}`, grpc.credentials.createInsecure());
});

after(async () => {
  client?.close();
  await cp?.stop();
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.tryShutdown(() => r()))));
});

test("x-canary: true reaches only the canary subset", async () => {
  const rs = await calls(100, { "x-canary": "true" });
  assert.deepEqual(
    rs.filter((r) => r.version !== "v2"),
    [],
  );
  const nacks = cp.proxyStatus().flatMap((p) => Object.values(p.types).filter((t) => t.nack));
  assert.deepEqual(nacks, [], "grpc-js-xds accepted every resource");
});

test("other calls split 90/10 (n = 1000, canary share 0.10 ± 0.045)", async () => {
  const rs = await calls(1000);
  assert.equal(rs.filter((r) => r.code !== undefined).length, 0, "no call failed");
  const canary = share(rs, "v2");
  assert.ok(Math.abs(canary - 0.1) <= 0.045, `canary share ${canary}`);
});

test("a config change moves traffic without restarting anything (n = 400, 0.50 ± 0.12)", async () => {
  writeFileSync(join(dir, "routing.yaml"), canaryRouting(50, 50));
  await eventually("the new weights apply", async () => share(await calls(100), "v2") > 0.3);
  const canary = share(await calls(400), "v2");
  assert.ok(Math.abs(canary - 0.5) <= 0.12, `canary share ${canary}`);
});

test("an invalid change is rejected and traffic keeps flowing as before", async () => {
  const before = cp.pipeline.current?.version;
  const rejections = cp.pipeline.rejections;
  writeFileSync(
    join(dir, "routing.yaml"),
    canaryRouting(50, 50).replace("subset: canary", "subset: canary-typo"),
  );
  await eventually("the change is seen and rejected", async () => cp.pipeline.rejections > rejections);
  assert.equal(cp.pipeline.current?.version, before);
  assert.equal(
    cp.pipeline.lastRejection?.diagnostics.find((d) => d.severity === "error")?.code,
    "SKEIN_E_SUBSET_NOT_FOUND",
  );
  const rs = await calls(400);
  assert.equal(rs.filter((r) => r.code !== undefined).length, 0);
  const canary = share(rs, "v2");
  assert.ok(Math.abs(canary - 0.5) <= 0.12, `still split 50/50: ${canary}`);
});

test("the seed's fault-injection pattern aborts 5% and delays 10% of calls (n = 1000)", async () => {
  // The chaos VirtualService replaces the canary one for the same host (two would conflict).
  writeFileSync(
    join(dir, "routing.yaml"),
    seed("pattern3-fault-injection.yaml").replace(
      "  name: order-service-chaos\n",
      "  name: order-service-chaos\n  namespace: production\n",
    ) +
      "---\n" +
      canaryRouting().slice(canaryRouting().indexOf("# DestinationRule")),
  );
  await eventually(
    "the fault applies",
    async () => (await calls(200)).some((r) => r.code === grpc.status.UNAVAILABLE),
    20_000,
  );
  const rs = await calls(1000);
  const aborted = rs.filter((r) => r.code === grpc.status.UNAVAILABLE).length / rs.length;
  const delayed = rs.filter((r) => r.code === undefined && r.ms >= 4500).length / rs.length;
  assert.ok(Math.abs(aborted - 0.05) <= 0.03, `aborted share ${aborted}`);
  assert.ok(Math.abs(delayed - 0.1) <= 0.045, `delayed share ${delayed}`);
  assert.ok(
    rs.every((r) => r.code !== undefined || r.version === "v1"),
    "the chaos route goes to the stable subset",
  );
});
