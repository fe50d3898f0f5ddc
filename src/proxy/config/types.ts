// The sidecar's runtime configuration: what xDS resources become once validated and compiled. The data
// path reads only these plain structures (a route table per listener, a balancer per cluster); it never
// interprets Envoy protos per request. Durations are milliseconds; percentages are numbers in [0, 100].

// ── Matching ──────────────────────────────────────────────────────────────────────────────────────────

/** A compiled string matcher (Envoy StringMatcher). */
export type StringMatcher =
  | { kind: "exact"; value: string; ignoreCase: boolean }
  | { kind: "prefix"; value: string; ignoreCase: boolean }
  | { kind: "suffix"; value: string; ignoreCase: boolean }
  | { kind: "contains"; value: string; ignoreCase: boolean }
  | { kind: "regex"; regex: RegExp };

export interface HeaderMatcher {
  /** Lower-case header name; `:method`, `:authority`, `:path`, `:scheme` are the pseudo-headers. */
  name: string;
  /** Absent: presence match. */
  match?: StringMatcher;
  /** Envoy's present_match: false means "must be absent". */
  present?: boolean;
  invert: boolean;
}

export interface QueryParameterMatcher {
  name: string;
  /** Absent: the parameter must be present. */
  match?: StringMatcher;
}

export type PathMatcher =
  | { kind: "prefix"; value: string; caseSensitive: boolean }
  | { kind: "path"; value: string; caseSensitive: boolean }
  | { kind: "regex"; regex: RegExp };

export interface RouteMatch {
  path: PathMatcher;
  headers: HeaderMatcher[];
  queryParameters: QueryParameterMatcher[];
  /** Envoy runtime_fraction, as a probability in [0, 1]; absent: always. */
  fraction?: number;
}

// ── Route actions ────────────────────────────────────────────────────────────────────────────────────

export interface HeaderMutation {
  /** Set (replace) or append, in order. */
  add: { name: string; value: string; append: boolean }[];
  remove: string[];
}

export interface WeightedCluster {
  name: string;
  weight: number;
  requestHeaders: HeaderMutation;
  responseHeaders: HeaderMutation;
}

export interface RetryPolicy {
  /** Envoy retry_on conditions: 5xx, gateway-error, reset, connect-failure, retriable-4xx, refused-stream,
   *  retriable-status-codes, reset-before-request, and the gRPC ones (cancelled, deadline-exceeded,
   *  internal, resource-exhausted, unavailable). */
  retryOn: Set<string>;
  numRetries: number;
  /** 0: none (the route timeout bounds all attempts). */
  perTryTimeoutMs: number;
  retriableStatusCodes: Set<number>;
  /** Jittered exponential back-off: base and cap (Envoy default 25 ms and 10 × base). */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Prefer an endpoint not tried before (previous_hosts predicate). */
  avoidPreviousHosts: boolean;
  hostSelectionRetryMaxAttempts: number;
}

export type HashPolicy =
  | { kind: "header"; name: string; terminal: boolean }
  | { kind: "cookie"; name: string; path?: string; ttlMs?: number; terminal: boolean }
  | { kind: "sourceIp"; terminal: boolean }
  | { kind: "queryParameter"; name: string; terminal: boolean };

export interface MirrorPolicy {
  cluster: string;
  /** Probability in [0, 1]. */
  fraction: number;
}

export interface RouteAction {
  kind: "route";
  clusters: WeightedCluster[];
  totalWeight: number;
  /** 0: no timeout. */
  timeoutMs: number;
  retry?: RetryPolicy;
  prefixRewrite?: string;
  regexRewrite?: { regex: RegExp; substitution: string };
  hostRewrite?: string;
  hashPolicies: HashPolicy[];
  mirrors: MirrorPolicy[];
  /** Envoy's max_stream_duration.grpc_timeout_header_max: honour grpc-timeout up to this (0: no cap). */
  grpcTimeoutHeaderMaxMs?: number;
}

export interface RedirectAction {
  kind: "redirect";
  scheme?: string;
  host?: string;
  port?: number;
  path?: string;
  prefixRewrite?: string;
  /** 301, 302, 303, 307, 308. */
  status: number;
  stripQuery: boolean;
}

export interface DirectResponseAction {
  kind: "direct";
  status: number;
  body?: string;
}

export interface Route {
  name: string;
  match: RouteMatch;
  action: RouteAction | RedirectAction | DirectResponseAction;
  requestHeaders: HeaderMutation;
  responseHeaders: HeaderMutation;
  /** typed_per_filter_config, decoded and compiled per filter name (e.g. the fault filter's config). */
  filterConfig: Map<string, unknown>;
}

export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
  requestHeaders: HeaderMutation;
  responseHeaders: HeaderMutation;
  filterConfig: Map<string, unknown>;
}

/** A RouteConfiguration with its domains indexed the way Envoy searches them. */
export interface RouteTable {
  name: string;
  virtualHosts: VirtualHost[];
  /** Exact domain (lower-case, with and without port as written) → virtual host. */
  exact: Map<string, VirtualHost>;
  /** `*.suffix` and `prefix*` domains, longest first, then the `*` catch-all. */
  suffixes: { suffix: string; host: VirtualHost }[];
  prefixes: { prefix: string; host: VirtualHost }[];
  catchAll?: VirtualHost;
  requestHeaders: HeaderMutation;
  responseHeaders: HeaderMutation;
}

// ── Listeners ────────────────────────────────────────────────────────────────────────────────────────

/** An HTTP filter in the chain, with its listener-level config (compiled). Router is always last. */
export interface HttpFilter {
  /** Envoy filter name, e.g. envoy.filters.http.fault, envoy.filters.http.router. */
  name: string;
  config: unknown;
}

export interface HttpListenerConfig {
  kind: "http";
  statPrefix: string;
  /** RDS: the RouteConfiguration to use (resolved at request time from the current config). */
  routeConfigName?: string;
  /** Or inline. */
  routes?: RouteTable;
  filters: HttpFilter[];
  /** Accept absolute-form request targets (HTTP_PROXY-style clients). */
  acceptAbsoluteUrls: boolean;
  /** Generate x-request-id when absent (Envoy default true). */
  generateRequestId: boolean;
  /** Idle timeout of downstream connections; 0 = none. */
  idleTimeoutMs: number;
  /** Upgrades allowed (e.g. websocket). */
  upgrades: Set<string>;
}

export interface TcpListenerConfig {
  kind: "tcp";
  statPrefix: string;
  clusters: { name: string; weight: number }[];
  idleTimeoutMs: number;
}

export interface Listener {
  name: string;
  address: string;
  port: number;
  direction: "inbound" | "outbound" | "unspecified";
  /** False for listeners reached only by hand-off (bind_to_port: false). */
  bind: boolean;
  config: HttpListenerConfig | TcpListenerConfig;
}

// ── Clusters and endpoints ───────────────────────────────────────────────────────────────────────────

export type LbPolicy = "ROUND_ROBIN" | "LEAST_REQUEST" | "RANDOM" | "RING_HASH" | "MAGLEV";

export interface CircuitBreakers {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  maxRetries: number;
}

export interface OutlierDetection {
  consecutive5xx?: number;
  consecutiveGatewayFailure?: number;
  consecutiveLocalOriginFailure?: number;
  intervalMs: number;
  baseEjectionTimeMs: number;
  maxEjectionPercent: number;
  enforcingConsecutive5xx: number;
  enforcingConsecutiveGatewayFailure: number;
}

export interface Cluster {
  name: string;
  type: "EDS" | "STATIC" | "STRICT_DNS" | "LOGICAL_DNS" | "ORIGINAL_DST";
  /** For EDS: the ClusterLoadAssignment name (eds_cluster_config.service_name, else the cluster name). */
  edsServiceName: string;
  lbPolicy: LbPolicy;
  /** RING_HASH minimum ring size / MAGLEV table size. */
  ringSize?: number;
  connectTimeoutMs: number;
  /** Speak HTTP/2 (h2c) upstream. */
  http2: boolean;
  /** Use whatever protocol the downstream request came with (Istio's useClientProtocol). */
  useDownstreamProtocol: boolean;
  maxRequestsPerConnection: number;
  idleTimeoutMs: number;
  circuitBreakers: CircuitBreakers;
  outlierDetection?: OutlierDetection;
  /** Healthy-percent below which all endpoints are used (Envoy's healthy_panic_threshold), 0–100. */
  panicThreshold: number;
  /** STATIC/DNS clusters carry their endpoints inline. */
  loadAssignment?: EndpointSet;
}

export interface Endpoint {
  address: string;
  port: number;
  weight: number;
  /** From EDS health_status: HEALTHY/UNKNOWN count as healthy. */
  healthy: boolean;
  locality: string;
  priority: number;
}

export interface EndpointSet {
  clusterName: string;
  endpoints: Endpoint[];
}

// ── The whole thing ──────────────────────────────────────────────────────────────────────────────────

export interface RuntimeConfig {
  listeners: ReadonlyMap<string, Listener>;
  routes: ReadonlyMap<string, RouteTable>;
  clusters: ReadonlyMap<string, Cluster>;
  endpoints: ReadonlyMap<string, EndpointSet>;
  /** Accepted version per type URL. */
  versions: Readonly<Record<string, string>>;
}
