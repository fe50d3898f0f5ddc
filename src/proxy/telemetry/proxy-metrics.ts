// The sidecar's internals as Prometheus series with Envoy's names and tag labels, as Envoy's
// /stats/prometheus prints them (`envoy_cluster_upstream_rq_total{envoy_cluster_name="outbound|8080||…"}`,
// `envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="…"}`), so Istio's proxy dashboards find
// them. Read from the cluster manager's per-cluster numbers and the router/listener counters at scrape
// time; label values are cluster names and stat prefixes from the config, bounded by construction.
import type { Registry } from "prom-client";
import type { Stats } from "../router/stats.js";
import type { ClusterManager, ClusterStats } from "../upstream/types.js";

type Kind = "counter" | "gauge";

interface Series {
  labels: Record<string, string>;
  value: number;
}

interface Family {
  name: string;
  help: string;
  type: Kind;
  values: Series[];
}

/** Where the numbers come from. */
export interface ProxyStatsSources {
  stats: Stats;
  clusters: ClusterManager;
}

/** ClusterStats field → Envoy stat name and kind (extra labels for the response-class counters). */
const CLUSTER_FIELDS: readonly [keyof ClusterStats, string, Kind, Record<string, string>?][] = [
  ["hosts", "membership_total", "gauge"],
  ["healthyHosts", "membership_healthy", "gauge"],
  ["ejectedHosts", "outlier_detection_ejections_active", "gauge"],
  ["requestsTotal", "upstream_rq_total", "counter"],
  ["requestsActive", "upstream_rq_active", "gauge"],
  ["requestsPending", "upstream_rq_pending_active", "gauge"],
  ["responses2xx", "upstream_rq_xx", "counter", { envoy_response_code_class: "2" }],
  ["responses3xx", "upstream_rq_xx", "counter", { envoy_response_code_class: "3" }],
  ["responses4xx", "upstream_rq_xx", "counter", { envoy_response_code_class: "4" }],
  ["responses5xx", "upstream_rq_xx", "counter", { envoy_response_code_class: "5" }],
  ["connectFailuresTotal", "upstream_cx_connect_fail", "counter"],
  ["resetsTotal", "upstream_rq_rx_reset", "counter"],
  ["timeoutsTotal", "upstream_rq_timeout", "counter"],
  ["overflowsTotal", "upstream_rq_pending_overflow", "counter"],
  ["retryOverflowsTotal", "upstream_rq_retry_overflow", "counter"],
  ["retriesActive", "upstream_rq_retries_active", "gauge"],
  ["connectionsActive", "upstream_cx_active", "gauge"],
  ["connectionsTotal", "upstream_cx_total", "counter"],
  ["ejectionsTotal", "outlier_detection_ejections_total", "counter"],
];

/** Envoy's stat scopes that carry a tag: `<scope>.<tag value>.<stat>` → envoy_<scope>_<stat>{<label>=…}. */
const SCOPES: readonly [string, string][] = [
  ["cluster.", "envoy_cluster_name"],
  ["http.", "envoy_http_conn_manager_prefix"],
  ["tcp.", "envoy_tcp_prefix"],
  ["listener.", "envoy_listener_address"],
];

function metricName(raw: string): string {
  return raw.replace(/[^a-zA-Z0-9_:]/g, "_");
}

/**
 * One Envoy stat name → its Prometheus family and labels. The tag value is everything between the scope
 * and the last dot except a sub-scope (`http.<prefix>.fault.delays_injected`, `listener.<address>.ssl.*`), which stays
 * in the name as Envoy keeps it, so that prefixes with dots (addresses) survive.
 */
export function envoyStat(name: string): { family: string; labels: Record<string, string> } | undefined {
  for (const [scope, label] of SCOPES) {
    if (!name.startsWith(scope)) continue;
    const rest = name.slice(scope.length);
    let cut = rest.lastIndexOf(".");
    if (cut <= 0) return undefined;
    const sub = /\.(?:fault|ssl)\.[a-z0-9_]+$/.exec(rest);
    if (sub) cut = sub.index;
    const tag = rest.slice(0, cut);
    let stat = rest.slice(cut + 1);
    const labels: Record<string, string> = { [label]: tag };
    const cls = /^(.*_rq)_([1-5])xx$/.exec(stat);
    if (cls) {
      stat = `${cls[1]}_xx`;
      labels.envoy_response_code_class = cls[2] as string;
    }
    return { family: metricName(`envoy_${scope.slice(0, -1)}_${stat}`), labels };
  }
  // Untagged stats (the local rate limiter's `<stat_prefix>.http_local_rate_limit.*`): the whole name.
  return { family: metricName(`envoy_${name}`), labels: {} };
}

/** Registers Envoy-named families in `registry` and refreshes them before each scrape. */
export class ProxyStatsCollector {
  private families = new Map<string, Family>();
  private readonly registered = new Set<string>();

  constructor(
    private readonly registry: Registry,
    private readonly sources: ProxyStatsSources,
  ) {}

  /** Rebuilds every family from the current numbers; families that no longer exist are unregistered. */
  refresh(): void {
    const next = new Map<string, Family>();
    const seen = new Set<string>();
    const add = (family: string, type: Kind, labels: Record<string, string>, value: number) => {
      const key = `${family}\u0000${JSON.stringify(labels)}`;
      if (seen.has(key)) return;
      seen.add(key);
      let f = next.get(family);
      if (!f) {
        f = { name: family, help: `Envoy stat ${family.slice("envoy_".length)}.`, type, values: [] };
        next.set(family, f);
      }
      f.values.push({ labels, value });
    };
    const clusters = this.sources.clusters.stats?.() ?? {};
    for (const name of Object.keys(clusters).sort()) {
      const c = clusters[name] as ClusterStats;
      for (const [field, stat, type, extra] of CLUSTER_FIELDS)
        add(`envoy_cluster_${stat}`, type, { envoy_cluster_name: name, ...extra }, c[field]);
    }
    for (const [name, s] of this.sources.stats.entries()) {
      const e = envoyStat(name);
      if (e) add(e.family, s.kind, e.labels, s.value);
    }
    for (const name of this.registered) {
      if (next.has(name)) continue;
      this.registry.removeSingleMetric(name);
      this.registered.delete(name);
    }
    this.families = next;
    for (const name of next.keys()) {
      if (this.registered.has(name)) continue;
      // prom-client formats any object with a name and get(); the values are read at scrape time.
      const metric = {
        name,
        get: () => {
          const f = this.families.get(name);
          return {
            name,
            help: f?.help ?? "",
            type: f?.type ?? "gauge",
            aggregator: "sum",
            values: f?.values ?? [],
          };
        },
      };
      this.registry.registerMetric(metric as unknown as Parameters<Registry["registerMetric"]>[0]);
      this.registered.add(name);
    }
  }
}
