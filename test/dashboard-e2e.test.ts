// The dashboard on the running demo, in a real browser: `skein up` (its own port base), Debian's chromium
// driven by playwright-core. Every demo service shows as a node, the edges between them carry traffic
// (from the sidecars' Istio metrics), and a weight change in the watched config shows in the canary split.
// A 1280×800 screenshot is saved as test/artifacts/dashboard.png (an output, ignored by git).
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";

const root = new URL("..", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";
const hasChromium = spawnSync("sh", ["-c", `command -v ${CHROMIUM}`]).status === 0;
const skip = hasChromium ? false : "chromium is not installed: node scripts/system-packages.mjs chromium";
const BASE = 17900;
const dashboard = `http://127.0.0.1:${BASE + 80}/`;
const artifacts = join(root, "test", "artifacts");

const DEMO_NODES = [
  "production/api-gateway/v1",
  "production/order-service/v1",
  "production/order-service/v2",
  "production/payment-service/v1",
  "production/inventory-service/v1",
];

let up: ChildProcess | undefined;
let out = "";
let workdir: string;
let browser: Browser | undefined;
let page: Page | undefined;

/** Polls `check` until it returns a truthy value or `ms` pass; the last value or error explains a timeout. */
async function eventually<T>(what: string, ms: number, check: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      last = await check();
      if (last) return last as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) assert.fail(`${what} within ${ms / 1000} s; last: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

before(async () => {
  if (skip) return;
  workdir = mkdtempSync(join(tmpdir(), "skein-dash-e2e-"));
  up = spawn(
    process.execPath,
    [join(root, "dist/cli/main.js"), "up", "--port-base", String(BASE), "--workdir", workdir, "--rps", "10"],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
  );
  up.stdout?.on("data", (d) => {
    out += d;
  });
  up.stderr?.on("data", (d) => {
    out += d;
  });
  const deadline = Date.now() + 90_000;
  while (!/Ctrl-C stops everything/.test(out)) {
    if (Date.now() > deadline || up.exitCode !== null)
      throw new Error(`skein up did not come up within 90 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(dashboard);
});

after(async () => {
  if (page) {
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, "dashboard.png") }).catch(() => undefined);
  }
  await browser?.close();
  if (up && up.exitCode === null) {
    up.kill("SIGINT");
    await new Promise((r) => up?.once("exit", r));
  }
});

test("the page comes from the control plane itself, with no request to anywhere else", { skip }, async () => {
  const p = page as Page;
  const foreign: string[] = [];
  p.on("request", (r) => {
    if (!r.url().startsWith(`http://127.0.0.1:${BASE + 80}/`)) foreign.push(r.url());
  });
  await p.reload();
  await p.waitForSelector('[data-testid="service-graph"]', { timeout: 30_000 });
  assert.deepEqual(foreign, []);
  assert.equal(await p.title(), "Skein dashboard");
});

test("every demo service shows as a node of the graph, with its versions", { skip }, async () => {
  const p = page as Page;
  const nodes = await eventually("all demo workload versions in the graph", 30_000, async () => {
    const ids = await p.$$eval("[data-node]", (els) => els.map((e) => e.getAttribute("data-node")));
    return DEMO_NODES.every((n) => ids.includes(n)) && ids;
  });
  assert.ok(nodes);
  for (const s of ["api-gateway", "order-service", "payment-service", "inventory-service"])
    assert.ok(await p.$(`[data-service="production/${s}"]`), `${s} in the services panel`);
  // The proxies panel lists every sidecar as synced.
  const synced = await p.$$eval(
    '[data-testid="proxies-panel"] tbody tr',
    (rows) => rows.filter((r) => (r.textContent ?? "").split("SYNCED").length - 1 === 4).length,
  );
  assert.equal(synced, DEMO_NODES.length);
});

test("a weight change in the watched configuration shows in order-service's canary split", {
  skip,
}, async () => {
  const p = page as Page;
  const split = '[data-service="production/order-service"] [data-testid="configured-split"]';
  await eventually(
    "the 90/10 split",
    30_000,
    async () => (await p.getAttribute(split, "data-split")) === "v1=90,v2=10",
  );
  const file = join(workdir, "config", "pattern1-traffic-management.yaml");
  writeFileSync(
    file,
    readFileSync(file, "utf8").replace("weight: 90", "weight: 50").replace("weight: 10", "weight: 50"),
  );
  await eventually(
    "the 50/50 split",
    30_000,
    async () => (await p.getAttribute(split, "data-split")) === "v1=50,v2=50",
  );
  assert.equal(await p.textContent(split), "v1 50% · v2 50%");
});

test("the edges between the demo services carry traffic (needs the sidecars' :15020 metrics)", {
  skip,
}, async () => {
  const p = page as Page;
  const calls = [
    ["production/api-gateway/v1", "production/order-service/"],
    ["production/order-service/", "production/payment-service/v1"],
    ["production/order-service/", "production/inventory-service/v1"],
  ];
  const rps = await eventually("non-zero rps on every demo edge", 60_000, async () => {
    const edges = await p.$$eval("[data-edge]", (els) =>
      els.map((e) => [e.getAttribute("data-edge") ?? "", Number(e.getAttribute("data-rps"))] as const),
    );
    const sums = calls.map(([from, to]) =>
      edges
        .filter(([id]) => {
          const [s, t] = id.split("->");
          return s?.startsWith(from as string) && t?.startsWith(to as string);
        })
        .reduce((a, [, r]) => a + r, 0),
    );
    return sums.every((s) => s > 0) && sums;
  });
  assert.ok(rps);
  // Labelled rps · 5xx % · p99.
  const label = await p.textContent(
    '[data-edge^="production/api-gateway/v1->production/order-service/v1"] text',
  );
  assert.match(label ?? "", /^\d+(\.\d)? rps · \d+\.\d+% · p99 /);
});
