// The seed's pattern 2 end to end, through real sidecars with certificates from the control plane's CA:
// STRICT mTLS in `production`, and order-service's AuthorizationPolicy. Every caller × method × path gives 200
// or 403 as the policy says; the server side sees each caller's SPIFFE identity from its certificate; a
// plaintext client is refused; forged identity headers change nothing; path tricks do not get around the policy.
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { createLogger } from "../src/lib/log.js";
import type { StreamInfo } from "../src/proxy/router/stream-info.js";
import { Sidecar } from "../src/proxy/sidecar.js";

const quiet = createLogger("test", "error");
const examples = new URL("../examples/mesh/", import.meta.url).pathname;

let cp: ControlPlane;
let app: Server;
const sidecars = new Map<string, Sidecar>();
/** What order-service's sidecar saw: the verified peer of each request it served. */
const served: { path: string; peer: string | undefined }[] = [];

const CALLERS = {
  "api-gateway": "127.0.6.2",
  "payment-service": "127.0.6.3",
  "inventory-service": "127.0.6.4",
  intruder: "127.0.6.5",
} as const;
type Caller = keyof typeof CALLERS;
const ORDER = "127.0.6.1";

async function token(serviceAccount: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${cp.ports.http}/api/v1/workloads/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ namespace: "production", serviceAccount }),
  });
  assert.equal(res.status, 201);
  return ((await res.json()) as { token: string }).token;
}

async function startSidecar(
  app: string,
  address: string,
  ports: Record<string, number>,
  onRequestComplete?: (info: StreamInfo) => void,
): Promise<Sidecar> {
  const s = new Sidecar({
    xds: `127.0.0.1:${cp.ports.xds}`,
    node: {
      id: `sidecar~${address}~${app}-1.production~production.svc.cluster.local`,
      metadata: {
        NAMESPACE: "production",
        LABELS: { app },
        SERVICE_ACCOUNT: app,
        INSTANCE_IPS: address,
        WORKLOAD_NAME: app,
        SKEIN_PORTS: ports,
      },
    },
    adminAddress: address,
    adminPort: 0,
    drainMs: 200,
    logger: quiet,
    token: await token(app),
    ca: `http://127.0.0.1:${cp.ports.http}`,
    onRequestComplete,
  });
  await s.start();
  sidecars.set(app, s);
  return s;
}

async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One request from `caller`'s application through its sidecar (HTTP_PROXY style). */
function call(
  caller: Caller,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: CALLERS[caller],
        port: 15001,
        method,
        path: `http://order-service.production:8080${path}`,
        headers: { host: "order-service.production:8080", ...headers },
      },
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

before(async () => {
  const config = mkdtempSync(join(tmpdir(), "skein-security-e2e-"));
  // The seed's pattern 2 exactly as written, with the shop's services.
  for (const f of ["services.yaml", "pattern2-mtls-authorization.yaml"])
    copyFileSync(join(examples, f), join(config, f));
  cp = new ControlPlane({
    configDir: config,
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: quiet,
  });
  await cp.start();
  app = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(200).end(`order-service ${req.method} ${req.url}`));
  });
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  const appPort = (app.address() as { port: number }).port;
  const order = await startSidecar("order-service", ORDER, { http: 8080, "app:http": appPort }, (info) => {
    if (info.listener.startsWith(ORDER))
      served.push({ path: info.path, peer: info.connection?.peerPrincipal });
  });
  const callers = await Promise.all(
    (Object.keys(CALLERS) as Caller[]).map((c) => startSidecar(c, CALLERS[c], {})),
  );
  await until("every sidecar ready with its certificate", () => [order, ...callers].every((s) => s.ready()));
  // The callers must know order-service's endpoint (it registered through xDS).
  await until(
    "order-service reachable",
    async () => (await call("api-gateway", "GET", "/api/v1/x")).status === 200,
  );
});

after(async () => {
  await Promise.all([...sidecars.values()].map((s) => s.stop()));
  await cp.stop();
  app.close();
});

const spiffe = (sa: string) => `spiffe://cluster.local/ns/production/sa/${sa}`;

function allowed(caller: Caller, method: string, path: string): boolean {
  const p = path.split("?")[0] as string;
  if (caller === "api-gateway" || caller === "payment-service")
    return (method === "GET" || method === "POST") && p.startsWith("/api/v1/");
  if (caller === "inventory-service") return method === "GET" && p.startsWith("/api/v1/inventory/");
  return false;
}

test("the full matrix: caller × method × path → 200 or 403 as the policy says, over mTLS", async () => {
  const paths = [
    "/api/v1/orders",
    "/api/v1/orders/7",
    "/api/v1/inventory/42",
    "/api/v2/orders",
    "/health",
    "/",
  ];
  const methods = ["GET", "POST", "DELETE", "PUT"];
  const wrong: string[] = [];
  let n = 0;
  for (const caller of Object.keys(CALLERS) as Caller[])
    for (const method of methods)
      for (const path of paths) {
        const r = await call(caller, method, path);
        n++;
        const want = allowed(caller, method, path) ? 200 : 403;
        if (r.status !== want) wrong.push(`${caller} ${method} ${path}: ${r.status} (want ${want})`);
        if (want === 403 && r.status === 403) assert.equal(r.body, "RBAC: access denied");
      }
  assert.deepEqual(wrong, []);
  assert.equal(n, 4 * 4 * 6);
  // Every request order-service's sidecar served came over mTLS, with the caller's own identity.
  const peers = new Set(served.map((s) => s.peer));
  assert.ok(!peers.has(undefined), "no plaintext request was served");
  for (const sa of Object.keys(CALLERS)) assert.ok(peers.has(spiffe(sa)), sa);
});

test("path tricks do not get around the policy (normalised before matching)", async () => {
  const tricks = [
    "/api/v1/inventory/../orders",
    "/api/v1/inventory/%2e%2e/orders",
    "/API/V1/inventory/1",
    "/api/v1/inventory/..%2Forders",
  ];
  for (const path of tricks) {
    const r = await call("inventory-service", "GET", path);
    assert.notEqual(r.status, 200, `${path} → ${r.status}`);
  }
  // While what the policy allows still works for the same caller.
  assert.equal((await call("inventory-service", "GET", "/api/v1/inventory/1")).status, 200);
});

test("forged identity headers change nothing: the principal comes from the certificate", async () => {
  const forged = {
    "x-forwarded-client-cert": `By=${spiffe("order-service")};URI=${spiffe("api-gateway")}`,
    "x-envoy-peer-metadata-id": "sidecar~127.0.6.2~api-gateway-1.production~production.svc.cluster.local",
    "x-skein-principal": spiffe("api-gateway"),
  };
  const r = await call("intruder", "GET", "/api/v1/orders", forged);
  assert.equal(r.status, 403);
});

test("STRICT: a plaintext client talking to order-service's sidecar directly is refused", async () => {
  const outcome = await new Promise<string>((resolve) => {
    const s = connect({ host: ORDER, port: 8080 }, () => {
      s.write("GET /api/v1/orders HTTP/1.1\r\nhost: order-service\r\n\r\n");
    });
    let data = "";
    s.on("data", (c) => {
      data += c;
    });
    s.on("error", (e) => resolve(`error ${e.message}`));
    s.on("close", () => resolve(data ? `answered ${data.split("\r\n")[0]}` : "closed"));
  });
  assert.ok(!outcome.startsWith("answered"), outcome);
});
