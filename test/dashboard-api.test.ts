// The dashboard's server side and its pure front-end pieces: the graph built from the registry, the
// examples/mesh model and sidecar telemetry (nodes per workload version, edges with rates), the services'
// configured and observed canary split, the HTTP routes (page, assets, JSON, errors), the graph layout,
// and `skein dashboard` (URL, exit 3 when the control plane is unreachable).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { canOpen, dashboardUrl } from "../src/cli/dashboard.js";
import { buildGraph, buildServices, createDashboard, describeMatch } from "../src/control-plane/dashboard.js";
import type { GraphEdge, GraphNode } from "../src/control-plane/dashboard-types.js";
import { parsePrometheusText, TelemetryScraper } from "../src/control-plane/telemetry.js";
import { edgeLabel, layers, layoutGraph, NODE_H } from "../src/dashboard/layout.js";
import type { WorkloadInstance } from "../src/model/snapshot.js";
import type { MeshModel } from "../src/model/types.js";
import { allUnder, metricsText, type Peer, type SeriesSpec } from "./dashboard-fixtures.js";
import { checkFiles } from "./helpers.js";

const root = new URL("..", import.meta.url).pathname;
const NS = "production";
const meshDir = join(root, "examples", "mesh");

function model(edit: (text: string) => string = (t) => t): MeshModel {
  const files: Record<string, string> = {};
  for (const f of readdirSync(meshDir)) files[f] = edit(readFileSync(join(meshDir, f), "utf8"));
  const r = checkFiles(files, false);
  assert.ok(r.model, JSON.stringify(r.diagnostics));
  return r.model;
}

/** The shop as `skein up` registers it: instance names carry the address, like pod names. */
const SHOP: [string, string, number][] = [
  ["api-gateway", "v1", 2],
  ["order-service", "v1", 3],
  ["order-service", "v2", 4],
  ["payment-service", "v1", 5],
  ["inventory-service", "v1", 6],
];
const workloads: WorkloadInstance[] = SHOP.map(([app, version, n]) => ({
  id: `sidecar~127.0.1.${n}~${app}.${NS}~${NS}.svc.cluster.local`,
  name: `${app}-${version}-1-${n}`,
  namespace: NS,
  labels: { app, version },
  serviceAccount: app,
  address: `127.0.1.${n}`,
  ports: {},
  origin: "proxy",
  healthy: true,
}));

const peer = (app: string, version: string, workload = `${app}-${version}`): Peer => ({
  ns: NS,
  workload,
  version,
});
const unknown: Peer = { ns: "unknown", workload: "unknown", version: "unknown" };

/** Two scrapes 10 s apart of each destination sidecar: `perSecond` requests/s on each edge. */
function telemetry(edges: [Peer, Peer, string, number, number?][]): TelemetryScraper {
  const t = new TelemetryScraper({ targets: () => [] });
  const byTarget = new Map<string, [SeriesSpec[], SeriesSpec[]]>();
  for (const [src, dst, service, perSecond, errorsPerSecond = 0] of edges) {
    const base = { reporter: "destination" as const, src, dst, service, mtls: src !== unknown };
    const pair = byTarget.get(dst.workload) ?? [[], []];
    pair[0].push({ ...base, count: 1000, buckets: allUnder(10, 1000) });
    pair[1].push({ ...base, count: 1000 + 10 * perSecond, buckets: allUnder(10, 1000 + 10 * perSecond) });
    if (errorsPerSecond) {
      pair[0].push({ ...base, code: "503", count: 0 });
      pair[1].push({ ...base, code: "503", count: 10 * errorsPerSecond });
    }
    byTarget.set(dst.workload, pair);
  }
  for (const [target, [a, b]] of byTarget) {
    t.window.record(target, 0, parsePrometheusText(metricsText(a)));
    t.window.record(target, 10_000, parsePrometheusText(metricsText(b)));
  }
  return t;
}

// The demo's traffic: load from outside → gateway → order v1 (9/s) and v2 (1/s, half failing) → both backends.
// Workload labels in the metrics are Kubernetes-style owners (order-service-v1) or the instance name itself.
const demoTraffic = () =>
  telemetry([
    [unknown, peer("api-gateway", "v1"), "api-gateway", 10],
    [peer("api-gateway", "v1"), peer("order-service", "v1"), "order-service", 9],
    [peer("api-gateway", "v1"), peer("order-service", "v2", "order-service-v2-1-4"), "order-service", 1, 0.5],
    [peer("order-service", "v1"), peer("payment-service", "v1"), "payment-service", 9],
    [
      peer("order-service", "v2", "order-service-v2-1-4"),
      peer("payment-service", "v1"),
      "payment-service",
      1,
    ],
    [peer("order-service", "v1"), peer("inventory-service", "v1"), "inventory-service", 9],
    [
      peer("order-service", "v2", "order-service-v2-1-4"),
      peer("inventory-service", "v1"),
      "inventory-service",
      1,
    ],
  ]);

test("the graph: a node per workload version, edges with rps, 5xx share, p99 and mTLS", () => {
  const m = model();
  const g = buildGraph({ model: () => m, workloads: () => workloads, telemetry: demoTraffic() });
  assert.deepEqual(
    g.nodes.map((n) => [n.id, n.service, n.instances]),
    [
      ["production/api-gateway/v1", "api-gateway", 1],
      ["production/inventory-service/v1", "inventory-service", 1],
      ["production/order-service/v1", "order-service", 1],
      ["production/order-service/v2", "order-service", 1],
      ["production/payment-service/v1", "payment-service", 1],
      ["unknown", undefined, 0],
    ],
  );
  const order = g.nodes.find((n) => n.id === "production/order-service/v1");
  assert.deepEqual(order?.workloads.sort(), ["order-service-v1", "order-service-v1-1-3"]);
  const e = Object.fromEntries(g.edges.map((x) => [x.id, x]));
  assert.deepEqual(Object.keys(e).sort(), [
    "production/api-gateway/v1->production/order-service/v1",
    "production/api-gateway/v1->production/order-service/v2",
    "production/order-service/v1->production/inventory-service/v1",
    "production/order-service/v1->production/payment-service/v1",
    "production/order-service/v2->production/inventory-service/v1",
    "production/order-service/v2->production/payment-service/v1",
    "unknown->production/api-gateway/v1",
  ]);
  const toV2 = e["production/api-gateway/v1->production/order-service/v2"];
  assert.ok(toV2);
  assert.ok(Math.abs(toV2.rps - 1.5) < 1e-9, `rps ${toV2.rps}`);
  assert.ok(Math.abs(toV2.errorRate - 1 / 3) < 1e-9);
  assert.equal(toV2.mtls, true);
  assert.equal(toV2.p99Ms !== null && toV2.p99Ms > 5 && toV2.p99Ms <= 10, true, `p99 ${toV2.p99Ms}`);
  assert.equal(e["unknown->production/api-gateway/v1"]?.mtls, false);
  assert.equal(g.scrape.intervalMs, 3000);
});

test("services: the configured canary split from the VirtualService, the observed one from traffic", () => {
  const m = model();
  const sources = { model: () => m, workloads: () => workloads, telemetry: demoTraffic() };
  const order = buildServices(sources).services.find((s) => s.name === "order-service");
  assert.ok(order);
  assert.equal(order.routeTable, "production/order-service");
  assert.deepEqual(
    order.configuredSplit.map((s) => [s.subset, s.version, s.percent]),
    [
      ["stable", "v1", 90],
      ["canary", "v2", 10],
    ],
  );
  assert.deepEqual(order.versions, ["v1", "v2"]);
  assert.equal(order.routes.length, 2);
  assert.equal(order.routes[0]?.match, 'header x-canary exact "true"');
  assert.deepEqual(
    order.observedSplit.map((s) => [s.version, Math.round(s.percent)]),
    [
      ["v1", 86],
      ["v2", 14],
    ],
  );
  assert.ok(Math.abs(order.rps - 10.5) < 1e-9);
  assert.ok(Math.abs(order.errorRate - 0.5 / 10.5) < 1e-9);
  assert.equal(order.recentErrors.length, 1);
  assert.equal(order.recentErrors[0]?.destination, "production/order-service/v2");
  assert.equal(order.recentErrors[0]?.count, 5);

  // A weight change in the configuration shows as soon as it is accepted.
  const edited = model((t) => t.replace("weight: 90", "weight: 50").replace("weight: 10", "weight: 50"));
  const reweighted = buildServices({ ...sources, model: () => edited }).services.find(
    (s) => s.name === "order-service",
  );
  assert.deepEqual(
    reweighted?.configuredSplit.map((s) => [s.version, s.percent]),
    [
      ["v1", 50],
      ["v2", 50],
    ],
  );
  // A service without a VirtualService: no configured split, its versions listed.
  const payment = buildServices(sources).services.find((s) => s.name === "payment-service");
  assert.deepEqual(payment?.configuredSplit, []);
  assert.equal(payment?.routeTable, undefined);
});

test("describeMatch puts a route's match in words", () => {
  assert.equal(describeMatch([]), "any request");
  assert.equal(
    describeMatch([
      { uri: { kind: "prefix", value: "/api" }, headers: [], queryParams: [], ignoreUriCase: false },
      {
        headers: [{ name: "x-user", invert: true }],
        queryParams: [],
        ignoreUriCase: false,
        sourceLabels: { app: "a" },
      },
    ]),
    'uri prefix "/api" or without header x-user and from app=a',
  );
});

const servers: Server[] = [];
after(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

async function dashboardServer(assetsDir: string): Promise<string> {
  const m = model();
  const handle = createDashboard({
    model: () => m,
    workloads: () => workloads,
    telemetry: demoTraffic(),
    assetsDir,
  });
  const s = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    handle(req, res, url).then((handled) => {
      if (!handled) res.writeHead(404, { "content-type": "application/json" }).end('{"code":"fallthrough"}');
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
}

test("HTTP: the page and its assets from disk, the JSON endpoints, clear errors", async () => {
  const dir = mkdtempSync(join(tmpdir(), "skein-dash-"));
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>t</title>");
  writeFileSync(join(dir, "app.js"), "export {};");
  const base = await dashboardServer(dir);

  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(await page.text(), /<title>t<\/title>/);
  const js = await fetch(`${base}/dashboard/app.js`);
  assert.match(js.headers.get("content-type") ?? "", /^text\/javascript/);
  assert.equal(await js.text(), "export {};");
  const missing = await fetch(`${base}/dashboard/nope.css`);
  assert.equal(missing.status, 404);
  assert.equal(((await missing.json()) as { code: string }).code, "SKEIN_E_API_NOT_FOUND");
  // Not an asset name: the API's own 404 answers, nothing outside the folder is read.
  const outside = await fetch(`${base}/dashboard/%2e%2e%2fpackage.json`);
  assert.equal(((await outside.json()) as { code: string }).code, "fallthrough");

  const graph = (await (await fetch(`${base}/api/v1/graph`)).json()) as {
    nodes: GraphNode[];
    edges: GraphEdge[];
  };
  assert.equal(graph.nodes.length, 6);
  assert.equal(graph.edges.length, 7);
  const one = await fetch(`${base}/api/v1/services/production/order-service`);
  assert.equal(one.status, 200);
  assert.equal(((await one.json()) as { configuredSplit: unknown[] }).configuredSplit.length, 2);
  const none = await fetch(`${base}/api/v1/services/production/nope`);
  assert.equal(none.status, 404);
  assert.equal(((await none.json()) as { code: string }).code, "SKEIN_E_API_NOT_FOUND");

  const unbuilt = await dashboardServer(join(dir, "not-there"));
  const r = await fetch(`${unbuilt}/`);
  assert.equal(r.status, 503);
  const body = (await r.json()) as { code: string; message: string };
  assert.equal(body.code, "SKEIN_E_DASHBOARD_NOT_BUILT");
  assert.match(body.message, /npm run build/);
});

test("layout: layers by call depth, callers left; idle versions sit with their app; deterministic", () => {
  const m = model();
  const g = buildGraph({ model: () => m, workloads: () => workloads, telemetry: demoTraffic() });
  const v3: GraphNode = { ...(g.nodes[2] as GraphNode), id: "production/order-service/v3", version: "v3" };
  const nodes = [...g.nodes, v3];
  const depth = layers(nodes, g.edges);
  assert.deepEqual(Object.fromEntries(depth), {
    unknown: 0,
    "production/api-gateway/v1": 1,
    "production/order-service/v1": 2,
    "production/order-service/v2": 2,
    "production/order-service/v3": 2,
    "production/payment-service/v1": 3,
    "production/inventory-service/v1": 3,
  });
  const a = layoutGraph(nodes, g.edges);
  assert.deepEqual(layoutGraph([...nodes].reverse(), [...g.edges].reverse()), a);
  const at = (id: string) => a.nodes.find((n) => n.node.id === id) as { x: number; y: number };
  assert.ok(at("unknown").x < at("production/api-gateway/v1").x);
  assert.ok(at("production/api-gateway/v1").x < at("production/order-service/v1").x);
  assert.ok(at("production/order-service/v1").x < at("production/payment-service/v1").x);
  // Within a column: ordered by id, not overlapping.
  assert.ok(at("production/order-service/v1").y + NODE_H < at("production/order-service/v2").y);
  assert.equal(a.edges.length, 7);
  for (const n of a.nodes) assert.ok(n.x >= 0 && n.y >= 0 && n.x < a.width && n.y < a.height);
  // A cycle does not hang the layout.
  const cyc: GraphEdge[] = [
    { ...(g.edges[0] as GraphEdge), id: "x", source: "production/payment-service/v1", target: "unknown" },
    ...g.edges,
  ];
  // A cycle (payment calling back to the outside caller) is cut: the layers stay as they were.
  assert.deepEqual(layers(nodes, cyc), depth);
  assert.equal(layoutGraph(nodes, cyc).nodes.length, nodes.length);
});

test("edge labels read rps · 5xx % · p99", () => {
  const e = { rps: 12.34, errorRate: 0.025, p99Ms: 243.2 } as GraphEdge;
  assert.equal(edgeLabel(e), "12 rps · 2.5% · p99 243 ms");
  assert.equal(edgeLabel({ ...e, rps: 0.5, errorRate: 0, p99Ms: null }), "0.5 rps · 0.0% · p99 –");
});

test("skein dashboard: the URL, --port, opening only on a terminal with a display", () => {
  assert.equal(dashboardUrl("http://127.0.0.1:15080/api?x=1").href, "http://127.0.0.1:15080/");
  assert.equal(dashboardUrl("http://cp.example:15080", 17980).href, "http://cp.example:17980/");
  assert.equal(canOpen(true, { DISPLAY: ":0" }, true), true);
  assert.equal(canOpen(true, { WAYLAND_DISPLAY: "wayland-0" }, true), true);
  assert.equal(canOpen(true, {}, true), false);
  assert.equal(canOpen(true, { DISPLAY: ":0" }, false), false);
  assert.equal(canOpen(false, { DISPLAY: ":0" }, true), false);
});

test("skein dashboard prints the URL of a live control plane, exits 3 for an unreachable one", async () => {
  const live = createServer((req, res) => {
    res.writeHead(req.url === "/healthz" ? 200 : 404, { "content-type": "application/json" });
    res.end('{"ok":true}');
  });
  servers.push(live);
  await new Promise<void>((r) => live.listen(0, "127.0.0.1", r));
  const port = (live.address() as AddressInfo).port;
  const run = (...args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      // Asynchronously: the live server above must keep answering while the CLI runs.
      execFile(
        process.execPath,
        ["--import", "tsx", join(root, "src/cli/main.ts"), "dashboard", ...args],
        { cwd: root, env: { ...process.env, DISPLAY: "" }, timeout: 60_000 },
        (err, stdout, stderr) =>
          resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  const ok = await run("--control-plane", "http://127.0.0.1:1", "--port", String(port), "--no-open");
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.stdout, `http://127.0.0.1:${port}/\n`);

  // A port nothing listens on: the one just freed.
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const free = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  const down = await run("--control-plane", `http://127.0.0.1:${free}`, "--no-open");
  assert.equal(down.code, 3, down.stdout + down.stderr);
  assert.match(down.stderr, /cannot reach the control plane/);
  const usage = await run("--port", "99999");
  assert.equal(usage.code, 2, usage.stderr);
});
