// Clusters: one per visible service port and per subset (`outbound|<port>|<subset>|<host>`), shaped by
// the merged destination policy; plus, for sidecars, one `inbound|<port>||` per port the workload
// serves, pointing at the application.

import { selectorMatches } from "../model/hosts.js";
import type { WorkloadInstance } from "../model/snapshot.js";
import type {
  ConsistentHash,
  HealthCheck as ModelHealthCheck,
  Service,
  ServicePort,
} from "../model/types.js";
import type { Cluster } from "../xds/generated/envoy/config/cluster/v3/Cluster.js";
import type { OutlierDetection } from "../xds/generated/envoy/config/cluster/v3/OutlierDetection.js";
import type { HealthCheck } from "../xds/generated/envoy/config/core/v3/HealthCheck.js";
import type { ClusterLoadAssignment } from "../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js";
import type { HttpProtocolOptions } from "../xds/generated/envoy/extensions/upstreams/http/v3/HttpProtocolOptions.js";
import { staticLoadAssignment } from "./endpoints.js";
import { clusterTransport } from "./mtls.js";
import { inboundClusterName, isHttp, isHttp2, outboundClusterName } from "./names.js";
import { endpointPort, type ProxyView } from "./scope.js";
import { tracingClusters } from "./tracing.js";
import { mergedTrafficPolicy, type PortTrafficPolicy } from "./traffic-policy.js";
import { FILTER, typed } from "./typed.js";
import { adsConfigSource, byName, compare, duration, MAX_UINT32, u32 } from "./values.js";

/** Istio's default connect timeout. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Where the application listens in local mode (DESIGN.md, "Addressing without Kubernetes"). */
export const APP_ADDRESS = "127.0.0.1";

export function buildClusters(view: ProxyView): Cluster[] {
  return dedupe([...buildOutboundClusters(view), ...buildInboundClusters(view)]).sort(byName);
}

/**
 * The clusters every proxy with the same view of the mesh gets alike (translate() shares them between such
 * proxies): one per visible service port and subset, and the tracing collector's. Unsorted.
 */
export function buildOutboundClusters(view: ProxyView): Cluster[] {
  const out: Cluster[] = [];
  for (const { service, ports } of view.services) {
    const policy = view.destinationPolicy(service);
    for (const port of ports) {
      const base = outboundCluster(view, service, port, undefined);
      if (base) out.push(base);
      for (const subset of policy?.subsets ?? []) {
        const c = outboundCluster(view, service, port, subset.name);
        if (c) out.push(c);
      }
    }
  }
  out.push(...tracingClusters(view));
  return dedupe(out);
}

/** The proxy's own `inbound|<port>||` clusters (sidecars with a workload only). */
export function buildInboundClusters(view: ProxyView): Cluster[] {
  return view.proxy.kind === "sidecar" && view.proxy.workload
    ? inboundClusters(view, view.proxy.workload)
    : [];
}

/** Two services may claim one hostname (a ServiceEntry beside a Service); the first, by namespace, wins. */
export function dedupe(clusters: Cluster[]): Cluster[] {
  const seen = new Set<string>();
  return clusters.filter((c) => {
    const name = c.name ?? "";
    if (seen.has(name)) return false;
    seen.add(name);
    return true;
  });
}

export function outboundCluster(
  view: ProxyView,
  service: Service,
  port: ServicePort,
  subset: string | undefined,
): Cluster | undefined {
  const name = outboundClusterName(port.number, subset, service.hostname);
  const proxyless = view.proxy.kind === "proxyless";
  const destination = view.destinationPolicy(service);
  const policy = mergedTrafficPolicy(destination, port.number, subset);
  const subsetLabels = destination?.subsets.find((s) => s.name === subset)?.labels;

  const discovery = clusterDiscovery(name, service, port, subsetLabels, proxyless, policy);
  if (!discovery) return undefined;
  const cluster: Cluster = {
    name,
    ...discovery,
    connectTimeout: duration(policy.connectionPool?.tcp?.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS),
    circuitBreakers: circuitBreakers(policy),
  };
  if (discovery.type !== "ORIGINAL_DST") Object.assign(cluster, loadBalancing(policy, proxyless));

  const outlier = outlierDetection(policy);
  if (outlier) cluster.outlierDetection = outlier;
  const panic = policy.outlierDetection?.minHealthPercent;
  if (panic !== undefined && !proxyless) cluster.commonLbConfig = { healthyPanicThreshold: { value: panic } };

  // gRPC clients speak HTTP/2 and ignore these; Envoy needs them to choose the upstream codec.
  if (!proxyless && isHttp(port.protocol)) {
    const options = httpProtocolOptions(port, policy);
    if (options)
      cluster.typedExtensionProtocolOptions = {
        [FILTER.httpProtocolOptions]: typed(
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
          options,
        ),
      };
  }
  const keepalive = policy.connectionPool?.tcp?.keepalive;
  if (keepalive && !proxyless)
    cluster.upstreamConnectionOptions = {
      tcpKeepalive: {
        ...(keepalive.probes !== undefined && { keepaliveProbes: u32(keepalive.probes) }),
        ...(keepalive.timeMs !== undefined && { keepaliveTime: u32(Math.round(keepalive.timeMs / 1000)) }),
        ...(keepalive.intervalMs !== undefined && {
          keepaliveInterval: u32(Math.round(keepalive.intervalMs / 1000)),
        }),
      },
    };
  if (policy.healthChecks?.length && !proxyless) cluster.healthChecks = policy.healthChecks.map(healthCheck);
  // ORIGINAL_DST clusters reach whatever address the client dialled: no identity to verify.
  if (discovery.type !== "ORIGINAL_DST")
    Object.assign(
      cluster,
      clusterTransport(
        view,
        service,
        port.number,
        subset,
        subsetLabels,
        policy.tls,
        isHttp2(port.protocol) ? true : undefined,
      ),
    );
  return cluster;
}

type Discovery = Pick<
  Cluster,
  "type" | "edsClusterConfig" | "loadAssignment" | "dnsLookupFamily" | "lbPolicy"
>;

/**
 * How the cluster finds its endpoints, from the service's resolution: STATIC (selector or static
 * endpoints) → EDS; DNS → STRICT_DNS with the endpoints inline; DNS_ROUND_ROBIN → LOGICAL_DNS; NONE or
 * a PASSTHROUGH load balancer → ORIGINAL_DST. gRPC clients accept only EDS and LOGICAL_DNS (with one
 * endpoint), so they get LOGICAL_DNS for DNS services and no cluster for pass-through ones.
 */
function clusterDiscovery(
  name: string,
  service: Service,
  port: ServicePort,
  subsetLabels: Record<string, string> | undefined,
  proxyless: boolean,
  policy: PortTrafficPolicy,
): Discovery | undefined {
  const passthrough = service.resolution === "NONE" || policy.loadBalancer?.simple === "PASSTHROUGH";
  if (passthrough) return proxyless ? undefined : { type: "ORIGINAL_DST", lbPolicy: "CLUSTER_PROVIDED" };
  if (service.resolution === "STATIC")
    return { type: "EDS", edsClusterConfig: { edsConfig: adsConfigSource(), serviceName: name } };
  const logical = proxyless || service.resolution === "DNS_ROUND_ROBIN";
  const assignment: ClusterLoadAssignment = staticLoadAssignment(name, service, port, subsetLabels, logical);
  // Istio resolves IPv4 only by default: local mode and most meshes have no IPv6 routes.
  return {
    type: logical ? "LOGICAL_DNS" : "STRICT_DNS",
    loadAssignment: assignment,
    dnsLookupFamily: "V4_ONLY",
  };
}

function circuitBreakers(policy: PortTrafficPolicy): Cluster["circuitBreakers"] {
  const tcp = policy.connectionPool?.tcp;
  const http = policy.connectionPool?.http;
  return {
    thresholds: [
      {
        priority: "DEFAULT",
        maxConnections: u32(tcp?.maxConnections ?? MAX_UINT32),
        maxPendingRequests: u32(http?.http1MaxPendingRequests ?? MAX_UINT32),
        maxRequests: u32(http?.http2MaxRequests ?? MAX_UINT32),
        maxRetries: u32(http?.maxRetries ?? MAX_UINT32),
        trackRemaining: true,
      },
    ],
  };
}

/**
 * lb_policy from the load balancer settings. UNSPECIFIED is LEAST_REQUEST, Istio's default since 1.14.
 * gRPC clients implement only ROUND_ROBIN and RING_HASH and NACK anything else, so for them
 * LEAST_REQUEST and RANDOM fall back to ROUND_ROBIN (as Istio does) and MAGLEV to RING_HASH.
 */
function loadBalancing(policy: PortTrafficPolicy, proxyless: boolean): Partial<Cluster> {
  const lb = policy.loadBalancer;
  if (lb?.consistentHash) return consistentHashing(lb.consistentHash, proxyless);
  const simple = lb?.simple ?? "UNSPECIFIED";
  if (proxyless) return { lbPolicy: "ROUND_ROBIN" };
  switch (simple) {
    case "ROUND_ROBIN":
      return { lbPolicy: "ROUND_ROBIN" };
    case "RANDOM":
      return { lbPolicy: "RANDOM" };
    default:
      return { lbPolicy: "LEAST_REQUEST" };
  }
}

/** The ring lives on the cluster; what is hashed lives on the route (routes.ts, hashPolicy). */
function consistentHashing(hash: ConsistentHash, proxyless: boolean): Partial<Cluster> {
  if (hash.algorithm === "MAGLEV" && !proxyless) return { lbPolicy: "MAGLEV" };
  return {
    lbPolicy: "RING_HASH",
    ...(hash.minimumRingSize !== undefined && {
      ringHashLbConfig: { minimumRingSize: { value: hash.minimumRingSize } },
    }),
  };
}

/**
 * Istio's mapping: the consecutive 5xx and gateway-error counts are enforced at 100% when set (0
 * disables them), success-rate ejection is off (Envoy and gRPC enable it by default).
 */
function outlierDetection(policy: PortTrafficPolicy): OutlierDetection | undefined {
  const od = policy.outlierDetection;
  if (!od) return undefined;
  const out: OutlierDetection = { enforcingSuccessRate: u32(0) };
  if (od.consecutive5xxErrors !== undefined) {
    out.consecutive_5xx = u32(od.consecutive5xxErrors);
    out.enforcingConsecutive_5xx = u32(od.consecutive5xxErrors > 0 ? 100 : 0);
  }
  if (od.consecutiveGatewayErrors !== undefined) {
    out.consecutiveGatewayFailure = u32(od.consecutiveGatewayErrors);
    out.enforcingConsecutiveGatewayFailure = u32(od.consecutiveGatewayErrors > 0 ? 100 : 0);
  }
  if (od.splitExternalLocalOriginErrors) {
    out.splitExternalLocalOriginErrors = true;
    if (od.consecutiveLocalOriginFailures !== undefined) {
      out.consecutiveLocalOriginFailure = u32(od.consecutiveLocalOriginFailures);
      out.enforcingConsecutiveLocalOriginFailure = u32(od.consecutiveLocalOriginFailures > 0 ? 100 : 0);
    }
  }
  if (od.intervalMs !== undefined) out.interval = duration(od.intervalMs);
  if (od.baseEjectionTimeMs !== undefined) out.baseEjectionTime = duration(od.baseEjectionTimeMs);
  if (od.maxEjectionPercent !== undefined) out.maxEjectionPercent = u32(od.maxEjectionPercent);
  return out;
}

/**
 * Upstream HTTP options go in `typed_extension_protocol_options` (HttpProtocolOptions): the Cluster
 * fields `max_requests_per_connection`, `http2_protocol_options` and `common_http_protocol_options`
 * are deprecated since API 3.0 and log deprecation warnings in today's Envoy. The message requires an
 * explicit protocol choice, so HTTP/1 ports that only need limits say `http_protocol_options: {}`.
 */
function httpProtocolOptions(port: ServicePort, policy: PortTrafficPolicy): HttpProtocolOptions | undefined {
  const http = policy.connectionPool?.http;
  const tcp = policy.connectionPool?.tcp;
  const common: NonNullable<HttpProtocolOptions["commonHttpProtocolOptions"]> = {};
  if (http?.maxRequestsPerConnection !== undefined)
    common.maxRequestsPerConnection = u32(http.maxRequestsPerConnection);
  if (http?.idleTimeoutMs !== undefined) common.idleTimeout = duration(http.idleTimeoutMs);
  if (tcp?.maxConnectionDurationMs !== undefined)
    common.maxConnectionDuration = duration(tcp.maxConnectionDurationMs);
  const h2 = isHttp2(port.protocol) || http?.h2UpgradePolicy === "UPGRADE";
  const http2 =
    http?.maxConcurrentStreams !== undefined ? { maxConcurrentStreams: u32(http.maxConcurrentStreams) } : {};
  const hasCommon = Object.keys(common).length > 0;
  if (http?.useClientProtocol)
    return {
      ...(hasCommon && { commonHttpProtocolOptions: common }),
      useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: http2 },
    };
  if (!h2 && !hasCommon) return undefined;
  return {
    ...(hasCommon && { commonHttpProtocolOptions: common }),
    explicitHttpConfig: h2 ? { http2ProtocolOptions: http2 } : { httpProtocolOptions: {} },
  };
}

function healthCheck(hc: ModelHealthCheck): HealthCheck {
  const check: HealthCheck = {
    timeout: duration(hc.timeoutMs),
    interval: duration(hc.intervalMs),
    healthyThreshold: u32(hc.healthyThreshold),
    unhealthyThreshold: u32(hc.unhealthyThreshold),
    ...(hc.port !== undefined && { altPort: u32(hc.port) }),
  };
  // Envoy requires a non-empty path for HTTP checks.
  if (hc.protocol === "TCP") check.tcpHealthCheck = {};
  else if (hc.protocol === "GRPC") check.grpcHealthCheck = {};
  else
    check.httpHealthCheck = {
      path: hc.path ?? "/",
      ...(hc.protocol === "HTTP2" && { codecClientType: "HTTP2" as const }),
    };
  return check;
}

/** A port the workload serves: where its inbound listener binds, and where the application listens. */
export interface InboundPort {
  /** The service port (its protocol decides HTTP or TCP handling). */
  servicePort: ServicePort;
  /** The port peers reach (the endpoint port): the inbound listener binds `address:port`. */
  port: number;
  /** The application's own port on 127.0.0.1. */
  appPort: number;
}

/**
 * The ports of the services whose selector picks this workload, one per endpoint port (the first
 * service in hostname order decides the protocol). Convention for the application's port:
 * `workload.ports["app:<port name>"]` when `skein run` assigned a private one, else the endpoint port
 * itself (the app on 127.0.0.1:<port> and the sidecar on <workload address>:<port> do not collide).
 */
export function inboundPorts(view: ProxyView, workload: WorkloadInstance): InboundPort[] {
  const seen = new Map<number, InboundPort>();
  const services = [...view.model.services].sort((a, b) => compare(a.hostname, b.hostname));
  for (const s of services) {
    if (s.namespace !== workload.namespace || !s.selector || !selectorMatches(s.selector, workload.labels))
      continue;
    for (const p of s.ports) {
      const port = endpointPort(workload.ports, p);
      if (!seen.has(port))
        seen.set(port, { servicePort: p, port, appPort: workload.ports[`app:${p.name}`] ?? port });
    }
  }
  return [...seen.values()].sort((a, b) => a.port - b.port);
}

function inboundClusters(view: ProxyView, workload: WorkloadInstance): Cluster[] {
  return inboundPorts(view, workload).map(({ servicePort, port, appPort }) => {
    const name = inboundClusterName(port);
    const cluster: Cluster = {
      name,
      type: "STATIC",
      connectTimeout: duration(DEFAULT_CONNECT_TIMEOUT_MS),
      lbPolicy: "ROUND_ROBIN",
      loadAssignment: {
        clusterName: name,
        endpoints: [
          {
            locality: {},
            lbEndpoints: [
              { endpoint: { address: { socketAddress: { address: APP_ADDRESS, portValue: appPort } } } },
            ],
          },
        ],
      },
      circuitBreakers: circuitBreakers({}),
    };
    if (isHttp2(servicePort.protocol))
      cluster.typedExtensionProtocolOptions = {
        [FILTER.httpProtocolOptions]: typed("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {
          explicitHttpConfig: { http2ProtocolOptions: {} },
        }),
      };
    return cluster;
  });
}
