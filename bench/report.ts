// Turns one benchmark run's JSON into the Markdown tables of bench/results/<date>.md and bench/README.md.
import type { AckResult, MemoryStep } from "./control-plane.js";
import type { Protocol, RunResult } from "./loadgen.js";

export interface ProcessCost {
  name: string;
  /** CPU seconds this process spent per 1000 completed requests in the measured window. */
  cpuSecondsPer1000: number;
}

export interface ScenarioRun {
  scenario: string;
  /** The plaintext scenario this one is compared with in the "against plaintext" table (the mTLS row). */
  baseline?: string;
  hops: number;
  protocol: Protocol;
  /** "rate" runs come from bench/loadgen.ts; "saturation" from wrk, h2load or bench/loadgen.ts. */
  mode: "rate" | "saturation";
  tool: string;
  rate?: number;
  result: Pick<RunResult, "completed" | "errors" | "achievedRps" | "durationS"> &
    Partial<Pick<RunResult, "latencyUs" | "errorKinds" | "maxSendLagUs" | "scheduled" | "histogram">>;
  processes: ProcessCost[];
}

export interface SidecarMemory {
  name: string;
  restRssMiB: number;
  /** VmHWM at the end of the data-plane runs: the peak resident size under load. */
  peakRssMiB: number;
  /** The largest VmRSS sampled (every 200 ms) while load ran. */
  maxSampledRssMiB: number;
}

export interface BenchResults {
  date: string;
  mode: "full" | "quick";
  machine: { cores: number; cpu: string; memoryGiB: number; kernel: string; node: string };
  tools: Record<string, string>;
  durationS: number;
  runs: ScenarioRun[];
  memory: SidecarMemory[];
  controlPlane: { ack: AckResult[]; growth: MemoryStep[] };
  notRun: { what: string; why: string }[];
  notes: string[];
}

const ms = (us: number | undefined) => (us === undefined ? "–" : (us / 1000).toFixed(2));
const plus = (us: number) => `${us >= 0 ? "+" : "−"}${(Math.abs(us) / 1000).toFixed(2)}`;

const cpuSum = (x: ScenarioRun) => x.processes.reduce((a, p) => a + p.cpuSecondsPer1000, 0);

/**
 * Rows that name a baseline (mTLS against the same path in plaintext): what the difference alone costs, at each
 * fixed rate (latency percentiles, CPU of all its proxies together) and at saturation (throughput).
 */
function againstBaseline(runs: ScenarioRun[]): string[] {
  const pairs = runs.flatMap((x) => {
    const b = x.baseline
      ? runs.find(
          (y) =>
            y.scenario === x.baseline && y.protocol === x.protocol && y.mode === x.mode && y.rate === x.rate,
        )
      : undefined;
    return b ? [{ x, b }] : [];
  });
  if (pairs.length === 0) return [];
  const out = ["", "## mTLS against plaintext, same path", ""];
  out.push(
    "Each row against its plaintext counterpart in the same run. “vs plaintext” is the row's value minus the " +
      "plaintext row's (latency, ms) or their ratio (CPU, summed over the row's proxy processes; throughput).",
  );
  out.push("");
  out.push(
    "| scenario | vs | protocol | load | p50 vs plaintext | p99 vs plaintext | CPU s / 1000 req, all proxies: plaintext → mTLS | CPU ratio | rps plaintext → mTLS | errors |",
  );
  out.push("|---|---|---|---|---|---|---|---|---|---|");
  for (const { x, b } of pairs) {
    const l = x.result.latencyUs;
    const bl = b.result.latencyUs;
    const d = (p: "p50" | "p99") => (l && bl ? plus(l[p] - bl[p]) : "–");
    const [cx, cb] = [cpuSum(x), cpuSum(b)];
    out.push(
      `| ${x.scenario} | ${b.scenario} | ${x.protocol} | ${x.mode === "rate" ? `${x.rate} rps` : x.tool} | ${d("p50")} | ${d("p99")} | ${cb.toFixed(3)} → ${cx.toFixed(3)} | ${cb > 0 ? `×${(cx / cb).toFixed(2)}` : "–"} | ${b.result.achievedRps} → ${x.result.achievedRps} | ${x.result.errors} |`,
    );
  }
  return out;
}

export function markdown(r: BenchResults): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`# Skein benchmark, ${r.date} (${r.mode})`);
  out.push("");
  out.push(
    `Machine: ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Linux ${m.kernel}, Node.js ${m.node}. ` +
      `Everything (load generator, origin server, proxies, control plane) shares these ${m.cores} cores. ` +
      `Run took ${Math.round(r.durationS)} s.`,
  );
  if (Object.keys(r.tools).length)
    out.push(
      "",
      `Tools: ${Object.entries(r.tools)
        .map(([k, v]) => `${k} (${v})`)
        .join(", ")}.`,
    );
  out.push("");

  // Fixed-rate runs, grouped by protocol and rate, each row against direct at the same protocol and rate.
  const rateRuns = r.runs.filter((x) => x.mode === "rate");
  const groups = new Map<string, ScenarioRun[]>();
  for (const x of rateRuns) {
    const k = `${x.protocol} @ ${x.rate} rps`;
    groups.set(k, [...(groups.get(k) ?? []), x]);
  }
  out.push("## Latency at fixed rates (open loop, 1 KiB request and response)");
  out.push("");
  out.push(
    "Latency is measured from each request's intended send time (no coordinated omission); “added” is the " +
      "scenario's percentile minus direct's at the same protocol and rate. Milliseconds. CPU is seconds of " +
      "user+system CPU per 1000 requests for each proxy process, from /proc/<pid>/stat.",
  );
  for (const [k, list] of groups) {
    const direct = list.find((x) => x.scenario === "direct")?.result.latencyUs;
    out.push("", `### ${k}`, "");
    out.push(
      "| scenario | hops | achieved rps | p50 | p90 | p99 | p99.9 | added p50 | added p90 | added p99 | added p99.9 | CPU s / 1000 req per proxy | errors |",
    );
    out.push("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (const x of list) {
      const l = x.result.latencyUs;
      const add = (p: "p50" | "p90" | "p99" | "p999") =>
        x.scenario === "direct" || !direct || !l ? "–" : plus(l[p] - direct[p]);
      const cpu = x.processes.length
        ? x.processes.map((p) => `${p.name} ${p.cpuSecondsPer1000.toFixed(3)}`).join("; ")
        : "–";
      out.push(
        `| ${x.scenario} | ${x.hops} | ${x.result.achievedRps} | ${ms(l?.p50)} | ${ms(l?.p90)} | ${ms(l?.p99)} | ${ms(l?.p999)} | ${add("p50")} | ${add("p90")} | ${add("p99")} | ${add("p999")} | ${cpu} | ${x.result.errors} |`,
      );
    }
  }

  out.push(...againstBaseline(r.runs));

  const sat = r.runs.filter((x) => x.mode === "saturation");
  if (sat.length) {
    out.push("", "## Maximum throughput (saturation, closed loop)", "");
    out.push(
      "| protocol | scenario | hops | tool | max rps | vs direct | CPU s / 1000 req per proxy | errors |",
    );
    out.push("|---|---|---|---|---|---|---|---|");
    for (const x of sat) {
      const d = sat.find((y) => y.protocol === x.protocol && y.scenario === "direct")?.result.achievedRps;
      const cpu = x.processes.length
        ? x.processes.map((p) => `${p.name} ${p.cpuSecondsPer1000.toFixed(3)}`).join("; ")
        : "–";
      out.push(
        `| ${x.protocol} | ${x.scenario} | ${x.hops} | ${x.tool} | ${x.result.achievedRps} | ${d ? `${Math.round((100 * x.result.achievedRps) / d)}%` : "–"} | ${cpu} | ${x.result.errors} |`,
      );
    }
  }

  if (r.memory.length) {
    out.push("", "## Sidecar memory (data-plane run)", "");
    out.push("| process | RSS at rest (MiB) | peak RSS, VmHWM (MiB) | max sampled RSS under load (MiB) |");
    out.push("|---|---|---|---|");
    for (const x of r.memory)
      out.push(`| ${x.name} | ${x.restRssMiB} | ${x.peakRssMiB} | ${x.maxSampledRssMiB} |`);
  }

  if (r.controlPlane.ack.length) {
    out.push("", "## Control plane: config change → every proxy ACKed", "");
    out.push(
      "A VirtualService edit written to the watched directory; time until the last simulated proxy received " +
        "(and at once ACKed) the new routes. Includes the file watch and the 100 ms push debounce.",
    );
    out.push("");
    out.push(
      "| proxies | services | changes | all ACKed p50 (ms) | all ACKed p99 (ms) | per-proxy p50 (ms) | per-proxy p99 (ms) | connect all (ms) | control-plane RSS / peak (MiB) | control-plane CPU s for the changes |",
    );
    out.push("|---|---|---|---|---|---|---|---|---|---|");
    for (const a of r.controlPlane.ack)
      out.push(
        `| ${a.proxies} | ${a.services} | ${a.allAckedMs.length}${a.timeouts ? ` (+${a.timeouts} timed out)` : ""} | ${a.allAckedP50Ms} | ${a.allAckedP99Ms} | ${a.perProxyP50Ms} | ${a.perProxyP99Ms} | ${a.connectMs} | ${a.controlPlaneRssMiB} / ${a.controlPlanePeakRssMiB} | ${a.controlPlaneCpuS} |`,
      );
  }
  if (r.controlPlane.growth.length) {
    out.push("", "## Memory as the mesh grows", "");
    out.push(
      "Each service has one workload. The sidecars call nothing; the scoped one has an Istio Sidecar resource " +
        "limiting its egress to one service. RSS read 1.5 s after the sidecar ACKed its config.",
    );
    out.push("");
    out.push(
      "| services | control-plane RSS (MiB) | sidecar RSS / peak (MiB) | sidecar clusters | scoped sidecar RSS / peak (MiB) | scoped clusters |",
    );
    out.push("|---|---|---|---|---|---|");
    for (const g of r.controlPlane.growth)
      out.push(
        `| ${g.services} | ${g.controlPlaneRssMiB} | ${g.sidecarRssMiB} / ${g.sidecarPeakRssMiB} | ${g.sidecarClusters} | ${g.scopedSidecarRssMiB} / ${g.scopedSidecarPeakRssMiB} | ${g.scopedSidecarClusters} |`,
      );
  }

  if (r.notRun.length) {
    out.push("", "## Not run", "");
    for (const n of r.notRun) out.push(`- **${n.what}**: ${n.why}`);
  }
  if (r.notes.length) {
    out.push("", "## Notes", "");
    for (const n of r.notes) out.push(`- ${n}`);
  }
  out.push("");
  return out.join("\n");
}
