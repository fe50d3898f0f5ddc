// A small, pure evaluator of translated routes, for tests that assert traffic behaviour ("this call
// reaches that cluster") rather than proto shape, as Istio's pilot/pkg/simulation does. It follows
// Envoy: the virtual host by :authority (exact, then longest suffix wildcard, longest prefix wildcard,
// then `*`), the first route whose path, headers and query parameters match, then the weighted
// cluster that a roll in [0, total weight) selects.

import type { HeaderMatcher } from "../xds/generated/envoy/config/route/v3/HeaderMatcher.js";
import type { RetryPolicy } from "../xds/generated/envoy/config/route/v3/RetryPolicy.js";
import type { Route } from "../xds/generated/envoy/config/route/v3/Route.js";
import type { RouteConfiguration } from "../xds/generated/envoy/config/route/v3/RouteConfiguration.js";
import type { RouteMatch } from "../xds/generated/envoy/config/route/v3/RouteMatch.js";
import type { VirtualHost } from "../xds/generated/envoy/config/route/v3/VirtualHost.js";
import type { HTTPFault } from "../xds/generated/envoy/extensions/filters/http/fault/v3/HTTPFault.js";
import type { StringMatcher } from "../xds/generated/envoy/type/matcher/v3/StringMatcher.js";
import type { ProxyResources } from "./index.js";
import { OUTBOUND_LISTENER } from "./names.js";
import { asTyped, FILTER } from "./typed.js";
import { durationMs } from "./values.js";

export interface SimulatedRequest {
  /** The Host / :authority header (for gRPC, the dialled target). */
  authority: string;
  /** Path, with the query string if any. */
  path: string;
  method?: string;
  scheme?: string;
  /** Other request headers, any case. */
  headers?: Record<string, string>;
}

export type SimulationResult =
  | { kind: "not-found"; status: 404; reason: "no virtual host" | "no route"; virtualHost?: string }
  | {
      kind: "cluster";
      virtualHost: string;
      route: Route;
      /** The selected cluster, by the roll. */
      cluster: string;
      /** Every candidate with its weight (one entry for a plain cluster). */
      clusters: { name: string; weight: number }[];
      /** Undefined: the route sets none (Envoy's default 15 s); 0: disabled. */
      timeoutMs?: number;
      retry?: RetryPolicy;
      fault?: HTTPFault;
    }
  | { kind: "redirect"; virtualHost: string; route: Route }
  | { kind: "direct-response"; virtualHost: string; route: Route; status: number };

export function simulate(config: RouteConfiguration, request: SimulatedRequest, roll = 0): SimulationResult {
  const vh = selectVirtualHost(config.virtualHosts ?? [], request.authority);
  if (!vh) return { kind: "not-found", status: 404, reason: "no virtual host" };
  const virtualHost = vh.name ?? "";
  const headers = requestHeaders(request);
  const route = (vh.routes ?? []).find((r) => r.match && routeMatches(r.match, request.path, headers));
  if (!route) return { kind: "not-found", status: 404, reason: "no route", virtualHost };
  if (route.redirect) return { kind: "redirect", virtualHost, route };
  if (route.directResponse)
    return { kind: "direct-response", virtualHost, route, status: route.directResponse.status ?? 0 };
  const action = route.route ?? {};
  const clusters = action.weightedClusters
    ? (action.weightedClusters.clusters ?? []).map((c) => ({
        name: c.name ?? "",
        weight: c.weight?.value ?? 0,
      }))
    : [{ name: action.cluster ?? "", weight: 1 }];
  return {
    kind: "cluster",
    virtualHost,
    route,
    cluster: pickWeighted(clusters, roll),
    clusters,
    timeoutMs: durationMs(action.timeout),
    retry: action.retryPolicy ?? undefined,
    fault: asTyped(
      route.typedPerFilterConfig?.[FILTER.fault],
      "envoy.extensions.filters.http.fault.v3.HTTPFault",
    ),
  };
}

/** Through a sidecar's outbound listener, as an application using it as HTTP_PROXY would. */
export function simulateOutbound(
  resources: ProxyResources,
  request: SimulatedRequest,
  roll = 0,
): SimulationResult {
  const listener = resources.listeners.find((l) => l.name === OUTBOUND_LISTENER);
  const hcm = asTyped(
    listener?.filterChains?.[0]?.filters?.[0]?.typedConfig,
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  );
  return simulateRds(resources, hcm?.rds?.routeConfigName, request, roll);
}

/** As a proxyless gRPC client dialling `xds:///<target>`: its api_listener, its route configuration, the target as authority. */
export function simulateTarget(
  resources: ProxyResources,
  target: string,
  request: Omit<SimulatedRequest, "authority">,
  roll = 0,
): SimulationResult {
  const listener = resources.listeners.find((l) => l.name === target);
  const hcm = asTyped(
    listener?.apiListener?.apiListener,
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  );
  return simulateRds(resources, hcm?.rds?.routeConfigName, { ...request, authority: target }, roll);
}

function simulateRds(
  resources: ProxyResources,
  name: string | undefined,
  request: SimulatedRequest,
  roll: number,
): SimulationResult {
  const config = resources.routes.find((r) => r.name === name);
  if (!config) return { kind: "not-found", status: 404, reason: "no virtual host" };
  return simulate(config, request, roll);
}

/** Envoy picks the first cluster whose cumulative weight exceeds `roll mod total`. */
function pickWeighted(clusters: { name: string; weight: number }[], roll: number): string {
  const total = clusters.reduce((s, c) => s + c.weight, 0);
  if (total <= 0) return clusters[0]?.name ?? "";
  const r = ((Math.floor(roll) % total) + total) % total;
  let cumulative = 0;
  for (const c of clusters) {
    cumulative += c.weight;
    if (r < cumulative) return c.name;
  }
  return clusters[clusters.length - 1]?.name ?? "";
}

function selectVirtualHost(hosts: readonly VirtualHost[], authority: string): VirtualHost | undefined {
  const host = authority.toLowerCase();
  let best: { vh: VirtualHost; rank: number; length: number } | undefined;
  for (const vh of hosts) {
    for (const d of vh.domains ?? []) {
      const domain = d.toLowerCase();
      let rank: number;
      if (domain === host) rank = 0;
      else if (domain === "*") rank = 3;
      // Envoy's wildcards match at least one character.
      else if (domain.startsWith("*") && host.length > domain.length - 1 && host.endsWith(domain.slice(1)))
        rank = 1;
      else if (
        domain.endsWith("*") &&
        host.length > domain.length - 1 &&
        host.startsWith(domain.slice(0, -1))
      )
        rank = 2;
      else continue;
      if (!best || rank < best.rank || (rank === best.rank && domain.length > best.length))
        best = { vh, rank, length: domain.length };
    }
  }
  return best?.vh;
}

function requestHeaders(request: SimulatedRequest): Map<string, string> {
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(request.headers ?? {})) headers.set(k.toLowerCase(), v);
  headers.set(":authority", request.authority);
  headers.set(":method", request.method ?? "GET");
  headers.set(":scheme", request.scheme ?? "http");
  headers.set(":path", request.path);
  return headers;
}

function fullRegex(pattern: string, ignoreCase = false): RegExp {
  // RE2 matches the whole value in Envoy; JavaScript's syntax is close enough for the mesh's patterns.
  return new RegExp(`^(?:${pattern})$`, ignoreCase ? "i" : "");
}

function routeMatches(m: RouteMatch, fullPath: string, headers: Map<string, string>): boolean {
  const q = fullPath.indexOf("?");
  const path = q >= 0 ? fullPath.slice(0, q) : fullPath;
  const caseSensitive = m.caseSensitive?.value ?? true;
  const p = caseSensitive ? path : path.toLowerCase();
  if (m.prefix !== undefined && !p.startsWith(caseSensitive ? m.prefix : m.prefix.toLowerCase()))
    return false;
  if (m.path !== undefined && p !== (caseSensitive ? m.path : m.path.toLowerCase())) return false;
  if (m.safeRegex && !fullRegex(m.safeRegex.regex ?? "", !caseSensitive).test(path)) return false;
  if (!(m.headers ?? []).every((h) => headerMatches(h, headers))) return false;
  const query = new URLSearchParams(q >= 0 ? fullPath.slice(q + 1) : "");
  for (const qp of m.queryParameters ?? []) {
    const value = query.get(qp.name ?? "");
    if (qp.presentMatch && value === null) return false;
    if (qp.stringMatch && (value === null || !stringMatches(qp.stringMatch, value))) return false;
  }
  return true;
}

function headerMatches(h: HeaderMatcher, headers: Map<string, string>): boolean {
  const value = headers.get((h.name ?? "").toLowerCase());
  let matched: boolean;
  if (h.presentMatch !== undefined) matched = (value !== undefined) === h.presentMatch;
  else if (value === undefined) matched = false;
  else if (h.stringMatch) matched = stringMatches(h.stringMatch, value);
  else if (h.exactMatch !== undefined) matched = value === h.exactMatch;
  else if (h.prefixMatch !== undefined) matched = value.startsWith(h.prefixMatch);
  else if (h.safeRegexMatch) matched = fullRegex(h.safeRegexMatch.regex ?? "").test(value);
  else matched = true;
  return h.invertMatch ? !matched : matched;
}

function stringMatches(m: StringMatcher, value: string): boolean {
  const v = m.ignoreCase ? value.toLowerCase() : value;
  const lc = (s: string) => (m.ignoreCase ? s.toLowerCase() : s);
  if (m.exact !== undefined) return v === lc(m.exact);
  if (m.prefix !== undefined) return v.startsWith(lc(m.prefix));
  if (m.suffix !== undefined) return v.endsWith(lc(m.suffix));
  if (m.contains !== undefined) return v.includes(lc(m.contains));
  if (m.safeRegex) return fullRegex(m.safeRegex.regex ?? "", m.ignoreCase).test(value);
  return false;
}
