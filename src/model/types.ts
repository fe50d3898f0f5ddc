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

export type PolicyScope = "mesh" | "namespace" | "workload";
export type MtlsMode = "UNSET" | "DISABLE" | "PERMISSIVE" | "STRICT";

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
  action: "ALLOW" | "DENY" | "AUDIT" | "CUSTOM";
  provider?: string;
  /** Absent: the policy has no rules field (ALLOW then matches nothing, DENY nothing). */
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
  outputPayloadToHeader?: string;
  forwardOriginalToken: boolean;
}

export interface RequestAuthenticationPolicy {
  name: string;
  namespace: string;
  scope: PolicyScope;
  selector?: Record<string, string>;
  jwtRules: JwtRule[];
  source: SourceRef;
}

// ── Telemetry and mesh-wide settings ────────────────────────────────────────────────────────────────

export type TraceContext = "W3C_TRACE_CONTEXT" | "B3" | "GRPC_BIN" | "CLOUD_TRACE_CONTEXT";

export interface TelemetryPolicy {
  name: string;
  namespace: string;
  scope: PolicyScope;
  selector?: Record<string, string>;
  tracing: {
    providers: string[];
    randomSamplingPercentage?: number;
    disableSpanReporting?: boolean;
    customTags: Record<string, unknown>;
  }[];
  accessLogging: { providers: string[]; disabled?: boolean; filter?: string }[];
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
    context: TraceContext[];
  };
  extensionProviders: { name: string; kind: string; service?: string; port?: number }[];
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
  endpoints: {
    port?: string;
    targetPort?: number | string;
    path?: string;
    intervalMs?: number;
    scheme?: string;
  }[];
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
}
