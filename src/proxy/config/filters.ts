// The HTTP filters the Skein sidecar runs (router, fault, cors, local_ratelimit): their typed_config in a
// connection manager's http_filters, and their per-route typed_per_filter_config, compiled into tagged plain
// objects. Anything else is refused unless the control plane marked it optional.
import type { FaultDelay__Output } from "../../xds/generated/envoy/extensions/filters/common/fault/v3/FaultDelay.js";
import type { CorsPolicy__Output } from "../../xds/generated/envoy/extensions/filters/http/cors/v3/CorsPolicy.js";
import type { FaultAbort__Output } from "../../xds/generated/envoy/extensions/filters/http/fault/v3/FaultAbort.js";
import type { HTTPFault__Output } from "../../xds/generated/envoy/extensions/filters/http/fault/v3/HTTPFault.js";
import type { JwtAuthentication__Output } from "../../xds/generated/envoy/extensions/filters/http/jwt_authn/v3/JwtAuthentication.js";
import type { Router__Output } from "../../xds/generated/envoy/extensions/filters/http/router/v3/Router.js";
import type { HttpFilter__Output } from "../../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.js";
import { LOCAL_RATE_LIMIT_TYPE, type LocalRateLimit__Output } from "../../xds/local-ratelimit.js";
import { messageType } from "../../xds/protos.js";
import {
  type At,
  anyTypeName,
  decodeAny,
  denominatorOf,
  names,
  onlyFields,
  percentOf,
  positiveDurationMs,
  wrapped,
} from "./fields.js";
import { compileJwtAuthentication, JWT_AUTHN_TYPE } from "./jwt.js";
import { compileHeaderMatcher, compileStringMatcher } from "./matchers.js";
import { typedStructCompiler } from "./peer-metadata.js";
import { compileHttpRbac, HTTP_RBAC_TYPE } from "./rbac.js";
import type {
  CorsConfig,
  CorsFilterConfig,
  FaultConfig,
  HttpFilter,
  HttpFilterConfig,
  LocalRateLimitConfig,
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
  if (d.faultDelaySecifier === "headerDelay")
    return { fromHeader: true, percentage, denominator: denominatorOf(d.percentage ?? undefined, at) };
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
      return { fromHeader: true, percentage, denominator: denominatorOf(a.percentage ?? undefined, at) };
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

// Descriptors, per-connection buckets, the local-cluster share and header additions are refused below; stage
// and always_consume_default_token_bucket only matter with descriptors; vh_rate_limits with route actions.
const LOCAL_RATE_LIMIT_FIELDS = names(
  "statPrefix",
  "status",
  "tokenBucket",
  "filterEnabled",
  "filterEnforced",
  "enableXRatelimitHeaders",
  "rateLimitedAsResourceExhausted",
  "stage",
  "alwaysConsumeDefaultTokenBucket",
  "vhRateLimits",
);
const TOKEN_BUCKET_FIELDS = names("maxTokens", "tokensPerFill", "fillInterval");

/** A RuntimeFractionalPercent as a probability; unset is Envoy's local rate limit default, 0 (off). */
function runtimeFraction(f: { defaultValue: unknown; runtimeKey: string } | null, at: At): number {
  if (!f) return 0;
  onlyFields("envoy.config.core.v3.RuntimeFractionalPercent", f, names("defaultValue", "runtimeKey"), at);
  if (!f.defaultValue) return at.field("defaultValue").invalid("is required");
  return percentOf(f.defaultValue as Parameters<typeof percentOf>[0], at.field("defaultValue")) / 100;
}

/** envoy.type.v3.StatusCode by enum name (as decoded) or number. */
function statusCode(code: string, at: At): number {
  const n = Number(code);
  if (Number.isInteger(n)) return n;
  const field = messageType("envoy.type.v3.HttpStatus").fields.code;
  const values = (field?.resolve().resolvedType as { values?: Record<string, number> } | null)?.values;
  const v = values?.[code];
  return v === undefined ? at.invalid(`unknown status code ${code}`) : v;
}

/** Envoy LocalRateLimit → LocalRateLimitConfig (the filter's config and a per-route override alike). */
export function compileLocalRateLimit(m: LocalRateLimit__Output, at: At): LocalRateLimitConfig {
  if (m.descriptors.length > 0)
    at.field("descriptors").unsupported(
      "rate limit descriptors are not supported by the Skein sidecar; give each route its own token_bucket",
    );
  if (m.localRateLimitPerDownstreamConnection)
    at.field("localRateLimitPerDownstreamConnection").unsupported(
      "per-connection token buckets are not supported by the Skein sidecar",
    );
  if (m.localClusterRateLimit)
    at.field("localClusterRateLimit").unsupported(
      "sharing a limit across the local cluster is not supported by the Skein sidecar",
    );
  if (m.responseHeadersToAdd.length > 0 || m.requestHeadersToAddWhenNotEnforced.length > 0)
    at.unsupported(
      "response_headers_to_add and request_headers_to_add_when_not_enforced are not supported by the Skein sidecar's local rate limit",
    );
  onlyFields(LOCAL_RATE_LIMIT_TYPE, m, LOCAL_RATE_LIMIT_FIELDS, at);
  if (!m.statPrefix) at.field("statPrefix").invalid("must not be empty");
  const out: LocalRateLimitConfig = {
    kind: "local-ratelimit",
    statPrefix: m.statPrefix,
    enabled: runtimeFraction(m.filterEnabled, at.field("filterEnabled")),
    enforced: runtimeFraction(m.filterEnforced, at.field("filterEnforced")),
    status: 429,
    xRateLimitHeaders: m.enableXRatelimitHeaders === "DRAFT_VERSION_03",
    grpcResourceExhausted: m.rateLimitedAsResourceExhausted === true,
  };
  if (m.status) {
    const code = statusCode(String(m.status.code), at.field("status").field("code"));
    // Envoy: codes below 400 mean the default.
    if (code >= 400) out.status = code;
  }
  const t = m.tokenBucket;
  if (t) {
    const tat = at.field("tokenBucket");
    onlyFields("envoy.type.v3.TokenBucket", t, TOKEN_BUCKET_FIELDS, tat);
    if (!t.maxTokens) tat.field("maxTokens").invalid("must be greater than 0");
    const tokensPerFill = wrapped(t.tokensPerFill, 1);
    if (tokensPerFill < 1) tat.field("tokensPerFill").invalid("must be greater than 0");
    const fillIntervalMs = positiveDurationMs(t.fillInterval, tat.field("fillInterval"));
    if (fillIntervalMs < 50) tat.field("fillInterval").invalid("must be at least 50ms");
    out.tokenBucket = { maxTokens: t.maxTokens, tokensPerFill, fillIntervalMs };
  }
  return out;
}

type FilterCompiler = (message: Record<string, unknown>, at: At) => HttpFilterConfig;

const HTTP_FILTERS: Record<string, FilterCompiler> = {
  [ROUTER_TYPE]: (m, at) => compileRouter(m as unknown as Router__Output, at),
  [FAULT_TYPE]: (m, at) => compileFault(m as unknown as HTTPFault__Output, at),
  [CORS_TYPE]: compileCorsFilter,
  [LOCAL_RATE_LIMIT_TYPE]: (m, at) => compileLocalRateLimit(m as unknown as LocalRateLimit__Output, at),
  [JWT_AUTHN_TYPE]: (m, at) => compileJwtAuthentication(m as unknown as JwtAuthentication__Output, at),
  [HTTP_RBAC_TYPE]: (m, at) => compileHttpRbac(m as unknown as Parameters<typeof compileHttpRbac>[0], at),
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
    const compile = HTTP_FILTERS[typeName] ?? typedStructCompiler(typeName, f.typedConfig);
    if (!compile) {
      if (f.isOptional) continue; // Envoy skips optional filters it does not know.
      return fat.unsupported(
        `unsupported HTTP filter ${f.name} (${typeName || "no type"}); the Skein sidecar runs router, fault, cors and local_ratelimit (mark a filter is_optional to let it be skipped)`,
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
function perFilterConfig(
  any: AnyLike,
  at: At,
  optional = false,
): FaultConfig | CorsConfig | LocalRateLimitConfig | undefined {
  const decoded = decodeAny(any, at);
  switch (decoded.typeName) {
    case FAULT_TYPE:
      return compileFault(decoded.message as unknown as HTTPFault__Output, at);
    case LOCAL_RATE_LIMIT_TYPE:
      return compileLocalRateLimit(decoded.message as unknown as LocalRateLimit__Output, at);
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
        `unsupported per-route filter config ${decoded.typeName}; the Skein sidecar takes fault (HTTPFault), cors (CorsPolicy) and local_ratelimit (LocalRateLimit) overrides`,
      );
  }
}

/** typed_per_filter_config → filter name → FaultConfig | CorsConfig | LocalRateLimitConfig. */
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
