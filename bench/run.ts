// `npm run bench` (`-- --quick` for a short pass): the whole benchmark matrix in one run, so ratios
// between scenarios are fair. Starts the origin server, a control plane, two sidecars and the reference
// proxies as separate processes on 127.0.x addresses, drives them, stops them all, and writes
// bench/results/<date>[-quick].json and .md. `--only <words,...>` runs only the data-plane scenarios whose
// names contain one of the words (plus direct, and the plaintext row an mTLS row is compared with).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ackLatency, memoryGrowth } from "./control-plane.js";
import { type Protocol, runAtRate, runSaturation, type Target } from "./loadgen.js";
import {
  issueToken,
  MTLS_SERVER_SERVICE,
  NAMESPACE,
  SERVER_SERVICE,
  startControlPlane,
  startSidecar,
} from "./mesh.js";
import {
  type Child,
  formatResultFiles,
  harnessCpuSeconds,
  machineBusySeconds,
  processTree,
  sleep,
  startChild,
  stopAllChildren,
  treeCpuSeconds,
  treeMemory,
  waitTcp,
} from "./procs.js";
import {
  ensureTools,
  HOP_PORTS,
  runH2load,
  runWrk,
  startHaproxy,
  startNginx,
  type ToolRun,
} from "./reference.js";
import { type BenchResults, markdown, type ScenarioRun, type SidecarMemory } from "./report.js";
import { GRPC_METHOD, PAYLOAD_BYTES } from "./server.js";

interface Plan {
  protocols: Protocol[];
  rates: Record<Protocol, number[]>;
  rateMs: number;
  warmupMs: number;
  saturationMs: number;
  saturation: Protocol[];
  ack: { proxies: number; services: number; changes: number; connectBudgetMs: number }[];
  growth: number[];
}

const FULL: Plan = {
  protocols: ["http1", "h2c", "grpc"],
  rates: { http1: [500, 1000, 2000], h2c: [1000], grpc: [1000] },
  rateMs: 6000,
  warmupMs: 1000,
  saturationMs: 5000,
  saturation: ["http1", "h2c", "grpc"],
  ack: [
    { proxies: 100, services: 1000, changes: 3, connectBudgetMs: 90_000 },
    { proxies: 1000, services: 100, changes: 2, connectBudgetMs: 150_000 },
    // Fits since proxies that see the mesh alike share their translation (src/translate/shared.ts).
    { proxies: 1000, services: 1000, changes: 2, connectBudgetMs: 180_000 },
  ],
  growth: [10, 100, 1000],
};

const QUICK: Plan = {
  protocols: ["http1", "h2c", "grpc"],
  rates: { http1: [1000], h2c: [1000], grpc: [1000] },
  rateMs: 1500,
  warmupMs: 300,
  saturationMs: 2000,
  saturation: ["http1"],
  ack: [{ proxies: 100, services: 100, changes: 3, connectBudgetMs: 20_000 }],
  growth: [10, 100],
};

const argv = process.argv.slice(2);
const args = new Set(argv);
const quick = args.has("--quick");
/** `--only a,b` or `--only=a,b`: lower-case words a scenario name must contain one of. */
const only = (() => {
  const i = argv.findIndex((a) => a === "--only" || a.startsWith("--only="));
  if (i < 0) return undefined;
  const raw = argv[i]?.startsWith("--only=") ? argv[i]?.slice("--only=".length) : argv[i + 1];
  const words = (raw ?? "")
    .split(",")
    .map((w) => w.trim().toLowerCase())
    .filter(Boolean);
  if (words.length === 0) throw new Error("--only needs a comma-separated list of scenario-name words");
  return words;
})();
const wanted = (scenario: string) =>
  !only || scenario === "direct" || only.some((w) => scenario.toLowerCase().includes(w));
const plan = quick ? QUICK : FULL;
const started = Date.now();
const log = (m: string) =>
  process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0)}s] ${m}\n`);
const PAYLOAD = Buffer.alloc(PAYLOAD_BYTES, "q");
const here = fileURLToPath(new URL(".", import.meta.url));

interface Endpoint {
  host: string;
  port: number;
  authority: string;
}

interface Scenario {
  name: string;
  hops: number;
  targets: Record<Protocol, Endpoint>;
  /** The proxy processes this scenario goes through, by name; pids resolved when measured. */
  procs: { name: string; child: Child }[];
  /** The plaintext scenario this one is compared with (kept under `--only` whenever this one is). */
  baseline?: string;
}

/** The two-sidecar scenario with mutual TLS between the sidecars, and its plaintext counterpart. */
const MTLS_SCENARIO = "skein 2 sidecars mTLS";
const PLAIN_TWO_SIDECARS = "skein 2 sidecars";

const CONNECTIONS: Record<Protocol, number> = { http1: 16, h2c: 2, grpc: 2 };
const SATURATION_CONCURRENCY = 32;

function target(p: Protocol, e: Endpoint): Target {
  return {
    protocol: p,
    host: e.host,
    port: e.port,
    authority: e.authority,
    path: p === "grpc" ? GRPC_METHOD : "/bench",
    payload: PAYLOAD,
    connections: CONNECTIONS[p],
  };
}

function machine(): BenchResults["machine"] {
  let kernel = "";
  try {
    kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  } catch {
    // not Linux
  }
  return {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel,
    node: process.version,
  };
}

/** Snapshot of the CPU seconds of each scenario process tree. */
function cpuOf(procs: Scenario["procs"]): number[] {
  return procs.map((p) => treeCpuSeconds(processTree(p.child.pid)));
}

async function dataPlane(results: BenchResults): Promise<void> {
  const tools = ensureTools(!args.has("--no-install"), log);
  results.tools = tools.versions;
  for (const [t, why] of Object.entries(tools.missing)) results.notRun.push({ what: `${t} scenarios`, why });
  const dir = mkdtempSync(join(tmpdir(), "skein-bench-"));

  log("starting the origin server, control plane and sidecars");
  const origin = startChild("origin", process.execPath, ["--import", "tsx", join(here, "server.ts")]);
  const ports = JSON.parse(await origin.firstLine(20_000)) as { http1: number; h2c: number; grpc: number };
  const cp = await startControlPlane({ "mesh.yaml": SERVER_SERVICE, "mtls.yaml": MTLS_SERVER_SERVICE });
  const serverSidecar = await startSidecar({
    name: "bench-server",
    address: "127.0.20.2",
    xds: cp.xds,
    labels: { app: "bench-server" },
    ports: { http: 8080, http2: 8081, grpc: 9090 },
    appPorts: { http: ports.http1, http2: ports.h2c, grpc: ports.grpc },
  });
  const clientSidecar = await startSidecar({
    name: "bench-client",
    address: "127.0.20.1",
    xds: cp.xds,
    labels: { app: "bench-client" },
  });
  // mTLS pair: certificates from the control plane's CA with bootstrap tokens, as `skein run` starts them.
  let mtls: { server: Child; client: Child } | undefined;
  if (wanted(MTLS_SCENARIO)) {
    const ca = cp.http;
    mtls = {
      server: await startSidecar({
        name: "bench-server-mtls",
        address: "127.0.20.4",
        xds: cp.xds,
        labels: { app: "bench-server-mtls" },
        ports: { http: 8080, http2: 8081, grpc: 9090 },
        appPorts: { http: ports.http1, http2: ports.h2c, grpc: ports.grpc },
        identity: { token: await issueToken(cp.http, "bench-server-mtls"), ca },
      }),
      client: await startSidecar({
        name: "bench-client-mtls",
        address: "127.0.20.3",
        xds: cp.xds,
        labels: { app: "bench-client-mtls" },
        identity: { token: await issueToken(cp.http, "bench-client-mtls"), ca },
      }),
    };
  }
  // The client's sidecar learns the server's endpoint after the server's sidecar registered.
  await sleep(1500);

  const scenarios: Scenario[] = [
    {
      name: "direct",
      hops: 0,
      targets: {
        http1: { host: "127.0.0.1", port: ports.http1, authority: `127.0.0.1:${ports.http1}` },
        h2c: { host: "127.0.0.1", port: ports.h2c, authority: `127.0.0.1:${ports.h2c}` },
        grpc: { host: "127.0.0.1", port: ports.grpc, authority: `127.0.0.1:${ports.grpc}` },
      },
      procs: [],
    },
    {
      name: "skein 1 sidecar",
      hops: 1,
      targets: {
        http1: { host: "127.0.20.2", port: 8080, authority: `bench-server.${NAMESPACE}:8080` },
        h2c: { host: "127.0.20.2", port: 8081, authority: `bench-server.${NAMESPACE}:8081` },
        grpc: { host: "127.0.20.2", port: 9090, authority: `bench-server.${NAMESPACE}:9090` },
      },
      procs: [{ name: "server sidecar", child: serverSidecar }],
    },
    {
      name: "skein 2 sidecars",
      hops: 2,
      targets: {
        http1: { host: "127.0.20.1", port: 15001, authority: `bench-server.${NAMESPACE}:8080` },
        h2c: { host: "127.0.20.1", port: 15001, authority: `bench-server.${NAMESPACE}:8081` },
        grpc: { host: "127.0.20.1", port: 15001, authority: `bench-server.${NAMESPACE}:9090` },
      },
      procs: [
        { name: "client sidecar", child: clientSidecar },
        { name: "server sidecar", child: serverSidecar },
      ],
    },
  ];
  if (mtls)
    scenarios.push({
      name: MTLS_SCENARIO,
      hops: 2,
      targets: {
        http1: { host: "127.0.20.3", port: 15001, authority: `bench-server-mtls.${NAMESPACE}:8080` },
        h2c: { host: "127.0.20.3", port: 15001, authority: `bench-server-mtls.${NAMESPACE}:8081` },
        grpc: { host: "127.0.20.3", port: 15001, authority: `bench-server-mtls.${NAMESPACE}:9090` },
      },
      procs: [
        { name: "client sidecar", child: mtls.client },
        { name: "server sidecar", child: mtls.server },
      ],
      baseline: PLAIN_TWO_SIDECARS,
    });
  const hopTargets = (address: string): Record<Protocol, Endpoint> => ({
    http1: { host: address, port: HOP_PORTS.http1, authority: `bench-server.${NAMESPACE}:8080` },
    h2c: { host: address, port: HOP_PORTS.h2c, authority: `bench-server.${NAMESPACE}:8081` },
    grpc: { host: address, port: HOP_PORTS.grpc, authority: `bench-server.${NAMESPACE}:9090` },
  });
  const originUp = { host: "127.0.0.1", ports: { http1: ports.http1, h2c: ports.h2c, grpc: ports.grpc } };
  for (const [kind, bin, start, base] of [
    ["nginx", tools.nginx, startNginx, "127.0.30"],
    ["haproxy", tools.haproxy, startHaproxy, "127.0.40"],
  ] as const) {
    if (!bin || !(wanted(`${kind} 1 hop`) || wanted(`${kind} 2 hops`))) continue;
    const server = start(bin, dir, `${kind}-server`, `${base}.2`, originUp);
    const client = start(bin, dir, `${kind}-client`, `${base}.1`, { host: `${base}.2`, ports: HOP_PORTS });
    for (const [c, a] of [
      [server, `${base}.2`],
      [client, `${base}.1`],
    ] as const)
      for (const p of Object.values(HOP_PORTS)) await waitTcp(a, p, 10_000, c);
    scenarios.push(
      {
        name: `${kind} 1 hop`,
        hops: 1,
        targets: hopTargets(`${base}.2`),
        procs: [{ name: `${kind} server-side`, child: server }],
      },
      {
        name: `${kind} 2 hops`,
        hops: 2,
        targets: hopTargets(`${base}.1`),
        procs: [
          { name: `${kind} client-side`, child: client },
          { name: `${kind} server-side`, child: server },
        ],
      },
    );
  }
  results.notRun.push({
    what: "nginx/HAProxy with TLS between their hops (the reference for the mTLS row)",
    why: "not built into the harness yet: it needs certificates for them and TLS configs in reference.ts",
  });
  if (only) {
    const keep = scenarios.filter(
      (s) => wanted(s.name) || scenarios.some((o) => wanted(o.name) && o.baseline === s.name),
    );
    results.notes.push(
      `Run with --only ${only.join(",")}: scenarios ${keep.map((s) => s.name).join(", ")} (the rest were not run).`,
    );
    scenarios.splice(0, scenarios.length, ...keep);
  }
  results.notes.push(
    "nginx cannot speak h2c to an upstream: its h2c rows terminate HTTP/2 at the first hop and forward HTTP/1.1 keep-alive (gRPC uses grpc_pass, end-to-end HTTP/2). HAProxy and Skein keep h2c end to end.",
    "Each proxy process is single-threaded (Node.js sidecars; nginx worker_processes 1; HAProxy nbthread 1); nginx's CPU and memory include its master process.",
    "The origin server is one Node.js process serving HTTP/1.1, h2c and gRPC; the open-loop load generator runs in the harness's own Node.js process.",
  );

  // Peak resident size seen while load ran, per process tree; and what each had before any load.
  const sampledMax = new Map<Child, number>();
  const allProcs = [...new Set(scenarios.flatMap((s) => s.procs.map((p) => p.child)))];
  const rest = new Map<Child, number>();
  for (const c of allProcs) rest.set(c, treeMemory(processTree(c.pid)).rssKiB);
  const busy0 = machineBusySeconds();
  const ours0 = harnessCpuSeconds();
  const wall0 = Date.now();
  const sampler = setInterval(() => {
    for (const c of allProcs) {
      const rss = treeMemory(processTree(c.pid)).rssKiB;
      if (rss > (sampledMax.get(c) ?? 0)) sampledMax.set(c, rss);
    }
  }, 200);

  // Every scenario answers every protocol before anything is measured; a broken one is reported, not timed.
  const broken = new Set<string>();
  for (const p of plan.protocols)
    for (const s of scenarios) {
      const r = await runAtRate(target(p, s.targets[p]), { rate: 200, durationMs: 250, warmupMs: 250 });
      if (r.errors > 0 || r.completed === 0) {
        broken.add(`${s.name}/${p}`);
        results.notRun.push({
          what: `${s.name}, ${p}`,
          why: `failed its check before measuring: ${JSON.stringify(r.errorKinds)}`,
        });
        log(`${s.name} ${p}: broken (${JSON.stringify(r.errorKinds)})`);
      }
    }

  for (const p of plan.protocols) {
    for (const rate of plan.rates[p]) {
      for (const s of scenarios) {
        if (broken.has(`${s.name}/${p}`)) continue;
        let cpu0: number[] = [];
        const r = await runAtRate(target(p, s.targets[p]), {
          rate,
          durationMs: plan.rateMs,
          warmupMs: plan.warmupMs,
          onMeasureStart: () => {
            cpu0 = cpuOf(s.procs);
          },
        });
        const cpu1 = cpuOf(s.procs);
        const run: ScenarioRun = {
          scenario: s.name,
          ...(s.baseline && { baseline: s.baseline }),
          hops: s.hops,
          protocol: p,
          mode: "rate",
          tool: "bench/loadgen.ts",
          rate,
          result: r,
          processes: s.procs.map((x, i) => ({
            name: x.name,
            cpuSecondsPer1000: ((cpu1[i] ?? 0) - (cpu0[i] ?? 0)) / Math.max(1e-9, r.completed / 1000),
          })),
        };
        results.runs.push(run);
        log(
          `${p} ${rate} rps ${s.name}: ${r.achievedRps} rps, p50 ${(r.latencyUs.p50 / 1000).toFixed(2)} ms, p99 ${(r.latencyUs.p99 / 1000).toFixed(2)} ms, p99.9 ${(r.latencyUs.p999 / 1000).toFixed(2)} ms, errors ${r.errors}`,
        );
      }
    }
  }

  for (const p of plan.saturation) {
    for (const s of scenarios) {
      if (broken.has(`${s.name}/${p}`)) continue;
      const e = s.targets[p];
      const secs = Math.round(plan.saturationMs / 1000);
      let tool = "bench/loadgen.ts";
      let result: ScenarioRun["result"];
      let cpu0: number[] = [];
      if (p === "http1" && tools.wrk) {
        tool = "wrk -t1 -c32";
        const url = `http://${e.host}:${e.port}/bench`;
        // The processes are warm from the rate runs; the full run still gives wrk's connections a second.
        if (!quick) runWrk(tools.wrk, dir, url, e.authority, PAYLOAD_BYTES, SATURATION_CONCURRENCY, 1);
        cpu0 = cpuOf(s.procs);
        const w: ToolRun = runWrk(
          tools.wrk,
          dir,
          url,
          e.authority,
          PAYLOAD_BYTES,
          SATURATION_CONCURRENCY,
          secs,
        );
        result = w;
      } else if (p === "h2c" && tools.h2load) {
        tool = "h2load -c2 -m16";
        cpu0 = cpuOf(s.procs);
        const w = runH2load(
          tools.h2load,
          dir,
          `http://${e.host}:${e.port}/bench`,
          e.authority,
          PAYLOAD_BYTES,
          2,
          16,
          secs,
        );
        result = w;
      } else {
        tool = `bench/loadgen.ts closed loop, ${SATURATION_CONCURRENCY} in flight`;
        result = await runSaturation(target(p, e), {
          concurrency: SATURATION_CONCURRENCY,
          durationMs: plan.saturationMs,
          warmupMs: plan.warmupMs,
          onMeasureStart: () => {
            cpu0 = cpuOf(s.procs);
          },
        });
      }
      const cpu1 = cpuOf(s.procs);
      // h2load's CPU window includes its 1 s warm-up; its per-request CPU is therefore slightly high.
      results.runs.push({
        scenario: s.name,
        ...(s.baseline && { baseline: s.baseline }),
        hops: s.hops,
        protocol: p,
        mode: "saturation",
        tool,
        result,
        processes: s.procs.map((x, i) => ({
          name: x.name,
          cpuSecondsPer1000: ((cpu1[i] ?? 0) - (cpu0[i] ?? 0)) / Math.max(1e-9, result.completed / 1000),
        })),
      });
      log(`${p} saturation ${s.name} (${tool}): ${result.achievedRps} rps, errors ${result.errors}`);
    }
  }
  clearInterval(sampler);
  // Other sessions' processes on the same machine would skew every row alike; say how much there was.
  const wallS = (Date.now() - wall0) / 1000;
  const other = machineBusySeconds() - busy0 - (harnessCpuSeconds() - ours0);
  results.notes.push(
    `During the data-plane runs (${Math.round(wallS)} s) processes outside the benchmark used ${Math.max(0, other).toFixed(1)} CPU s, ${((100 * Math.max(0, other)) / wallS).toFixed(0)}% of one core on average (from /proc/stat minus the harness's own process tree).`,
  );

  const mem: SidecarMemory[] = [];
  const toMiB = (kib: number) => Math.round(kib / 102.4) / 10;
  for (const c of allProcs) {
    const m = treeMemory(processTree(c.pid));
    mem.push({
      name:
        c === clientSidecar
          ? "skein client sidecar"
          : c === serverSidecar
            ? "skein server sidecar"
            : c === mtls?.client
              ? "skein client sidecar (mTLS)"
              : c === mtls?.server
                ? "skein server sidecar (mTLS)"
                : c.name,
      restRssMiB: toMiB(rest.get(c) ?? 0),
      peakRssMiB: toMiB(m.hwmKiB),
      maxSampledRssMiB: toMiB(sampledMax.get(c) ?? 0),
    });
  }
  results.memory = mem;
  log("stopping the data-plane processes");
  await stopAllChildren();
}

async function controlPlane(results: BenchResults): Promise<void> {
  for (const a of plan.ack) {
    log(`control plane: ${a.proxies} simulated proxies, ${a.services} services, ${a.changes} changes`);
    const r = await ackLatency({ ...a, timeoutMs: 120_000, log });
    results.controlPlane.ack.push(r);
    if (r.incomplete)
      results.notRun.push({
        what: `config change → all ACKed with ${a.proxies} proxies and ${a.services} services`,
        why: r.incomplete,
      });
  }
  const big = results.controlPlane.ack.find((a) => a.services === 1000 && a.allAckedMs.length > 0);
  const largest = results.controlPlane.ack.some(
    (a) => a.services === 1000 && a.proxies === 1000 && a.allAckedMs.length > 0,
  );
  if (!quick && big && !largest) {
    const perPush = big.controlPlaneCpuS / (big.allAckedMs.length * big.proxies);
    results.notRun.push({
      what: "config change → all ACKed with 1000 proxies and 1000 services",
      why: `the control plane spent ${big.controlPlaneCpuS} CPU s on ${big.allAckedMs.length} changes × ${big.proxies} proxies with 1000 services, ${(perPush * 1000).toFixed(0)} ms per proxy per change; with 1000 proxies that is about ${Math.round(perPush * 1000)} s per change, on top of a connect phase that grows faster than linearly (see the 1000 × 100 row), which does not fit the 15-minute run. Measured instead: 100 proxies × 1000 services and 1000 proxies × 100 services.`,
    });
  }
  log(`control plane and sidecar memory as services grow: ${plan.growth.join(" → ")}`);
  results.controlPlane.growth = await memoryGrowth({ steps: plan.growth, log });
}

async function main(): Promise<void> {
  const date = new Date().toISOString().slice(0, 10);
  const results: BenchResults = {
    date,
    mode: quick ? "quick" : "full",
    machine: machine(),
    tools: {},
    durationS: 0,
    runs: [],
    memory: [],
    controlPlane: { ack: [], growth: [] },
    notRun: [],
    notes: [],
  };
  const stop = () => {
    void stopAllChildren().then(() => process.exit(130));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    if (!args.has("--skip-data-plane")) await dataPlane(results);
    if (!args.has("--skip-control-plane")) await controlPlane(results);
  } finally {
    await stopAllChildren();
  }
  results.durationS = (Date.now() - started) / 1000;
  const outDir = join(here, "results");
  mkdirSync(outDir, { recursive: true });
  const suffix = only ? `-only-${only.join("-").replace(/[^a-z0-9]+/g, "-")}` : "";
  const base = join(outDir, `${date}${quick ? "-quick" : ""}${suffix}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(`${base}.md`, markdown(results));
  formatResultFiles([`${base}.json`, `${base}.md`]);
  log(`wrote ${base}.json and ${base}.md`);
  process.stdout.write(markdown(results));
}

main().then(
  () => process.exit(0),
  async (err) => {
    process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
    await stopAllChildren();
    process.exit(1);
  },
);
