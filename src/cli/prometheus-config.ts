// `skein prometheus-config`: a Prometheus scrape configuration for the running mesh. It asks the control
// plane for the workloads it knows and writes one job for the sidecars (every workload's address:15020,
// /stats/prometheus, with namespace/app/version/workload labels) and one for the control plane's
// :15014/metrics. ServiceMonitors (given with -f) are honoured the way the Prometheus Operator would:
// one that selects workloads (by labels and namespace) gives them its own job with its interval, path and
// relabelings; one that selects the control plane (Istio's istiod: `istio: pilot` in istio-system, as
// the seed's does) sets the control plane job's.
import { writeFile } from "node:fs/promises";
import { Command, Option } from "commander";
import { stringify } from "yaml";
import type { WorkloadInstance } from "../model/snapshot.js";
import type { RelabelConfig, ServiceMonitorEndpoint, ServiceMonitorModel } from "../model/types.js";
import { STATUS_PORT } from "../proxy/status/server.js";

export const PrometheusConfigCodes = {
  /** The control plane could not be asked for its workloads. */
  UNREACHABLE: "SKEIN_E_PROMETHEUS_CONFIG_UNREACHABLE",
  /** The ServiceMonitor files do not load (their diagnostics say why). */
  MONITORS: "SKEIN_E_PROMETHEUS_CONFIG_MONITORS",
  /** A bad option value. */
  USAGE: "SKEIN_E_PROMETHEUS_CONFIG_USAGE",
} as const;

/** The labels Istio's control plane Service carries, which ServiceMonitors for istiod select. */
export const CONTROL_PLANE_LABELS: Readonly<Record<string, string>> = { app: "istiod", istio: "pilot" };
export const CONTROL_PLANE_NAMESPACE = "istio-system";

export interface PrometheusConfigOptions {
  /** `host:port` of the control plane's metrics endpoint. */
  controlPlaneMetrics: string;
  /** Global scrape interval in ms (default 15 s, Istio's). */
  scrapeIntervalMs?: number;
  /** The sidecars' status port (default 15020). */
  statusPort?: number;
}

type Json = Record<string, unknown>;

/** A Prometheus duration for milliseconds: `15s`, `500ms`. */
export function promDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

function selects(m: ServiceMonitorModel, labels: Record<string, string>, namespace: string): boolean {
  const ns = m.namespaceSelector;
  const nsOk =
    ns.any || (ns.matchNames.length > 0 ? ns.matchNames.includes(namespace) : m.namespace === namespace);
  if (!nsOk) return false;
  for (const [k, v] of Object.entries(m.selector.matchLabels)) if (labels[k] !== v) return false;
  for (const e of m.selector.matchExpressions) {
    const v = labels[e.key];
    if (e.operator === "In" && (v === undefined || !e.values.includes(v))) return false;
    if (e.operator === "NotIn" && v !== undefined && e.values.includes(v)) return false;
    if (e.operator === "Exists" && v === undefined) return false;
    if (e.operator === "DoesNotExist" && v !== undefined) return false;
  }
  return true;
}

function relabel(r: RelabelConfig): Json {
  const out: Json = { action: r.action.toLowerCase() };
  if (r.sourceLabels.length > 0) out.source_labels = r.sourceLabels;
  if (r.separator !== undefined) out.separator = r.separator;
  if (r.targetLabel !== undefined) out.target_label = r.targetLabel;
  if (r.regex !== undefined) out.regex = r.regex;
  if (r.modulus !== undefined) out.modulus = r.modulus;
  if (r.replacement !== undefined) out.replacement = r.replacement;
  return out;
}

/** The job settings a ServiceMonitor endpoint gives (path only when it names one). */
function endpointSettings(e: ServiceMonitorEndpoint, defaultPath: string): Json {
  const out: Json = { metrics_path: e.path ?? defaultPath };
  if (e.intervalMs !== undefined) out.scrape_interval = promDuration(e.intervalMs);
  if (e.scrapeTimeoutMs !== undefined) out.scrape_timeout = promDuration(e.scrapeTimeoutMs);
  if (e.scheme) out.scheme = e.scheme;
  if (e.params) out.params = e.params;
  if (e.honorLabels !== undefined) out.honor_labels = e.honorLabels;
  if (e.honorTimestamps !== undefined) out.honor_timestamps = e.honorTimestamps;
  if (e.relabelings.length > 0) out.relabel_configs = e.relabelings.map(relabel);
  if (e.metricRelabelings.length > 0) out.metric_relabel_configs = e.metricRelabelings.map(relabel);
  return out;
}

function sidecarTarget(w: WorkloadInstance, port: number): Json {
  return {
    targets: [`${w.address}:${port}`],
    labels: {
      namespace: w.namespace,
      app: w.labels.app ?? "unknown",
      version: w.labels.version ?? "unknown",
      workload: w.name,
    },
  };
}

/**
 * The scrape configuration: pure, from the registry's workloads and the loaded ServiceMonitors. Only
 * workloads with a Skein sidecar (tlsMode istio, or registered by a proxy) have a status port to scrape.
 */
export function prometheusConfig(
  workloads: readonly WorkloadInstance[],
  monitors: readonly ServiceMonitorModel[],
  opts: PrometheusConfigOptions,
): Json {
  const port = opts.statusPort ?? STATUS_PORT;
  const sidecars = workloads
    .filter((w) => w.origin === "proxy" && w.tlsMode !== "disabled" && w.address)
    .sort((a, b) => a.id.localeCompare(b.id));
  const jobs: Json[] = [];
  const claimed = new Set<string>();
  for (const m of [...monitors].sort((a, b) =>
    `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`),
  )) {
    const picked = sidecars.filter((w) => !claimed.has(w.id) && selects(m, w.labels, w.namespace));
    if (picked.length === 0) continue;
    for (const w of picked) claimed.add(w.id);
    m.endpoints.forEach((e, i) => {
      jobs.push({
        job_name: `serviceMonitor/${m.namespace}/${m.name}/${i}`,
        ...endpointSettings(e, "/stats/prometheus"),
        static_configs: picked.map((w) => sidecarTarget(w, port)),
      });
    });
  }
  const rest = sidecars.filter((w) => !claimed.has(w.id));
  if (rest.length > 0)
    jobs.unshift({
      job_name: "skein-sidecars",
      metrics_path: "/stats/prometheus",
      static_configs: rest.map((w) => sidecarTarget(w, port)),
    });
  const cpMonitor = monitors.find((m) => selects(m, CONTROL_PLANE_LABELS, CONTROL_PLANE_NAMESPACE));
  const cpEndpoint = cpMonitor?.endpoints[0];
  jobs.push({
    job_name: "skein-control-plane",
    ...(cpEndpoint ? endpointSettings(cpEndpoint, "/metrics") : { metrics_path: "/metrics" }),
    static_configs: [{ targets: [opts.controlPlaneMetrics], labels: { ...CONTROL_PLANE_LABELS } }],
  });
  return {
    global: { scrape_interval: promDuration(opts.scrapeIntervalMs ?? 15_000) },
    scrape_configs: jobs,
  };
}

/** `skein up`'s convention: API on base+80, metrics on base+14. */
export function metricsAddressFor(controlPlaneUrl: string): string {
  const u = new URL(controlPlaneUrl);
  const apiPort = Number(u.port || (u.protocol === "https:" ? 443 : 80));
  return `${u.hostname}:${apiPort - 80 + 14}`;
}

async function loadMonitors(paths: readonly string[]): Promise<ServiceMonitorModel[]> {
  if (paths.length === 0) return [];
  const { checkPaths } = await import("../model/check.js");
  const result = await checkPaths(paths, { analyze: false });
  const errors = result.diagnostics.filter((d) => d.severity === "error");
  if (errors.length > 0 || !result.model)
    throw Object.assign(
      new Error(
        `cannot load ${paths.join(", ")}: ${errors.map((d) => d.message).join("; ") || "no model"}; run \`skein validate -f\` on them`,
      ),
      { code: PrometheusConfigCodes.MONITORS },
    );
  return result.model.serviceMonitors;
}

interface CommandOptions {
  controlPlane: string;
  controlPlaneMetrics?: string;
  filename: string[];
  output: "yaml" | "json";
  scrapeInterval: string;
  statusPort: number;
  out?: string;
}

export function prometheusConfigCommand(): Command {
  return new Command("prometheus-config")
    .description("write a Prometheus scrape configuration for the running mesh (sidecars and control plane)")
    .addOption(
      new Option("--control-plane <url>", "control plane HTTP API")
        .env("SKEIN_CONTROL_PLANE")
        .default("http://127.0.0.1:15080"),
    )
    .option("--control-plane-metrics <host:port>", "control plane metrics address (default: API port - 66)")
    .option("-f, --filename <path...>", "ServiceMonitor files or directories to honour", [])
    .addOption(new Option("-o, --output <format>", "output format").choices(["yaml", "json"]).default("yaml"))
    .option("--scrape-interval <duration>", "global scrape interval (Prometheus duration)", "15s")
    .addOption(
      new Option("--status-port <port>", "the sidecars' metrics port").argParser(Number).default(STATUS_PORT),
    )
    .option("--out <file>", "write to this file instead of stdout")
    .action(async (opts: CommandOptions) => {
      process.exitCode = await run(opts);
    });
}

async function run(opts: CommandOptions): Promise<number> {
  const fail = (code: string, message: string, exit: number) => {
    process.stderr.write(`skein prometheus-config: ${code}: ${message}\n`);
    return exit;
  };
  const { parsePrometheusDuration } = await import("../api/monitoring.js");
  const interval = parsePrometheusDuration(opts.scrapeInterval);
  if (interval === undefined || interval <= 0)
    return fail(
      PrometheusConfigCodes.USAGE,
      `--scrape-interval ${opts.scrapeInterval}: write e.g. 5s or 1m`,
      2,
    );
  let monitors: ServiceMonitorModel[];
  try {
    monitors = await loadMonitors(opts.filename);
  } catch (err) {
    return fail(PrometheusConfigCodes.MONITORS, (err as Error).message, 1);
  }
  let workloads: WorkloadInstance[];
  try {
    const res = await fetch(new URL("/debug/registry", opts.controlPlane), {
      signal: AbortSignal.timeout(5000),
    });
    if (!res.ok) throw new Error(`GET /debug/registry answered ${res.status}`);
    workloads = ((await res.json()) as { workloads: WorkloadInstance[] }).workloads;
  } catch (err) {
    return fail(
      PrometheusConfigCodes.UNREACHABLE,
      `cannot get the workloads from ${opts.controlPlane}: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`,
      3,
    );
  }
  const config = prometheusConfig(workloads, monitors, {
    controlPlaneMetrics: opts.controlPlaneMetrics ?? metricsAddressFor(opts.controlPlane),
    scrapeIntervalMs: interval,
    statusPort: opts.statusPort,
  });
  const text = opts.output === "json" ? `${JSON.stringify(config, null, 2)}\n` : stringify(config);
  if (opts.out) await writeFile(opts.out, text);
  else process.stdout.write(text);
  return 0;
}
