// `node --import tsx bench/profile.ts [--rate 1000] [--seconds 10] [--protocol http1]`: one sidecar hop
// under open-loop load with the sidecar run under `node --cpu-prof`, then the top self-time functions and
// files from the .cpuprofile, to see where the sidecar's time goes. Writes bench/results/profile-<date>.md.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { type Protocol, runAtRate, runSaturation } from "./loadgen.js";
import { NAMESPACE, SERVER_SERVICE, startControlPlane, startSidecar } from "./mesh.js";
import { cpuSeconds, formatResultFiles, startChild, stopAllChildren } from "./procs.js";
import { GRPC_METHOD, PAYLOAD_BYTES } from "./server.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const repo = fileURLToPath(new URL("..", import.meta.url));

function where(url: string): string {
  if (!url) return "";
  const path = url.startsWith("file://") ? fileURLToPath(url) : url;
  return path.startsWith(repo) ? relative(repo, path) : path;
}

/** Self time by function and by file, in ms and as a share of the non-idle time. */
export function summarizeProfile(p: CpuProfile, top = 25): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const name = n.callFrame.functionName || "(anonymous)";
    if (name === "(idle)") {
      idle += us;
      continue;
    }
    total += us;
    const w = where(n.callFrame.url);
    const key = w ? `${name} — ${w}:${n.callFrame.lineNumber + 1}` : name;
    fn.set(key, (fn.get(key) ?? 0) + us);
    const f = w
      ? w.replace(/^node:internal\/.*$/, (m) => m.split("/").slice(0, 3).join("/"))
      : `${name} (native/VM)`;
    file.set(f, (file.get(f) ?? 0) + us);
  }
  const rows = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `| ${(us / 1000).toFixed(0)} | ${((100 * us) / total).toFixed(1)}% | \`${k}\` |`);
  return [
    `Profile: ${((p.endTime - p.startTime) / 1e6).toFixed(1)} s wall, ${(total / 1e6).toFixed(2)} s on CPU (not idle), ${(idle / 1e6).toFixed(2)} s idle.`,
    "",
    "### Top self time by function",
    "",
    "| ms | share | function — where |",
    "|---|---|---|",
    ...rows(fn),
    "",
    "### Self time by file",
    "",
    "| ms | share | file |",
    "|---|---|---|",
    ...rows(file),
    "",
  ].join("\n");
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string, def: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? (argv[i + 1] ?? def) : def;
  };
  const rate = Number(opt("rate", "1000"));
  const seconds = Number(opt("seconds", "10"));
  const protocol = opt("protocol", "http1") as Protocol;
  const saturate = argv.includes("--saturate");
  const profDir = mkdtempSync(join(tmpdir(), "skein-prof-"));
  const here = fileURLToPath(new URL(".", import.meta.url));
  try {
    const origin = startChild("origin", process.execPath, ["--import", "tsx", join(here, "server.ts")]);
    const ports = JSON.parse(await origin.firstLine(20_000)) as { http1: number; h2c: number; grpc: number };
    const cp = await startControlPlane({ "mesh.yaml": SERVER_SERVICE });
    const sidecar = await startSidecar({
      name: "bench-server",
      address: "127.0.20.2",
      xds: cp.xds,
      labels: { app: "bench-server" },
      ports: { http: 8080, http2: 8081, grpc: 9090 },
      appPorts: { http: ports.http1, http2: ports.h2c, grpc: ports.grpc },
      nodeArgs: ["--cpu-prof", "--cpu-prof-dir", profDir],
    });
    const port = { http1: 8080, h2c: 8081, grpc: 9090 }[protocol];
    const t = {
      protocol,
      host: "127.0.20.2",
      port,
      authority: `bench-server.${NAMESPACE}:${port}`,
      path: protocol === "grpc" ? GRPC_METHOD : "/bench",
      payload: Buffer.alloc(PAYLOAD_BYTES, "q"),
      connections: protocol === "http1" ? 16 : 2,
    };
    const cpu0 = cpuSeconds(sidecar.pid) ?? 0;
    const r = saturate
      ? await runSaturation(t, { concurrency: 32, durationMs: seconds * 1000, warmupMs: 1000 })
      : await runAtRate(t, { rate, durationMs: seconds * 1000, warmupMs: 1000 });
    const cpu = (cpuSeconds(sidecar.pid) ?? 0) - cpu0;
    // SIGTERM: the sidecar drains and exits normally, which is when Node writes the profile.
    await sidecar.stop(10_000);
    const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
    if (!file) throw new Error(`no .cpuprofile in ${profDir}: ${sidecar.stderr}`);
    const profile = JSON.parse(readFileSync(join(profDir, file), "utf8")) as CpuProfile;
    const head = `# Sidecar CPU profile, ${new Date().toISOString().slice(0, 10)}\n\nOne sidecar hop, ${protocol}, ${saturate ? "saturation (32 in flight)" : `${rate} rps open loop`}, ${seconds} s measured: ${r.completed} requests, ${r.errors} errors, p50 ${(r.latencyUs.p50 / 1000).toFixed(2)} ms, p99 ${(r.latencyUs.p99 / 1000).toFixed(2)} ms; the sidecar used ${cpu.toFixed(2)} CPU s (${((1000 * cpu) / Math.max(1, r.completed)).toFixed(3)} s per 1000 requests) with the profiler on.\n\n`;
    const md = head + summarizeProfile(profile);
    const out = join(here, "results");
    mkdirSync(out, { recursive: true });
    const name = join(
      out,
      `profile-${new Date().toISOString().slice(0, 10)}-${protocol}${saturate ? "-saturation" : ""}.md`,
    );
    writeFileSync(name, md);
    formatResultFiles([name]);
    process.stdout.write(`${md}\nwrote ${name}\n(raw profile: ${join(profDir, file)})\n`);
  } finally {
    await stopAllChildren();
  }
}

if (import.meta.url === `file://${process.argv[1]}`)
  main().then(
    () => process.exit(0),
    async (err) => {
      process.stderr.write(`profile failed: ${(err as Error).stack ?? err}\n`);
      await stopAllChildren();
      process.exit(1);
    },
  );
