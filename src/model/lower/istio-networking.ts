// Lowers networking.istio.io kinds (VirtualService, DestinationRule, ServiceEntry, Sidecar) into the
// model. Istio's defaults are applied here so that the model states behaviour explicitly.
import { Codes } from "../../api/codes.js";
import type { StringMatchSpec } from "../../api/istio/common.js";
import type {
  DestinationRuleSpec,
  HttpRouteSpec,
  ServiceEntrySpec,
  SidecarSpec,
  TrafficPolicySpec,
  VirtualServiceSpec,
} from "../../api/istio/networking.js";
import type { Resource } from "../../api/resource.js";
import { protocolFromPortName } from "../../api/skein.js";
import type { PathSegment } from "../../api/yaml.js";
import type { ModelBuilder } from "../builder.js";
import type {
  HeaderOperations,
  HttpRoute,
  Protocol,
  RequestMatch,
  RouteDestination,
  StringMatch,
  TcpRoute,
  TrafficPolicy,
} from "../types.js";

/** Istio's retryOn when `retries` is given without it. */
export const ISTIO_DEFAULT_RETRY_ON = [
  "connect-failure",
  "refused-stream",
  "unavailable",
  "cancelled",
  "retriable-status-codes",
];

function noEffect(b: ModelBuilder, r: Resource, path: PathSegment[], what: string): void {
  b.report(
    r.source,
    path,
    "warning",
    Codes.NO_EFFECT,
    `${what} is accepted but has no effect in Skein yet`,
    "remove it, or keep it knowing the proxy ignores it",
  );
}

function stringMatch(m: StringMatchSpec | undefined): StringMatch | undefined {
  if (!m) return undefined;
  if (m.exact !== undefined) return { kind: "exact", value: m.exact };
  if (m.prefix !== undefined) return { kind: "prefix", value: m.prefix };
  if (m.regex !== undefined) return { kind: "regex", value: m.regex };
  return undefined;
}

function headerOps(
  h: { set?: Record<string, string>; add?: Record<string, string>; remove?: string[] } | undefined,
) {
  return { set: h?.set ?? {}, add: h?.add ?? {}, remove: h?.remove ?? [] } satisfies HeaderOperations;
}

type DestinationSpec = { host: string; subset?: string; port?: { number: number } };
function destination(d: DestinationSpec, weight: number, path: PathSegment[]): RouteDestination {
  return { host: d.host, subset: d.subset, port: d.port?.number, weight, path };
}

/** Istio: a lone destination gets all traffic; otherwise an unset weight is 0. */
function weights(route: { weight?: number }[]): number[] {
  if (route.length === 1) return [route[0]?.weight ?? 100];
  return route.map((d) => d.weight ?? 0);
}

function lowerHttpRoute(r: Resource, b: ModelBuilder, h: HttpRouteSpec, path: PathSegment[]): HttpRoute {
  const matches: RequestMatch[] = (h.match ?? []).map((m, i) => {
    if (m.statPrefix !== undefined) noEffect(b, r, [...path, "match", i, "statPrefix"], "match.statPrefix");
    return {
      name: m.name,
      uri: stringMatch(m.uri),
      scheme: stringMatch(m.scheme),
      method: stringMatch(m.method),
      authority: stringMatch(m.authority),
      headers: [
        ...Object.entries(m.headers ?? {}).map(([name, sm]) => ({
          name: name.toLowerCase(),
          match: stringMatch(sm),
          invert: false,
        })),
        ...Object.entries(m.withoutHeaders ?? {}).map(([name, sm]) => ({
          name: name.toLowerCase(),
          match: stringMatch(sm),
          invert: true,
        })),
      ],
      queryParams: Object.entries(m.queryParams ?? {}).map(([name, sm]) => ({
        name,
        match: stringMatch(sm),
      })),
      ignoreUriCase: m.ignoreUriCase ?? false,
      port: m.port,
      sourceLabels: m.sourceLabels,
      sourceNamespace: m.sourceNamespace,
      gateways: m.gateways,
    };
  });
  const w = weights(h.route ?? []);
  const destinations = (h.route ?? []).map((d, i) => ({
    ...destination(d.destination, w[i] ?? 0, [...path, "route", i, "destination"]),
    ...(d.headers
      ? { headers: { request: headerOps(d.headers.request), response: headerOps(d.headers.response) } }
      : {}),
  }));
  const mirrors = [
    ...(h.mirror
      ? [
          {
            host: h.mirror.host,
            subset: h.mirror.subset,
            port: h.mirror.port?.number,
            percentage: h.mirrorPercentage?.value ?? h.mirrorPercent ?? 100,
            path: [...path, "mirror"],
          },
        ]
      : []),
    ...(h.mirrors ?? []).map((m, i) => ({
      host: m.destination.host,
      subset: m.destination.subset,
      port: m.destination.port?.number,
      percentage: m.percentage?.value ?? 100,
      path: [...path, "mirrors", i, "destination"],
    })),
  ];
  if (h.retries?.retryRemoteLocalities !== undefined)
    noEffect(b, r, [...path, "retries", "retryRemoteLocalities"], "retries.retryRemoteLocalities");
  if (h.fault?.abort?.http2Error !== undefined)
    noEffect(b, r, [...path, "fault", "abort", "http2Error"], "fault.abort.http2Error");
  if (h.redirect?.derivePort !== undefined)
    noEffect(b, r, [...path, "redirect", "derivePort"], "redirect.derivePort");
  const cors = h.corsPolicy;
  return {
    name: h.name,
    matches,
    destinations,
    redirect: h.redirect && {
      uri: h.redirect.uri,
      authority: h.redirect.authority,
      port: h.redirect.port,
      scheme: h.redirect.scheme,
      redirectCode: h.redirect.redirectCode ?? 301,
    },
    directResponse: h.directResponse && {
      status: h.directResponse.status,
      body: h.directResponse.body?.string ?? h.directResponse.body?.bytes,
    },
    rewrite: h.rewrite && {
      uri: h.rewrite.uri,
      authority: h.rewrite.authority,
      uriRegex: h.rewrite.uriRegexRewrite,
    },
    timeoutMs: h.timeout,
    retries: h.retries && {
      attempts: h.retries.attempts,
      perTryTimeoutMs: h.retries.perTryTimeout,
      retryOn: h.retries.retryOn ?? ISTIO_DEFAULT_RETRY_ON,
      backoffBaseMs: h.retries.backoff,
      ignorePreviousHosts: h.retries.retryIgnorePreviousHosts,
    },
    fault: h.fault && {
      delay: h.fault.delay && {
        // Istio: without a percentage every request is faulted.
        percentage: h.fault.delay.percentage?.value ?? h.fault.delay.percent ?? 100,
        fixedDelayMs: h.fault.delay.fixedDelay,
      },
      abort: h.fault.abort && {
        percentage: h.fault.abort.percentage?.value ?? 100,
        httpStatus: h.fault.abort.httpStatus,
        grpcStatus: h.fault.abort.grpcStatus,
      },
    },
    mirrors,
    cors: cors && {
      allowOrigins: [
        ...(cors.allowOrigins ?? []).map((o) => stringMatch(o) as StringMatch),
        ...(cors.allowOrigin ?? []).map((o) => ({ kind: "exact" as const, value: o })),
      ],
      allowMethods: cors.allowMethods ?? [],
      allowHeaders: cors.allowHeaders ?? [],
      exposeHeaders: cors.exposeHeaders ?? [],
      maxAgeMs: cors.maxAge,
      allowCredentials: cors.allowCredentials,
    },
    headers: { request: headerOps(h.headers?.request), response: headerOps(h.headers?.response) },
    source: r.source,
    path,
  };
}

export function lowerVirtualService(r: Resource<VirtualServiceSpec>, b: ModelBuilder): void {
  const s = r.spec;
  const tcp: TcpRoute[] = [];
  s.tls?.forEach((t, i) => {
    const w = weights(t.route);
    tcp.push({
      matches: t.match.map((m) => ({
        port: m.port,
        destinationSubnets: m.destinationSubnets ?? [],
        sourceLabels: m.sourceLabels,
        sniHosts: m.sniHosts,
      })),
      destinations: t.route.map((d, j) =>
        destination(d.destination, w[j] ?? 0, ["spec", "tls", i, "route", j, "destination"]),
      ),
      source: r.source,
      path: ["spec", "tls", i],
    });
  });
  s.tcp?.forEach((t, i) => {
    const w = weights(t.route);
    tcp.push({
      matches: (t.match ?? []).map((m) => ({
        port: m.port,
        destinationSubnets: m.destinationSubnets ?? [],
        sourceLabels: m.sourceLabels,
      })),
      destinations: t.route.map((d, j) =>
        destination(d.destination, w[j] ?? 0, ["spec", "tcp", i, "route", j, "destination"]),
      ),
      source: r.source,
      path: ["spec", "tcp", i],
    });
  });
  b.model.routeTables.push({
    origin: "istio",
    name: r.name,
    namespace: r.namespace,
    hosts: s.hosts,
    gateways: s.gateways?.length ? s.gateways : ["mesh"],
    exportTo: s.exportTo ?? ["*"],
    http: (s.http ?? []).map((h, i) => lowerHttpRoute(r, b, h, ["spec", "http", i])),
    tcp,
    source: r.source,
  });
}

function lowerTrafficPolicy(
  r: Resource,
  b: ModelBuilder,
  p: TrafficPolicySpec | undefined,
  path: PathSegment[],
): TrafficPolicy | undefined {
  if (!p) return undefined;
  type Fields = Pick<TrafficPolicySpec, "loadBalancer" | "connectionPool" | "outlierDetection" | "tls">;
  const fields = (f: Fields, at: PathSegment[]): Omit<TrafficPolicy, "portLevelSettings"> => {
    const lb = f.loadBalancer;
    if (lb?.localityLbSetting)
      noEffect(b, r, [...at, "loadBalancer", "localityLbSetting"], "loadBalancer.localityLbSetting");
    if (f.tls?.caCrl) noEffect(b, r, [...at, "tls", "caCrl"], "tls.caCrl");
    const ch = lb?.consistentHash;
    const od = f.outlierDetection;
    const cp = f.connectionPool;
    return {
      loadBalancer: lb && {
        // LEAST_CONN is Istio's deprecated name for LEAST_REQUEST.
        simple: lb.simple === "LEAST_CONN" ? "LEAST_REQUEST" : lb.simple,
        consistentHash: ch && {
          httpHeaderName: ch.httpHeaderName,
          httpCookie: ch.httpCookie && {
            name: ch.httpCookie.name,
            path: ch.httpCookie.path,
            ttlMs: ch.httpCookie.ttl,
          },
          useSourceIp: ch.useSourceIp,
          httpQueryParameterName: ch.httpQueryParameterName,
          minimumRingSize: ch.ringHash?.minimumRingSize ?? ch.minimumRingSize,
          algorithm: ch.maglev ? "MAGLEV" : "RING_HASH",
        },
        warmupDurationMs: lb.warmupDurationSecs,
      },
      connectionPool: cp && {
        tcp: cp.tcp && {
          maxConnections: cp.tcp.maxConnections,
          connectTimeoutMs: cp.tcp.connectTimeout,
          keepalive: cp.tcp.tcpKeepalive && {
            probes: cp.tcp.tcpKeepalive.probes,
            timeMs: cp.tcp.tcpKeepalive.time,
            intervalMs: cp.tcp.tcpKeepalive.interval,
          },
          idleTimeoutMs: cp.tcp.idleTimeout,
          maxConnectionDurationMs: cp.tcp.maxConnectionDuration,
        },
        http: cp.http && {
          http1MaxPendingRequests: cp.http.http1MaxPendingRequests,
          http2MaxRequests: cp.http.http2MaxRequests,
          maxRequestsPerConnection: cp.http.maxRequestsPerConnection,
          maxRetries: cp.http.maxRetries,
          idleTimeoutMs: cp.http.idleTimeout,
          h2UpgradePolicy: cp.http.h2UpgradePolicy,
          useClientProtocol: cp.http.useClientProtocol,
          maxConcurrentStreams: cp.http.maxConcurrentStreams,
        },
      },
      outlierDetection: od && {
        consecutive5xxErrors: od.consecutive5xxErrors,
        // consecutiveErrors is Istio's deprecated name for gateway errors (502, 503, 504).
        consecutiveGatewayErrors: od.consecutiveGatewayErrors ?? od.consecutiveErrors,
        consecutiveLocalOriginFailures: od.consecutiveLocalOriginFailures,
        splitExternalLocalOriginErrors: od.splitExternalLocalOriginErrors,
        intervalMs: od.interval,
        baseEjectionTimeMs: od.baseEjectionTime,
        maxEjectionPercent: od.maxEjectionPercent,
        minHealthPercent: od.minHealthPercent,
      },
      tls: f.tls && {
        mode: f.tls.mode,
        clientCertificate: f.tls.clientCertificate,
        privateKey: f.tls.privateKey,
        caCertificates: f.tls.caCertificates,
        credentialName: f.tls.credentialName,
        subjectAltNames: f.tls.subjectAltNames ?? [],
        sni: f.tls.sni,
        insecureSkipVerify: f.tls.insecureSkipVerify,
      },
    };
  };
  if (p.tunnel) noEffect(b, r, [...path, "tunnel"], "trafficPolicy.tunnel");
  if (p.proxyProtocol) noEffect(b, r, [...path, "proxyProtocol"], "trafficPolicy.proxyProtocol");
  return {
    ...fields(p, path),
    portLevelSettings: (p.portLevelSettings ?? []).map((pl, i) => ({
      port: pl.port.number,
      ...fields(pl, [...path, "portLevelSettings", i]),
    })),
  };
}

export function lowerDestinationRule(r: Resource<DestinationRuleSpec>, b: ModelBuilder): void {
  const s = r.spec;
  b.model.destinationPolicies.push({
    name: r.name,
    namespace: r.namespace,
    host: s.host,
    trafficPolicy: lowerTrafficPolicy(r, b, s.trafficPolicy, ["spec", "trafficPolicy"]),
    subsets: (s.subsets ?? []).map((sub, i) => ({
      name: sub.name,
      labels: sub.labels ?? {},
      trafficPolicy: lowerTrafficPolicy(r, b, sub.trafficPolicy, ["spec", "subsets", i, "trafficPolicy"]),
    })),
    exportTo: s.exportTo ?? ["*"],
    workloadSelector: s.workloadSelector?.matchLabels,
    source: r.source,
  });
}

function seProtocol(p: string | undefined, name: string): Protocol {
  if (p === "MONGO") return "TCP";
  return (p as Protocol | undefined) ?? protocolFromPortName(name) ?? "TCP";
}

export function lowerServiceEntry(r: Resource<ServiceEntrySpec>, b: ModelBuilder): void {
  const s = r.spec;
  if (s.addresses?.length) noEffect(b, r, ["spec", "addresses"], "ServiceEntry addresses (virtual IPs)");
  s.ports?.forEach((p, i) => {
    if (p.protocol === "MONGO")
      noEffect(b, r, ["spec", "ports", i, "protocol"], "protocol MONGO (treated as TCP)");
  });
  for (const host of s.hosts) {
    b.model.services.push({
      hostname: host,
      namespace: r.namespace,
      ports: (s.ports ?? []).map((p) => ({
        number: p.number,
        name: p.name,
        protocol: seProtocol(p.protocol, p.name),
        targetPort: p.targetPort,
      })),
      selector: s.workloadSelector?.labels,
      location: s.location ?? "MESH_EXTERNAL",
      resolution: s.resolution ?? "NONE",
      endpoints: (s.endpoints ?? []).map((e) => ({
        address: e.address,
        ports: e.ports ?? {},
        labels: e.labels ?? {},
        weight: e.weight,
        serviceAccount: e.serviceAccount,
        locality: e.locality,
      })),
      exportTo: s.exportTo ?? ["*"],
      aliases: [],
      source: r.source,
    });
  }
}

export function lowerSidecar(r: Resource<SidecarSpec>, b: ModelBuilder): void {
  const s = r.spec;
  if (s.ingress) noEffect(b, r, ["spec", "ingress"], "Sidecar ingress");
  if (s.inboundConnectionPool)
    noEffect(b, r, ["spec", "inboundConnectionPool"], "Sidecar inboundConnectionPool");
  if (s.outboundTrafficPolicy?.egressProxy)
    noEffect(b, r, ["spec", "outboundTrafficPolicy", "egressProxy"], "outboundTrafficPolicy.egressProxy");
  s.egress?.forEach((e, i) => {
    if (e.bind !== undefined) noEffect(b, r, ["spec", "egress", i, "bind"], "egress.bind");
    if (e.captureMode !== undefined)
      noEffect(b, r, ["spec", "egress", i, "captureMode"], "egress.captureMode");
  });
  b.model.sidecars.push({
    name: r.name,
    namespace: r.namespace,
    selector: s.workloadSelector?.labels,
    egress: (s.egress ?? []).map((e) => ({ port: e.port?.number, hosts: e.hosts })),
    outboundTrafficPolicy: s.outboundTrafficPolicy?.mode,
    source: r.source,
  });
}
