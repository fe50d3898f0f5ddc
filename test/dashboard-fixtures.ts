// Istio standard metrics as a sidecar's :15020/stats/prometheus shows them, built from a compact
// description, for the dashboard's telemetry and graph tests. Label names are Istio's.

/** One side of a request as the metrics name it. */
export interface Peer {
  ns: string;
  workload: string;
  version: string;
  app?: string;
}

export interface SeriesSpec {
  reporter: "source" | "destination";
  src: Peer;
  dst: Peer;
  service: string;
  /** destination_service_namespace; default: the destination's namespace. */
  serviceNs?: string;
  code?: string;
  flags?: string;
  mtls?: boolean;
  /** istio_requests_total. */
  count: number;
  /** Cumulative bucket counts by upper bound (ms); +Inf is `count`. */
  buckets?: Record<number, number>;
}

/** The request-duration histogram's bucket bounds Istio uses (ms). */
export const ISTIO_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

function labelText(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`)
    .join(",");
}

export function istioLabels(s: SeriesSpec): Record<string, string> {
  return {
    reporter: s.reporter,
    source_workload: s.src.workload,
    source_workload_namespace: s.src.ns,
    source_version: s.src.version,
    ...(s.src.app ? { source_canonical_service: s.src.app } : {}),
    destination_workload: s.dst.workload,
    destination_workload_namespace: s.dst.ns,
    destination_version: s.dst.version,
    ...(s.dst.app ? { destination_canonical_service: s.dst.app } : {}),
    destination_service_name: s.service,
    destination_service_namespace: s.serviceNs ?? s.dst.ns,
    response_code: s.code ?? "200",
    response_flags: s.flags ?? "-",
    connection_security_policy: s.mtls ? "mutual_tls" : s.reporter === "source" ? "unknown" : "none",
    request_protocol: "http",
  };
}

/** The exposition text for several series, with HELP/TYPE lines and a few unrelated metrics around. */
export function metricsText(series: readonly SeriesSpec[]): string {
  const lines = ["# HELP istio_requests_total Total requests.", "# TYPE istio_requests_total counter"];
  for (const s of series) lines.push(`istio_requests_total{${labelText(istioLabels(s))}} ${s.count}`);
  lines.push("# TYPE istio_request_duration_milliseconds histogram");
  for (const s of series) {
    if (!s.buckets) continue;
    const l = istioLabels(s);
    for (const le of ISTIO_BUCKETS)
      lines.push(
        `istio_request_duration_milliseconds_bucket{${labelText({ ...l, le: String(le) })}} ${s.buckets[le] ?? 0}`,
      );
    lines.push(`istio_request_duration_milliseconds_bucket{${labelText({ ...l, le: "+Inf" })}} ${s.count}`);
    lines.push(`istio_request_duration_milliseconds_sum{${labelText(l)}} ${s.count * 10}`);
    lines.push(`istio_request_duration_milliseconds_count{${labelText(l)}} ${s.count}`);
  }
  lines.push("# TYPE envoy_server_uptime gauge", "envoy_server_uptime 42", "");
  return lines.join("\n");
}

/** Cumulative buckets with every observation at or under `ms` (the ones below get none). */
export function allUnder(ms: number, count: number): Record<number, number> {
  return Object.fromEntries(ISTIO_BUCKETS.map((le) => [le, le >= ms ? count : 0]));
}
