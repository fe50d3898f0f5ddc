// RouteConfigurations: one virtual host per visible service port, whose routes come from the route
// tables (VirtualServices, App Mesh routers) for that host, in order, or a default route to the
// service's cluster when no table names it.
//
// Two layouts, by proxy kind:
// - proxyless gRPC: one configuration per outbound port, named by the port (Istio's "8080"), domains
//   with and without `:port`; the api_listeners of that port point at it.
// - sidecar: one configuration, `http_proxy`, for the explicit-proxy listener on 15001 that takes
//   every port (Istio's HTTP_PROXY route). Domains carry the port (`name:8080`), since the Host header
//   is all that tells ports apart; bare names go to port 80, or, a Skein convenience for
//   `curl -H 'Host: order-service' <sidecar>:15001`, to a service's only HTTP port.

import { resolveHost } from "../model/hosts.js";
import type {
  FaultPolicy,
  HeaderMatch,
  HttpRoute,
  CorsPolicy as ModelCorsPolicy,
  RetryPolicy as ModelRetryPolicy,
  RequestMatch,
  RouteDestination,
  RouteTable,
  Service,
  ServicePort,
} from "../model/types.js";
import type { HeaderValueOption } from "../xds/generated/envoy/config/core/v3/HeaderValueOption.js";
import type { HeaderMatcher } from "../xds/generated/envoy/config/route/v3/HeaderMatcher.js";
import type { QueryParameterMatcher } from "../xds/generated/envoy/config/route/v3/QueryParameterMatcher.js";
import type { RedirectAction } from "../xds/generated/envoy/config/route/v3/RedirectAction.js";
import type { RetryPolicy } from "../xds/generated/envoy/config/route/v3/RetryPolicy.js";
import type { Route } from "../xds/generated/envoy/config/route/v3/Route.js";
import type { RouteAction } from "../xds/generated/envoy/config/route/v3/RouteAction.js";
import type { RouteConfiguration } from "../xds/generated/envoy/config/route/v3/RouteConfiguration.js";
import type { RouteMatch } from "../xds/generated/envoy/config/route/v3/RouteMatch.js";
import type { VirtualHost } from "../xds/generated/envoy/config/route/v3/VirtualHost.js";
import type { WeightedCluster } from "../xds/generated/envoy/config/route/v3/WeightedCluster.js";
import {
  HTTP_PROXY_ROUTE,
  isHttp,
  outboundClusterName,
  portRouteName,
  serviceNames,
  virtualHostName,
} from "./names.js";
import type { ProxyView, VisibleService } from "./scope.js";
import { mergedTrafficPolicy } from "./traffic-policy.js";
import { FILTER, type TypedConfig, typed } from "./typed.js";
import {
  bool,
  byName,
  duration,
  fractionalPercent,
  grpcStatusCode,
  headersToAdd,
  regex,
  stringMatcher,
  u32,
} from "./values.js";

type HashPolicy = NonNullable<RouteAction["hashPolicy"]>[number];
type ClusterWeight = NonNullable<WeightedCluster["clusters"]>[number];

export function buildRoutes(view: ProxyView): RouteConfiguration[] {
  if (view.proxy.kind === "proxyless")
    return httpPorts(view).map((port) => portRouteConfiguration(view, port));
  return [httpProxyRouteConfiguration(view)];
}

/** Every outbound HTTP port number some visible service has, ascending. */
export function httpPorts(view: ProxyView): number[] {
  const ports = new Set<number>();
  for (const v of view.services) for (const p of v.ports) if (isHttp(p.protocol)) ports.add(p.number);
  return [...ports].sort((a, b) => a - b);
}

export function portRouteConfiguration(view: ProxyView, port: number): RouteConfiguration {
  const hosts: VirtualHost[] = [];
  for (const v of view.services) {
    const p = v.ports.find((x) => x.number === port && isHttp(x.protocol));
    if (!p) continue;
    const names = serviceNames(v.service, view.proxy.namespace);
    const vh = virtualHost(
      view,
      v.service,
      p,
      names.flatMap((n) => [n, `${n}:${port}`]),
    );
    if (vh) hosts.push(vh);
  }
  return routeConfiguration(portRouteName(port), hosts);
}

export function httpProxyRouteConfiguration(view: ProxyView): RouteConfiguration {
  const hosts: VirtualHost[] = [];
  for (const v of view.services) {
    const bare = bareNamePort(v);
    for (const p of v.ports) {
      if (!isHttp(p.protocol)) continue;
      const names = serviceNames(v.service, view.proxy.namespace);
      const domains = names.map((n) => `${n}:${p.number}`);
      if (p.number === bare) domains.push(...names);
      const vh = virtualHost(view, v.service, p, domains);
      if (vh) hosts.push(vh);
    }
  }
  return routeConfiguration(HTTP_PROXY_ROUTE, hosts);
}

/** Which port a Host without a port means: 80, else the service's only HTTP port. */
function bareNamePort(v: VisibleService): number | undefined {
  const http = v.ports.filter((p) => isHttp(p.protocol));
  if (http.some((p) => p.number === 80)) return 80;
  return http.length === 1 ? http[0]?.number : undefined;
}

/**
 * Envoy rejects a configuration in which two virtual hosts share a name or a domain, so each stays with
 * the first virtual host (in name order) that claims it; a virtual host left with no domain is dropped.
 * Clusters are not validated against CDS: a route to a missing cluster answers 503, as in Istio.
 */
function routeConfiguration(name: string, hosts: VirtualHost[]): RouteConfiguration {
  const taken = new Set<string>();
  const names = new Set<string>();
  const virtualHosts = hosts.sort(byName).flatMap((vh) => {
    if (names.has(vh.name ?? "")) return [];
    names.add(vh.name ?? "");
    const domains = (vh.domains ?? []).filter((d) => {
      const key = d.toLowerCase();
      if (taken.has(key)) return false;
      taken.add(key);
      return true;
    });
    return domains.length > 0 ? [{ ...vh, domains }] : [];
  });
  return { name, virtualHosts, validateClusters: bool(false) };
}

/**
 * The virtual host of one service port. Without route tables: a default route to the service's
 * cluster. With route tables whose routes all exclude this proxy (source labels, ports, gateways):
 * none, as in Istio, so such requests get 404.
 */
function virtualHost(
  view: ProxyView,
  service: Service,
  port: ServicePort,
  domains: string[],
): VirtualHost | undefined {
  const tables = view.routeTables(service);
  const routes =
    tables.length === 0
      ? [defaultRoute(view, service, port)]
      : tables.flatMap((t) => t.http.flatMap((r) => httpRoutes(view, t, r, port.number)));
  if (routes.length === 0) return undefined;
  return { name: virtualHostName(service.hostname, port.number), domains: [...new Set(domains)], routes };
}

function defaultRoute(view: ProxyView, service: Service, port: ServicePort): Route {
  const cluster = outboundClusterName(port.number, undefined, service.hostname);
  const action: RouteAction = { cluster, timeout: duration(0) };
  const retry = retryPolicy(undefined);
  if (retry) action.retryPolicy = retry;
  const hash = hashPolicyFor(view, service, port.number, undefined);
  if (hash) action.hashPolicy = [hash];
  return { name: "default", match: { prefix: "/" }, route: action };
}

/** One Envoy route per match of the HTTP route (they share the action), skipping matches that exclude this proxy. */
function httpRoutes(view: ProxyView, table: RouteTable, r: HttpRoute, port: number): Route[] {
  const proxyless = view.proxy.kind === "proxyless";
  // gRPC clients NACK a whole RouteConfiguration holding a redirect or direct response, and a gRPC
  // call could not follow either: such routes are left out for them.
  if (proxyless && (r.redirect || r.directResponse)) return [];
  if (!r.redirect && !r.directResponse && r.destinations.length === 0) return [];
  const matches: (RequestMatch | undefined)[] =
    r.matches.length === 0 ? [undefined] : r.matches.filter((m) => view.matchApplies(m, port));
  return matches.map((m) => {
    const name = [r.name, m?.name].filter(Boolean).join(".");
    const route: Route = { ...(name && { name }), match: routeMatch(m) };
    if (r.redirect) route.redirect = redirect(r.redirect);
    else if (r.directResponse)
      route.directResponse = {
        status: r.directResponse.status,
        ...(r.directResponse.body !== undefined && { body: { inlineString: r.directResponse.body } }),
      };
    else route.route = routeAction(view, table, r, m, port);

    const perFilter: Record<string, TypedConfig> = {};
    if (r.fault) {
      const fault = faultConfig(r.fault);
      if (fault) perFilter[FILTER.fault] = fault;
    }
    if (r.cors && !proxyless) perFilter[FILTER.cors] = corsConfig(r.cors);
    if (Object.keys(perFilter).length > 0) route.typedPerFilterConfig = perFilter;

    addHeaderOperations(route, r.headers);
    // A single destination has no ClusterWeight to carry its header operations: the route does.
    const live = liveDestinations(r);
    if (route.route && live.length === 1) addHeaderOperations(route, live[0]?.headers);
    return route;
  });
}

function addHeaderOperations(
  target: {
    requestHeadersToAdd?: HeaderValueOption[];
    requestHeadersToRemove?: string[];
    responseHeadersToAdd?: HeaderValueOption[];
    responseHeadersToRemove?: string[];
  },
  ops: HttpRoute["headers"] | RouteDestination["headers"],
): void {
  if (!ops) return;
  const reqAdd = headersToAdd(ops.request);
  const resAdd = headersToAdd(ops.response);
  if (reqAdd.length) target.requestHeadersToAdd = [...(target.requestHeadersToAdd ?? []), ...reqAdd];
  if (ops.request.remove.length)
    target.requestHeadersToRemove = [...(target.requestHeadersToRemove ?? []), ...ops.request.remove];
  if (resAdd.length) target.responseHeadersToAdd = [...(target.responseHeadersToAdd ?? []), ...resAdd];
  if (ops.response.remove.length)
    target.responseHeadersToRemove = [...(target.responseHeadersToRemove ?? []), ...ops.response.remove];
}

export function routeMatch(m: RequestMatch | undefined): RouteMatch {
  const out: RouteMatch = {};
  const uri = m?.uri;
  if (!uri) out.prefix = "/";
  else if (uri.kind === "exact") out.path = uri.value;
  else if (uri.kind === "prefix") out.prefix = uri.value;
  else out.safeRegex = regex(uri.value);
  if (!m) return out;
  if (m.ignoreUriCase) out.caseSensitive = bool(false);
  // Method, authority and scheme are pseudo-headers to Envoy and gRPC alike.
  const headers: HeaderMatcher[] = [];
  if (m.method) headers.push({ name: ":method", stringMatch: stringMatcher(m.method) });
  if (m.authority) headers.push({ name: ":authority", stringMatch: stringMatcher(m.authority) });
  if (m.scheme) headers.push({ name: ":scheme", stringMatch: stringMatcher(m.scheme) });
  headers.push(...m.headers.map(headerMatcher));
  if (headers.length) out.headers = headers;
  if (m.queryParams.length)
    out.queryParameters = m.queryParams.map(
      (q): QueryParameterMatcher =>
        q.match
          ? { name: q.name, stringMatch: stringMatcher(q.match) }
          : { name: q.name, presentMatch: true },
    );
  return out;
}

function headerMatcher(h: HeaderMatch): HeaderMatcher {
  // Header names are case-insensitive; HTTP/2 and gRPC metadata carry them in lower case.
  const name = h.name.toLowerCase();
  const out: HeaderMatcher = h.match
    ? { name, stringMatch: stringMatcher(h.match) }
    : { name, presentMatch: true };
  if (h.invert) out.invertMatch = true;
  return out;
}

/** Destinations with weight; if none has any, the first (a total weight of 0 is rejected by Envoy and gRPC). */
function liveDestinations(r: HttpRoute): RouteDestination[] {
  const weighted = r.destinations.filter((d) => d.weight > 0);
  return weighted.length > 0 ? weighted : r.destinations.slice(0, 1);
}

export interface ResolvedDestination {
  cluster: string;
  service?: Service;
  port: number;
  subset?: string;
}

/**
 * The cluster a destination means: its host resolved in the route table's namespace; its port, else
 * the service's only port, else the port being routed. Unknown hosts still get Istio's name (the
 * route answers 503 until the service exists).
 */
export function resolveDestination(
  view: ProxyView,
  table: RouteTable,
  dest: { host: string; subset?: string; port?: number },
  currentPort: number,
): ResolvedDestination {
  const service = view.index.find(dest.host, table.namespace)[0];
  const onlyPort = service?.ports.length === 1 ? service.ports[0]?.number : undefined;
  const port = dest.port ?? onlyPort ?? currentPort;
  const hostname = service?.hostname ?? resolveHost(dest.host, table.namespace);
  return { cluster: outboundClusterName(port, dest.subset, hostname), service, port, subset: dest.subset };
}

function routeAction(
  view: ProxyView,
  table: RouteTable,
  r: HttpRoute,
  m: RequestMatch | undefined,
  port: number,
): RouteAction {
  const action: RouteAction = {};
  const resolved = liveDestinations(r).map((d) => ({
    dest: d,
    to: resolveDestination(view, table, d, port),
  }));
  if (resolved.length === 1) {
    action.cluster = resolved[0]?.to.cluster;
  } else {
    action.weightedClusters = {
      clusters: resolved.map(({ dest, to }) => {
        const cw: ClusterWeight = { name: to.cluster, weight: u32(dest.weight) };
        addHeaderOperations(cw, dest.headers);
        return cw;
      }),
    };
  }

  // Envoy's default route timeout is 15 s; Istio's is none, written out as 0.
  action.timeout = duration(r.timeoutMs ?? 0);
  // gRPC clients take the deadline from max_stream_duration, not from timeout.
  if (view.proxy.kind === "proxyless" && r.timeoutMs)
    action.maxStreamDuration = { maxStreamDuration: duration(r.timeoutMs) };
  const retry = retryPolicy(r.retries);
  if (retry) action.retryPolicy = retry;

  for (const { to } of resolved) {
    const hash = to.service && hashPolicyFor(view, to.service, to.port, to.subset);
    if (hash) {
      // Several destinations may disagree; the first one's hashing wins (each cluster only uses it if it hashes).
      action.hashPolicy = [hash];
      break;
    }
  }

  if (r.rewrite?.uri !== undefined) {
    if (m?.uri?.kind === "regex")
      action.regexRewrite = { pattern: regex(m.uri.value), substitution: r.rewrite.uri };
    else action.prefixRewrite = r.rewrite.uri;
  } else if (r.rewrite?.uriRegex) {
    action.regexRewrite = {
      pattern: regex(r.rewrite.uriRegex.match),
      substitution: r.rewrite.uriRegex.rewrite,
    };
  }
  if (r.rewrite?.authority !== undefined) action.hostRewriteLiteral = r.rewrite.authority;

  if (r.mirrors.length)
    action.requestMirrorPolicies = r.mirrors.map((mirror) => ({
      cluster: resolveDestination(view, table, mirror, port).cluster,
      runtimeFraction: { defaultValue: fractionalPercent(mirror.percentage) },
    }));
  return action;
}

/** Istio's default when a route says nothing: 2 retries on connect-failure, refused-stream, unavailable, cancelled and 503. */
const DEFAULT_RETRY: ModelRetryPolicy = {
  attempts: 2,
  retryOn: ["connect-failure", "refused-stream", "unavailable", "cancelled", "503"],
};

/**
 * Envoy's retry_on takes conditions; bare status codes go to retriable_status_codes behind the
 * `retriable-status-codes` condition. Attempts 0 disables retries. previous_hosts steers each retry to
 * another endpoint (Istio adds it by default), with Istio's 5 host selection attempts.
 */
export function retryPolicy(retries: ModelRetryPolicy | undefined): RetryPolicy | undefined {
  const r = retries ?? DEFAULT_RETRY;
  if (r.attempts <= 0) return undefined;
  const on = r.retryOn.length > 0 ? r.retryOn : DEFAULT_RETRY.retryOn;
  const codes = on.filter((c) => /^\d+$/.test(c)).map(Number);
  const conditions = on.filter((c) => !/^\d+$/.test(c));
  if (codes.length && !conditions.includes("retriable-status-codes"))
    conditions.push("retriable-status-codes");
  const out: RetryPolicy = { retryOn: conditions.join(","), numRetries: u32(r.attempts) };
  if (codes.length) out.retriableStatusCodes = codes;
  if (r.perTryTimeoutMs !== undefined) out.perTryTimeout = duration(r.perTryTimeoutMs);
  if (r.backoffBaseMs !== undefined) out.retryBackOff = { baseInterval: duration(r.backoffBaseMs) };
  if (r.ignorePreviousHosts !== false) {
    out.retryHostPredicate = [
      {
        name: FILTER.previousHosts,
        typedConfig: typed("envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate", {}),
      },
    ];
    out.hostSelectionRetryMaxAttempts = 5;
  }
  return out;
}

/** What a consistent-hash cluster hashes, from its merged destination policy. */
function hashPolicyFor(
  view: ProxyView,
  service: Service,
  port: number,
  subset: string | undefined,
): HashPolicy | undefined {
  const hash = mergedTrafficPolicy(view.destinationPolicy(service), port, subset).loadBalancer
    ?.consistentHash;
  if (!hash) return undefined;
  if (hash.httpHeaderName) return { header: { headerName: hash.httpHeaderName.toLowerCase() } };
  if (hash.httpCookie)
    return {
      cookie: {
        name: hash.httpCookie.name,
        ...(hash.httpCookie.path !== undefined && { path: hash.httpCookie.path }),
        ...(hash.httpCookie.ttlMs !== undefined && { ttl: duration(hash.httpCookie.ttlMs) }),
      },
    };
  if (hash.useSourceIp) return { connectionProperties: { sourceIp: true } };
  if (hash.httpQueryParameterName) return { queryParameter: { name: hash.httpQueryParameterName } };
  return undefined;
}

const REDIRECT_CODES: Record<number, NonNullable<RedirectAction["responseCode"]>> = {
  301: "MOVED_PERMANENTLY",
  302: "FOUND",
  303: "SEE_OTHER",
  307: "TEMPORARY_REDIRECT",
  308: "PERMANENT_REDIRECT",
};

function redirect(r: NonNullable<HttpRoute["redirect"]>): RedirectAction {
  const out: RedirectAction = { responseCode: REDIRECT_CODES[r.redirectCode] ?? "MOVED_PERMANENTLY" };
  if (r.uri !== undefined) out.pathRedirect = r.uri;
  if (r.authority !== undefined) out.hostRedirect = r.authority;
  if (r.port !== undefined) out.portRedirect = r.port;
  if (r.scheme !== undefined) out.schemeRedirect = r.scheme;
  return out;
}

/** The per-route override of the fault filter (the filter's own config is empty: it does nothing elsewhere). */
export function faultConfig(
  f: FaultPolicy,
): TypedConfig<"envoy.extensions.filters.http.fault.v3.HTTPFault"> | undefined {
  const delay = f.delay && {
    fixedDelay: duration(f.delay.fixedDelayMs),
    percentage: fractionalPercent(f.delay.percentage),
  };
  let abort:
    | { httpStatus?: number; grpcStatus?: number; percentage: ReturnType<typeof fractionalPercent> }
    | undefined;
  if (f.abort) {
    const percentage = fractionalPercent(f.abort.percentage);
    const grpc = f.abort.grpcStatus !== undefined ? grpcStatusCode(f.abort.grpcStatus) : undefined;
    if (f.abort.httpStatus !== undefined) abort = { httpStatus: f.abort.httpStatus, percentage };
    else if (grpc !== undefined) abort = { grpcStatus: grpc, percentage };
  }
  if (!delay && !abort) return undefined;
  return typed("envoy.extensions.filters.http.fault.v3.HTTPFault", {
    ...(delay && { delay }),
    ...(abort && { abort }),
  });
}

function corsConfig(c: ModelCorsPolicy): TypedConfig<"envoy.extensions.filters.http.cors.v3.CorsPolicy"> {
  return typed("envoy.extensions.filters.http.cors.v3.CorsPolicy", {
    allowOriginStringMatch: c.allowOrigins.map((o) => stringMatcher(o)),
    ...(c.allowMethods.length && { allowMethods: c.allowMethods.join(",") }),
    ...(c.allowHeaders.length && { allowHeaders: c.allowHeaders.join(",") }),
    ...(c.exposeHeaders.length && { exposeHeaders: c.exposeHeaders.join(",") }),
    ...(c.maxAgeMs !== undefined && { maxAge: String(Math.floor(c.maxAgeMs / 1000)) }),
    ...(c.allowCredentials !== undefined && { allowCredentials: bool(c.allowCredentials) }),
  });
}
