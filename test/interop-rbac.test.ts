// AuthorizationPolicy enforced by gRPC itself and by a Skein sidecar, with the same decisions. A real
// `XdsServer` from @grpc/grpc-js-xds (its RBAC filter enabled, GRPC_XDS_EXPERIMENTAL_RBAC=true) identifies as
// a proxyless echo workload and takes its server Listener (grpc-server.ts) from a real control plane; a plain
// gRPC server behind a Skein sidecar is a second echo workload. The policies (grpc-server-fixture.ts) ALLOW
// POSTs of /test.Echo/Allowed and DENY calls with `x-deny: yes`; callers are plaintext, so nothing keys on a
// peer identity. Every call of the matrix gets OK or PERMISSION_DENIED as the policies say, on both paths,
// and a @grpc/grpc-js-xds client dialling the service (`xds:///`) sees the same. Its own file: grpc-js-xds
// reads its environment and bootstrap once per process.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { createLogger } from "../src/lib/log.js";
import { Sidecar } from "../src/proxy/sidecar.js";
import { grpcServerListenerName } from "../src/translate/grpc-server.js";
import {
  ALLOWED_PATH,
  DENY_HEADER,
  ECHO_LABELS,
  ECHO_NAMESPACE,
  echoMesh,
  OTHER_PATH,
} from "./grpc-server-fixture.js";

const quiet = createLogger("test", "error");
const XDS_SERVER_ADDRESS = "127.0.8.1";
const SIDECAR_ADDRESS = "127.0.8.2";
const SERVICE_PORT = 8080;

type Reply = { served: string };
const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as Reply,
};
const method = (path: string) => ({
  path,
  requestStream: false,
  responseStream: false,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
});

let cp: ControlPlane;
let xdsServer: grpc.Server | undefined;
let app: grpc.Server | undefined;
let sidecar: Sidecar | undefined;
const clients: grpc.Client[] = [];
let direct: grpc.Client;
let viaSidecar: grpc.Client;
let viaXds: grpc.Client;

/** Adds the echo service: both methods answer with who served them. */
function addEcho(server: grpc.Server, served: string): void {
  const handler = (_call: unknown, cb: grpc.sendUnaryData<Reply>) => cb(null, { served });
  server.addService(
    { Allowed: method(ALLOWED_PATH), Other: method(OTHER_PATH) },
    { Allowed: handler, Other: handler },
  );
}

/** A port free on `host` now (XdsServer needs a non-zero port; the sidecar's inbound port is announced). */
async function freePort(host: string): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve, reject) => {
    s.once("error", reject);
    s.listen(0, host, resolve);
  });
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

async function within<T>(what: string, p: Promise<T>, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type Outcome = { code: number; served?: string };
function call(client: grpc.Client, path: string, headers: Record<string, string> = {}): Promise<Outcome> {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) md.set(k, v);
  return new Promise((resolve) =>
    client.makeUnaryRequest(
      path,
      json.serialize,
      json.deserialize,
      {},
      md,
      { deadline: Date.now() + 10_000 },
      (err, res) => resolve(err ? { code: err.code ?? -1 } : { code: grpc.status.OK, served: res?.served }),
    ),
  );
}

async function until(what: string, pred: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function bootstrap(node: object): Record<string, unknown> {
  return {
    xds_servers: [
      {
        server_uri: `127.0.0.1:${cp.ports.xds}`,
        channel_creds: [{ type: "insecure" }],
        server_features: ["xds_v3"],
      },
    ],
    node,
    server_listener_resource_name_template: "grpc/server?xds.resource.listening_address=%s",
  };
}

before(async () => {
  // Read by grpc-js-xds when it loads (hence the dynamic import below): gRPC's RBAC filter is opt-in.
  process.env.GRPC_XDS_EXPERIMENTAL_RBAC = "true";
  const xds = await import("@grpc/grpc-js-xds");
  xds.register();

  const dir = mkdtempSync(join(tmpdir(), "skein-interop-rbac-"));
  writeFileSync(join(dir, "mesh.yaml"), echoMesh());
  cp = new ControlPlane({
    configDir: dir,
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: quiet,
  });
  await cp.start();
  assert.ok(cp.pipeline.current, "the configuration is accepted");

  // The proxyless server: its own xDS client (the option takes a bootstrap for this server alone).
  const xdsPort = await freePort(XDS_SERVER_ADDRESS);
  const node = {
    id: "echo-xds-server",
    locality: {},
    metadata: {
      GENERATOR: "grpc",
      NAMESPACE: ECHO_NAMESPACE,
      LABELS: ECHO_LABELS,
      INSTANCE_IPS: XDS_SERVER_ADDRESS,
      WORKLOAD_NAME: "echo-proxyless",
      SKEIN_PORTS: { grpc: xdsPort },
    },
  };
  const server = new xds.XdsServer({
    "grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config": JSON.stringify(bootstrap(node)),
  });
  xdsServer = server;
  addEcho(server, "proxyless");
  // bindAsync calls back only once the server's Listener arrived and it serves.
  await within(
    `XdsServer serving ${grpcServerListenerName(XDS_SERVER_ADDRESS, xdsPort)}`,
    new Promise<number>((resolve, reject) =>
      server.bindAsync(`${XDS_SERVER_ADDRESS}:${xdsPort}`, grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    ),
  );

  // The sidecar path: a plain gRPC server on loopback, a sidecar in front of it.
  const plain = new grpc.Server();
  app = plain;
  addEcho(plain, "sidecar");
  const appPort = await new Promise<number>((resolve, reject) =>
    plain.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const inboundPort = await freePort(SIDECAR_ADDRESS);
  sidecar = new Sidecar({
    xds: `127.0.0.1:${cp.ports.xds}`,
    node: {
      id: `sidecar~${SIDECAR_ADDRESS}~echo-sidecar.${ECHO_NAMESPACE}~${ECHO_NAMESPACE}.svc.cluster.local`,
      metadata: {
        NAMESPACE: ECHO_NAMESPACE,
        LABELS: ECHO_LABELS,
        INSTANCE_IPS: SIDECAR_ADDRESS,
        WORKLOAD_NAME: "echo-sidecar",
        SKEIN_PORTS: { grpc: inboundPort, "app:grpc": appPort },
      },
    },
    adminAddress: SIDECAR_ADDRESS,
    adminPort: 0,
    drainMs: 200,
    logger: quiet,
  });
  await sidecar.start();

  const insecure = grpc.credentials.createInsecure();
  direct = new grpc.Client(`${XDS_SERVER_ADDRESS}:${xdsPort}`, insecure);
  viaSidecar = new grpc.Client(`${SIDECAR_ADDRESS}:${inboundPort}`, insecure);
  clients.push(direct, viaSidecar);
  await until("the sidecar serves the allowed method", async () => {
    const r = await call(viaSidecar, ALLOWED_PATH);
    return r.code === grpc.status.OK && r.served === "sidecar";
  });

  // A proxyless client of the service (the process-wide xDS client), load-balancing over both workloads.
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify(
    bootstrap({
      id: "echo-client",
      locality: {},
      metadata: { GENERATOR: "grpc", NAMESPACE: ECHO_NAMESPACE },
    }),
  );
  viaXds = new grpc.Client(`xds:///echo.${ECHO_NAMESPACE}:${SERVICE_PORT}`, insecure);
  clients.push(viaXds);
  await until("the xds client reaches both workloads", async () => {
    const rs = await Promise.all(Array.from({ length: 10 }, () => call(viaXds, ALLOWED_PATH)));
    const served = new Set(rs.map((r) => r.served));
    return served.has("proxyless") && served.has("sidecar");
  });
});

after(async () => {
  for (const c of clients) c.close();
  xdsServer?.forceShutdown();
  app?.forceShutdown();
  await sidecar?.stop();
  await cp?.stop();
});

/** The calls of the matrix and what the policies decide for each. */
const CASES: { path: string; headers: Record<string, string>; want: number }[] = [
  { path: ALLOWED_PATH, headers: {}, want: grpc.status.OK },
  { path: ALLOWED_PATH, headers: { [DENY_HEADER]: "no" }, want: grpc.status.OK },
  { path: OTHER_PATH, headers: {}, want: grpc.status.PERMISSION_DENIED },
  { path: ALLOWED_PATH, headers: { [DENY_HEADER]: "yes" }, want: grpc.status.PERMISSION_DENIED },
  { path: OTHER_PATH, headers: { [DENY_HEADER]: "yes" }, want: grpc.status.PERMISSION_DENIED },
];

const label = (c: (typeof CASES)[number]) => `${c.path} ${JSON.stringify(c.headers)}`;

async function decisions(client: grpc.Client, served?: string): Promise<string[]> {
  const out: string[] = [];
  for (const c of CASES) {
    const r = await call(client, c.path, c.headers);
    out.push(`${label(c)} → ${grpc.status[r.code]}`);
    if (r.code === grpc.status.OK && served) assert.equal(r.served, served, label(c));
  }
  return out;
}

const expected = CASES.map((c) => `${label(c)} → ${grpc.status[c.want]}`);

test("the XdsServer registered as a proxyless echo workload and ACKed its Listener; no NACK anywhere", () => {
  const row = cp.proxyStatus().find((p) => p.id === "echo-xds-server");
  assert.equal(row?.kind, "proxyless");
  assert.equal(row?.workload, "echo-proxyless");
  assert.ok(row?.types.lds?.acked, JSON.stringify(row?.types));
  const nacks = cp.proxyStatus().flatMap((p) =>
    Object.entries(p.types)
      .filter(([, t]) => t.nack)
      .map(([type]) => `${p.id} ${type}`),
  );
  assert.deepEqual(nacks, []);
});

test("gRPC's own RBAC filter (proxyless XdsServer) decides as the policies say", async () => {
  assert.deepEqual(await decisions(direct, "proxyless"), expected);
});

test("the sidecar in front of a plain gRPC server decides the same", async () => {
  assert.deepEqual(await decisions(viaSidecar, "sidecar"), expected);
});

test("a @grpc/grpc-js-xds client of the service gets the same decisions from either workload", async () => {
  // Round robin over two endpoints: each case three times reaches both (a case denied by one only fails).
  for (let i = 0; i < 3; i++) assert.deepEqual(await decisions(viaXds), expected);
});
