// Listener (LDS) → Listener: one socket address, one filter chain ending in an HTTP connection manager
// (filters, RDS name or inline routes) or a TCP proxy. The sidecar serves exactly one chain per listener,
// so it refuses chains it would have to choose between and match criteria it cannot evaluate.

import { isDeepStrictEqual } from "node:util";
import type { ConfigSource__Output } from "../../xds/generated/envoy/config/core/v3/ConfigSource.js";
import type { FilterChain__Output } from "../../xds/generated/envoy/config/listener/v3/FilterChain.js";
import type { Listener__Output } from "../../xds/generated/envoy/config/listener/v3/Listener.js";
import type { HttpConnectionManager__Output } from "../../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.js";
import type { TcpProxy__Output } from "../../xds/generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.js";
import { HTTP_CONNECTION_MANAGER } from "../../xds/protos.js";
import { accessLogOf, compileAccessLogs } from "./access-log.js";
import { At, anyTypeName, decodeAny, msOr, names, onlyFields, resourceLabel, wrapped } from "./fields.js";
import { compileHttpFilters } from "./filters.js";
import { compilePathNormalization, PATH_NORMALIZATION_FIELDS } from "./path-normalization.js";
import { compileNetworkRbacFilter, NETWORK_RBAC_TYPE, withNetworkRbac } from "./rbac.js";
import type { NetworkRbacConfig } from "./rbac-types.js";
import { clustersOf, compileRouteConfiguration, validatesClusters } from "./route.js";
import { compileTransportSocket, TLS_INSPECTOR } from "./tls.js";
import { applyTracingMetadata, compileHcmTracing, TRACING_FILTER } from "./tracing.js";
import type {
  ChainTransport,
  HttpListenerConfig,
  Listener,
  ListenerTransport,
  TcpListenerConfig,
} from "./types.js";

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
  ...PATH_NORMALIZATION_FIELDS,
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
  const pathNormalization = compilePathNormalization(hcm, at);
  if (pathNormalization) out.pathNormalization = pathNormalization;
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
  // The tracing filter goes first, so its span covers the whole chain.
  if (hcm.tracing) {
    out.tracing = compileHcmTracing(hcm.tracing, at.field("tracing"));
    out.filters.unshift({ name: TRACING_FILTER, config: out.tracing });
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
  const accessLog = compileAccessLogs(hcm.accessLog, at.field("accessLog"));
  if (accessLog) out.accessLog = accessLog;
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
    ...accessLogOf(compileAccessLogs(t.accessLog, at.field("accessLog"))),
  };
}

/**
 * The match criteria the sidecar evaluates: its own destination port (which every connection has) and the
 * transport protocol ("tls" or "raw_buffer", told apart by the tls_inspector). Returns the protocol ("" any).
 */
function checkChainMatch(chain: FilterChain__Output, port: number, at: At): "" | "tls" | "raw_buffer" {
  const m = chain.filterChainMatch;
  if (!m) return "";
  const mat = at.field("filterChainMatch");
  if (m.destinationPort && m.destinationPort.value !== port)
    mat
      .field("destinationPort")
      .unsupported(
        `port ${m.destinationPort.value} differs from the listener's ${port}; the Skein sidecar serves one filter chain per listener`,
      );
  if (m.transportProtocol !== "" && m.transportProtocol !== "raw_buffer" && m.transportProtocol !== "tls")
    mat
      .field("transportProtocol")
      .unsupported(
        `cannot match transport protocol ${m.transportProtocol} (tls and raw_buffer can be matched)`,
      );
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
          "cannot evaluate this filter chain match criterion; the Skein sidecar chooses filter chains by transport_protocol only",
        );
  }
  return m.transportProtocol as "" | "tls" | "raw_buffer";
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

interface CompiledChain {
  protocol: "" | "tls" | "raw_buffer";
  transport: ChainTransport;
  config: Listener["config"];
  at: At;
}

function filterChain(chain: FilterChain__Output, port: number, at: At, ctx: ListenerContext): CompiledChain {
  const tls = compileTransportSocket(chain.transportSocket, "downstream", at.field("transportSocket"));
  onlyFields("envoy.config.listener.v3.FilterChain", chain, FILTER_CHAIN_FIELDS, at);
  const protocol = checkChainMatch(chain, port, at);
  if (chain.filters.length === 0) at.field("filters").invalid("a filter chain needs a terminal filter");
  let config: Listener["config"] | undefined;
  const rbac: NetworkRbacConfig[] = [];
  chain.filters.forEach((f, i) => {
    const fat = at.field("filters").index(i);
    if (f.configType === "configDiscovery")
      fat
        .field("configDiscovery")
        .unsupported("filter config discovery (ECDS) is not supported by the Skein sidecar");
    const typeName = anyTypeName(f.typedConfig);
    if (typeName === NETWORK_RBAC_TYPE) {
      rbac.push(compileNetworkRbacFilter(f, i === chain.filters.length - 1, fat));
      return;
    }
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
  if (config) config = withNetworkRbac(config, rbac, at.field("filters"));
  return {
    protocol,
    transport: tls ? { kind: "tls", context: tls } : { kind: "plaintext" },
    config: config as Listener["config"],
    at,
  };
}

/**
 * Which chain serves each detected transport protocol: a chain matching it exactly, else one without a
 * transport_protocol, else the default chain, else none (the connection is closed, as Envoy's "no matching
 * filter chain"). The sidecar runs one filter configuration per listener, so the chains it reaches must carry
 * the same filters (PERMISSIVE's tls and raw_buffer chains do); they may differ in their transport socket.
 */
function listenerTransport(
  chains: CompiledChain[],
  fallback: CompiledChain | undefined,
  inspect: boolean,
  at: At,
): { config: Listener["config"]; transport?: ListenerTransport } {
  const slots: Record<"tls" | "raw_buffer", CompiledChain | undefined> = {
    tls: undefined,
    raw_buffer: undefined,
  };
  const fill = (c: CompiledChain, protocols: ("tls" | "raw_buffer")[], why: string) => {
    for (const p of protocols) {
      const taken = slots[p];
      if (taken && taken.protocol === c.protocol)
        at.field("filterChains").unsupported(
          `${chains.length} filter chains: ${why}; the Skein sidecar chooses filter chains by transport_protocol (tls, raw_buffer) only`,
        );
      slots[p] ??= c;
    }
  };
  for (const c of chains)
    if (c.protocol !== "") fill(c, [c.protocol], `two match transport_protocol ${c.protocol}`);
  for (const c of chains) if (c.protocol === "") fill(c, ["tls", "raw_buffer"], "two have no match criteria");
  if (fallback) {
    slots.tls ??= fallback;
    slots.raw_buffer ??= fallback;
  }
  // Without the inspector every connection is raw_buffer: the tls slot is unreachable.
  const reached = [...new Set(inspect ? [slots.tls, slots.raw_buffer] : [slots.raw_buffer])].filter(
    (c): c is CompiledChain => c !== undefined,
  );
  const [first] = reached;
  const base = first ?? chains[0] ?? fallback;
  if (!base) return at.field("filterChains").invalid("a listener needs a filter chain");
  for (const c of reached.slice(1))
    if (!isDeepStrictEqual(c.config, base.config))
      c.at
        .field("filters")
        .unsupported(
          "the filter chains of one listener must carry the same filters (only their transport_protocol and transport socket may differ)",
        );
  const of = (c: CompiledChain | undefined): ChainTransport => c?.transport ?? { kind: "none" };
  const transport: ListenerTransport = { inspect, tls: of(slots.tls), rawBuffer: of(slots.raw_buffer) };
  const plain = !inspect && transport.rawBuffer.kind === "plaintext";
  return plain ? { config: base.config } : { config: base.config, transport };
}

// Socket tuning Node does not expose (backlog, reuse_port, buffer limits, balancing, accept batching) and
// labels (metadata, stat_prefix, drain type) change nothing a request sees; listener filter timeouts have
// no listener filters to time.
const LISTENER_FIELDS = names(
  "name",
  "listenerFilters",
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
  let inspect = false;
  for (const [i, f] of l.listenerFilters.entries()) {
    const fat = at.field("listenerFilters").index(i);
    const typeName = anyTypeName(f.typedConfig);
    if (typeName !== TLS_INSPECTOR)
      fat.unsupported(`unsupported listener filter ${f.name || typeName} (the sidecar runs tls_inspector)`);
    onlyFields("envoy.config.listener.v3.ListenerFilter", f, names("name", "typedConfig"), fat);
    // The read buffer size only bounds how much Envoy peeks at; JA3/JA4 fingerprints are telemetry.
    onlyFields(
      TLS_INSPECTOR,
      decodeAny(f.typedConfig, fat.field("typedConfig")).message,
      names("enableJa3Fingerprinting", "enableJa4Fingerprinting", "initialReadBufferSize"),
      fat.field("typedConfig"),
    );
    inspect = true;
  }
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

  if (l.filterChains.length === 0 && !l.defaultFilterChain)
    at.field("filterChains").invalid("a listener needs a filter chain");
  const chains = l.filterChains.map((c, i) => filterChain(c, port, at.field("filterChains").index(i), ctx));
  const fallback = l.defaultFilterChain
    ? filterChain(l.defaultFilterChain, port, at.field("defaultFilterChain"), ctx)
    : undefined;
  if (fallback && fallback.protocol !== "")
    at.field("defaultFilterChain")
      .field("filterChainMatch")
      .invalid("the default filter chain takes no match");
  const { config, transport } = listenerTransport(chains, fallback, inspect, at);
  if (config.kind === "http" && config.tracing) applyTracingMetadata(config.tracing, l.metadata, at);

  const out: Listener = {
    name: l.name,
    address: sa.address,
    port,
    direction: DIRECTION[l.trafficDirection as keyof typeof DIRECTION] ?? "unspecified",
    bind: wrapped(l.bindToPort, wrapped(l.deprecatedV1?.bindToPort, true)),
    config,
  };
  if (transport) out.transport = transport;
  if (l.useOriginalDst?.value) out.useOriginalDst = true;
  return out;
}

/** The RDS names a listener uses. */
export function routeNamesOf(listener: Listener): string[] {
  return listener.config.kind === "http" && listener.config.routeConfigName
    ? [listener.config.routeConfigName]
    : [];
}
