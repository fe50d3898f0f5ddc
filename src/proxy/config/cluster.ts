// Cluster (CDS) → Cluster: discovery type, load-balancing policy, protocol (HTTP/1.1, h2c, as downstream),
// connection limits, outlier detection, health checks and inline endpoints, with Envoy's defaults written
// out (5 s connect timeout, circuit breakers 1024/1024/1024/3, 50% panic threshold, 1 h idle timeout).

import type { Cluster__Output } from "../../xds/generated/envoy/config/cluster/v3/Cluster.js";
import type { OutlierDetection__Output } from "../../xds/generated/envoy/config/cluster/v3/OutlierDetection.js";
import type { HealthCheck__Output } from "../../xds/generated/envoy/config/core/v3/HealthCheck.js";
import type { Http2ProtocolOptions__Output } from "../../xds/generated/envoy/config/core/v3/Http2ProtocolOptions.js";
import type { HttpProtocolOptions__Output as CoreHttpProtocolOptions } from "../../xds/generated/envoy/config/core/v3/HttpProtocolOptions.js";
import type { HttpProtocolOptions__Output } from "../../xds/generated/envoy/extensions/upstreams/http/v3/HttpProtocolOptions.js";
import { compileClusterLoadAssignment } from "./endpoint.js";
import {
  At,
  anyTypeName,
  decodeAny,
  durationMs,
  msOr,
  names,
  onlyFields,
  positiveDurationMs,
  resourceLabel,
  setFields,
  wrapped,
} from "./fields.js";
import { checkAdsSource } from "./listener.js";
import { compileTransportSocket, structValues } from "./tls.js";
import type { CircuitBreakers, Cluster, HealthCheck, LbPolicy, OutlierDetection } from "./types.js";

export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
export const DEFAULT_CIRCUIT_BREAKERS: Readonly<CircuitBreakers> = {
  maxConnections: 1024,
  maxPendingRequests: 1024,
  maxRequests: 1024,
  maxRetries: 3,
};
export const DEFAULT_PANIC_THRESHOLD = 50;
export const DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS = 3_600_000;
export const DEFAULT_DNS_REFRESH_MS = 5_000;
export const DEFAULT_RING_SIZE = 1024;
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;

const HTTP_PROTOCOL_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
const CLUSTER_TYPES = new Set(["STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS", "ORIGINAL_DST"]);
const LB_POLICIES = new Set<string>(["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"]);

// ---- circuit breakers, outlier detection, health checks ------------------------------------------------

function circuitBreakers(c: Cluster__Output, at: At): CircuitBreakers {
  if (!c.circuitBreakers) return { ...DEFAULT_CIRCUIT_BREAKERS };
  const cat = at.field("circuitBreakers");
  onlyFields("envoy.config.cluster.v3.CircuitBreakers", c.circuitBreakers, names("thresholds"), cat);
  // Routes always run at DEFAULT priority (HIGH is refused on routes), so HIGH thresholds never apply.
  const i = c.circuitBreakers.thresholds.findIndex((t) => t.priority === "DEFAULT");
  const t = c.circuitBreakers.thresholds[i];
  if (!t) return { ...DEFAULT_CIRCUIT_BREAKERS };
  const tat = cat.field("thresholds").index(i);
  if (t.retryBudget)
    tat
      .field("retryBudget")
      .unsupported("retry budgets are not supported by the Skein sidecar (use max_retries)");
  // track_remaining only publishes gauges.
  onlyFields(
    "envoy.config.cluster.v3.CircuitBreakers.Thresholds",
    t,
    names("priority", "maxConnections", "maxPendingRequests", "maxRequests", "maxRetries", "trackRemaining"),
    tat,
  );
  return {
    maxConnections: wrapped(t.maxConnections, DEFAULT_CIRCUIT_BREAKERS.maxConnections),
    maxPendingRequests: wrapped(t.maxPendingRequests, DEFAULT_CIRCUIT_BREAKERS.maxPendingRequests),
    maxRequests: wrapped(t.maxRequests, DEFAULT_CIRCUIT_BREAKERS.maxRequests),
    maxRetries: wrapped(t.maxRetries, DEFAULT_CIRCUIT_BREAKERS.maxRetries),
  };
}

// The success-rate and failure-percentage detectors' tuning only matters when they are enforced, which is
// refused below; jitter only shifts timing.
const OUTLIER_FIELDS = names(
  "consecutive_5xx",
  "interval",
  "baseEjectionTime",
  "maxEjectionPercent",
  "enforcingConsecutive_5xx",
  "enforcingSuccessRate",
  "successRateMinimumHosts",
  "successRateRequestVolume",
  "successRateStdevFactor",
  "consecutiveGatewayFailure",
  "enforcingConsecutiveGatewayFailure",
  "splitExternalLocalOriginErrors",
  "consecutiveLocalOriginFailure",
  "enforcingConsecutiveLocalOriginFailure",
  "enforcingLocalOriginSuccessRate",
  "failurePercentageThreshold",
  "enforcingFailurePercentage",
  "enforcingFailurePercentageLocalOrigin",
  "failurePercentageMinimumHosts",
  "failurePercentageRequestVolume",
  "maxEjectionTime",
  "maxEjectionTimeJitter",
  "successfulActiveHealthCheckUnejectHost",
);

function percentField(w: { value: number } | null, at: At, fallback: number): number {
  const v = wrapped(w, fallback);
  if (v > 100) at.invalid(`must be at most 100, got ${v}`);
  return v;
}

/**
 * Envoy OutlierDetection with its defaults: consecutive 5xx (5, enforced 100%), gateway failures (5, enforced
 * 0%), local-origin failures when split (5, 100%). Success-rate and failure-percentage ejection are not
 * implemented: enforcing them explicitly is refused; left unset (Envoy would enforce success rate once 5
 * hosts each see 100 requests per interval) they are not applied.
 */
function outlierDetection(o: OutlierDetection__Output, at: At): OutlierDetection {
  onlyFields("envoy.config.cluster.v3.OutlierDetection", o, OUTLIER_FIELDS, at);
  for (const f of [
    "enforcingSuccessRate",
    "enforcingLocalOriginSuccessRate",
    "enforcingFailurePercentage",
    "enforcingFailurePercentageLocalOrigin",
  ] as const) {
    if ((o[f]?.value ?? 0) > 0)
      at.field(f).unsupported(
        "success-rate and failure-percentage ejection are not supported by the Skein sidecar; set it to 0 (consecutive-error ejection is)",
      );
  }
  const out: OutlierDetection = {
    consecutive5xx: wrapped(o.consecutive_5xx, 5),
    consecutiveGatewayFailure: wrapped(o.consecutiveGatewayFailure, 5),
    intervalMs: positiveDurationMs(o.interval, at.field("interval"), 10_000),
    baseEjectionTimeMs: positiveDurationMs(o.baseEjectionTime, at.field("baseEjectionTime"), 30_000),
    maxEjectionPercent: percentField(o.maxEjectionPercent, at.field("maxEjectionPercent"), 10),
    enforcingConsecutive5xx: percentField(
      o.enforcingConsecutive_5xx,
      at.field("enforcingConsecutive_5xx"),
      100,
    ),
    enforcingConsecutiveGatewayFailure: percentField(
      o.enforcingConsecutiveGatewayFailure,
      at.field("enforcingConsecutiveGatewayFailure"),
      0,
    ),
    maxEjectionTimeMs: positiveDurationMs(o.maxEjectionTime, at.field("maxEjectionTime"), 300_000),
  };
  if (o.successfulActiveHealthCheckUnejectHost?.value === false)
    out.successfulActiveHealthCheckUnejectHost = false;
  if (o.splitExternalLocalOriginErrors) {
    out.splitExternalLocalOriginErrors = true;
    out.consecutiveLocalOriginFailure = wrapped(o.consecutiveLocalOriginFailure, 5);
    out.enforcingConsecutiveLocalOriginFailure = percentField(
      o.enforcingConsecutiveLocalOriginFailure,
      at.field("enforcingConsecutiveLocalOriginFailure"),
      100,
    );
  }
  return out;
}

// Jitter, no-traffic and edge intervals only shift when checks run (the sidecar checks every `interval`);
// event logs are telemetry; reuse_connection is how the checker keeps its connection.
const HEALTH_CHECK_FIELDS = names(
  "timeout",
  "interval",
  "initialJitter",
  "intervalJitter",
  "intervalJitterPercent",
  "unhealthyThreshold",
  "healthyThreshold",
  "altPort",
  "reuseConnection",
  "httpHealthCheck",
  "tcpHealthCheck",
  "grpcHealthCheck",
  "noTrafficInterval",
  "noTrafficHealthyInterval",
  "unhealthyInterval",
  "unhealthyEdgeInterval",
  "healthyEdgeInterval",
  "eventLogPath",
  "eventLogger",
  "alwaysLogHealthCheckFailures",
  "alwaysLogHealthCheckSuccess",
  "transportSocketMatchCriteria",
);

function healthCheck(h: HealthCheck__Output, at: At): HealthCheck {
  if (h.healthChecker === "customHealthCheck")
    at.field("customHealthCheck").unsupported(
      "custom health checkers are not supported by the Skein sidecar",
    );
  onlyFields("envoy.config.core.v3.HealthCheck", h, HEALTH_CHECK_FIELDS, at);
  if (!h.healthyThreshold) at.field("healthyThreshold").invalid("is required");
  if (!h.unhealthyThreshold) at.field("unhealthyThreshold").invalid("is required");
  const base = {
    timeoutMs: positiveDurationMs(h.timeout, at.field("timeout")),
    intervalMs: positiveDurationMs(h.interval, at.field("interval")),
    healthyThreshold: wrapped(h.healthyThreshold, 1),
    unhealthyThreshold: wrapped(h.unhealthyThreshold, 1),
    ...(h.altPort?.value && { port: h.altPort.value }),
    ...(h.transportSocketMatchCriteria && {
      transportSocketMatch: structValues(h.transportSocketMatchCriteria),
    }),
  };
  switch (h.healthChecker) {
    case "httpHealthCheck": {
      const hat = at.field("httpHealthCheck");
      const c = h.httpHealthCheck;
      if (!c) return hat.invalid("is required");
      // response_buffer_size only bounds a receive check, which is refused.
      onlyFields(
        "envoy.config.core.v3.HealthCheck.HttpHealthCheck",
        c,
        names("host", "path", "expectedStatuses", "codecClientType", "responseBufferSize"),
        hat,
      );
      if (c.path === "") hat.field("path").invalid("must not be empty");
      if (c.codecClientType === "HTTP3")
        hat.field("codecClientType").unsupported("HTTP/3 health checks are not supported");
      const out: HealthCheck = { kind: "http", ...base, path: c.path, http2: c.codecClientType === "HTTP2" };
      if (c.host) out.host = c.host;
      out.expectedStatuses =
        c.expectedStatuses.length === 0
          ? [[200, 300]]
          : c.expectedStatuses.map((r, i) => {
              const start = Number(r.start);
              const end = Number(r.end);
              if (start < 100 || end > 600 || start >= end)
                hat
                  .field("expectedStatuses")
                  .index(i)
                  .invalid(`[${start}, ${end}) is not a range of HTTP statuses`);
              return [start, end] as [number, number];
            });
      return out;
    }
    case "tcpHealthCheck":
      onlyFields(
        "envoy.config.core.v3.HealthCheck.TcpHealthCheck",
        h.tcpHealthCheck ?? {},
        names(),
        at.field("tcpHealthCheck"),
      );
      return { kind: "tcp", ...base };
    case "grpcHealthCheck": {
      const gat = at.field("grpcHealthCheck");
      const g = h.grpcHealthCheck ?? { serviceName: "", authority: "" };
      onlyFields(
        "envoy.config.core.v3.HealthCheck.GrpcHealthCheck",
        g,
        names("serviceName", "authority"),
        gat,
      );
      const out: HealthCheck = { kind: "grpc", ...base, serviceName: g.serviceName };
      if (g.authority) out.host = g.authority;
      return out;
    }
    default:
      return at.invalid(
        "health_checker is required (http_health_check, tcp_health_check or grpc_health_check)",
      );
  }
}

// ---- protocol options ----------------------------------------------------------------------------------

interface Protocol {
  http2: boolean;
  useDownstreamProtocol: boolean;
  maxRequestsPerConnection: number;
  idleTimeoutMs: number;
  maxConnectionDurationMs?: number;
  http2MaxConcurrentStreams?: number;
}

// max_headers_count is enforced by Node's own header limits.
const COMMON_HTTP_FIELDS = names(
  "idleTimeout",
  "maxConnectionDuration",
  "maxRequestsPerConnection",
  "maxHeadersCount",
);

function commonHttp(o: CoreHttpProtocolOptions, at: At, p: Protocol): void {
  onlyFields("envoy.config.core.v3.HttpProtocolOptions", o, COMMON_HTTP_FIELDS, at);
  p.idleTimeoutMs = msOr(o.idleTimeout, at.field("idleTimeout"), DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS);
  const max = durationMs(o.maxConnectionDuration, at.field("maxConnectionDuration"));
  if (max !== undefined && max > 0) p.maxConnectionDurationMs = max;
  if (o.maxRequestsPerConnection) p.maxRequestsPerConnection = o.maxRequestsPerConnection.value;
}

// Window sizes, frame limits, HPACK table size and keepalive pings are codec tuning.
const HTTP2_FIELDS = names(
  "hpackTableSize",
  "maxConcurrentStreams",
  "initialStreamWindowSize",
  "initialConnectionWindowSize",
  "maxOutboundFrames",
  "maxOutboundControlFrames",
  "maxConsecutiveInboundFramesWithEmptyPayload",
  "maxInboundPriorityFramesPerStream",
  "maxInboundWindowUpdateFramesPerDataFrameSent",
  "streamErrorOnInvalidHttpMessaging",
  "overrideStreamErrorOnInvalidHttpMessage",
  "connectionKeepalive",
  "useOghttp2Codec",
);
// Parser choice, trailers and chunked-length leniency are codec details.
const HTTP1_FIELDS = names(
  "allowAbsoluteUrl",
  "enableTrailers",
  "allowChunkedLength",
  "overrideStreamErrorOnInvalidHttpMessage",
  "useBalsaParser",
);

function http2Options(o: Http2ProtocolOptions__Output, at: At, p: Protocol): void {
  onlyFields("envoy.config.core.v3.Http2ProtocolOptions", o, HTTP2_FIELDS, at);
  if (o.maxConcurrentStreams) p.http2MaxConcurrentStreams = o.maxConcurrentStreams.value;
}

function http1Options(o: object, at: At): void {
  onlyFields("envoy.config.core.v3.Http1ProtocolOptions", o, HTTP1_FIELDS, at);
}

function httpProtocolOptions(o: HttpProtocolOptions__Output, at: At, p: Protocol): void {
  if (o.upstreamProtocolOptions === "autoConfig")
    at.field("autoConfig").unsupported(
      "auto_config needs ALPN over TLS, which the Skein sidecar does not do yet",
    );
  onlyFields(
    HTTP_PROTOCOL_OPTIONS,
    o,
    names("commonHttpProtocolOptions", "explicitHttpConfig", "useDownstreamProtocolConfig"),
    at,
  );
  if (o.commonHttpProtocolOptions)
    commonHttp(o.commonHttpProtocolOptions, at.field("commonHttpProtocolOptions"), p);
  if (o.explicitHttpConfig) {
    const eat = at.field("explicitHttpConfig");
    const e = o.explicitHttpConfig;
    if (e.protocolConfig === "http3ProtocolOptions")
      eat.field("http3ProtocolOptions").unsupported("HTTP/3 upstreams are not supported");
    if (e.protocolConfig === "http2ProtocolOptions" && e.http2ProtocolOptions) {
      p.http2 = true;
      http2Options(e.http2ProtocolOptions, eat.field("http2ProtocolOptions"), p);
    } else if (e.httpProtocolOptions) http1Options(e.httpProtocolOptions, eat.field("httpProtocolOptions"));
  }
  if (o.useDownstreamProtocolConfig) {
    const dat = at.field("useDownstreamProtocolConfig");
    const d = o.useDownstreamProtocolConfig;
    if (d.http3ProtocolOptions)
      dat.field("http3ProtocolOptions").unsupported("HTTP/3 upstreams are not supported");
    if (d.httpProtocolOptions) http1Options(d.httpProtocolOptions, dat.field("httpProtocolOptions"));
    if (d.http2ProtocolOptions) http2Options(d.http2ProtocolOptions, dat.field("http2ProtocolOptions"), p);
    // Only HTTP/2 configured: always h2c; both: follow the downstream; only HTTP/1: always HTTP/1.1.
    if (d.http2ProtocolOptions && d.httpProtocolOptions) p.useDownstreamProtocol = true;
    else if (d.http2ProtocolOptions) p.http2 = true;
  }
}

function protocol(c: Cluster__Output, at: At): Protocol {
  const p: Protocol = {
    http2: false,
    useDownstreamProtocol: false,
    maxRequestsPerConnection: 0,
    idleTimeoutMs: DEFAULT_UPSTREAM_IDLE_TIMEOUT_MS,
  };
  // The deprecated Cluster fields first; typed_extension_protocol_options (their replacement) wins.
  if (c.commonHttpProtocolOptions)
    commonHttp(c.commonHttpProtocolOptions, at.field("commonHttpProtocolOptions"), p);
  if (c.httpProtocolOptions) http1Options(c.httpProtocolOptions, at.field("httpProtocolOptions"));
  if (c.http2ProtocolOptions) {
    p.http2 = true;
    http2Options(c.http2ProtocolOptions, at.field("http2ProtocolOptions"), p);
  }
  if (c.maxRequestsPerConnection) p.maxRequestsPerConnection = c.maxRequestsPerConnection.value;
  if (c.protocolSelection === "USE_DOWNSTREAM_PROTOCOL") p.useDownstreamProtocol = true;
  for (const [key, any] of Object.entries(c.typedExtensionProtocolOptions ?? {})) {
    const kat = at.field("typedExtensionProtocolOptions").key(key);
    if (anyTypeName(any) !== HTTP_PROTOCOL_OPTIONS)
      kat.unsupported(
        `unsupported protocol options ${anyTypeName(any) || key} (the sidecar takes ${HTTP_PROTOCOL_OPTIONS})`,
      );
    httpProtocolOptions(decodeAny(any, kat).message as unknown as HttpProtocolOptions__Output, kat, p);
  }
  return p;
}

// ---- load balancing ------------------------------------------------------------------------------------

const LB_POLICY_TYPES: Record<string, { policy: LbPolicy; allowed: ReadonlySet<string>; size?: string }> = {
  "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin": {
    policy: "ROUND_ROBIN",
    allowed: names(),
  },
  "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest": {
    policy: "LEAST_REQUEST",
    allowed: names("choiceCount"),
  },
  "envoy.extensions.load_balancing_policies.random.v3.Random": { policy: "RANDOM", allowed: names() },
  "envoy.extensions.load_balancing_policies.ring_hash.v3.RingHash": {
    policy: "RING_HASH",
    allowed: names("minimumRingSize", "maximumRingSize", "hashFunction"),
    size: "minimumRingSize",
  },
  "envoy.extensions.load_balancing_policies.maglev.v3.Maglev": {
    policy: "MAGLEV",
    allowed: names("tableSize"),
    size: "tableSize",
  },
};

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** load_balancing_policy: the first policy the sidecar supports (with all its settings), as Envoy picks. */
function loadBalancingPolicy(c: Cluster__Output, at: At): { lbPolicy: LbPolicy; ringSize?: number } {
  const policies = c.loadBalancingPolicy?.policies ?? [];
  const seen: string[] = [];
  for (const p of policies) {
    const typeName = anyTypeName(p.typedExtensionConfig?.typedConfig);
    seen.push(typeName || p.typedExtensionConfig?.name || "?");
    const known = LB_POLICY_TYPES[typeName];
    if (!known) continue;
    const message = decodeAny(p.typedExtensionConfig?.typedConfig, at).message;
    // A policy with settings the sidecar cannot honour counts as unsupported: try the next one.
    if (setFields(typeName, message).some((f) => !known.allowed.has(f))) continue;
    if (
      typeName.endsWith("LeastRequest") &&
      ((message.choiceCount as { value: number } | null)?.value ?? 2) !== 2
    )
      continue;
    if (
      typeName.endsWith("RingHash") &&
      message.hashFunction !== "DEFAULT_HASH" &&
      message.hashFunction !== "XX_HASH"
    )
      continue;
    const out: { lbPolicy: LbPolicy; ringSize?: number } = { lbPolicy: known.policy };
    if (known.size) {
      const fallback = known.policy === "MAGLEV" ? DEFAULT_MAGLEV_TABLE_SIZE : DEFAULT_RING_SIZE;
      out.ringSize = Number((message[known.size] as { value: number | string } | null)?.value ?? fallback);
    }
    return out;
  }
  return at
    .field("loadBalancingPolicy")
    .unsupported(
      `none of the policies is supported by the Skein sidecar (${seen.join(", ") || "empty list"}); it runs round_robin, least_request (2 choices), random, ring_hash and maglev`,
    );
}

function loadBalancing(
  c: Cluster__Output,
  type: Cluster["type"],
  at: At,
): { lbPolicy: LbPolicy; ringSize?: number } {
  if (type === "ORIGINAL_DST") {
    if (c.lbPolicy !== "CLUSTER_PROVIDED")
      at.field("lbPolicy").invalid(
        `${c.lbPolicy} is not valid for an ORIGINAL_DST cluster: use CLUSTER_PROVIDED`,
      );
    // Unused: the original destination is the host.
    return { lbPolicy: "ROUND_ROBIN" };
  }
  if (c.lbPolicy === "CLUSTER_PROVIDED")
    at.field("lbPolicy").invalid("CLUSTER_PROVIDED is only valid for ORIGINAL_DST clusters");
  if (c.loadBalancingPolicy) return loadBalancingPolicy(c, at);
  if (!LB_POLICIES.has(c.lbPolicy))
    at.field("lbPolicy").unsupported(
      `${c.lbPolicy} is not supported by the Skein sidecar (${[...LB_POLICIES].join(", ")} are)`,
    );
  const lbPolicy = c.lbPolicy as LbPolicy;
  if (c.leastRequestLbConfig) {
    const lat = at.field("leastRequestLbConfig");
    onlyFields(
      "envoy.config.cluster.v3.Cluster.LeastRequestLbConfig",
      c.leastRequestLbConfig,
      names("choiceCount"),
      lat,
    );
    if (wrapped(c.leastRequestLbConfig.choiceCount, 2) !== 2)
      lat
        .field("choiceCount")
        .unsupported(
          "the least-request balancer picks the better of 2 random hosts; other counts are not supported",
        );
  }
  if (lbPolicy === "RING_HASH") {
    const r = c.ringHashLbConfig;
    if (!r) return { lbPolicy, ringSize: DEFAULT_RING_SIZE };
    const rat = at.field("ringHashLbConfig");
    // maximum_ring_size only caps the ring; the minimum is what the balancer builds.
    onlyFields(
      "envoy.config.cluster.v3.Cluster.RingHashLbConfig",
      r,
      names("minimumRingSize", "maximumRingSize"),
      rat,
    );
    const ringSize = Number(r.minimumRingSize?.value ?? DEFAULT_RING_SIZE);
    if (ringSize < 1 || ringSize > 8_388_608) rat.field("minimumRingSize").invalid("must be in [1, 8388608]");
    return { lbPolicy, ringSize };
  }
  if (lbPolicy === "MAGLEV") {
    const size = Number(c.maglevLbConfig?.tableSize?.value ?? DEFAULT_MAGLEV_TABLE_SIZE);
    if (!isPrime(size))
      at.field("maglevLbConfig").field("tableSize").invalid(`must be a prime number, got ${size}`);
    return { lbPolicy, ringSize: size };
  }
  return { lbPolicy };
}

// ---- the cluster ---------------------------------------------------------------------------------------

// Labels and stats names (alt_stat_name, metadata, track_*), DNS resolver details the OS resolver owns
// (respect_dns_ttl, failure refresh, TCP lookups), warming and cleanup timers, preconnection and the
// connection-closing switches only tune what the upstream layer already does.
const CLUSTER_FIELDS = names(
  "name",
  "altStatName",
  "type",
  "edsClusterConfig",
  "connectTimeout",
  "perConnectionBufferLimitBytes",
  "lbPolicy",
  "loadAssignment",
  "healthChecks",
  "maxRequestsPerConnection",
  "circuitBreakers",
  "commonHttpProtocolOptions",
  "httpProtocolOptions",
  "http2ProtocolOptions",
  "typedExtensionProtocolOptions",
  "dnsRefreshRate",
  "dnsFailureRefreshRate",
  "respectDnsTtl",
  "dnsLookupFamily",
  "useTcpForDnsLookups",
  "waitForWarmOnInit",
  "outlierDetection",
  "cleanupInterval",
  "ringHashLbConfig",
  "maglevLbConfig",
  "leastRequestLbConfig",
  "commonLbConfig",
  "transportSocket",
  "transportSocketMatches",
  "metadata",
  "protocolSelection",
  "upstreamConnectionOptions",
  "closeConnectionsOnHostHealthFailure",
  "ignoreHealthOnHostRemoval",
  "loadBalancingPolicy",
  "trackTimeoutBudgets",
  "trackClusterStats",
  "preconnectPolicy",
);

// Zone-aware routing needs a local cluster the sidecar does not have; merge windows and connection closing
// on host-set changes are timing.
const COMMON_LB_FIELDS = names(
  "healthyPanicThreshold",
  "zoneAwareLbConfig",
  "updateMergeWindow",
  "closeConnectionsOnHostSetChange",
);

/** Cluster → Cluster, or a SkeinError naming the field (the NACK message). */
export function compileCluster(c: Cluster__Output): Cluster {
  const at = new At(resourceLabel("Cluster", c.name));
  if (c.name === "") at.field("name").invalid("must not be empty");
  if (c.clusterDiscoveryType === "clusterType")
    at.field("clusterType").unsupported(
      `custom cluster type ${c.clusterType?.name ?? ""} is not supported by the Skein sidecar (aggregate clusters included)`,
    );
  const tls = compileTransportSocket(c.transportSocket, "upstream", at.field("transportSocket"));
  const matches = c.transportSocketMatches.map((m, i) => {
    const mat = at.field("transportSocketMatches").index(i);
    onlyFields(
      "envoy.config.cluster.v3.Cluster.TransportSocketMatch",
      m,
      names("name", "match", "transportSocket"),
      mat,
    );
    if (m.name === "") mat.field("name").invalid("must not be empty");
    const mtls = compileTransportSocket(m.transportSocket, "upstream", mat.field("transportSocket"));
    return { name: m.name, match: structValues(m.match), ...(mtls && { tls: mtls }) };
  });
  onlyFields("envoy.config.cluster.v3.Cluster", c, CLUSTER_FIELDS, at);

  // An unset discovery type is STATIC (the enum's zero).
  const type = (c.clusterDiscoveryType === "type" ? c.type : "STATIC") as string;
  if (!CLUSTER_TYPES.has(type)) at.field("type").unsupported(`cluster type ${type} is not supported`);
  const lb = loadBalancing(c, type as Cluster["type"], at);
  const p = protocol(c, at);
  const out: Cluster = {
    name: c.name,
    type: type as Cluster["type"],
    edsServiceName: c.name,
    lbPolicy: lb.lbPolicy,
    connectTimeoutMs: positiveDurationMs(
      c.connectTimeout,
      at.field("connectTimeout"),
      DEFAULT_CONNECT_TIMEOUT_MS,
    ),
    http2: p.http2,
    useDownstreamProtocol: p.useDownstreamProtocol,
    maxRequestsPerConnection: p.maxRequestsPerConnection,
    idleTimeoutMs: p.idleTimeoutMs,
    circuitBreakers: circuitBreakers(c, at),
    panicThreshold: DEFAULT_PANIC_THRESHOLD,
  };
  if (lb.ringSize !== undefined) out.ringSize = lb.ringSize;
  if (p.maxConnectionDurationMs !== undefined) out.maxConnectionDurationMs = p.maxConnectionDurationMs;
  if (p.http2MaxConcurrentStreams !== undefined) out.http2MaxConcurrentStreams = p.http2MaxConcurrentStreams;
  if (tls) out.tls = tls;
  if (matches.length > 0) out.transportSocketMatches = matches;

  if (type === "EDS") {
    const eds = c.edsClusterConfig;
    if (eds) {
      const eat = at.field("edsClusterConfig");
      onlyFields(
        "envoy.config.cluster.v3.Cluster.EdsClusterConfig",
        eds,
        names("edsConfig", "serviceName"),
        eat,
      );
      checkAdsSource(eds.edsConfig, eat.field("edsConfig"));
      if (eds.serviceName) out.edsServiceName = eds.serviceName;
    }
  } else if (type === "ORIGINAL_DST") {
    if (c.loadAssignment) at.field("loadAssignment").invalid("ORIGINAL_DST clusters take no endpoints");
  } else {
    const lat = at.field("loadAssignment");
    const dns = type === "STRICT_DNS" || type === "LOGICAL_DNS";
    const set = c.loadAssignment
      ? compileClusterLoadAssignment(c.loadAssignment, { requireIp: !dns }, lat)
      : { clusterName: c.name, endpoints: [] };
    if (!set.clusterName) set.clusterName = c.name;
    if (type === "LOGICAL_DNS" && set.endpoints.length !== 1)
      lat.invalid(`LOGICAL_DNS clusters take exactly one endpoint, got ${set.endpoints.length}`);
    out.loadAssignment = set;
    if (dns) {
      out.dnsLookupFamily = c.dnsLookupFamily as NonNullable<Cluster["dnsLookupFamily"]>;
      out.dnsRefreshRateMs = positiveDurationMs(
        c.dnsRefreshRate,
        at.field("dnsRefreshRate"),
        DEFAULT_DNS_REFRESH_MS,
      );
    }
  }

  if (c.commonLbConfig) {
    const cat = at.field("commonLbConfig");
    onlyFields("envoy.config.cluster.v3.Cluster.CommonLbConfig", c.commonLbConfig, COMMON_LB_FIELDS, cat);
    const panic = c.commonLbConfig.healthyPanicThreshold?.value;
    if (panic !== undefined) {
      if (panic < 0 || panic > 100) cat.field("healthyPanicThreshold").invalid("must be in [0, 100]");
      out.panicThreshold = panic;
    }
  }
  if (c.outlierDetection)
    out.outlierDetection = outlierDetection(c.outlierDetection, at.field("outlierDetection"));
  if (c.healthChecks.length > 0)
    out.healthChecks = c.healthChecks.map((h, i) => healthCheck(h, at.field("healthChecks").index(i)));
  if (c.upstreamConnectionOptions) {
    const uat = at.field("upstreamConnectionOptions");
    const u = c.upstreamConnectionOptions;
    onlyFields("envoy.config.cluster.v3.UpstreamConnectionOptions", u, names("tcpKeepalive"), uat);
    if (u.tcpKeepalive) {
      const k = u.tcpKeepalive;
      // keepalive_time and keepalive_interval are whole seconds in the proto.
      out.tcpKeepalive = {
        ...(k.keepaliveProbes && { probes: k.keepaliveProbes.value }),
        ...(k.keepaliveTime && { timeMs: k.keepaliveTime.value * 1000 }),
        ...(k.keepaliveInterval && { intervalMs: k.keepaliveInterval.value * 1000 }),
      };
    }
  }
  return out;
}
