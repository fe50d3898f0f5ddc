// Route selection, as pure functions over the compiled RouteTable: the virtual host by :authority, the
// first route whose match holds, the weighted cluster a roll selects. No I/O and no allocation on the
// common path (query strings are parsed only for routes that match on them).
import type {
  HeaderMatcher,
  QueryParameterMatcher,
  Route,
  RouteAction,
  RouteMatch,
  RouteTable,
  StringMatcher,
  VirtualHost,
  WeightedCluster,
} from "../config/types.js";

/** What route matching reads from a request. Header names are lower-case. */
export interface MatchableRequest {
  method: string;
  authority: string;
  /** Path with the query string, as received (`:path`). */
  path: string;
  scheme: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

/**
 * Envoy's virtual host search: exact domain, then the longest `*suffix`, then the longest `prefix*`, then
 * the `*` catch-all. When the authority carries a port and nothing matched with it, the host alone is
 * tried too, so port-less domains (`reviews`, `*.example.com`) serve `reviews:9080` as Envoy does.
 */
export function selectVirtualHost(table: RouteTable, authority: string): VirtualHost | undefined {
  const host = lowerAscii(authority);
  const found = findDomain(table, host);
  if (found) return found;
  const colon = portColon(host);
  if (colon > 0) {
    const bare = findDomain(table, host.slice(0, colon));
    if (bare) return bare;
  }
  return table.catchAll;
}

function findDomain(table: RouteTable, host: string): VirtualHost | undefined {
  const exact = table.exact.get(host);
  if (exact) return exact;
  // Wildcards match at least one character, as in Envoy (`*.a.com` does not match `.a.com`).
  for (const s of table.suffixes) {
    if (host.length > s.suffix.length && host.endsWith(s.suffix)) return s.host;
  }
  for (const p of table.prefixes) {
    if (host.length > p.prefix.length && host.startsWith(p.prefix)) return p.host;
  }
  return undefined;
}

/** Index of the colon before a port, or -1 (IPv6 literals are bracketed: `[::1]:80`). */
function portColon(host: string): number {
  const colon = host.lastIndexOf(":");
  if (colon < 0) return -1;
  if (host.charCodeAt(0) === 91 /* [ */) return host.charCodeAt(colon - 1) === 93 /* ] */ ? colon : -1;
  return host.indexOf(":") === colon ? colon : -1;
}

function lowerAscii(s: string): string {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 65 && c <= 90) return s.toLowerCase();
  }
  return s;
}

/** The first route of the virtual host whose match holds, as Envoy does; `roll` in [0, 1) decides runtime fractions. */
export function selectRoute(
  vh: VirtualHost,
  req: MatchableRequest,
  random: () => number = Math.random,
): Route | undefined {
  const q = req.path.indexOf("?");
  const path = q >= 0 ? req.path.slice(0, q) : req.path;
  let query: URLSearchParams | undefined;
  for (const route of vh.routes) {
    const m = route.match;
    if (!pathMatches(m, path)) continue;
    if (m.headers.length > 0 && !headersMatch(m.headers, req)) continue;
    if (m.queryParameters.length > 0) {
      query ??= new URLSearchParams(q >= 0 ? req.path.slice(q + 1) : "");
      if (!queryMatches(m.queryParameters, query)) continue;
    }
    if (m.fraction !== undefined && !(random() < m.fraction)) continue;
    return route;
  }
  return undefined;
}

export function pathMatches(m: RouteMatch, path: string): boolean {
  const p = m.path;
  switch (p.kind) {
    case "prefix":
      return p.caseSensitive ? path.startsWith(p.value) : path.toLowerCase().startsWith(p.value);
    case "path":
      return p.caseSensitive ? path === p.value : path.toLowerCase() === p.value;
    case "regex":
      return p.regex.test(path);
  }
}

/** A header's value as matchers see it: pseudo-headers from the request line, repeated headers joined by ",". */
export function headerValue(req: MatchableRequest, name: string): string | undefined {
  if (name.charCodeAt(0) === 58 /* : */) {
    switch (name) {
      case ":method":
        return req.method;
      case ":authority":
        return req.authority;
      case ":path":
        return req.path;
      case ":scheme":
        return req.scheme;
    }
  }
  const v = name === "host" ? req.authority : req.headers[name];
  if (v === undefined || typeof v === "string") return v;
  return v.join(",");
}

function headersMatch(matchers: readonly HeaderMatcher[], req: MatchableRequest): boolean {
  for (const h of matchers) if (!headerMatches(h, headerValue(req, h.name))) return false;
  return true;
}

export function headerMatches(h: HeaderMatcher, value: string | undefined): boolean {
  let matched: boolean;
  if (h.present !== undefined) matched = (value !== undefined) === h.present;
  else if (value === undefined) matched = false;
  else matched = h.match ? stringMatches(h.match, value) : true;
  return h.invert ? !matched : matched;
}

function queryMatches(matchers: readonly QueryParameterMatcher[], query: URLSearchParams): boolean {
  for (const qp of matchers) {
    const value = query.get(qp.name);
    if (value === null) return false;
    if (qp.match && !stringMatches(qp.match, value)) return false;
  }
  return true;
}

/** With ignoreCase the compiled value is already lower-case; regexes are anchored by the config layer. */
export function stringMatches(m: StringMatcher, value: string): boolean {
  if (m.kind === "regex") return m.regex.test(value);
  const v = m.ignoreCase ? value.toLowerCase() : value;
  switch (m.kind) {
    case "exact":
      return v === m.value;
    case "prefix":
      return v.startsWith(m.value);
    case "suffix":
      return v.endsWith(m.value);
    case "contains":
      return v.includes(m.value);
  }
}

/** The cluster a roll in [0, 1) selects: the first whose cumulative weight exceeds roll × total (zero weights never). */
export function selectWeightedCluster(action: RouteAction, roll: number): WeightedCluster | undefined {
  const clusters = action.clusters;
  if (clusters.length === 1) return clusters[0];
  const total = action.totalWeight;
  if (total <= 0) return clusters[0];
  const r = Math.floor(roll * total);
  let cumulative = 0;
  for (const c of clusters) {
    cumulative += c.weight;
    if (r < cumulative) return c;
  }
  return clusters[clusters.length - 1];
}
