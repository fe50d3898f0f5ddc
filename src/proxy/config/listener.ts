// Listener (LDS) → Listener: one socket address, one filter chain ending in an HTTP connection manager
// (filters, RDS name or inline routes) or a TCP proxy. The sidecar serves exactly one chain per listener,
// so it refuses chains it would have to choose between and match criteria it cannot evaluate.
import type { ConfigSource__Output } from "../../xds/generated/envoy/config/core/v3/ConfigSource.js";
import type { FilterChain__Output } from "../../xds/generated/envoy/config/listener/v3/FilterChain.js";
import type { Listener__Output } from "../../xds/generated/envoy/config/listener/v3/Listener.js";
import type { HttpConnectionManager__Output } from "../../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.js";
import type { TcpProxy__Output } from "../../xds/generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.js";
import { HTTP_CONNECTION_MANAGER } from "../../xds/protos.js";
import { At, anyTypeName, decodeAny, msOr, names, onlyFields, resourceLabel, wrapped } from "./fields.js";
import { checkTransportSocket, compileHttpFilters } from "./filters.js";
import { clustersOf, compileRouteConfiguration, validatesClusters } from "./route.js";
import type { HttpListenerConfig, Listener, TcpListenerConfig } from "./types.js";

export const TCP_PROXY = "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy";
/** Envoy's idle timeout for downstream HTTP connections and for TCP proxy sessions when unset. */
export const DEFAULT_IDLE_TIMEOUT_MS = 3_600_000;

/** What the store needs besides the listener: which clusters exist, for inline routes that validate them. */
export interface ListenerContext {
  clusters?: ReadonlySet<string> | ReadonlyMap<string, unknown>;
}

/** RDS and inline routes come over the one ADS stream (or `self`, which is the same stream here). */
export function checkAdsSource(source: ConfigSource__Output | null, at: At): void {
  if (!source) return;
  if (
    source.configSourceSpecifier !== undefined &&
    source.configSourceSpecifier !== "ads" &&
    source.configSourceSpecifier !== "self"
  )
    at.unsupported("the Skein sidecar takes its configuration from the ADS stream only (ads or self)");
  onlyFields(
    "envoy.config.core.v3.ConfigSource",
    source,
    names("ads", "self", "resourceApiVersion", "initialFetchTimeout", "authorities"),
    at,
  );
  if (source.resourceApiVersion === "V2")
    at.field("resourceApiVersion").unsupported("xDS v2 is not supported");
}

// Access logs and tracing belong to the telemetry layer; the server header, user agent and request-id
// preservation are cosmetic; 100-continue and error-on-invalid-message follow Node's HTTP server.
const HCM_FIELDS = names(
  "codecType",
  "statPrefix",
  "rds",
  "routeConfig",
  "httpFilters",
  "httpProtocolOptions",
  "commonHttpProtocolOptions",
  "generateRequestId",
  "upgradeConfigs",
  "accessLog",
  "accessLogFlushInterval",
  "flushAccessLogOnNewRequest",
  "accessLogOptions",
  "tracing",
  "serverName",
  "serverHeaderTransformation",
  "addUserAgent",
  "preserveExternalRequestId",
  "proxy_100Continue",
  "streamErrorOnInvalidHttpMessage",
  "representIpv4RemoteAddressAsIpv4MappedIpv6",
);

function httpConnectionManager(
  hcm: HttpConnectionManager__Output,
  at: At,
  ctx: ListenerContext,
): HttpListenerConfig {
  if (hcm.codecType !== "AUTO")
    at.field("codecType").unsupported(
      `${hcm.codecType}: only AUTO is supported (the sidecar detects the protocol)`,
    );
  if (hcm.routeSpecifier === "scopedRoutes")
    at.field("scopedRoutes").unsupported(
      "scoped routes are not supported by the Skein sidecar; use rds or route_config",
    );
  onlyFields(HTTP_CONNECTION_MANAGER, hcm, HCM_FIELDS, at);
  const out: HttpListenerConfig = {
    kind: "http",
    statPrefix: hcm.statPrefix,
    filters: compileHttpFilters(hcm.httpFilters, at.field("httpFilters")),
    acceptAbsoluteUrls: true,
    generateRequestId: wrapped(hcm.generateRequestId, true),
    idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
    upgrades: new Set(),
  };
  if (hcm.routeSpecifier === "rds" && hcm.rds) {
    const rat = at.field("rds");
    onlyFields(
      "envoy.extensions.filters.network.http_connection_manager.v3.Rds",
      hcm.rds,
      names("configSource", "routeConfigName"),
      rat,
    );
    checkAdsSource(hcm.rds.configSource, rat.field("configSource"));
    if (hcm.rds.routeConfigName === "") rat.field("routeConfigName").invalid("must not be empty");
    out.routeConfigName = hcm.rds.routeConfigName;
  } else if (hcm.routeSpecifier === "routeConfig" && hcm.routeConfig) {
    const rat = at.field("routeConfig");
    out.routes = compileRouteConfiguration(hcm.routeConfig, rat);
    if (ctx.clusters && validatesClusters(hcm.routeConfig, true)) {
      for (const c of clustersOf(out.routes))
        if (!ctx.clusters.has(c))
          rat.invalid(
            `routes to unknown cluster ${JSON.stringify(c)} (validate_clusters is on: set it false to allow this)`,
          );
    }
  } else at.invalid("route_specifier is required (rds or route_config)");
  if (hcm.httpProtocolOptions) {
    const pat = at.field("httpProtocolOptions");
    onlyFields(
      "envoy.config.core.v3.Http1ProtocolOptions",
      hcm.httpProtocolOptions,
      names("allowAbsoluteUrl"),
      pat,
    );
    // Envoy accepts absolute-form targets unless told not to.
    out.acceptAbsoluteUrls = wrapped(hcm.httpProtocolOptions.allowAbsoluteUrl, true);
  }
  if (hcm.commonHttpProtocolOptions) {
    const cat = at.field("commonHttpProtocolOptions");
    // max_headers_count is enforced by Node's own header limits.
    onlyFields(
      "envoy.config.core.v3.HttpProtocolOptions",
      hcm.commonHttpProtocolOptions,
      names("idleTimeout", "maxHeadersCount"),
      cat,
    );
    out.idleTimeoutMs = msOr(
      hcm.commonHttpProtocolOptions.idleTimeout,
      cat.field("idleTimeout"),
      DEFAULT_IDLE_TIMEOUT_MS,
    );
  }
  hcm.upgradeConfigs.forEach((u, i) => {
    const uat = at.field("upgradeConfigs").index(i);
    onlyFields(
      "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig",
      u,
      names("upgradeType", "enabled"),
      uat,
    );
    if (u.upgradeType === "") uat.field("upgradeType").invalid("must not be empty");
    if (wrapped(u.enabled, true)) out.upgrades.add(u.upgradeType.toLowerCase());
  });
  return out;
}

// Access logs belong to the telemetry layer.
const TCP_PROXY_FIELDS = names(
  "statPrefix",
  "cluster",
  "weightedClusters",
  "idleTimeout",
  "accessLog",
  "accessLogFlushInterval",
  "flushAccessLogOnConnected",
  "accessLogOptions",
);

function tcpProxy(t: TcpProxy__Output, at: At): TcpListenerConfig {
  onlyFields(TCP_PROXY, t, TCP_PROXY_FIELDS, at);
  if (t.statPrefix === "") at.field("statPrefix").invalid("must not be empty");
  let clusters: TcpListenerConfig["clusters"];
  if (t.clusterSpecifier === "cluster") {
    if (!t.cluster) return at.field("cluster").invalid("must not be empty");
    clusters = [{ name: t.cluster, weight: 1 }];
  } else if (t.clusterSpecifier === "weightedClusters" && t.weightedClusters) {
    const wat = at.field("weightedClusters");
    onlyFields(`${TCP_PROXY}.WeightedCluster`, t.weightedClusters, names("clusters"), wat);
    if (t.weightedClusters.clusters.length === 0)
      wat.field("clusters").invalid("at least one cluster is required");
    clusters = t.weightedClusters.clusters.map((c, i) => {
      const cat = wat.field("clusters").index(i);
      onlyFields(`${TCP_PROXY}.WeightedCluster.ClusterWeight`, c, names("name", "weight"), cat);
      if (c.name === "") cat.field("name").invalid("must not be empty");
      if (c.weight < 1) cat.field("weight").invalid("must be at least 1");
      return { name: c.name, weight: c.weight };
    });
  } else return at.invalid("cluster_specifier is required (cluster or weighted_clusters)");
  return {
    kind: "tcp",
    statPrefix: t.statPrefix,
    clusters,
    idleTimeoutMs: msOr(t.idleTimeout, at.field("idleTimeout"), DEFAULT_IDLE_TIMEOUT_MS),
  };
}

/**
 * The match criteria every connection to this listener satisfies, which is all one chain can have:
 * its own destination port and, without TLS, the raw_buffer transport protocol.
 */
function checkChainMatch(chain: FilterChain__Output, port: number, at: At): void {
  const m = chain.filterChainMatch;
  if (!m) return;
  const mat = at.field("filterChainMatch");
  if (m.destinationPort && m.destinationPort.value !== port)
    mat
      .field("destinationPort")
      .unsupported(
        `port ${m.destinationPort.value} differs from the listener's ${port}; the Skein sidecar serves one filter chain per listener`,
      );
  if (m.transportProtocol !== "" && m.transportProtocol !== "raw_buffer")
    mat
      .field("transportProtocol")
      .unsupported(`cannot match transport protocol ${m.transportProtocol} (the sidecar speaks plaintext)`);
  for (const f of [
    "prefixRanges",
    "addressSuffix",
    "suffixLen",
    "directSourcePrefixRanges",
    "sourceType",
    "sourcePrefixRanges",
    "sourcePorts",
    "serverNames",
    "applicationProtocols",
  ]) {
    const v = (m as unknown as Record<string, unknown>)[f];
    const set = Array.isArray(v) ? v.length > 0 : v !== null && v !== undefined && v !== "" && v !== "ANY";
    if (set)
      mat
        .field(f)
        .unsupported(
          "cannot evaluate this filter chain match criterion; the Skein sidecar serves one filter chain per listener",
        );
  }
}

// A chain's metadata and name are labels; transport_socket_connect_timeout only bounds a TLS handshake.
const FILTER_CHAIN_FIELDS = names(
  "filterChainMatch",
  "filters",
  "name",
  "metadata",
  "transportSocket",
  "transportSocketConnectTimeout",
);

function filterChain(
  chain: FilterChain__Output,
  port: number,
  at: At,
  ctx: ListenerContext,
): Listener["config"] {
  checkTransportSocket(chain.transportSocket, at.field("transportSocket"));
  onlyFields("envoy.config.listener.v3.FilterChain", chain, FILTER_CHAIN_FIELDS, at);
  checkChainMatch(chain, port, at);
  if (chain.filters.length === 0) at.field("filters").invalid("a filter chain needs a terminal filter");
  let config: Listener["config"] | undefined;
  chain.filters.forEach((f, i) => {
    const fat = at.field("filters").index(i);
    if (f.configType === "configDiscovery")
      fat
        .field("configDiscovery")
        .unsupported("filter config discovery (ECDS) is not supported by the Skein sidecar");
    const typeName = anyTypeName(f.typedConfig);
    if (typeName !== HTTP_CONNECTION_MANAGER && typeName !== TCP_PROXY)
      fat.unsupported(`unsupported filter ${f.name || typeName}`);
    if (i !== chain.filters.length - 1)
      fat.invalid(`${f.name || typeName} is a terminal filter and must be the last one of its chain`);
    const tat = fat.field("typedConfig");
    const decoded = decodeAny(f.typedConfig, tat);
    config =
      typeName === TCP_PROXY
        ? tcpProxy(decoded.message as unknown as TcpProxy__Output, tat)
        : httpConnectionManager(decoded.message as unknown as HttpConnectionManager__Output, tat, ctx);
  });
  return config as Listener["config"];
}

// Socket tuning Node does not expose (backlog, reuse_port, buffer limits, balancing, accept batching) and
// labels (metadata, stat_prefix, drain type) change nothing a request sees; listener filter timeouts have
// no listener filters to time.
const LISTENER_FIELDS = names(
  "name",
  "address",
  "filterChains",
  "defaultFilterChain",
  "useOriginalDst",
  "bindToPort",
  "deprecatedV1",
  "trafficDirection",
  "metadata",
  "statPrefix",
  "drainType",
  "perConnectionBufferLimitBytes",
  "tcpBacklogSize",
  "reusePort",
  "enableReusePort",
  "connectionBalanceConfig",
  "maxConnectionsToAcceptPerSocketEvent",
  "ignoreGlobalConnLimit",
  "bypassOverloadManager",
  "listenerFiltersTimeout",
  "continueOnListenerFiltersTimeout",
  "accessLog",
);

const DIRECTION = { INBOUND: "inbound", OUTBOUND: "outbound", UNSPECIFIED: "unspecified" } as const;

/** Listener → Listener, or a SkeinError naming the field (the NACK message). */
export function compileListener(l: Listener__Output, ctx: ListenerContext = {}): Listener {
  const at = new At(resourceLabel("Listener", l.name));
  if (l.name === "") at.field("name").invalid("must not be empty");
  if (l.apiListener)
    at.field("apiListener").unsupported(
      "API listeners are for proxyless gRPC clients; the Skein sidecar serves socket listeners",
    );
  const [first] = l.listenerFilters;
  if (first)
    at.field("listenerFilters")
      .index(0)
      .unsupported(`unsupported listener filter ${first.name || anyTypeName(first.typedConfig)}`);
  onlyFields("envoy.config.listener.v3.Listener", l, LISTENER_FIELDS, at);
  if (l.deprecatedV1)
    onlyFields(
      "envoy.config.listener.v3.Listener.DeprecatedV1",
      l.deprecatedV1,
      names("bindToPort"),
      at.field("deprecatedV1"),
    );

  const aat = at.field("address");
  if (!l.address) return aat.invalid("is required");
  if (l.address.address !== "socketAddress" || !l.address.socketAddress)
    return aat.unsupported("only socket addresses are supported (no pipes or internal addresses)");
  const sat = aat.field("socketAddress");
  const sa = l.address.socketAddress;
  // ipv4_compat only widens an IPv6 wildcard bind.
  onlyFields(
    "envoy.config.core.v3.SocketAddress",
    sa,
    names("protocol", "address", "portValue", "ipv4Compat"),
    sat,
  );
  if (sa.protocol !== "TCP") sat.field("protocol").unsupported("only TCP listeners are supported");
  if (sa.address === "") sat.field("address").invalid("must not be empty");
  if (sa.portSpecifier !== "portValue") sat.invalid("port_value is required");
  const port = sa.portValue ?? 0;

  const chains =
    l.filterChains.length > 0 ? l.filterChains : l.defaultFilterChain ? [l.defaultFilterChain] : [];
  if (chains.length === 0) at.field("filterChains").invalid("a listener needs a filter chain");
  if (l.filterChains.length > 1)
    at.field("filterChains").unsupported(
      `${l.filterChains.length} filter chains: the Skein sidecar serves exactly one filter chain per listener`,
    );
  // With one chain and no criteria it cannot evaluate, every connection takes that chain: the default is unreachable.
  const chainAt =
    l.filterChains.length > 0 ? at.field("filterChains").index(0) : at.field("defaultFilterChain");
  if (l.filterChains.length > 0 && l.defaultFilterChain)
    checkTransportSocket(
      l.defaultFilterChain.transportSocket,
      at.field("defaultFilterChain").field("transportSocket"),
    );
  const config = filterChain(chains[0] as FilterChain__Output, port, chainAt, ctx);

  const out: Listener = {
    name: l.name,
    address: sa.address,
    port,
    direction: DIRECTION[l.trafficDirection as keyof typeof DIRECTION] ?? "unspecified",
    bind: wrapped(l.bindToPort, wrapped(l.deprecatedV1?.bindToPort, true)),
    config,
  };
  if (l.useOriginalDst?.value) out.useOriginalDst = true;
  return out;
}

/** The RDS names a listener uses. */
export function routeNamesOf(listener: Listener): string[] {
  return listener.config.kind === "http" && listener.config.routeConfigName
    ? [listener.config.routeConfigName]
    : [];
}
