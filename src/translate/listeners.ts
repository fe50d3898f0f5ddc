// Listeners. Sidecars (one process, explicit HTTP proxying in local mode) get:
// - `virtualOutbound` on <own address>:15001 (0.0.0.0 outside local mode): one HTTP connection
//   manager for every outbound port, routing by Host through RDS `http_proxy`. One listener, not one
//   per port, because applications reach it as HTTP_PROXY: the port is in the Host header, never in
//   the socket, and a per-port listener on <own address>:8080 would collide with the inbound one.
// - `0.0.0.0_<port>` per outbound TCP port (bind_to_port false): Istio's virtual listeners, reached
//   only through 15001's use_original_dst once traffic is redirected (network-namespace mode). TCP
//   has no Host header to proxy by, so local-mode clients dial TCP services' endpoints directly.
// - `<address>_<port>` per port the workload serves, bound on its address, forwarding to the
//   application through `inbound|<port>||` (HTTP through a connection manager, TCP through tcp_proxy).
//   Skein RateLimits selecting the workload put Envoy's local_ratelimit filter in front of the router
//   there, with one route (and token bucket) per RateLimit ahead of the default route.
// Proxyless gRPC clients get api_listeners named by the targets they dial (`xds:///<name>:<port>`).
// Proxyless gRPC servers with a workload also get their server listeners (grpc-server.ts).

import { selectorMatches } from "../model/hosts.js";
import type { ProxyIdentity, WorkloadInstance } from "../model/snapshot.js";
import type { RateLimitPolicy, Service, TcpRoute } from "../model/types.js";
import type { Listener } from "../xds/generated/envoy/config/listener/v3/Listener.js";
import type { Route } from "../xds/generated/envoy/config/route/v3/Route.js";
import type { HttpConnectionManager } from "../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.js";
import type { HttpFilter } from "../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.js";
import type { TcpProxy } from "../xds/generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.js";
import { withAccessLog } from "./access-log.js";
import { AUTHZ_PATH_NORMALIZATION, authzHttpFilters, authzNetworkFilters } from "./authz.js";
import { type InboundPort, inboundPorts } from "./clusters.js";
import { grpcServerListeners } from "./grpc-server.js";
import { jwtAuthnFilters } from "./jwt.js";
import { downstreamIstioTls, effectiveMtlsMode, tlsInspector } from "./mtls.js";
import {
  HTTP_PROXY_ROUTE,
  inboundClusterName,
  isHttp,
  listenerName,
  OUTBOUND_LISTENER,
  OUTBOUND_PORT,
  outboundClusterName,
  portRouteName,
  serviceNames,
} from "./names.js";
import { peerMetadataFilter } from "./peer-metadata.js";
import { resolveDestination, routeMatch } from "./routes.js";
import { endpointPort, type ProxyView } from "./scope.js";
import { hcmTracingField, tracingListenerMetadata } from "./tracing.js";
import { FILTER, typed } from "./typed.js";
import { adsConfigSource, bool, byName, compare, duration, socketAddress, u32 } from "./values.js";

export function buildListeners(view: ProxyView): Listener[] {
  if (view.proxy.kind === "proxyless")
    return [...proxylessListeners(view), ...grpcServerListeners(view)].sort(byName);
  const tcp = tcpOutboundListeners(view);
  return [outboundListener(view, tcp.length > 0), ...tcp, ...inboundListeners(view)].sort(byName);
}

/** Local mode: the proxy's workload has a loopback address of its own, which the sidecar binds. */
export function outboundAddress(proxy: ProxyIdentity): string {
  const a = proxy.workload?.address;
  return a?.startsWith("127.") ? a : "0.0.0.0";
}

/** Router last (Envoy and gRPC both require it). CORS before fault, as Istio orders them, so preflights are never faulted. */
function httpFilters(kind: ProxyIdentity["kind"]): HttpFilter[] {
  const fault: HttpFilter = {
    name: FILTER.fault,
    typedConfig: typed("envoy.extensions.filters.http.fault.v3.HTTPFault", {}),
  };
  const router: HttpFilter = {
    name: FILTER.router,
    typedConfig: typed("envoy.extensions.filters.http.router.v3.Router", {}),
  };
  // gRPC has no CORS filter and NACKs filters it does not know.
  if (kind === "proxyless") return [fault, router];
  const cors: HttpFilter = {
    name: FILTER.cors,
    typedConfig: typed("envoy.extensions.filters.http.cors.v3.Cors", {}),
  };
  return [cors, fault, router];
}

function hcmFilter(config: HttpConnectionManager) {
  return {
    name: FILTER.httpConnectionManager,
    typedConfig: typed(
      "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      config,
    ),
  };
}

function tcpProxyFilter(config: TcpProxy) {
  return {
    name: FILTER.tcpProxy,
    typedConfig: typed("envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", config),
  };
}

function outboundListener(view: ProxyView, handsOff: boolean): Listener {
  const address = outboundAddress(view.proxy);
  return {
    name: OUTBOUND_LISTENER,
    address: socketAddress(address, OUTBOUND_PORT),
    trafficDirection: "OUTBOUND",
    ...tracingListenerMetadata(view, "outbound"),
    // Hands redirected connections to the 0.0.0.0_<port> listener of their original port.
    ...(handsOff && { useOriginalDst: bool(true) }),
    filterChains: [
      {
        name: "virtualOutbound-http",
        filters: [
          hcmFilter({
            statPrefix: `outbound_${address}_${OUTBOUND_PORT}`,
            codecType: "AUTO",
            rds: { routeConfigName: HTTP_PROXY_ROUTE, configSource: adsConfigSource() },
            // HTTP_PROXY clients send absolute-form requests (`GET http://order-service:8080/x`); as Istio's http_proxy listener.
            httpProtocolOptions: { allowAbsoluteUrl: bool(true) },
            httpFilters: [peerMetadataFilter("outbound"), ...httpFilters("sidecar")],
            ...hcmTracingField(view, "outbound"),
            ...withAccessLog(view, "outbound"),
          }),
        ],
      },
    ],
  };
}

/**
 * One virtual listener per outbound TCP port. Without service addresses (Skein allocates none yet) a
 * connection to the port cannot say which service it wants, so a port that several visible services
 * share gets no listener.
 */
function tcpOutboundListeners(view: ProxyView): Listener[] {
  const byPort = new Map<number, Service[]>();
  for (const v of view.services)
    for (const p of v.ports)
      if (!isHttp(p.protocol)) byPort.set(p.number, [...(byPort.get(p.number) ?? []), v.service]);
  const out: Listener[] = [];
  for (const [port, services] of [...byPort].sort((a, b) => a[0] - b[0])) {
    const service = services[0];
    if (!service || services.length > 1) continue;
    out.push({
      name: listenerName("0.0.0.0", port),
      address: socketAddress("0.0.0.0", port),
      bindToPort: bool(false),
      trafficDirection: "OUTBOUND",
      filterChains: [
        {
          filters: [tcpProxyFilter({ ...tcpRoute(view, service, port), ...withAccessLog(view, "outbound") })],
        },
      ],
    });
  }
  return out;
}

/** The first TCP route of the service's route tables that applies on this port and to this proxy, else the default cluster. */
function tcpRoute(view: ProxyView, service: Service, port: number): TcpProxy {
  const statPrefix = outboundClusterName(port, undefined, service.hostname);
  const labels = view.proxy.workload?.labels;
  const applies = (m: TcpRoute["matches"][number]) =>
    (m.port === undefined || m.port === port) &&
    // SNI matches need a TLS inspector and per-SNI filter chains: not translated yet.
    !m.sniHosts?.length &&
    (!m.sourceLabels || (labels !== undefined && selectorMatches(m.sourceLabels, labels)));
  for (const table of view.routeTables(service)) {
    for (const r of table.tcp) {
      if (r.destinations.length === 0 || !(r.matches.length === 0 || r.matches.some(applies))) continue;
      const weighted = r.destinations.filter((d) => d.weight > 0);
      const clusters = (weighted.length > 0 ? weighted : r.destinations.slice(0, 1)).map((d) => ({
        name: resolveDestination(view, table, d, port).cluster,
        weight: d.weight,
      }));
      const [only] = clusters;
      if (only && clusters.length === 1) return { statPrefix, cluster: only.name };
      return { statPrefix, weightedClusters: { clusters } };
    }
  }
  return { statPrefix, cluster: statPrefix };
}

/**
 * The RateLimits for requests the workload serves on `inbound`: in its namespace, selecting it by label or
 * through their Service, for this port or any. Those with a match first, then by name: the first that
 * matches a request counts it, so a RateLimit for every request comes after the narrower ones.
 */
function rateLimitsFor(view: ProxyView, inbound: InboundPort): RateLimitPolicy[] {
  const workload = view.proxy.workload;
  if (!workload) return [];
  return view.model.rateLimits
    .filter((rl) => {
      if (rl.namespace !== workload.namespace) return false;
      if (rl.port !== undefined && rl.port !== inbound.port && rl.port !== inbound.servicePort.number)
        return false;
      if (rl.selector) return selectorMatches(rl.selector, workload.labels);
      const service = view.index.find(rl.service ?? "", rl.namespace)[0];
      return (
        service?.selector !== undefined &&
        service.namespace === workload.namespace &&
        selectorMatches(service.selector, workload.labels) &&
        service.ports.some((p) => endpointPort(workload.ports, p) === inbound.port)
      );
    })
    .sort((a, b) => Number(!a.match) - Number(!b.match) || compare(a.name, b.name));
}

/** A RateLimit's route: its match, the route to the application, and its token bucket (always enforced). */
function rateLimitRoute(rl: RateLimitPolicy, cluster: string): Route {
  const all = { numerator: 100, denominator: "HUNDRED" as const };
  return {
    name: `ratelimit/${rl.name}`,
    match: routeMatch(rl.match),
    route: { cluster, timeout: duration(0) },
    typedPerFilterConfig: {
      [FILTER.localRateLimit]: typed("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit", {
        statPrefix: `ratelimit.${rl.namespace}.${rl.name}`,
        tokenBucket: {
          maxTokens: rl.tokenBucket.maxTokens,
          tokensPerFill: u32(rl.tokenBucket.tokensPerFill),
          fillInterval: duration(rl.tokenBucket.fillIntervalMs),
        },
        filterEnabled: { defaultValue: all, runtimeKey: "local_rate_limit_enabled" },
        filterEnforced: { defaultValue: all, runtimeKey: "local_rate_limit_enforced" },
        enableXRatelimitHeaders: "DRAFT_VERSION_03",
      }),
    },
  };
}

function inboundListeners(view: ProxyView): Listener[] {
  const workload = view.proxy.workload;
  if (!workload) return [];
  return inboundPorts(view, workload).map((inbound) => {
    const { servicePort, port } = inbound;
    const cluster = inboundClusterName(port);
    const statPrefix = `inbound_${workload.address}_${port}`;
    const limits = isHttp(servicePort.protocol) ? rateLimitsFor(view, inbound) : [];
    const router: HttpFilter = {
      name: FILTER.router,
      typedConfig: typed("envoy.extensions.filters.http.router.v3.Router", {}),
    };
    // The filter's own config has no bucket: only the RateLimit routes limit anything.
    const limiter: HttpFilter = {
      name: FILTER.localRateLimit,
      typedConfig: typed("envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit", {
        statPrefix: "http_local_rate_limiter",
      }),
    };
    const authz = isHttp(servicePort.protocol) ? authzHttpFilters(view, inbound) : [];
    const filter = isHttp(servicePort.protocol)
      ? hcmFilter({
          statPrefix,
          codecType: "AUTO",
          // Inline: fixed routes, nothing for RDS to update.
          routeConfig: {
            name: cluster,
            virtualHosts: [
              {
                name: `inbound|http|${port}`,
                domains: ["*"],
                routes: [
                  ...limits.map((rl) => rateLimitRoute(rl, cluster)),
                  { name: "default", match: { prefix: "/" }, route: { cluster, timeout: duration(0) } },
                ],
              },
            ],
            validateClusters: bool(false),
          },
          // jwt_authn first: authorization (RBAC) reads the principal it establishes.
          httpFilters: [
            peerMetadataFilter("inbound"),
            ...jwtAuthnFilters(view),
            ...authz,
            ...(limits.length > 0 ? [limiter] : []),
            router,
          ],
          // Policies compare paths: normalise them as the application will read them (authz.ts).
          ...(authz.length > 0 && AUTHZ_PATH_NORMALIZATION),
          ...hcmTracingField(view, "inbound"),
          ...withAccessLog(view, "inbound"),
        })
      : tcpProxyFilter({ statPrefix: cluster, cluster, ...withAccessLog(view, "inbound") });
    return {
      name: listenerName(workload.address, port),
      address: socketAddress(workload.address, port),
      trafficDirection: "INBOUND",
      ...(isHttp(servicePort.protocol) && tracingListenerMetadata(view, "inbound")),
      ...inboundChains(view, workload, port, isHttp(servicePort.protocol), [
        ...(isHttp(servicePort.protocol) ? [] : authzNetworkFilters(view, inbound)),
        filter,
      ]),
    };
  });
}

/**
 * The inbound filter chains for the PeerAuthentication mode in force on the port (mtls.ts): mTLS only (STRICT),
 * mTLS or plaintext told apart by the tls_inspector (PERMISSIVE), or plaintext only (DISABLE).
 */
function inboundChains(
  view: ProxyView,
  workload: WorkloadInstance,
  port: number,
  http: boolean,
  filters: NonNullable<Listener["filterChains"]>[number]["filters"],
): Pick<Listener, "filterChains" | "listenerFilters"> {
  const mode = effectiveMtlsMode(view.model, workload, port);
  if (mode === "DISABLE") return { filterChains: [{ filters }] };
  const tls = {
    name: "inbound-mtls",
    filterChainMatch: { transportProtocol: "tls" },
    transportSocket: downstreamIstioTls(http),
    filters,
  };
  const plaintext = {
    name: "inbound-plaintext",
    filterChainMatch: { transportProtocol: "raw_buffer" },
    filters,
  };
  return {
    listenerFilters: [tlsInspector()],
    filterChains: mode === "STRICT" ? [tls] : [tls, plaintext],
  };
}

/**
 * One api_listener per name a gRPC client may dial, as Istio serves proxyless gRPC: `<fqdn>:<port>`,
 * `<name>.<namespace>.svc:<port>`, `<name>.<namespace>:<port>`, `<name>:<port>` in the client's own
 * namespace, and aliases. Each points at the port's RouteConfiguration over RDS (shared by all the
 * port's listeners; gRPC matches the virtual host by the dialled name).
 */
function proxylessListeners(view: ProxyView): Listener[] {
  const out = new Map<string, Listener>();
  for (const v of view.services) {
    for (const p of v.ports) {
      if (!isHttp(p.protocol)) continue;
      for (const n of serviceNames(v.service, view.proxy.namespace)) {
        const name = `${n}:${p.number}`;
        if (out.has(name)) continue;
        out.set(name, {
          name,
          apiListener: {
            apiListener: typed(
              "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
              {
                statPrefix: name,
                rds: { routeConfigName: portRouteName(p.number), configSource: adsConfigSource() },
                httpFilters: httpFilters("proxyless"),
              },
            ),
          },
        });
      }
    }
  }
  return [...out.values()];
}
