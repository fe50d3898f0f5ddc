// The sidecar's runtime configuration: what xDS resources become once validated and compiled. The data
// path reads only these plain structures (a route table per listener, a balancer per cluster); it never
// interprets Envoy protos per request. Durations are milliseconds; percentages are numbers in [0, 100].
import type { PathNormalization } from "../router/normalize.js";
import type { AccessLogConfig } from "./access-log.js";
import type { JwtAuthnConfig } from "./jwt.js";
import type { NetworkRbacConfig, RbacFilterConfig } from "./rbac-types.js";
import type { TracingConfig } from "./tracing.js";

// ── Matching ──────────────────────────────────────────────────────────────────────────────────────────

/**
 * A compiled string matcher (Envoy StringMatcher). With ignoreCase, `value` is already lower-cased: compare it
 * with the lower-cased input. A regex is anchored: it must match the whole input (Envoy's RE2 FullMatch).
 */
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

/** As StringMatcher: when not caseSensitive, `value` is already lower-cased; a regex matches the whole path. */
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
  /** `path.replace(regex, substitution)`: the regex has the g flag, the substitution is in JavaScript's form ($1, $$). */
  regexRewrite?: { regex: RegExp; substitution: string };
  hostRewrite?: string;
  hashPolicies: HashPolicy[];
  mirrors: MirrorPolicy[];
  /** Envoy's max_stream_duration.grpc_timeout_header_max: honour grpc-timeout up to this (0: no cap). */
  grpcTimeoutHeaderMaxMs?: number;
  /** max_stream_duration.max_stream_duration: the whole exchange, response body included, ends after this (0: none). */
  maxStreamDurationMs?: number;
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
  /**
   * typed_per_filter_config, decoded and compiled per filter name (the name the HTTP filter has in the connection
   * manager): a FaultConfig, CorsConfig or LocalRateLimitConfig, tagged by `kind`.
   */
  filterConfig: Map<string, unknown>;
}

export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
  requestHeaders: HeaderMutation;
  responseHeaders: HeaderMutation;
  /** The virtual host's typed_per_filter_config over the RouteConfiguration's (routes override both). */
  filterConfig: Map<string, unknown>;
}

/** A RouteConfiguration with its domains indexed the way Envoy searches them. */
export interface RouteTable {
  name: string;
  virtualHosts: VirtualHost[];
  /** Exact domain (lower-case, with and without port as written) → virtual host. */
  exact: Map<string, VirtualHost>;
  /** `*.suffix` and `prefix*` domains (stored without the `*`, lower-case), longest first, then the `*` catch-all. */
  suffixes: { suffix: string; host: VirtualHost }[];
  prefixes: { prefix: string; host: VirtualHost }[];
  catchAll?: VirtualHost;
  requestHeaders: HeaderMutation;
  responseHeaders: HeaderMutation;
}

// ── Listeners ────────────────────────────────────────────────────────────────────────────────────────

/** An HTTP filter in the chain, with its listener-level config (compiled). Router is always last. */
export interface HttpFilter {
  /**
   * The name the connection manager gives the filter (usually the Envoy name, e.g. envoy.filters.http.fault):
   * the key of per-route filterConfig. What the filter is comes from `config.kind`.
   */
  name: string;
  /** A RouterConfig, FaultConfig or CorsFilterConfig (HttpFilterConfig), tagged by `kind`. */
  config: unknown;
}

// ── HTTP filter configs (listener level and per route) ──────────────────────────────────────────────

export interface RouterConfig {
  kind: "router";
  /** Do not add x-envoy-* response headers (x-envoy-upstream-service-time, ...). */
  suppressEnvoyHeaders: boolean;
}

/**
 * Envoy's HTTPFault. A per-route FaultConfig replaces the filter's own for that route. Percentages are of
 * requests (0–100); an unset percentage is 0, as in Envoy.
 */
export interface FaultConfig {
  kind: "fault";
  /**
   * fixedDelayMs, or the delay from the x-envoy-fault-delay-request header (header_delay). Header-controlled
   * faults keep their percentage's denominator: x-envoy-fault-*-percentage headers are numerators over it.
   */
  delay?: { fixedDelayMs?: number; fromHeader: boolean; percentage: number; denominator?: number };
  /** httpStatus or grpcStatus, or the status from x-envoy-fault-abort(-grpc)-request (header_abort). */
  abort?: {
    httpStatus?: number;
    grpcStatus?: number;
    fromHeader: boolean;
    percentage: number;
    denominator?: number;
  };
  /** Faults only for requests matching all of these. */
  headers: HeaderMatcher[];
  /** Faults only when x-envoy-downstream-service-cluster is one of these (empty: any). */
  downstreamNodes: string[];
  /** Faults only for requests routed to this cluster. */
  upstreamCluster?: string;
  /** At most this many faulted requests at once; absent: unlimited. */
  maxActiveFaults?: number;
}

/** Envoy's CorsPolicy (per route or virtual host); the cors filter itself has no settings. */
export interface CorsConfig {
  kind: "cors";
  allowOrigins: StringMatcher[];
  /** Header values as configured (comma-separated lists), absent when not set. */
  allowMethods?: string;
  allowHeaders?: string;
  exposeHeaders?: string;
  /** Seconds, as the Access-Control-Max-Age value. */
  maxAge?: string;
  allowCredentials: boolean;
  allowPrivateNetworkAccess: boolean;
  /** Pass preflights whose origin does not match on to the upstream (Envoy default true). */
  forwardNotMatchingPreflights: boolean;
  /** filter_enabled as a probability in [0, 1] (default 1). */
  enabled: number;
}

/** The filter-level config of the cors filter (its policies live on routes and virtual hosts). */
export interface CorsFilterConfig {
  kind: "cors-filter";
}

/**
 * Envoy's LocalRateLimit, as the filter's config (usually without a bucket: limiting nothing) or a per-route
 * override (with the route's own bucket, which replaces the filter's).
 */
export interface LocalRateLimitConfig {
  kind: "local-ratelimit";
  statPrefix: string;
  /** Starts full; every fillIntervalMs, tokensPerFill come back, up to maxTokens. Absent: no limit. */
  tokenBucket?: { maxTokens: number; tokensPerFill: number; fillIntervalMs: number };
  /** filter_enabled and filter_enforced as probabilities in [0, 1] (Envoy's default when unset: 0, off). */
  enabled: number;
  enforced: number;
  /** The status of a limited response (default 429). */
  status: number;
  /** enable_x_ratelimit_headers DRAFT_VERSION_03: x-ratelimit-limit, -remaining and -reset on responses. */
  xRateLimitHeaders: boolean;
  /** Limited gRPC requests get RESOURCE_EXHAUSTED instead of UNAVAILABLE. */
  grpcResourceExhausted: boolean;
}

/**
 * Istio's peer-metadata filter (io.istio.http.peer_metadata.Config, sent as a TypedStruct), with the
 * istio_headers methods only: which side's metadata to read from headers and which to send.
 */
export interface PeerMetadataConfig {
  kind: "peer-metadata";
  /** Read the caller's metadata from the request (inbound). */
  downstreamDiscovery: boolean;
  /** Read the answering workload's metadata from the response (outbound). */
  upstreamDiscovery: boolean;
  /** Send this workload's metadata on the response (inbound). */
  downstreamPropagation: boolean;
  /** Send this workload's metadata on the request (outbound). */
  upstreamPropagation: boolean;
}

export type HttpFilterConfig =
  | RouterConfig
  | FaultConfig
  | CorsFilterConfig
  | LocalRateLimitConfig
  | PeerMetadataConfig
  | JwtAuthnConfig
  | RbacFilterConfig;

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
  /** Access logs written when a request is over; absent: none, and nothing is done per request. */
  accessLog?: AccessLogConfig[];
  /** The HCM's tracing (spans, sampling, propagation); absent when it does not trace. */
  tracing?: TracingConfig;
  /** normalize_path, merge_slashes, path_with_escaped_slashes_action; absent: the path is left as received. */
  pathNormalization?: PathNormalization;
}

export interface TcpListenerConfig {
  kind: "tcp";
  statPrefix: string;
  clusters: { name: string; weight: number }[];
  idleTimeoutMs: number;
  /** Access logs written when a connection is over; absent: none. */
  accessLog?: AccessLogConfig[];
  /** Network RBAC filters before tcp_proxy, in chain order; absent: none. */
  rbac?: NetworkRbacConfig[];
}

// ── TLS ──────────────────────────────────────────────────────────────────────────────────────────────

/** Where a certificate and key (or a trust bundle) come from: the secret manager by SDS name, or the config. */
export type CertificateSource =
  | { kind: "sds"; name: string }
  | { kind: "inline"; chain: string; key: string };
export type TrustSource = { kind: "sds"; name: string } | { kind: "inline"; pem: string };

/** A peer SAN check: `type` any (match_subject_alt_names: URI and DNS SANs alike), URI or DNS. */
export interface SanMatcher {
  type: "any" | "URI" | "DNS";
  match: StringMatcher;
}

/** A compiled CommonTlsContext (plus the side-specific fields of Downstream/UpstreamTlsContext). */
export interface TlsContext {
  /** What this side presents; absent: no certificate (an upstream SIMPLE client). */
  certificate?: CertificateSource;
  /** What the peer's chain must verify against; absent: the peer is not verified (Envoy without a validation context). */
  trust?: TrustSource;
  /** The peer certificate must have a SAN matching one of these (empty: any verified peer). */
  sans: SanMatcher[];
  alpn: string[];
  minVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
  maxVersion?: "TLSv1" | "TLSv1.1" | "TLSv1.2" | "TLSv1.3";
  /** Downstream: the client must present a certificate (require_client_certificate). */
  requireClientCertificate?: boolean;
  /** Upstream: the SNI to send. */
  sni?: string;
}

/** What a connection of one detected transport protocol gets on a listener. */
export type ChainTransport = { kind: "plaintext" } | { kind: "tls"; context: TlsContext } | { kind: "none" };

/**
 * A listener's transport handling, from its filter chains' transport_protocol matches and transport sockets.
 * With `inspect` (the tls_inspector listener filter) the first bytes tell TLS (0x16 0x03) from raw_buffer;
 * without it every connection counts as raw_buffer, as in Envoy. `none`: no chain matches, the connection closes.
 */
export interface ListenerTransport {
  inspect: boolean;
  tls: ChainTransport;
  rawBuffer: ChainTransport;
}

export interface Listener {
  name: string;
  address: string;
  port: number;
  direction: "inbound" | "outbound" | "unspecified";
  /** False for listeners reached only by hand-off (bind_to_port: false). */
  bind: boolean;
  /** Hand connections redirected here (iptables) to the listener of their original destination. */
  useOriginalDst?: boolean;
  config: HttpListenerConfig | TcpListenerConfig;
  /** Absent: every connection is plaintext to the one chain (no TLS, no inspection). */
  transport?: ListenerTransport;
}

// ── Clusters and endpoints ───────────────────────────────────────────────────────────────────────────

/** For ORIGINAL_DST clusters (Envoy's CLUSTER_PROVIDED) the policy is unused: the host is the original destination. */
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
  /** Count local failures (connect errors, timeouts) apart from upstream 5xx (consecutiveLocalOriginFailure). */
  splitExternalLocalOriginErrors?: boolean;
  enforcingConsecutiveLocalOriginFailure?: number;
  /** Cap on the ejection time, which grows with each ejection (Envoy default 300 s). */
  maxEjectionTimeMs?: number;
  /** Set (to false) only when a passing active health check must not return an ejected host (default true). */
  successfulActiveHealthCheckUnejectHost?: boolean;
}

/** An active health check (Envoy HealthCheck). */
export interface HealthCheck {
  kind: "http" | "tcp" | "grpc";
  timeoutMs: number;
  intervalMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  /** Check this port instead of the endpoint's (alt_port). */
  port?: number;
  /** transport_socket_match_criteria: matched against the cluster's transport socket matches instead of the
   * endpoint's metadata (no match: the cluster's transport socket). Absent: the host's own transport. */
  transportSocketMatch?: Readonly<Record<string, unknown>>;
  /** http: the request path and Host; http2: check over HTTP/2 (h2c, or h2 over the host's TLS). */
  path?: string;
  host?: string;
  http2?: boolean;
  /** http: statuses that count as healthy, as [start, end) ranges (default [[200, 300)]). */
  expectedStatuses?: [number, number][];
  /** grpc: the service name asked of grpc.health.v1.Health. */
  serviceName?: string;
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
  /** DNS clusters: address family to resolve (Envoy default AUTO) and how often (default 5 s). */
  dnsLookupFamily?: "AUTO" | "V4_ONLY" | "V6_ONLY" | "V4_PREFERRED" | "ALL";
  dnsRefreshRateMs?: number;
  /** Speak HTTP/2 (h2c) upstream. */
  http2: boolean;
  /** Use whatever protocol the downstream request came with (Istio's useClientProtocol). */
  useDownstreamProtocol: boolean;
  /** 0: unlimited. */
  maxRequestsPerConnection: number;
  /** Idle upstream connections close after this (Envoy default 1 h); 0: never. */
  idleTimeoutMs: number;
  /** Upstream connections close after this long whatever they do; absent: never. */
  maxConnectionDurationMs?: number;
  /** HTTP/2 upstream: streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS we honour); absent: the peer's. */
  http2MaxConcurrentStreams?: number;
  /** TCP keepalive on upstream sockets; absent: the OS default (off). */
  tcpKeepalive?: { probes?: number; timeMs?: number; intervalMs?: number };
  circuitBreakers: CircuitBreakers;
  outlierDetection?: OutlierDetection;
  /** Healthy-percent below which all endpoints are used (Envoy's healthy_panic_threshold), 0–100. */
  panicThreshold: number;
  /** STATIC/DNS clusters carry their endpoints inline. */
  loadAssignment?: EndpointSet;
  healthChecks?: HealthCheck[];
  /** The cluster's transport_socket when it is TLS; absent: plaintext (unless a transport socket match says TLS). */
  tls?: TlsContext;
  /** transport_socket_matches in order: the first whose fields all equal an endpoint's metadata wins. */
  transportSocketMatches?: { name: string; match: Readonly<Record<string, unknown>>; tls?: TlsContext }[];
}

export interface Endpoint {
  address: string;
  port: number;
  weight: number;
  /** From EDS health_status: HEALTHY/UNKNOWN count as healthy. */
  healthy: boolean;
  /** `region/zone/sub_zone` ("local/a/"); "" when the endpoint has no locality. */
  locality: string;
  priority: number;
  /** The endpoint's `envoy.transport_socket_match` filter metadata (plain values), for transport socket matches. */
  transportSocketMatch?: Readonly<Record<string, unknown>>;
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
