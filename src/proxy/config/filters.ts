// The HTTP filters the Skein sidecar runs (router, fault, cors): their typed_config in a connection manager's
// http_filters, and their per-route typed_per_filter_config, compiled into tagged plain objects. Anything else
// is refused unless the control plane marked it optional.
import type { FaultDelay__Output } from "../../xds/generated/envoy/extensions/filters/common/fault/v3/FaultDelay.js";
import type { CorsPolicy__Output } from "../../xds/generated/envoy/extensions/filters/http/cors/v3/CorsPolicy.js";
import type { FaultAbort__Output } from "../../xds/generated/envoy/extensions/filters/http/fault/v3/FaultAbort.js";
import type { HTTPFault__Output } from "../../xds/generated/envoy/extensions/filters/http/fault/v3/HTTPFault.js";
import type { Router__Output } from "../../xds/generated/envoy/extensions/filters/http/router/v3/Router.js";
import type { HttpFilter__Output } from "../../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.js";
import { ProxyConfigCodes } from "./codes.js";
import {
  type At,
  anyTypeName,
  decodeAny,
  names,
  onlyFields,
  percentOf,
  positiveDurationMs,
  wrapped,
} from "./fields.js";
import { compileHeaderMatcher, compileStringMatcher } from "./matchers.js";
import type {
  CorsConfig,
  CorsFilterConfig,
  FaultConfig,
  HttpFilter,
  HttpFilterConfig,
  RouterConfig,
} from "./types.js";

export const ROUTER_TYPE = "envoy.extensions.filters.http.router.v3.Router";
export const FAULT_TYPE = "envoy.extensions.filters.http.fault.v3.HTTPFault";
export const CORS_TYPE = "envoy.extensions.filters.http.cors.v3.Cors";
export const CORS_POLICY_TYPE = "envoy.extensions.filters.http.cors.v3.CorsPolicy";
const FILTER_CONFIG_TYPE = "envoy.config.route.v3.FilterConfig";
const HTTP_FILTER_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter";

// Access logs, child spans and stats are the telemetry layer's business; strict_check_headers only
// validates x-envoy-* request headers, which the sidecar does not act on.
const ROUTER_FIELDS = names(
  "dynamicStats",
  "startChildSpan",
  "upstreamLog",
  "upstreamLogOptions",
  "suppressEnvoyHeaders",
  "strictCheckHeaders",
  "respectExpectedRqTimeout",
  "suppressGrpcRequestFailureCodeStats",
);

export function compileRouter(m: Router__Output, at: At): RouterConfig {
  onlyFields(ROUTER_TYPE, m, ROUTER_FIELDS, at);
  return { kind: "router", suppressEnvoyHeaders: m.suppressEnvoyHeaders === true };
}

// Runtime keys name overrides in Envoy's runtime, which the sidecar does not have; the stats switch and
// filter metadata do not change what is faulted.
const FAULT_FIELDS = names(
  "delay",
  "abort",
  "upstreamCluster",
  "headers",
  "downstreamNodes",
  "maxActiveFaults",
  "delayPercentRuntime",
  "abortPercentRuntime",
  "delayDurationRuntime",
  "abortHttpStatusRuntime",
  "maxActiveFaultsRuntime",
  "responseRateLimitPercentRuntime",
  "abortGrpcStatusRuntime",
  "disableDownstreamClusterStats",
  "filterMetadata",
);
const DELAY_FIELDS = names("fixedDelay", "headerDelay", "percentage");
const ABORT_FIELDS = names("httpStatus", "grpcStatus", "headerAbort", "percentage");

function faultDelay(d: FaultDelay__Output, at: At): NonNullable<FaultConfig["delay"]> {
  onlyFields("envoy.extensions.filters.common.fault.v3.FaultDelay", d, DELAY_FIELDS, at);
  const percentage = percentOf(d.percentage, at.field("percentage"));
  if (d.faultDelaySecifier === "headerDelay") return { fromHeader: true, percentage };
  if (d.faultDelaySecifier !== "fixedDelay") return at.invalid("fixed_delay or header_delay is required");
  return {
    fixedDelayMs: positiveDurationMs(d.fixedDelay, at.field("fixedDelay")),
    fromHeader: false,
    percentage,
  };
}

function faultAbort(a: FaultAbort__Output, at: At): NonNullable<FaultConfig["abort"]> {
  onlyFields("envoy.extensions.filters.http.fault.v3.FaultAbort", a, ABORT_FIELDS, at);
  const percentage = percentOf(a.percentage, at.field("percentage"));
  switch (a.errorType) {
    case "httpStatus": {
      const status = a.httpStatus ?? 0;
      if (status < 200 || status >= 600)
        at.field("httpStatus").invalid(`must be in [200, 600), got ${status}`);
      return { httpStatus: status, fromHeader: false, percentage };
    }
    case "grpcStatus":
      return { grpcStatus: a.grpcStatus ?? 0, fromHeader: false, percentage };
    case "headerAbort":
      return { fromHeader: true, percentage };
    default:
      return at.invalid("http_status, grpc_status or header_abort is required");
  }
}

/** Envoy HTTPFault → FaultConfig (both the filter's config and a per-route override). */
export function compileFault(m: HTTPFault__Output, at: At): FaultConfig {
  if (m.responseRateLimit)
    at.field("responseRateLimit").unsupported(
      "response rate limiting faults are not supported by the Skein sidecar",
    );
  onlyFields(FAULT_TYPE, m, FAULT_FIELDS, at);
  const out: FaultConfig = {
    kind: "fault",
    headers: m.headers.map((h, i) => compileHeaderMatcher(h, at.field("headers").index(i))),
    downstreamNodes: [...m.downstreamNodes],
  };
  if (m.delay) out.delay = faultDelay(m.delay, at.field("delay"));
  if (m.abort) out.abort = faultAbort(m.abort, at.field("abort"));
  if (m.upstreamCluster) out.upstreamCluster = m.upstreamCluster;
  if (m.maxActiveFaults) out.maxActiveFaults = m.maxActiveFaults.value;
  return out;
}

// shadow_enabled only evaluates the policy for stats; runtime keys have no runtime to read.
const CORS_POLICY_FIELDS = names(
  "allowOriginStringMatch",
  "allowMethods",
  "allowHeaders",
  "exposeHeaders",
  "maxAge",
  "allowCredentials",
  "filterEnabled",
  "shadowEnabled",
  "allowPrivateNetworkAccess",
  "forwardNotMatchingPreflights",
);

/** Envoy CorsPolicy → CorsConfig. */
export function compileCorsPolicy(m: CorsPolicy__Output, at: At): CorsConfig {
  onlyFields(CORS_POLICY_TYPE, m, CORS_POLICY_FIELDS, at);
  if (m.maxAge !== "" && !/^\d+$/.test(m.maxAge))
    at.field("maxAge").invalid(`must be a number of seconds, got ${JSON.stringify(m.maxAge)}`);
  let enabled = 1;
  if (m.filterEnabled) {
    if (!m.filterEnabled.defaultValue) at.field("filterEnabled").field("defaultValue").invalid("is required");
    enabled = percentOf(m.filterEnabled.defaultValue, at.field("filterEnabled").field("defaultValue")) / 100;
  }
  const out: CorsConfig = {
    kind: "cors",
    allowOrigins: m.allowOriginStringMatch.map((s, i) =>
      compileStringMatcher(s, at.field("allowOriginStringMatch").index(i)),
    ),
    allowCredentials: wrapped(m.allowCredentials, false),
    allowPrivateNetworkAccess: wrapped(m.allowPrivateNetworkAccess, false),
    forwardNotMatchingPreflights: wrapped(m.forwardNotMatchingPreflights, true),
    enabled,
  };
  if (m.allowMethods) out.allowMethods = m.allowMethods;
  if (m.allowHeaders) out.allowHeaders = m.allowHeaders;
  if (m.exposeHeaders) out.exposeHeaders = m.exposeHeaders;
  if (m.maxAge) out.maxAge = m.maxAge;
  return out;
}

// The cors filter's own message has no fields in this API version; policies live on routes.
function compileCorsFilter(m: Record<string, unknown>, at: At): CorsFilterConfig {
  onlyFields(CORS_TYPE, m, names(), at);
  return { kind: "cors-filter" };
}

type FilterCompiler = (message: Record<string, unknown>, at: At) => HttpFilterConfig;

const HTTP_FILTERS: Record<string, FilterCompiler> = {
  [ROUTER_TYPE]: (m, at) => compileRouter(m as unknown as Router__Output, at),
  [FAULT_TYPE]: (m, at) => compileFault(m as unknown as HTTPFault__Output, at),
  [CORS_TYPE]: compileCorsFilter,
};

const HTTP_FILTER_FIELDS = names("name", "typedConfig", "isOptional");

/**
 * A connection manager's http_filters, in order. Unknown filters are refused unless is_optional (then
 * skipped, as Envoy does); the router must be there and last; names are unique (per-route config is keyed
 * by them).
 */
export function compileHttpFilters(filters: readonly HttpFilter__Output[], at: At): HttpFilter[] {
  const out: HttpFilter[] = [];
  const seen = new Set<string>();
  let routerIndex = -1;
  for (const [i, f] of filters.entries()) {
    const fat = at.index(i);
    if (f.configType === "configDiscovery")
      fat
        .field("configDiscovery")
        .unsupported("filter config discovery (ECDS) is not supported by the Skein sidecar");
    if (f.disabled)
      fat
        .field("disabled")
        .unsupported(
          "filters disabled by default (enabled per route) are not supported by the Skein sidecar",
        );
    onlyFields(HTTP_FILTER_TYPE, f, HTTP_FILTER_FIELDS, fat);
    if (!f.name) fat.field("name").invalid("must not be empty");
    if (seen.has(f.name)) fat.field("name").invalid(`duplicate HTTP filter name ${f.name}`);
    seen.add(f.name);
    if (!f.typedConfig) return fat.field("typedConfig").invalid("is required");
    const typeName = anyTypeName(f.typedConfig);
    const compile = HTTP_FILTERS[typeName];
    if (!compile) {
      if (f.isOptional) continue; // Envoy skips optional filters it does not know.
      return fat.unsupported(
        `unsupported HTTP filter ${f.name} (${typeName || "no type"}); the Skein sidecar runs router, fault and cors (mark a filter is_optional to let it be skipped)`,
      );
    }
    if (routerIndex >= 0)
      at.index(routerIndex).invalid("the router filter must be the last HTTP filter (it ends the chain)");
    const tat = fat.field("typedConfig");
    const config = compile(decodeAny(f.typedConfig, tat).message, tat);
    if (config.kind === "router") routerIndex = i;
    out.push({ name: f.name, config });
  }
  if (routerIndex < 0) at.invalid("the last HTTP filter must be the router (envoy.filters.http.router)");
  return out;
}

type AnyLike = { type_url?: string; typeUrl?: string; value?: Uint8Array | null };

/** One typed_per_filter_config entry; undefined when it is an optional config the sidecar does not know. */
function perFilterConfig(any: AnyLike, at: At, optional = false): FaultConfig | CorsConfig | undefined {
  const decoded = decodeAny(any, at);
  switch (decoded.typeName) {
    case FAULT_TYPE:
      return compileFault(decoded.message as unknown as HTTPFault__Output, at);
    case CORS_POLICY_TYPE:
      return compileCorsPolicy(decoded.message as unknown as CorsPolicy__Output, at);
    case FILTER_CONFIG_TYPE: {
      // The envelope that marks a per-route config optional (or disables the filter on the route).
      const m = decoded.message as { config?: AnyLike | null; isOptional?: boolean; disabled?: boolean };
      if (m.disabled)
        at.field("disabled").unsupported(
          "disabling a filter per route is not supported by the Skein sidecar",
        );
      if (!m.config) return at.field("config").invalid("is required");
      return perFilterConfig(m.config, at.field("config"), m.isOptional === true);
    }
    case ROUTER_TYPE:
    case CORS_TYPE:
      return at.invalid(`${decoded.typeName} takes no per-route configuration`);
    default:
      if (optional) return undefined;
      return at.unsupported(
        `unsupported per-route filter config ${decoded.typeName}; the Skein sidecar takes fault (HTTPFault) and cors (CorsPolicy) overrides`,
      );
  }
}

/** typed_per_filter_config → filter name → FaultConfig | CorsConfig. */
export function compilePerFilterConfig(
  map: Readonly<Record<string, AnyLike>> | null | undefined,
  at: At,
): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (!map) return out;
  for (const [name, any] of Object.entries(map)) {
    const config = perFilterConfig(any, at.key(name));
    if (config) out.set(name, config);
  }
  return out;
}

/** Transport sockets: plaintext only until the sidecar does TLS (the security work brings mTLS). */
export function checkTransportSocket(
  ts: { name: string; typedConfig?: AnyLike | null } | null | undefined,
  at: At,
): void {
  if (!ts) return;
  const typeName = anyTypeName(ts.typedConfig);
  if (typeName === "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer") return;
  if (!typeName && (ts.name === "envoy.transport_sockets.raw_buffer" || ts.name === "raw_buffer")) return;
  if (
    typeName.startsWith("envoy.extensions.transport_sockets.tls.") ||
    ts.name === "envoy.transport_sockets.tls"
  )
    at.fail(
      ProxyConfigCodes.TLS,
      "TLS transport sockets are not supported by the Skein sidecar yet (mutual TLS comes with the security work); serve this plaintext",
    );
  at.unsupported(`unsupported transport socket ${ts.name || typeName}`);
}
