// Where the sidecar's mTLS identity comes from, against a real ControlPlane: `skein proxy --token --ca` gets
// its certificate from the control plane's CA and only then reports ready (a proxy with a refused token never
// does, though it has the same xDS config); and rotation under load: 10-second certificates renewed at
// half-life on both sides of an mTLS hop while requests flow, with new connections presenting the new
// certificate and not one request failing.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { CaSecretSource } from "../src/proxy/identity/sources.js";
import {
  assignment,
  compiled,
  hcmTo,
  inboundListener,
  meshCluster,
  plainCluster,
  quiet,
  TlsSidecar,
} from "./mtls-fixtures.js";
import { echoServer, freePort, request, type Upstream } from "./proxy-router-fixtures.js";

const root = join(import.meta.dirname, "..");
const HCM = "envoy.filters.network.http_connection_manager";

let cp: ControlPlane;
let api: string;

async function token(namespace: string, serviceAccount: string): Promise<string> {
  const res = await fetch(`${api}/api/v1/workloads/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ namespace, serviceAccount }),
  });
  const body = (await res.json()) as { token: string };
  assert.equal(res.status, 201, JSON.stringify(body));
  return body.token;
}

before(async () => {
  const config = mkdtempSync(join(tmpdir(), "skein-mtls-cp-"));
  writeFileSync(
    join(config, "mesh.yaml"),
    "apiVersion: install.istio.io/v1alpha1\nkind: IstioOperator\nmetadata: { name: mesh, namespace: istio-system }\nspec:\n  meshConfig:\n    trustDomain: cluster.local\n",
  );
  cp = new ControlPlane({
    configDir: config,
    stateDir: mkdtempSync(join(tmpdir(), "skein-mtls-cp-state-")),
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: quiet,
  });
  await cp.start();
  api = `http://127.0.0.1:${cp.ports.http}`;
});

after(async () => {
  await cp.stop();
});

/** `skein proxy` as its own process (the CLI from source), with the identity flags. */
function proxy(address: string, adminPort: number, extra: string[]): ChildProcess {
  return spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(root, "src/cli/main.ts"),
      "proxy",
      "--xds",
      `127.0.0.1:${cp.ports.xds}`,
      "--address",
      address,
      "--admin-port",
      String(adminPort),
      "--status-port",
      "0",
      "--name",
      "orders",
      "-n",
      "production",
      "--service-account",
      "orders",
      "--drain",
      "100",
      ...extra,
    ],
    { cwd: root, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, SKEIN_LOG_LEVEL: "error" } },
  );
}

async function readyStatus(address: string, port: number): Promise<number> {
  try {
    return (await fetch(`http://${address}:${port}/ready`)).status;
  } catch {
    return 0;
  }
}

async function stopProcess(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => p.once("exit", () => resolve()));
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

describe("skein proxy --token --ca", () => {
  it("becomes ready only once it has its certificate from the control plane", async () => {
    const good = "127.0.92.11";
    const bad = "127.0.92.12";
    const [goodPort, badPort] = [await freePort(good), await freePort(bad)];
    const t = await token("production", "orders");
    const ok = proxy(good, goodPort, ["--token", t, "--ca", api, "--cert-ttl", "1h"]);
    let okErr = "";
    ok.stderr?.on("data", (d: Buffer) => {
      okErr += d.toString();
    });
    // Same xDS config, a token the CA refuses: it never gets a certificate.
    const refused = proxy(bad, badPort, ["--token", "not-a-token", "--ca", api]);
    try {
      const deadline = Date.now() + 30_000;
      while ((await readyStatus(good, goodPort)) !== 200) {
        assert.ok(Date.now() < deadline, `the proxy with a good token never became ready: ${okErr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // The refused one has had the same time and config; give it a little more, then it must still wait.
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(await readyStatus(bad, badPort), 503);
    } finally {
      await Promise.all([stopProcess(ok), stopProcess(refused)]);
    }
  });
});

describe("rotation under load", () => {
  const SERVER = "127.0.92.1";
  const CLIENT = "127.0.92.2";
  const IN = 15006;
  const OUT = 15001;
  const SERVER_ID = "spiffe://cluster.local/ns/production/sa/server";
  let app: Upstream;
  const server = new TlsSidecar();
  const client = new TlsSidecar();
  let serverSource: CaSecretSource;
  let clientSource: CaSecretSource;

  before(async () => {
    app = await echoServer("app");
    serverSource = new CaSecretSource(server.secrets, {
      controlPlane: api,
      token: await token("production", "server"),
      ttlMs: 10_000,
      logger: quiet,
    });
    clientSource = new CaSecretSource(client.secrets, {
      controlPlane: api,
      token: await token("production", "client"),
      ttlMs: 10_000,
      logger: quiet,
    });
    serverSource.start();
    clientSource.start();
    await server.apply(
      compiled({
        listeners: [
          inboundListener("in", SERVER, IN, "STRICT", { name: HCM, typedConfig: hcmTo({ "/": "app" }) }),
        ],
        clusters: [plainCluster("app")],
        assignments: [assignment("app", [{ address: "127.0.0.1", port: app.port, istio: false }])],
      }),
    );
    await client.apply(
      compiled({
        listeners: [
          {
            name: "out",
            address: { socketAddress: { address: CLIENT, portValue: OUT } },
            filterChains: [{ filters: [{ name: HCM, typedConfig: hcmTo({ "/": "server" }, "outbound") }] }],
          },
        ],
        clusters: [
          // A few requests per connection, so connections made after each rotation show the new certificates.
          meshCluster("server", [SERVER_ID], "http1", {
            typedExtensionProtocolOptions: {
              "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                commonHttpProtocolOptions: { maxRequestsPerConnection: { value: 5 } },
                explicitHttpConfig: { httpProtocolOptions: {} },
              },
            },
          }),
        ],
        assignments: [assignment("server", [{ address: SERVER, port: IN, istio: true }])],
      }),
    );
  });

  after(async () => {
    serverSource.stop();
    clientSource.stop();
    await client.close();
    await server.close();
    await app.close();
  });

  it("renews 10 s certificates at half-life on both sides with zero failed requests", async () => {
    const deadline = Date.now() + 30_000;
    while (!(server.secrets.ready() && client.secrets.ready())) {
      assert.ok(Date.now() < deadline, "certificates arrived");
      await new Promise((r) => setTimeout(r, 50));
    }
    const firstServerCert = server.secrets.workload?.chain;
    let ok = 0;
    const failures: string[] = [];
    // Steady sequential load until both sides have rotated twice (about 10 s), bounded by the deadline.
    while (clientSource.issued < 3 || serverSource.issued < 3) {
      assert.ok(
        Date.now() < deadline,
        `two rotations within 30 s (client ${clientSource.issued}, server ${serverSource.issued})`,
      );
      try {
        const r = await request(CLIENT, OUT, { path: `/r${ok}`, headers: { host: "server" } });
        if (r.status === 200) ok++;
        else failures.push(`${r.status} ${r.body}`);
      } catch (e) {
        failures.push((e as Error).message);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(failures, [], `failed requests among ${ok + failures.length}`);
    assert.ok(ok >= 50, `steady load: ${ok} requests`);
    // Every request the server served came over mTLS from the client's identity.
    const served = server.completed.filter((i) => i.path.startsWith("/r"));
    assert.equal(served.length, ok);
    assert.ok(
      served.every((i) => i.connection?.peerPrincipal === "spiffe://cluster.local/ns/production/sa/client"),
    );
    // A new connection gets the server's newest certificate, not the first one.
    const current = server.secrets.workload;
    assert.ok(current && current.chain !== firstServerCert);
    const mine = client.secrets.workload;
    assert.ok(mine);
    const presented = await new Promise<string>((resolve, reject) => {
      const s = tlsConnect({
        host: SERVER,
        port: IN,
        ca: client.secrets.roots,
        cert: mine.chain,
        key: mine.key,
        checkServerIdentity: () => undefined,
      });
      s.once("secureConnect", () => {
        resolve(s.getPeerCertificate().serialNumber);
        s.destroy();
      });
      s.once("error", reject);
    });
    assert.equal(presented, new X509Certificate(current.chain).serialNumber);
  });
});
