// The platform-neutral mesh model: what Istio kinds, App Mesh definitions and Skein's own kinds all
// lower into, and what translation to xDS reads. Units are normalised: durations in milliseconds,
// percentages as numbers in [0, 100]. Every object keeps a SourceRef to point errors at its YAML.

import type { SourceRef } from "../api/resource.js";
import type { PathSegment } from "../api/yaml.js";

export type { SourceRef };

export type Protocol = "HTTP" | "HTTP2" | "GRPC" | "TCP" | "TLS" | "HTTPS";

export interface ServicePort {
  number: number;
  name: string;
  protocol: Protocol;
  /** Port the workloads listen on, when it differs from `number`. */
  targetPort?: number;
}

export interface StaticEndpoint {
  address: string;
  /** Port name → port number on this endpoint. */
  ports: Record<string, number>;
  labels: Record<string, string>;
  weight?: number;
  serviceAccount?: string;
  locality?: string;
}

export interface Service {
  /** Fully qualified: `order-service.production.svc.cluster.local`, or the external/App Mesh name. */
  hostname: string;
  namespace: string;
  ports: ServicePort[];
  /** Workloads in `namespace` with these labels back the service (none: endpoints are static). */
  selector?: Record<string, string>;
  location: "MESH_INTERNAL" | "MESH_EXTERNAL";
  resolution: "NONE" | "STATIC" | "DNS" | "DNS_ROUND_ROBIN";
  endpoints: StaticEndpoint[];
  exportTo: string[];
  /** Other names that refer to this service (e.g. an App Mesh virtual service name). */
  aliases: string[];
  source: SourceRef;
}

export interface Workload {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  address?: string;
  ports: ServicePort[];
  source: SourceRef;
}

// ── Routing ──────────────────────────────────────────────────────────────────────────────────────────

export interface StringMatch {
  kind: "exact" | "prefix" | "regex";
  value: string;
}

export interface HeaderMatch {
  name: string;
  /** Absent: the header must be present (any value). */
  match?: StringMatch;
  /** True for Istio's `withoutHeaders` and App Mesh `Invert`. */
  invert: boolean;
}

export interface QueryParamMatch {
  name: string;
  /** Absent: the parameter must be present. */
  match?: StringMatch;
}

export interface RequestMatch {
  name?: string;
  uri?: StringMatch;
  scheme?: StringMatch;
  method?: StringMatch;
  authority?: StringMatch;
  headers: HeaderMatch[];
  queryParams: QueryParamMatch[];
  ignoreUriCase: boolean;
  port?: number;
  sourceLabels?: Record<string, string>;
  sourceNamespace?: string;
  gateways?: string[];
}

export interface HeaderOperations {
  set: Record<string, string>;
  add: Record<string, string>;
  remove: string[];
}

export interface RouteDestination {
  /** As written; resolve against the route table's namespace. */
  host: string;
  subset?: string;
  port?: number;
  weight: number;
  headers?: { request: HeaderOperations; response: HeaderOperations };
  /** Where the destination is written (document path), when it differs from the route's. */
  path?: PathSegment[];
}

export interface RetryPolicy {
  attempts: number;
  perTryTimeoutMs?: number;
  /** Envoy retry_on conditions and/or status codes as strings ("5xx", "reset", "503"). */
  retryOn: string[];
  /** Base interval of the jittered exponential back-off between attempts. */
  backoffBaseMs?: number;
  /** Prefer a different endpoint on each attempt. */
  ignorePreviousHosts?: boolean;
}

export interface FaultPolicy {
  delay?: { percentage: number; fixedDelayMs: number };
  abort?: { percentage: number; httpStatus?: number; grpcStatus?: string };
}

export interface CorsPolicy {
  allowOrigins: StringMatch[];
  allowMethods: string[];
  allowHeaders: string[];
  exposeHeaders: string[];
  maxAgeMs?: number;
  allowCredentials?: boolean;
}

export interface HttpRoute {
  name?: string;
  /** Empty: matches every request. Several: any of them (OR). */
  matches: RequestMatch[];
  destinations: RouteDestination[];
  redirect?: { uri?: string; authority?: string; port?: number; scheme?: string; redirectCode: number };
  directResponse?: { status: number; body?: string };
  rewrite?: { uri?: string; authority?: string; uriRegex?: { match: string; rewrite: string } };
  /** Absent: no route timeout (Istio's default). 0 also disables it. */
  timeoutMs?: number;
  /** Absent: the mesh default retry policy applies (Istio: 2 attempts on connect-failure, refused-stream, unavailable, cancelled, 503). */
  retries?: RetryPolicy;
  fault?: FaultPolicy;
  mirrors: { host: string; subset?: string; port?: number; percentage: number; path?: PathSegment[] }[];
  cors?: CorsPolicy;
  headers: { request: HeaderOperations; response: HeaderOperations };
  source: SourceRef;
  /** Path of this route inside its document, to point analysis at it. */
  path: PathSegment[];
}

export interface TcpRoute {
  /** Empty: matches every connection. `sniHosts` is set for TLS routes (matched on the SNI). */
  matches: {
    port?: number;
    destinationSubnets: string[];
    sourceLabels?: Record<string, string>;
    sniHosts?: string[];
  }[];
  destinations: RouteDestination[];
  source: SourceRef;
  path: PathSegment[];
}

/** The routing rules for a set of hosts (an Istio VirtualService, an App Mesh router or gateway). */
export interface RouteTable {
  /** Istio weights should add up to 100; App Mesh weights are relative. Analysis differs by origin. */
  origin: "istio" | "appmesh";
  name: string;
  namespace: string;
  /** As written; resolve short names against `namespace` with `resolveHost`. */
  hosts: string[];
  /** `mesh` for sidecars; otherwise gateway names. */
  gateways: string[];
  exportTo: string[];
  http: HttpRoute[];
  tcp: TcpRoute[];
  source: SourceRef;
}

// ── Destination policy ──────────────────────────────────────────────────────────────────────────────

export type LoadBalancerKind = "UNSPECIFIED" | "ROUND_ROBIN" | "LEAST_REQUEST" | "RANDOM" | "PASSTHROUGH";

export interface ConsistentHash {
  httpHeaderName?: string;
  httpCookie?: { name: string; path?: string; ttlMs?: number };
  useSourceIp?: boolean;
  httpQueryParameterName?: string;
  minimumRingSize?: number;
  algorithm: "RING_HASH" | "MAGLEV";
}

export interface ConnectionPool {
  tcp?: {
    maxConnections?: number;
    connectTimeoutMs?: number;
    keepalive?: { probes?: number; timeMs?: number; intervalMs?: number };
    idleTimeoutMs?: number;
    maxConnectionDurationMs?: number;
  };
  http?: {
    http1MaxPendingRequests?: number;
    http2MaxRequests?: number;
    maxRequestsPerConnection?: number;
    maxRetries?: number;
    idleTimeoutMs?: number;
    h2UpgradePolicy?: "DEFAULT" | "DO_NOT_UPGRADE" | "UPGRADE";
    useClientProtocol?: boolean;
    maxConcurrentStreams?: number;
  };
}

export interface OutlierDetection {
  consecutive5xxErrors?: number;
  consecutiveGatewayErrors?: number;
  consecutiveLocalOriginFailures?: number;
  splitExternalLocalOriginErrors?: boolean;
  intervalMs?: number;
  baseEjectionTimeMs?: number;
  maxEjectionPercent?: number;
  minHealthPercent?: number;
}

export interface HealthCheck {
  protocol: "HTTP" | "HTTP2" | "GRPC" | "TCP";
  path?: string;
  port?: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  timeoutMs: number;
  intervalMs: number;
}

export interface ClientTls {
  mode: "DISABLE" | "SIMPLE" | "MUTUAL" | "ISTIO_MUTUAL";
  clientCertificate?: string;
  privateKey?: string;
  caCertificates?: string;
  credentialName?: string;
  subjectAltNames: string[];
  sni?: string;
  insecureSkipVerify?: boolean;
}

export interface TrafficPolicy {
  connectionPool?: ConnectionPool;
  loadBalancer?: { simple?: LoadBalancerKind; consistentHash?: ConsistentHash; warmupDurationMs?: number };
  outlierDetection?: OutlierDetection;
  tls?: ClientTls;
  healthChecks?: HealthCheck[];
  portLevelSettings: (Omit<TrafficPolicy, "portLevelSettings"> & { port: number })[];
}

export interface Subset {
  name: string;
  labels: Record<string, string>;
  trafficPolicy?: TrafficPolicy;
}

export interface DestinationPolicy {
  name: string;
  namespace: string;
  host: string;
  trafficPolicy?: TrafficPolicy;
  subsets: Subset[];
  exportTo: string[];
  workloadSelector?: Record<string, string>;
  source: SourceRef;
}

/** Which services a workload's sidecar can reach (Istio Sidecar, App Mesh backends). */
export interface SidecarScope {
  name: string;
  namespace: string;
  selector?: Record<string, string>;
  egress: { port?: number; hosts: string[] }[];
  outboundTrafficPolicy?: "ALLOW_ANY" | "REGISTRY_ONLY";
  source: SourceRef;
}

export interface Gateway {
  name: string;
  namespace: string;
  selector?: Record<string, string>;
  listeners: { port: number; protocol: Protocol; hosts: string[] }[];
  source: SourceRef;
}

// ── Security ────────────────────────────────────────────────────────────────────────────────────────

/**
 * mesh: in the root namespace without a selector; namespace: elsewhere without a selector; workload: with
 * a selector or targetRefs. A policy with a selector in the root namespace selects workloads in every
 * namespace (AuthorizationPolicy, RequestAuthentication, Telemetry; Istio ignores such PeerAuthentications).
 */
export type PolicyScope = "mesh" | "namespace" | "workload";
export type MtlsMode = "UNSET" | "DISABLE" | "PERMISSIVE" | "STRICT";

/** A policy attached to a Service, ServiceEntry or Gateway (Istio `targetRef`/`targetRefs`) instead of a selector. */
export interface PolicyTargetRef {
  /** "" for the core group (Service). */
  group: string;
  kind: string;
  name: string;
}

export interface PeerAuthenticationPolicy {
  name: string;
  namespace: string;
  scope: PolicyScope;
  selector?: Record<string, string>;
  mode: MtlsMode;
  portLevel: Record<number, MtlsMode>;
  source: SourceRef;
}

export interface AuthzSource {
  principals: string[];
  notPrincipals: string[];
  requestPrincipals: string[];
  notRequestPrincipals: string[];
  namespaces: string[];
  notNamespaces: string[];
  ipBlocks: string[];
  notIpBlocks: string[];
  remoteIpBlocks: string[];
  notRemoteIpBlocks: string[];
}

export interface AuthzOperation {
  hosts: string[];
  notHosts: string[];
  ports: number[];
  notPorts: number[];
  methods: string[];
  notMethods: string[];
  paths: string[];
  notPaths: string[];
}

export interface AuthzCondition {
  key: string;
  values: string[];
  notValues: string[];
}

export interface AuthzRule {
  from: AuthzSource[];
  to: AuthzOperation[];
  when: AuthzCondition[];
}

export interface AuthorizationPolicyModel {
  name: string;
  namespace: string;
  scope: PolicyScope;
  selector?: Record<string, string>;
  targetRefs?: PolicyTargetRef[];
  action: "ALLOW" | "DENY" | "AUDIT" | "CUSTOM";
  provider?: string;
  /** Empty (`rules: []` or no rules field, the same in Istio's proto): ALLOW then matches nothing. */
  rules: AuthzRule[];
  source: SourceRef;
}

export interface JwtRule {
  issuer: string;
  audiences: string[];
  jwksUri?: string;
  jwks?: string;
  fromHeaders: { name: string; prefix?: string }[];
  fromParams: string[];
  fromCookies: string[];
  outputPayloadToHeader?: string;
  outputClaimToHeaders: { header: string; claim: string }[];
  forwardOriginalToken: boolean;
  /** How long to wait for the JWKS fetch from `jwksUri`. */
  timeoutMs?: number;
}

export interface RequestAuthenticationPolicy {
  name: string;
  namespace: string;
  scope: PolicyScope;
  selector?: Record<string, string>;
  targetRefs?: PolicyTargetRef[];
  jwtRules: JwtRule[];
  source: SourceRef;
}

// ── Telemetry and mesh-wide settings ────────────────────────────────────────────────────────────────

export type TraceContext = "W3C_TRACE_CONTEXT" | "B3" | "GRPC_BIN" | "CLOUD_TRACE_CONTEXT";

/** Which side of the traffic a telemetry rule applies to (Istio `WorkloadMode`). */
export type WorkloadMode = "CLIENT_AND_SERVER" | "CLIENT" | "SERVER";

/** A span tag: a fixed value, an environment variable of the proxy, or a request header. */
export type CustomTag =
  | { kind: "literal"; value: string }
  | { kind: "environment"; name: string; defaultValue?: string }
  | { kind: "header"; name: string; defaultValue?: string };

export interface TelemetryPolicy {
  name: string;
  namespace: string;
  scope: PolicyScope;
  selector?: Record<string, string>;
  targetRefs?: PolicyTargetRef[];
  tracing: {
    /** Absent: both client and server sides. */
    match?: WorkloadMode;
    providers: string[];
    randomSamplingPercentage?: number;
    disableSpanReporting?: boolean;
    useRequestIdForTraceSampling?: boolean;
    enableIstioTags?: boolean;
    customTags: Record<string, CustomTag>;
  }[];
  /** `filter` is a CEL expression over request attributes. */
  accessLogging: { match?: WorkloadMode; providers: string[]; disabled?: boolean; filter?: string }[];
  source: SourceRef;
}

export interface MeshConfig {
  enableTracing: boolean;
  accessLogFile?: string;
  accessLogEncoding: "TEXT" | "JSON";
  accessLogFormat?: string;
  outboundTrafficPolicy: "ALLOW_ANY" | "REGISTRY_ONLY";
  trustDomain: string;
  rootNamespace: string;
  tracing?: {
    sampling?: number;
    /** The tracer kind named in `defaultConfig.tracing` (zipkin, openCensusAgent, …) and its address. */
    tracer?: { kind: string; address?: string };
    /**
     * Propagation headers: openCensusAgent's `context` (Istio's default W3C_TRACE_CONTEXT), B3 for zipkin,
     * empty for tracers with their own propagation (datadog, lightstep, stackdriver).
     */
    context: TraceContext[];
    maxPathTagLength?: number;
    customTags?: Record<string, CustomTag>;
  };
  extensionProviders: { name: string; kind: string; service?: string; port?: number }[];
  /** Provider names used when a Telemetry rule names none. */
  defaultProviders?: { tracing: string[]; metrics: string[]; accessLogging: string[] };
  source?: SourceRef;
}

export interface ServiceMonitorModel {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  selector: {
    matchLabels: Record<string, string>;
    matchExpressions: { key: string; operator: string; values: string[] }[];
  };
  namespaceSelector: { any: boolean; matchNames: string[] };
  endpoints: ServiceMonitorEndpoint[];
  /** Label of the Service whose value becomes the `job` label. */
  jobLabel?: string;
  /** Service labels copied onto the scraped series. */
  targetLabels: string[];
  /** Pod labels copied onto the scraped series. */
  podTargetLabels: string[];
  sampleLimit?: number;
  targetLimit?: number;
  source: SourceRef;
}

/** A Kubernetes secret key reference (`{name, key}`). */
export interface SecretKeyRef {
  name: string;
  key: string;
  optional?: boolean;
}

/** Prometheus `relabel_config`; `action` lower-case as Prometheus writes it. */
export interface RelabelConfig {
  sourceLabels: string[];
  separator?: string;
  targetLabel?: string;
  regex?: string;
  modulus?: number;
  replacement?: string;
  action: string;
}

export interface ServiceMonitorEndpoint {
  /** Name of the Service port. */
  port?: string;
  /** Name or number of the target Pod port (when `port` is not given). */
  targetPort?: number | string;
  path?: string;
  /** Absent: Prometheus' global scrape interval. */
  intervalMs?: number;
  scrapeTimeoutMs?: number;
  scheme?: "http" | "https";
  params?: Record<string, string[]>;
  honorLabels?: boolean;
  honorTimestamps?: boolean;
  relabelings: RelabelConfig[];
  metricRelabelings: RelabelConfig[];
  tlsConfig?: {
    serverName?: string;
    insecureSkipVerify?: boolean;
    caFile?: string;
    certFile?: string;
    keyFile?: string;
    ca?: { secret?: SecretKeyRef; configMap?: SecretKeyRef };
    cert?: { secret?: SecretKeyRef; configMap?: SecretKeyRef };
    keySecret?: SecretKeyRef;
    minVersion?: "TLS10" | "TLS11" | "TLS12" | "TLS13";
    maxVersion?: "TLS10" | "TLS11" | "TLS12" | "TLS13";
  };
  bearerTokenSecret?: SecretKeyRef;
  followRedirects?: boolean;
  enableHttp2?: boolean;
}

// ── Local rate limiting (Skein's RateLimit) ──────────────────────────────────────────────────────────

/**
 * A token bucket on the requests some workloads serve, enforced by each workload's own sidecar (so the limit
 * is per instance, as Envoy's local rate limit is).
 */
export interface RateLimitPolicy {
  name: string;
  namespace: string;
  /** The workloads, by label; or `service`, whose selector picks them (resolved in `namespace`). */
  selector?: Record<string, string>;
  service?: string;
  /** Only this port (service port or endpoint port); absent: every HTTP port. */
  port?: number;
  /** Absent: every request. */
  match?: RequestMatch;
  tokenBucket: { maxTokens: number; tokensPerFill: number; fillIntervalMs: number };
  source: SourceRef;
}

export interface MeshModel {
  services: Service[];
  workloads: Workload[];
  routeTables: RouteTable[];
  destinationPolicies: DestinationPolicy[];
  sidecars: SidecarScope[];
  gateways: Gateway[];
  peerAuthentications: PeerAuthenticationPolicy[];
  authorizationPolicies: AuthorizationPolicyModel[];
  requestAuthentications: RequestAuthenticationPolicy[];
  telemetry: TelemetryPolicy[];
  meshConfig: MeshConfig;
  serviceMonitors: ServiceMonitorModel[];
  rateLimits: RateLimitPolicy[];
}
