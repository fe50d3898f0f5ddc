// `skein tap` end to end: a real control plane, two real sidecars (order-service's, in front of a small app,
// and a caller's), and the real `skein tap` CLI as a child process. Requests sent through the caller's
// sidecar show up as they finish, once per side (the caller's outbound, order-service's inbound), with the
// right method, path and status; the --method, --path and --status filters are honoured; an unknown
// service exits 1 and an unreachable control plane 3. Addresses 127.0.76.x: only this test uses them.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { createLogger } from "../src/lib/log.js";
import type { TapEvent } from "../src/proxy/admin/tap.js";
import { Sidecar } from "../src/proxy/sidecar.js";

const root = new URL("..", import.meta.url).pathname;
const quiet = createLogger("test", "error");
const SERVER = "127.0.76.10";
const CALLER = "127.0.76.11";
const HOST = "order-service.production.svc.cluster.local:8080";

let cp: ControlPlane;
let app: Server;
const sidecars: Sidecar[] = [];
let order: Sidecar;
let caller: Sidecar;

const mesh = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: order-service, namespace: production }
spec:
  selector: { app: order-service }
  ports: [{ name: http, port: 8080 }]
`;

async function until(what: string, pred: () => boolean | Promise<boolean>, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function sidecar(
  address: string,
  name: string,
  labels: Record<string, string>,
  ports: Record<string, number>,
): Promise<Sidecar> {
  // A workload identity, as `skein run` gets one: sidecars talk mTLS to each other.
  const api = `http://127.0.0.1:${cp.ports.http}`;
  const res = await fetch(`${api}/api/v1/workloads/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ namespace: "production", serviceAccount: labels.app ?? name }),
  });
  const { token } = (await res.json()) as { token: string };
  const s = new Sidecar({
    ca: api,
    token,
    xds: `127.0.0.1:${cp.ports.xds}`,
    adminAddress: address,
    adminPort: 15000,
    drainMs: 200,
    logger: quiet,
    node: {
      id: `sidecar~${address}~${name}.production~production.svc.cluster.local`,
      cluster: name,
      metadata: {
        NAMESPACE: "production",
        LABELS: labels,
        SERVICE_ACCOUNT: labels.app ?? name,
        INSTANCE_IPS: address,
        WORKLOAD_NAME: name,
        SKEIN_PORTS: ports,
      },
    },
  });
  sidecars.push(s);
  return s;
}

/** One request through the caller's sidecar (HTTP_PROXY style), as its application would send it. */
function send(method: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: CALLER, port: 15001, method, path: `http://${HOST}${path}`, headers: { host: HOST } },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.end(method === "POST" ? "{}" : undefined);
  });
}

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), "skein-tap-"));
  writeFileSync(join(dir, "mesh.yaml"), mesh);
  cp = new ControlPlane({
    configDir: dir,
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: quiet,
  });
  await cp.start();
  app = createServer((req, res) => {
    req.resume();
    req.on("end", () => res.writeHead(req.url?.includes("fail") ? 500 : 200).end("ok"));
  });
  await new Promise<void>((r) => app.listen(0, "127.0.0.1", r));
  const appPort = (app.address() as { port: number }).port;
  order = await sidecar(
    SERVER,
    "order-v1",
    { app: "order-service", version: "v1" },
    { http: 8080, "app:http": appPort },
  );
  caller = await sidecar(CALLER, "api-gateway-v1", { app: "api-gateway", version: "v1" }, {});
  await Promise.all(sidecars.map((s) => s.start()));
  await until("both sidecars ready", () => sidecars.every((s) => s.ready()));
  // Routable end to end: the caller's outbound config knows order-service and its endpoint.
  await until("order-service reachable through the caller's sidecar", async () => {
    try {
      return (await send("GET", "/health")) === 200;
    } catch {
      return false;
    }
  });
});

after(async () => {
  await Promise.all(sidecars.map((s) => s.stop()));
  await new Promise((r) => app.close(r));
  await cp.stop();
});

interface Tap {
  child: ChildProcess;
  code: Promise<number | null>;
  out(): string;
  err(): string;
}

function skeinTap(args: string[], controlPlane = `http://127.0.0.1:${cp.ports.http}`): Tap {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(root, "src/cli/main.ts"), "tap", ...args, "--control-plane", controlPlane],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } },
  );
  let out = "";
  let err = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    err += d;
  });
  const code = new Promise<number | null>((resolve) => child.on("close", (c) => resolve(c)));
  return { child, code, out: () => out, err: () => err };
}

/** Waits until the tap CLI has its streams open on both sidecars. */
async function tapping(t: Tap): Promise<void> {
  await until(
    `skein tap connected (stderr: ${t.err()})`,
    () => order.tap.clients > 0 && caller.tap.clients > 0,
    60_000,
  );
}

test("skein tap streams requests as they finish, from both sides, filtered by method and path", async () => {
  const t = skeinTap([
    "order-service",
    "-n",
    "production",
    "-o",
    "json",
    "--method",
    "GET",
    "--path",
    "/api",
    "--max",
    "4",
  ]);
  try {
    await tapping(t);
    // Only the two GETs under /api pass: each is seen by the caller's sidecar and by order-service's.
    assert.equal(await send("POST", "/api/orders"), 200);
    assert.equal(await send("GET", "/health"), 200);
    assert.equal(await send("GET", "/api/orders/7"), 200);
    // 500, not 503: the mesh's default retry policy retries 503s, and each attempt is a request of its own.
    assert.equal(await send("GET", "/api/fail"), 500);
    const code = await t.code;
    assert.equal(code, 0, t.err());
  } finally {
    t.child.kill();
  }
  const events = t
    .out()
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as TapEvent);
  assert.equal(events.length, 4, t.out());
  for (const e of events) {
    assert.equal(e.method, "GET");
    assert.ok(e.path.startsWith("/api/"), e.path);
    assert.equal(typeof e.mtls, "boolean");
    assert.ok(e.latencyMs >= 0);
  }
  const key = (e: TapEvent) => `${e.direction} ${e.path} ${e.status}`;
  assert.deepEqual(events.map(key).sort(), [
    "inbound /api/fail 500",
    "inbound /api/orders/7 200",
    "outbound /api/fail 500",
    "outbound /api/orders/7 200",
  ]);
  const inbound = events.find((e) => e.direction === "inbound" && e.status === 200) as TapEvent;
  assert.equal(inbound.destination.workload, "order-v1");
  assert.equal(inbound.destination.namespace, "production");
  const outbound = events.find((e) => e.direction === "outbound" && e.status === 200) as TapEvent;
  assert.equal(outbound.source.workload, "api-gateway-v1");
  assert.match(outbound.destination.cluster ?? "", /\|order-service\.production\.svc\.cluster\.local$/);
  assert.equal(outbound.destination.address, `${SERVER}:8080`);
  assert.equal(outbound.requestId, inbound.requestId, "one request, seen on both sides");
  // The sidecars stop building events once the tap is gone.
  await until("the tap streams closed", () => !order.tap.active && !caller.tap.active);
});

test("skein tap --status 5xx prints one line per failed request, and nothing for the others", async () => {
  const t = skeinTap(["order-service", "-n", "production", "--status", "5xx", "--max", "2"]);
  try {
    await tapping(t);
    assert.equal(await send("GET", "/ok"), 200);
    assert.equal(await send("DELETE", "/orders/fail"), 500);
    assert.equal(await t.code, 0, t.err());
  } finally {
    t.child.kill();
  }
  const lines = t.out().trim().split("\n");
  assert.equal(lines.length, 2, t.out());
  assert.deepEqual(lines.map((l) => / (in |out) /.exec(l)?.[1]).sort(), ["in ", "out"]);
  for (const l of lines) {
    assert.match(
      l,
      / (in |out) DELETE order-service\.production\.svc\.cluster\.local:8080\/orders\/fail 500 /,
    );
    assert.match(l, /flags=- id=\S+$/);
  }
});

test("skein tap: an unknown service exits 1, an unreachable control plane 3, a bad filter 2", async () => {
  const unknown = skeinTap(["no-such-service", "-n", "production"]);
  assert.equal(await unknown.code, 1, unknown.err());
  assert.match(unknown.err(), /no service no-such-service in namespace production/);
  const closed = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
  const down = skeinTap(["order-service"], `http://127.0.0.1:${closed}`);
  assert.equal(await down.code, 3, down.err());
  assert.match(down.err(), /cannot reach the control plane/);
  const bad = skeinTap(["order-service", "--status", "5x"]);
  assert.equal(await bad.code, 2, bad.err());
  assert.match(bad.err(), /write a code \(404\) or a class \(5xx\)/);
});
