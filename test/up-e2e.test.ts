// The newcomer's path through `skein up` (what `npm start` runs), as a real child process: the 90/10
// split, x-canary to v2, editing the weights in the working copy, applying the fault-injection pattern
// and removing it, and Ctrl-C leaving nothing behind.
//
// Statistics: order-service v2 share with weights 90/10, n = 500 requests: sd = 0.0134; accepted
// 0.10 ± 0.06 (4.5 sd). After the edit to 50/50, n = 300: sd = 0.029; accepted 0.50 ± 0.13.
// Fault pattern (5% aborted, 10% delayed 5 s; retries off in demo/fault-injection.yaml), n = 200: errors
// at the gateway must be > 0 and under 15% (p = 0.05: P(0) = 3.5e-5, P(> 15%) < 1e-7); removed: none.
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

const root = new URL("..", import.meta.url).pathname;
const BASE = 17000;
const api = `http://127.0.0.1:${BASE + 80}`;
let up: ChildProcess;
let out = "";
let workdir: string;
let gateway: string;

function skein(...args: string[]): { code: number; stdout: string } {
  try {
    return {
      code: 0,
      stdout: execFileSync(
        process.execPath,
        [join(root, "dist/cli/main.js"), ...args, "--control-plane", api],
        { cwd: root },
      ).toString(),
    };
  } catch (err) {
    const e = err as { status: number; stdout: Buffer };
    return { code: e.status, stdout: e.stdout.toString() };
  }
}

async function orders(
  n: number,
  headers: Record<string, string> = {},
  parallel = 20,
): Promise<{ status: number; version?: string }[]> {
  const one = async (i: number) => {
    const res = await fetch(`${gateway}/api/v1/orders/${i}`, {
      headers,
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    return { status: res.status, version: /"order":\{[^{}]*?"version":"(v\d)"/.exec(text)?.[1] };
  };
  const results: { status: number; version?: string }[] = [];
  for (let i = 0; i < n; i += parallel)
    results.push(
      ...(await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, (_, j) => one(i + j)))),
    );
  return results;
}
const share = (rs: { version?: string }[], v: string) => rs.filter((r) => r.version === v).length / rs.length;

before(async () => {
  workdir = mkdtempSync(join(tmpdir(), "skein-up-"));
  const started = Date.now();
  up = spawn(
    process.execPath,
    [join(root, "dist/cli/main.js"), "up", "--port-base", String(BASE), "--workdir", workdir, "--rps", "5"],
    {
      cwd: root,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  up.stdout?.on("data", (d) => {
    out += d;
  });
  up.stderr?.on("data", (d) => {
    out += d;
  });
  const deadline = Date.now() + 60_000;
  while (!/Ctrl-C stops everything/.test(out)) {
    if (Date.now() > deadline || up.exitCode !== null)
      throw new Error(`skein up did not come up within 60 s:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  gateway = `http://${/api-gateway\s+http:\/\/([\d.]+:8080)/.exec(out)?.[1]}`;
  process.stdout.write(`# skein up ready in ${Date.now() - started} ms\n`);
});

after(async () => {
  if (up.exitCode === null) {
    up.kill("SIGINT");
    await new Promise((r) => up.once("exit", r));
  }
});

test("the 90/10 split to order-service (n = 500, v2 share 0.10 ± 0.06)", async () => {
  const rs = await orders(500);
  assert.equal(rs.filter((r) => r.status !== 200).length, 0);
  const v2 = share(rs, "v2");
  assert.ok(Math.abs(v2 - 0.1) <= 0.06, `v2 share ${v2}`);
});

test("x-canary: true reaches v2", async () => {
  const rs = await orders(40, { "x-canary": "true" });
  assert.deepEqual(
    rs.filter((r) => r.version !== "v2"),
    [],
  );
});

test("editing the weights in the working copy moves the split within seconds (n = 300, 0.50 ± 0.13)", async () => {
  const file = join(workdir, "config", "pattern1-traffic-management.yaml");
  writeFileSync(
    file,
    readFileSync(file, "utf8").replace("weight: 90", "weight: 50").replace("weight: 10", "weight: 50"),
  );
  const deadline = Date.now() + 10_000;
  while (share(await orders(60), "v2") < 0.3)
    assert.ok(Date.now() < deadline, "the new weights apply within 10 s");
  const v2 = share(await orders(300), "v2");
  assert.ok(Math.abs(v2 - 0.5) <= 0.13, `v2 share ${v2}`);
});

test("applying the fault-injection pattern makes errors appear; removing it makes them go", async () => {
  const applied = skein("apply", "-f", "demo/fault-injection.yaml");
  assert.equal(applied.code, 0, applied.stdout);
  await new Promise((r) => setTimeout(r, 1500));
  // Wide batches: about 10% of calls wait 5 s, and a batch lasts as long as its slowest call.
  const faulted = await orders(200, {}, 50);
  const errors = faulted.filter((r) => r.status >= 500).length / faulted.length;
  assert.ok(errors > 0 && errors < 0.15, `error share ${errors}`);
  assert.ok(
    faulted.every((r) => r.status !== 200 || r.version === "v1"),
    "the pattern routes to the stable subset",
  );

  const removed = skein("delete", "virtualservice", "order-service", "-n", "production");
  assert.equal(removed.code, 0, removed.stdout);
  await new Promise((r) => setTimeout(r, 1500));
  const clean = await orders(200);
  assert.equal(clean.filter((r) => r.status !== 200).length, 0);
});

test("skein tap shows the demo's requests to order-service as they happen, every one over mTLS", async () => {
  const tap = spawn(
    process.execPath,
    [
      join(root, "dist/cli/main.js"),
      "tap",
      "order-service",
      "-n",
      "production",
      "--path",
      "/api/v1/orders",
      "-o",
      "json",
      "--max",
      "6",
      "--control-plane",
      api,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  tap.stdout.on("data", (c) => {
    out += c;
  });
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => tap.kill("SIGTERM"), 20_000);
    tap.on("exit", (c) => {
      clearTimeout(timer);
      resolve(c);
    });
    // The demo's steady load is the traffic; a few calls of our own make sure there is some.
    void orders(10);
  });
  assert.equal(code, 0, out);
  const events = out
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { direction: string; path: string; status: number; mtls: boolean });
  assert.equal(events.length, 6);
  for (const e of events) assert.ok(e.path.startsWith("/api/v1/orders"), e.path);
  // order-service's own sidecar sees its callers over mutual TLS (pattern 2's STRICT).
  const inbound = events.filter((e) => e.direction === "inbound");
  assert.ok(inbound.length > 0, JSON.stringify(events));
  assert.ok(
    inbound.every((e) => e.mtls),
    JSON.stringify(inbound),
  );
});

test("Ctrl-C stops everything and leaves no process or port behind", async () => {
  up.kill("SIGINT");
  const code = await new Promise((r) => up.once("exit", r));
  assert.equal(code, 0, out);
  assert.match(out, /stopped\./);
  let left = "";
  try {
    // pgrep (no shell, so it cannot match itself) exits 1 when nothing matches.
    left = execFileSync("pgrep", ["-f", `${workdir}|--control-plane ${api}|--xds 127.0.0.1:${BASE + 10}`])
      .toString()
      .trim();
  } catch {
    left = "";
  }
  assert.equal(left, "", "no skein run, sidecar or app process left");
  await assert.rejects(fetch(`${api}/healthz`), "the control plane port is closed");
  await assert.rejects(fetch(`${gateway}/health`), "the gateway's sidecar is gone");
});
