// A real Prometheus server (Debian's `prometheus`; `npm test` installs it first) scrapes the demo mesh
// (`skein up`) with the configuration `skein prometheus-config` generates, and PromQL over
// istio_requests_total shows order-service's 90/10 version split, as Istio's dashboards would.
//
// Statistics: the demo load (5 rps through the gateway) plus n = 400 requests sent here, all counted at
// order-service's sidecars (reporter="destination"). With weights 90/10 the v2 share of n >= 400 has
// sd <= 0.015; accepted 0.10 ± 0.06 (4 sd). A 50/50 or 100/0 routing, or mislabelled versions, fail.
// Only answered requests (200) are counted: requests the sidecars refuse themselves (403 from an
// authorization policy to a plaintext prober, say) reach both versions alike and are not routed traffic.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { parse } from "yaml";

const root = new URL("..", import.meta.url).pathname;
const BASE = 17300;
const api = `http://127.0.0.1:${BASE + 80}`;
let prometheusBin = "";
try {
  prometheusBin = execFileSync("sh", ["-c", "command -v prometheus"]).toString().trim();
} catch {
  prometheusBin = "";
}
const skip = prometheusBin
  ? false
  : "prometheus is not installed (node scripts/system-packages.mjs prometheus)";

let up: ChildProcess | undefined;
let prom: ChildProcess | undefined;
let out = "";
let promLog = "";
let dir = "";
let gateway = "";
let promUrl = "";

async function waitFor<T>(what: string, ms: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} within ${ms} ms\n${out}\n${promLog}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`, {
    signal: AbortSignal.timeout(5000),
  });
  const body = (await res.json()) as { status: string; data: { result: never[] } };
  assert.equal(body.status, "success");
  return body.data.result;
}

before(async () => {
  if (skip) return;
  dir = mkdtempSync(join(tmpdir(), "skein-prom-"));
  up = spawn(
    process.execPath,
    [
      join(root, "dist/cli/main.js"),
      "up",
      "--port-base",
      String(BASE),
      "--workdir",
      join(dir, "up"),
      "--rps",
      "5",
    ],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  up.stdout?.on("data", (d) => {
    out += d;
  });
  up.stderr?.on("data", (d) => {
    out += d;
  });
  await waitFor("skein up came up", 90_000, async () =>
    /Ctrl-C stops everything/.test(out) ? true : up?.exitCode !== null ? Promise.reject() : undefined,
  );
  gateway = `http://${/api-gateway\s+http:\/\/([\d.]+:8080)/.exec(out)?.[1]}`;
  // Local mode's workload addresses (127.0.1.x) are per control plane: another mesh running on this
  // machine at the same time holds the same ones, and its sidecars would be the ones scraped.
  if (/exited \(/.test(out))
    throw new Error(`a workload of the demo mesh exited (another mesh running?):\n${out}`);
  const config = execFileSync(
    process.execPath,
    [
      join(root, "dist/cli/main.js"),
      "prometheus-config",
      "--control-plane",
      api,
      "--scrape-interval",
      "1s",
      "-f",
      join(root, "examples", "mesh", "pattern4-observability.yaml"),
    ],
    { cwd: root },
  ).toString();
  writeFileSync(join(dir, "prometheus.yml"), config);
  // A free port for Prometheus' own web listener (bound, released, then handed over).
  const { createServer } = await import("node:net");
  const port = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
  promUrl = `http://127.0.0.1:${port}`;
  prom = spawn(
    prometheusBin,
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "tsdb")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  prom.stderr?.on("data", (d) => {
    promLog = `${promLog}${d}`.slice(-4000);
  });
  await waitFor("Prometheus was ready", 60_000, async () =>
    (await fetch(`${promUrl}/-/ready`)).ok ? true : undefined,
  );
});

after(async () => {
  for (const p of [prom, up]) {
    if (!p || p.exitCode !== null || p.signalCode !== null) continue;
    p.kill(p === up ? "SIGINT" : "SIGTERM");
    await new Promise((r) => p.once("exit", r));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("the generated configuration scrapes every sidecar and the control plane", { skip }, async () => {
  const config = parse(
    execFileSync(process.execPath, [
      join(root, "dist/cli/main.js"),
      "prometheus-config",
      "--control-plane",
      api,
    ]).toString(),
  ) as {
    scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
  };
  const sidecars = config.scrape_configs.find((j) => j.job_name === "skein-sidecars");
  assert.equal(sidecars?.static_configs.length, 5, "the shop's five workloads");
  const targets = await waitFor("all targets up", 30_000, async () => {
    const up = await query("up");
    return up.length >= 6 && up.every((r) => r.value[1] === "1") ? up : undefined;
  });
  assert.ok(targets.some((t) => t.metric.job === "skein-control-plane"));
  const cp = await query("pilot_xds");
  assert.equal(cp[0]?.value[1], "5", "five proxies connected (pilot_xds)");
});

test("PromQL over istio_requests_total shows the 90/10 split (n >= 400, v2 share 0.10 ± 0.06)", {
  skip,
}, async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 400; i += 20)
    await Promise.all(
      Array.from({ length: 20 }, async (_, j) => {
        const r = await fetch(`${gateway}/api/v1/orders/${i + j}`, { signal: AbortSignal.timeout(15_000) });
        await r.text();
        statuses.push(r.status);
      }),
    );
  assert.equal(statuses.filter((s) => s !== 200).length, 0, `statuses ${statuses.filter((s) => s !== 200)}`);
  const q =
    'sum by (destination_version) (istio_requests_total{reporter="destination",destination_service_name="order-service",response_code="200"})';
  let last: unknown;
  const byVersion = await waitFor("Prometheus saw the requests", 60_000, async () => {
    const rs = await query(q);
    last = rs;
    const n = rs.reduce((s, r) => s + Number(r.value[1]), 0);
    return n >= 400 ? rs : undefined;
  }).catch((err: Error) => assert.fail(`${JSON.stringify(last)}\n${err.message}`));
  const count = (v: string) =>
    Number(byVersion.find((r) => r.metric.destination_version === v)?.value[1] ?? 0);
  const v1 = count("v1");
  const v2 = count("v2");
  assert.deepEqual(
    byVersion.map((r) => r.metric.destination_version).sort(),
    ["v1", "v2"],
    "only the two versions, labelled by their sidecars",
  );
  const share = v2 / (v1 + v2);
  assert.ok(Math.abs(share - 0.1) <= 0.06, `v2 share ${share} of ${v1 + v2}`);
  // The client side agrees on where the requests went (the gateway's reporter="source" series).
  const src = await query(
    'sum(istio_requests_total{reporter="source",source_app="api-gateway",destination_service_name="order-service"})',
  );
  // Scraped at other moments than the destinations: the same traffic, give or take a scrape interval's worth.
  const fromSource = Number(src[0]?.value[1]);
  assert.ok(fromSource >= 0.5 * (v1 + v2), `source side counted ${fromSource}, destinations ${v1 + v2}`);
});
