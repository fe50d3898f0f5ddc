// RouteConfiguration (RDS, or inline in a connection manager) → RouteTable: virtual hosts indexed by domain the
// way Envoy searches them, routes with compiled matchers and actions, Envoy's defaults written out (15 s route
// timeout, one retry at 25–250 ms back-off), header mutations and per-filter configs resolved once.
import type { HeaderValueOption__Output } from "../../xds/generated/envoy/config/core/v3/HeaderValueOption.js";
import type { RuntimeFractionalPercent__Output } from "../../xds/generated/envoy/config/core/v3/RuntimeFractionalPercent.js";
import type { DirectResponseAction__Output } from "../../xds/generated/envoy/config/route/v3/DirectResponseAction.js";
import type { RedirectAction__Output } from "../../xds/generated/envoy/config/route/v3/RedirectAction.js";
import type { RetryPolicy__Output } from "../../xds/generated/envoy/config/route/v3/RetryPolicy.js";
import type { Route__Output } from "../../xds/generated/envoy/config/route/v3/Route.js";
import type { RouteAction__Output } from "../../xds/generated/envoy/config/route/v3/RouteAction.js";
import type { RouteConfiguration__Output } from "../../xds/generated/envoy/config/route/v3/RouteConfiguration.js";
import type { RouteMatch__Output } from "../../xds/generated/envoy/config/route/v3/RouteMatch.js";
import type { VirtualHost__Output } from "../../xds/generated/envoy/config/route/v3/VirtualHost.js";
import type { WeightedCluster__Output } from "../../xds/generated/envoy/config/route/v3/WeightedCluster.js";
import {
  At,
  anyTypeName,
  durationMs,
  headerName,
  msOr,
  names,
  onlyFields,
  percentOf,
  positiveDurationMs,
  resourceLabel,
  wrapped,
} from "./fields.js";
import { compilePerFilterConfig } from "./filters.js";
import {
  compileHeaderMatcher,
  compileQueryParameterMatcher,
  compileRegexMatcher,
  compileSubstitution,
} from "./matchers.js";
import type {
  DirectResponseAction,
  HashPolicy,
  HeaderMutation,
  MirrorPolicy,
  PathMatcher,
  RedirectAction,
  RetryPolicy,
  Route,
  RouteAction,
  RouteMatch,
  RouteTable,
  VirtualHost,
  WeightedCluster,
} from "./types.js";

/** Envoy's route timeout when `timeout` is unset (0 disables it). */
export const DEFAULT_ROUTE_TIMEOUT_MS = 15_000;
/** Envoy's retry defaults: one retry, 25 ms base back-off, cap 10 × base. */
export const DEFAULT_NUM_RETRIES = 1;
export const DEFAULT_RETRY_BASE_MS = 25;
/** Envoy's default cap on a direct response body. */
export const DEFAULT_MAX_DIRECT_RESPONSE_BODY = 4096;

/** The retry_on conditions the sidecar's router implements (Envoy's HTTP and gRPC ones). */
export const RETRY_ON = new Set([
  "5xx",
  "gateway-error",
  "reset",
  "connect-failure",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "reset-before-request",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
]);

const PREVIOUS_HOSTS_TYPE = "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate";
const PREVIOUS_HOSTS_NAME = "envoy.retry_host_predicates.previous_hosts";

// ---- header mutations ----------------------------------------------------------------------------------

const HEADER_VALUE_OPTION_FIELDS = names("header", "append", "appendAction", "keepEmptyValue");
const HEADER_VALUE_FIELDS = names("key", "value", "rawValue");

/**
 * Envoy reads header values as format strings (%DOWNSTREAM_REMOTE_ADDRESS%); the sidecar has only literal
 * values, so `%%` becomes `%` and any other `%...%` is refused rather than sent verbatim.
 */
function literalHeaderValue(value: string, at: At): string {
  if (!value.includes("%")) return value;
  let out = "";
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (ch !== "%") {
      out += ch;
      continue;
    }
    if (value[i + 1] === "%") {
      out += "%";
      i++;
      continue;
    }
    const end = value.indexOf("%", i + 1);
    if (end < 0)
      at.invalid(`un-terminated variable expression in ${JSON.stringify(value)} (write %% for a literal %)`);
    at.unsupported(
      `header value formatter ${value.slice(i, end + 1)} is not supported by the Skein sidecar (write %% for a literal %)`,
    );
  }
  return out;
}

function modifiable(name: string, at: At, verb: string): void {
  // As Envoy: pseudo-headers and Host are the proxy's to manage.
  if (name.startsWith(":") || name === "host") at.invalid(`:-prefixed or host headers may not be ${verb}`);
}

interface MutationSource {
  requestHeadersToAdd: HeaderValueOption__Output[];
  requestHeadersToRemove: string[];
  responseHeadersToAdd: HeaderValueOption__Output[];
  responseHeadersToRemove: string[];
}

function headerMutation(
  adds: readonly HeaderValueOption__Output[],
  removes: readonly string[],
  at: At,
  addField: string,
  removeField: string,
): HeaderMutation {
  const add: HeaderMutation["add"] = [];
  for (const [i, o] of adds.entries()) {
    const oat = at.field(addField).index(i);
    onlyFields("envoy.config.core.v3.HeaderValueOption", o, HEADER_VALUE_OPTION_FIELDS, oat);
    if (!o.header) return oat.field("header").invalid("is required");
    const hat = oat.field("header");
    onlyFields("envoy.config.core.v3.HeaderValue", o.header, HEADER_VALUE_FIELDS, hat);
    const name = headerName(o.header.key, hat.field("key"));
    modifiable(name, hat.field("key"), "modified");
    const raw = o.header.rawValue?.length ? Buffer.from(o.header.rawValue).toString("utf8") : o.header.value;
    const value = literalHeaderValue(raw, hat.field(o.header.rawValue?.length ? "rawValue" : "value"));
    let append: boolean;
    if (o.append) {
      if (o.appendAction !== "APPEND_IF_EXISTS_OR_ADD")
        oat.invalid("both append and append_action are set; use append_action only");
      append = o.append.value;
    } else if (o.appendAction === "APPEND_IF_EXISTS_OR_ADD") append = true;
    else if (o.appendAction === "OVERWRITE_IF_EXISTS_OR_ADD") append = false;
    else
      return oat
        .field("appendAction")
        .unsupported(
          `${o.appendAction} is not supported by the Skein sidecar (APPEND_IF_EXISTS_OR_ADD and OVERWRITE_IF_EXISTS_OR_ADD are)`,
        );
    // Envoy drops headers whose value is empty unless keep_empty_value.
    if (value === "" && !o.keepEmptyValue) continue;
    add.push({ name, value, append });
  }
  const remove = removes.map((r, i) => {
    const name = headerName(r, at.field(removeField).index(i));
    modifiable(name, at.field(removeField).index(i), "removed");
    return name;
  });
  return { add, remove };
}

function mutations(src: MutationSource, at: At): { request: HeaderMutation; response: HeaderMutation } {
  return {
    request: headerMutation(
      src.requestHeadersToAdd,
      src.requestHeadersToRemove,
      at,
      "requestHeadersToAdd",
      "requestHeadersToRemove",
    ),
    response: headerMutation(
      src.responseHeadersToAdd,
      src.responseHeadersToRemove,
      at,
      "responseHeadersToAdd",
      "responseHeadersToRemove",
    ),
  };
}

const RUNTIME_FRACTION_FIELDS = names("defaultValue", "runtimeKey");

/** A RuntimeFractionalPercent as a probability; the runtime key is ignored (the sidecar has no runtime). */
function fraction(f: RuntimeFractionalPercent__Output | null, at: At): number | undefined {
  if (!f) return undefined;
  onlyFields("envoy.config.core.v3.RuntimeFractionalPercent", f, RUNTIME_FRACTION_FIELDS, at);
  if (!f.defaultValue) return at.field("defaultValue").invalid("is required");
  return percentOf(f.defaultValue, at.field("defaultValue")) / 100;
}

// ---- matches -------------------------------------------------------------------------------------------

const ROUTE_MATCH_FIELDS = names(
  "prefix",
  "path",
  "safeRegex",
  "caseSensitive",
  "runtimeFraction",
  "headers",
  "queryParameters",
);

function routeMatch(m: RouteMatch__Output, at: At): RouteMatch {
  onlyFields("envoy.config.route.v3.RouteMatch", m, ROUTE_MATCH_FIELDS, at);
  const caseSensitive = wrapped(m.caseSensitive, true);
  let path: PathMatcher;
  switch (m.pathSpecifier) {
    case "prefix":
    case "path": {
      const value = m[m.pathSpecifier] ?? "";
      path = { kind: m.pathSpecifier, value: caseSensitive ? value : value.toLowerCase(), caseSensitive };
      break;
    }
    case "safeRegex":
      // case_sensitive does not apply to regexes (Envoy).
      path = { kind: "regex", regex: compileRegexMatcher(m.safeRegex, at.field("safeRegex"), "full") };
      break;
    default:
      return at.invalid("path_specifier is required (prefix, path or safe_regex)");
  }
  const out: RouteMatch = {
    path,
    headers: m.headers.map((h, i) => compileHeaderMatcher(h, at.field("headers").index(i))),
    queryParameters: m.queryParameters.map((q, i) =>
      compileQueryParameterMatcher(q, at.field("queryParameters").index(i)),
    ),
  };
  const f = fraction(m.runtimeFraction, at.field("runtimeFraction"));
  if (f !== undefined) out.fraction = f;
  return out;
}

// ---- route actions -------------------------------------------------------------------------------------

const RETRY_FIELDS = names(
  "retryOn",
  "numRetries",
  "perTryTimeout",
  "retryHostPredicate",
  "hostSelectionRetryMaxAttempts",
  "retriableStatusCodes",
  "retryBackOff",
);
const BACKOFF_FIELDS = names("baseInterval", "maxInterval");

/** Envoy RetryPolicy → RetryPolicy; undefined when no retry_on condition is given (nothing would retry). */
function retryPolicy(p: RetryPolicy__Output, at: At): RetryPolicy | undefined {
  onlyFields("envoy.config.route.v3.RetryPolicy", p, RETRY_FIELDS, at);
  const retryOn = new Set<string>();
  for (const raw of p.retryOn.split(",")) {
    const c = raw.trim();
    if (c === "") continue;
    if (!RETRY_ON.has(c))
      at.field("retryOn").unsupported(
        `retry condition ${JSON.stringify(c)} is not supported by the Skein sidecar (supported: ${[...RETRY_ON].join(", ")})`,
      );
    retryOn.add(c);
  }
  if (retryOn.size === 0) return undefined;
  let backoffBaseMs = DEFAULT_RETRY_BASE_MS;
  let backoffMaxMs = DEFAULT_RETRY_BASE_MS * 10;
  if (p.retryBackOff) {
    const bat = at.field("retryBackOff");
    onlyFields("envoy.config.route.v3.RetryPolicy.RetryBackOff", p.retryBackOff, BACKOFF_FIELDS, bat);
    // Envoy rounds sub-millisecond intervals up to 1 ms.
    backoffBaseMs = Math.max(1, positiveDurationMs(p.retryBackOff.baseInterval, bat.field("baseInterval")));
    const max = durationMs(p.retryBackOff.maxInterval, bat.field("maxInterval"));
    backoffMaxMs = max === undefined ? backoffBaseMs * 10 : Math.max(1, max);
    if (backoffMaxMs < backoffBaseMs)
      bat.field("maxInterval").invalid("must be greater than or equal to base_interval");
  }
  let avoidPreviousHosts = false;
  p.retryHostPredicate.forEach((h, i) => {
    const type = anyTypeName(h.typedConfig);
    if (type === PREVIOUS_HOSTS_TYPE || (!type && h.name === PREVIOUS_HOSTS_NAME)) avoidPreviousHosts = true;
    else
      at.field("retryHostPredicate")
        .index(i)
        .unsupported(`retry host predicate ${h.name || type} is not supported (previous_hosts is)`);
  });
  return {
    retryOn,
    numRetries: wrapped(p.numRetries, DEFAULT_NUM_RETRIES),
    perTryTimeoutMs: msOr(p.perTryTimeout, at.field("perTryTimeout"), 0),
    retriableStatusCodes: new Set(p.retriableStatusCodes),
    backoffBaseMs,
    backoffMaxMs,
    avoidPreviousHosts,
    // Envoy: 0 (unset) means one attempt.
    hostSelectionRetryMaxAttempts: Number(p.hostSelectionRetryMaxAttempts) || 1,
  };
}

type HashPolicyOutput = RouteAction__Output["hashPolicy"][number];

function hashPolicy(h: HashPolicyOutput, at: At): HashPolicy | undefined {
  onlyFields(
    "envoy.config.route.v3.RouteAction.HashPolicy",
    h,
    names("header", "cookie", "connectionProperties", "queryParameter", "terminal"),
    at,
  );
  const terminal = h.terminal === true;
  switch (h.policySpecifier) {
    case "header": {
      const hat = at.field("header");
      onlyFields(
        "envoy.config.route.v3.RouteAction.HashPolicy.Header",
        h.header ?? {},
        names("headerName"),
        hat,
      );
      return {
        kind: "header",
        name: headerName(h.header?.headerName ?? "", hat.field("headerName")),
        terminal,
      };
    }
    case "cookie": {
      const cat = at.field("cookie");
      const c = h.cookie;
      if (!c) return cat.invalid("is required");
      onlyFields("envoy.config.route.v3.RouteAction.HashPolicy.Cookie", c, names("name", "ttl", "path"), cat);
      if (c.name === "") cat.field("name").invalid("must not be empty");
      const out: HashPolicy = { kind: "cookie", name: c.name, terminal };
      if (c.path) out.path = c.path;
      // A ttl (even 0: a session cookie) makes the proxy set the cookie when the request lacks it.
      const ttl = durationMs(c.ttl, cat.field("ttl"));
      if (ttl !== undefined) out.ttlMs = ttl;
      return out;
    }
    case "connectionProperties":
      // source_ip: false hashes nothing (Envoy adds no hash method).
      return h.connectionProperties?.sourceIp ? { kind: "sourceIp", terminal } : undefined;
    case "queryParameter": {
      const name = h.queryParameter?.name ?? "";
      if (name === "") at.field("queryParameter").field("name").invalid("must not be empty");
      return { kind: "queryParameter", name, terminal };
    }
    default:
      return at.invalid(
        "policy_specifier is required (header, cookie, connection_properties or query_parameter)",
      );
  }
}

type MirrorPolicyOutput = RouteAction__Output["requestMirrorPolicies"][number];

// trace_sampled only decides whether the mirrored request is traced.
const MIRROR_FIELDS = names("cluster", "runtimeFraction", "traceSampled");

function mirrorPolicies(list: readonly MirrorPolicyOutput[], at: At): MirrorPolicy[] {
  return list.map((m, i) => {
    const mat = at.index(i);
    onlyFields("envoy.config.route.v3.RouteAction.RequestMirrorPolicy", m, MIRROR_FIELDS, mat);
    if (m.cluster === "") mat.field("cluster").invalid("must not be empty");
    return { cluster: m.cluster, fraction: fraction(m.runtimeFraction, mat.field("runtimeFraction")) ?? 1 };
  });
}

const CLUSTER_WEIGHT_FIELDS = names(
  "name",
  "weight",
  "requestHeadersToAdd",
  "requestHeadersToRemove",
  "responseHeadersToAdd",
  "responseHeadersToRemove",
);
const MAX_UINT32 = 4294967295;

function weightedClusters(
  w: WeightedCluster__Output,
  at: At,
): { clusters: WeightedCluster[]; total: number } {
  // runtime_key_prefix names runtime overrides of the weights; the sidecar has no runtime.
  onlyFields(
    "envoy.config.route.v3.WeightedCluster",
    w,
    names("clusters", "totalWeight", "runtimeKeyPrefix"),
    at,
  );
  if (w.clusters.length === 0) at.field("clusters").invalid("at least one cluster is required");
  let total = 0;
  const clusters = w.clusters.map((c, i) => {
    const cat = at.field("clusters").index(i);
    onlyFields("envoy.config.route.v3.WeightedCluster.ClusterWeight", c, CLUSTER_WEIGHT_FIELDS, cat);
    if (c.name === "") cat.field("name").invalid("must not be empty");
    const weight = wrapped(c.weight, 0);
    total += weight;
    const m = mutations(c, cat);
    return { name: c.name, weight, requestHeaders: m.request, responseHeaders: m.response };
  });
  if (total === 0) at.field("clusters").invalid("the sum of the weights must be greater than 0");
  if (total > MAX_UINT32) at.field("clusters").invalid(`the sum of the weights exceeds ${MAX_UINT32}`);
  if (w.totalWeight && w.totalWeight.value !== total)
    at.field("totalWeight").invalid(`is ${w.totalWeight.value} but the weights add up to ${total}`);
  return { clusters, total };
}

const ROUTE_ACTION_FIELDS = names(
  "cluster",
  "weightedClusters",
  "prefixRewrite",
  "regexRewrite",
  "hostRewriteLiteral",
  "autoHostRewrite",
  "timeout",
  "retryPolicy",
  "requestMirrorPolicies",
  "hashPolicy",
  "maxStreamDuration",
);

interface Inherited {
  retry: RetryPolicy | undefined;
  mirrors: MirrorPolicy[];
  maxBody: number;
}

function routeAction(a: RouteAction__Output, match: RouteMatch, at: At, inherited: Inherited): RouteAction {
  if (a.autoHostRewrite?.value)
    at.field("autoHostRewrite").unsupported("auto_host_rewrite is not supported by the Skein sidecar");
  onlyFields("envoy.config.route.v3.RouteAction", a, ROUTE_ACTION_FIELDS, at);
  let clusters: WeightedCluster[];
  let totalWeight: number;
  if (a.clusterSpecifier === "cluster") {
    if (!a.cluster) return at.field("cluster").invalid("must not be empty");
    clusters = [
      {
        name: a.cluster,
        weight: 1,
        requestHeaders: { add: [], remove: [] },
        responseHeaders: { add: [], remove: [] },
      },
    ];
    totalWeight = 1;
  } else if (a.clusterSpecifier === "weightedClusters" && a.weightedClusters) {
    const w = weightedClusters(a.weightedClusters, at.field("weightedClusters"));
    clusters = w.clusters;
    totalWeight = w.total;
  } else return at.invalid("cluster_specifier is required (cluster or weighted_clusters)");

  const out: RouteAction = {
    kind: "route",
    clusters,
    totalWeight,
    timeoutMs: msOr(a.timeout, at.field("timeout"), DEFAULT_ROUTE_TIMEOUT_MS),
    hashPolicies: a.hashPolicy.flatMap((h, i) => hashPolicy(h, at.field("hashPolicy").index(i)) ?? []),
    // The route's own mirror policies replace the virtual host's (Envoy).
    mirrors:
      a.requestMirrorPolicies.length > 0
        ? mirrorPolicies(a.requestMirrorPolicies, at.field("requestMirrorPolicies"))
        : inherited.mirrors,
  };
  const retry = a.retryPolicy ? retryPolicy(a.retryPolicy, at.field("retryPolicy")) : inherited.retry;
  if (retry) out.retry = retry;
  if (a.prefixRewrite && a.regexRewrite)
    at.invalid("prefix_rewrite and regex_rewrite are mutually exclusive");
  if (a.prefixRewrite) {
    if (match.path.kind === "regex")
      at.field("prefixRewrite").invalid("cannot be used with a safe_regex match");
    out.prefixRewrite = a.prefixRewrite;
  }
  if (a.regexRewrite) {
    const rat = at.field("regexRewrite");
    onlyFields(
      "envoy.type.matcher.v3.RegexMatchAndSubstitute",
      a.regexRewrite,
      names("pattern", "substitution"),
      rat,
    );
    const regex = compileRegexMatcher(a.regexRewrite.pattern, rat.field("pattern"), "global");
    out.regexRewrite = {
      regex,
      substitution: compileSubstitution(a.regexRewrite.substitution, regex, rat.field("substitution")),
    };
  }
  if (a.hostRewriteLiteral) out.hostRewrite = a.hostRewriteLiteral;
  if (a.maxStreamDuration) {
    const sat = at.field("maxStreamDuration");
    onlyFields(
      "envoy.config.route.v3.RouteAction.MaxStreamDuration",
      a.maxStreamDuration,
      names("maxStreamDuration", "grpcTimeoutHeaderMax"),
      sat,
    );
    const max = durationMs(a.maxStreamDuration.maxStreamDuration, sat.field("maxStreamDuration"));
    if (max !== undefined) out.maxStreamDurationMs = max;
    const grpcMax = durationMs(a.maxStreamDuration.grpcTimeoutHeaderMax, sat.field("grpcTimeoutHeaderMax"));
    if (grpcMax !== undefined) out.grpcTimeoutHeaderMaxMs = grpcMax;
  }
  return out;
}

const REDIRECT_STATUS: Record<string, number> = {
  MOVED_PERMANENTLY: 301,
  FOUND: 302,
  SEE_OTHER: 303,
  TEMPORARY_REDIRECT: 307,
  PERMANENT_REDIRECT: 308,
};

function redirectAction(r: RedirectAction__Output, at: At): RedirectAction {
  if (r.regexRewrite)
    at.field("regexRewrite").unsupported("regex_rewrite in redirects is not supported by the Skein sidecar");
  onlyFields(
    "envoy.config.route.v3.RedirectAction",
    r,
    names(
      "httpsRedirect",
      "schemeRedirect",
      "hostRedirect",
      "portRedirect",
      "pathRedirect",
      "prefixRewrite",
      "responseCode",
      "stripQuery",
    ),
    at,
  );
  const status = REDIRECT_STATUS[String(r.responseCode)];
  if (status === undefined)
    return at.field("responseCode").invalid(`unknown response code ${String(r.responseCode)}`);
  const out: RedirectAction = { kind: "redirect", status, stripQuery: r.stripQuery === true };
  if (r.schemeRewriteSpecifier === "httpsRedirect" && r.httpsRedirect) out.scheme = "https";
  else if (r.schemeRewriteSpecifier === "schemeRedirect" && r.schemeRedirect)
    out.scheme = r.schemeRedirect.toLowerCase();
  if (r.hostRedirect) out.host = r.hostRedirect;
  if (r.portRedirect) out.port = r.portRedirect;
  if (r.pathRewriteSpecifier === "pathRedirect") out.path = r.pathRedirect ?? "";
  else if (r.pathRewriteSpecifier === "prefixRewrite") out.prefixRewrite = r.prefixRewrite ?? "";
  return out;
}

function directResponse(d: DirectResponseAction__Output, at: At, maxBody: number): DirectResponseAction {
  onlyFields("envoy.config.route.v3.DirectResponseAction", d, names("status", "body"), at);
  if (d.status < 200 || d.status >= 600) at.field("status").invalid(`must be in [200, 600), got ${d.status}`);
  const out: DirectResponseAction = { kind: "direct", status: d.status };
  if (d.body) {
    const bat = at.field("body");
    let body: string;
    if (d.body.specifier === "inlineString") body = d.body.inlineString ?? "";
    else if (d.body.specifier === "inlineBytes")
      body = Buffer.from(d.body.inlineBytes ?? []).toString("utf8");
    else
      return bat.unsupported("only inline_string and inline_bytes bodies are supported by the Skein sidecar");
    if (Buffer.byteLength(body) > maxBody)
      bat.invalid(
        `is ${Buffer.byteLength(body)} bytes, over max_direct_response_body_size_bytes (${maxBody})`,
      );
    out.body = body;
  }
  return out;
}

// ---- routes, virtual hosts, configurations -------------------------------------------------------------

// metadata, decorator, tracing, stat_prefix and buffer limits do not change where or how a request goes.
const ROUTE_FIELDS = names(
  "name",
  "match",
  "route",
  "redirect",
  "directResponse",
  "metadata",
  "decorator",
  "tracing",
  "statPrefix",
  "perRequestBufferLimitBytes",
  "typedPerFilterConfig",
  "requestHeadersToAdd",
  "requestHeadersToRemove",
  "responseHeadersToAdd",
  "responseHeadersToRemove",
);

function route(r: Route__Output, at: At, inherited: Inherited): Route {
  onlyFields("envoy.config.route.v3.Route", r, ROUTE_FIELDS, at);
  if (!r.match) return at.field("match").invalid("is required");
  const match = routeMatch(r.match, at.field("match"));
  let action: Route["action"];
  if (r.action === "route" && r.route) action = routeAction(r.route, match, at.field("route"), inherited);
  else if (r.action === "redirect" && r.redirect) action = redirectAction(r.redirect, at.field("redirect"));
  else if (r.action === "directResponse" && r.directResponse)
    action = directResponse(r.directResponse, at.field("directResponse"), inherited.maxBody);
  else return at.invalid("an action is required (route, redirect or direct_response)");
  const m = mutations(r, at);
  return {
    name: r.name,
    match,
    action,
    requestHeaders: m.request,
    responseHeaders: m.response,
    filterConfig: compilePerFilterConfig(r.typedPerFilterConfig, at.field("typedPerFilterConfig")),
  };
}

// virtual_clusters only name request classes for stats; metadata and buffer limits change no routing.
const VIRTUAL_HOST_FIELDS = names(
  "name",
  "domains",
  "routes",
  "virtualClusters",
  "metadata",
  "perRequestBufferLimitBytes",
  "typedPerFilterConfig",
  "retryPolicy",
  "requestMirrorPolicies",
  "requestHeadersToAdd",
  "requestHeadersToRemove",
  "responseHeadersToAdd",
  "responseHeadersToRemove",
);

function virtualHost(
  vh: VirtualHost__Output,
  at: At,
  parent: { filterConfig: Map<string, unknown>; mirrors: MirrorPolicy[]; maxBody: number },
): VirtualHost {
  onlyFields("envoy.config.route.v3.VirtualHost", vh, VIRTUAL_HOST_FIELDS, at);
  if (vh.name === "") at.field("name").invalid("must not be empty");
  if (vh.domains.length === 0) at.field("domains").invalid("at least one domain is required");
  const inherited: Inherited = {
    retry: vh.retryPolicy ? retryPolicy(vh.retryPolicy, at.field("retryPolicy")) : undefined,
    mirrors:
      vh.requestMirrorPolicies.length > 0
        ? mirrorPolicies(vh.requestMirrorPolicies, at.field("requestMirrorPolicies"))
        : parent.mirrors,
    maxBody: parent.maxBody,
  };
  const m = mutations(vh, at);
  const own = compilePerFilterConfig(vh.typedPerFilterConfig, at.field("typedPerFilterConfig"));
  return {
    name: vh.name,
    domains: [...vh.domains],
    routes: vh.routes.map((r, i) => route(r, at.field("routes").index(i), inherited)),
    requestHeaders: m.request,
    responseHeaders: m.response,
    filterConfig: parent.filterConfig.size === 0 ? own : new Map([...parent.filterConfig, ...own]),
  };
}

// metadata is opaque to routing; validate_clusters is checked against CDS by the store.
const ROUTE_CONFIGURATION_FIELDS = names(
  "name",
  "virtualHosts",
  "metadata",
  "validateClusters",
  "maxDirectResponseBodySizeBytes",
  "requestMirrorPolicies",
  "typedPerFilterConfig",
  "requestHeadersToAdd",
  "requestHeadersToRemove",
  "responseHeadersToAdd",
  "responseHeadersToRemove",
);

/**
 * RouteConfiguration → RouteTable. `at` is the position of an inline configuration inside its listener;
 * an RDS resource is its own position.
 */
export function compileRouteConfiguration(
  rc: RouteConfiguration__Output,
  at: At = new At(resourceLabel("RouteConfiguration", rc.name)),
): RouteTable {
  onlyFields("envoy.config.route.v3.RouteConfiguration", rc, ROUTE_CONFIGURATION_FIELDS, at);
  const parent = {
    filterConfig: compilePerFilterConfig(rc.typedPerFilterConfig, at.field("typedPerFilterConfig")),
    mirrors: mirrorPolicies(rc.requestMirrorPolicies, at.field("requestMirrorPolicies")),
    maxBody: wrapped(rc.maxDirectResponseBodySizeBytes, DEFAULT_MAX_DIRECT_RESPONSE_BODY),
  };
  const m = mutations(rc, at);
  const table: RouteTable = {
    name: rc.name,
    virtualHosts: [],
    exact: new Map(),
    suffixes: [],
    prefixes: [],
    requestHeaders: m.request,
    responseHeaders: m.response,
  };
  const vhNames = new Set<string>();
  const domains = new Set<string>();
  rc.virtualHosts.forEach((v, i) => {
    const vat = at.field("virtualHosts").index(i);
    const vh = virtualHost(v, vat, parent);
    if (vhNames.has(vh.name))
      vat.field("name").invalid(`duplicate virtual host name ${JSON.stringify(vh.name)}`);
    vhNames.add(vh.name);
    table.virtualHosts.push(vh);
    vh.domains.forEach((d, j) => {
      const domain = d.toLowerCase();
      if (domains.has(domain))
        vat
          .field("domains")
          .index(j)
          .invalid(`duplicate domain ${JSON.stringify(d)}: each domain may appear once`);
      domains.add(domain);
      // Envoy's classification: `*` alone, a leading `*` (suffix), a trailing `*` (prefix), else exact.
      if (domain === "*") table.catchAll = vh;
      else if (domain.startsWith("*")) table.suffixes.push({ suffix: domain.slice(1), host: vh });
      else if (domain.endsWith("*")) table.prefixes.push({ prefix: domain.slice(0, -1), host: vh });
      else table.exact.set(domain, vh);
    });
  });
  table.suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
  table.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  return table;
}

/** Envoy checks routes' clusters against CDS when validate_clusters is true (the default for inline configs). */
export function validatesClusters(rc: RouteConfiguration__Output, inline: boolean): boolean {
  return wrapped(rc.validateClusters, inline);
}

/** Every cluster a table routes or mirrors to. */
export function clustersOf(table: RouteTable): Set<string> {
  const out = new Set<string>();
  for (const vh of table.virtualHosts)
    for (const r of vh.routes) {
      if (r.action.kind !== "route") continue;
      for (const c of r.action.clusters) out.add(c.name);
      for (const m of r.action.mirrors) out.add(m.cluster);
    }
  return out;
}
