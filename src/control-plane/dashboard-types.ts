// The JSON the dashboard's endpoints answer with (/api/v1/graph, /api/v1/services): one contract shared by
// the control plane (src/control-plane/dashboard.ts) and the browser app (src/dashboard). Types only, no
// imports, so both the Node and the DOM type-checks can read it.

/** A workload version: every instance of app `app` at version `version` in `namespace`. */
export interface GraphNode {
  /** `<namespace>/<app>/<version>`, or `unknown` for callers outside the mesh. */
  id: string;
  namespace: string;
  app: string;
  version: string;
  /** The mesh service these workloads back (short name), when known. */
  service?: string;
  /** Workload names seen for this node (registry instance names and/or the metrics' workload label). */
  workloads: string[];
  /** Running instances the registry knows (0: seen in telemetry only). */
  instances: number;
}

/** Traffic from one node to another over the last scrape window. */
export interface GraphEdge {
  /** `<source id>-><target id>`. */
  id: string;
  source: string;
  target: string;
  /** Requests per second. */
  rps: number;
  /** Share of responses that were 5xx, in [0, 1]. */
  errorRate: number;
  /** 99th percentile request duration in milliseconds, from histogram buckets; null without samples. */
  p99Ms: number | null;
  /** Share of the requests that arrived over mutual TLS, in [0, 1]. */
  mtlsShare: number;
  /** Drawn with a lock: all of the edge's traffic was mutual TLS. */
  mtls: boolean;
  /** Which side's sidecar reported it: Istio's `reporter` label. */
  reporter: "destination" | "source";
}

export interface ScrapeHealth {
  /** Sidecars scraped (each at `<address>:15020/stats/prometheus`). */
  targets: number;
  /** Of those, how many answered the last scrape. */
  ok: number;
  /** Per failing target: why. */
  failures: { target: string; error: string }[];
  /** When the last scrape round finished (ISO time), if one has. */
  lastAt?: string;
  intervalMs: number;
}

export interface GraphResponse {
  generatedAt: string;
  nodes: GraphNode[];
  edges: GraphEdge[];
  scrape: ScrapeHealth;
}

/** One destination of a route with its configured weight, as a percentage of the route's traffic. */
export interface SplitEntry {
  /** The subset (Istio DestinationRule subset) when the route names one. */
  subset?: string;
  /** The version label the subset selects, when it selects one. */
  version?: string;
  host: string;
  percent: number;
}

export interface RouteSummary {
  /** The route's name, when it has one. */
  name?: string;
  /** The match, in words (`headers x-canary exact "true"`); `any request` for a catch-all. */
  match: string;
  destinations: SplitEntry[];
}

/** Recent 5xx responses the sidecars counted. */
export interface ErrorEvent {
  at: string;
  source: string;
  destination: string;
  responseCode: string;
  /** Envoy response flags (UF, URX, FI, …) when the proxy produced the error itself. */
  responseFlags?: string;
  count: number;
  reporter: "destination" | "source";
}

export interface ServiceDetail {
  namespace: string;
  name: string;
  hostname: string;
  /** Versions of the service's workloads (registry and telemetry). */
  versions: string[];
  /** The VirtualService (or App Mesh route) that routes to it, as `<namespace>/<name>`. */
  routeTable?: string;
  routes: RouteSummary[];
  /** The catch-all route's weights (or the last route's): what the canary split is set to. */
  configuredSplit: SplitEntry[];
  /** Requests per second into each version over the last window, and its share. */
  observedSplit: { version: string; rps: number; percent: number }[];
  /** Requests per second into the service, error rate and p99 over the last window. */
  rps: number;
  errorRate: number;
  p99Ms: number | null;
  recentErrors: ErrorEvent[];
}

export interface ServicesResponse {
  generatedAt: string;
  services: ServiceDetail[];
}
