// Header handling on the request path: hop-by-hop removal (RFC 9110 §7.6.1) when a request or response
// crosses the proxy, and the route's header mutations. Each crossing copies the header record once.
import type { HeaderMutation } from "../config/types.js";

export type HeaderRecord = Record<string, string | string[]>;
export type IncomingHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** Connection-specific headers never forwarded (HTTP/2 forbids them outright). */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "http2-settings",
  "host",
]);

/** Connection tokens that only name standard hop-by-hop headers (no extra names to drop). */
const PLAIN_CONNECTION_TOKENS = new Set(["close", "keep-alive", "upgrade"]);

/**
 * The headers to send upstream: no pseudo-headers, no hop-by-hop headers and none that `Connection` names;
 * `te: trailers` survives (gRPC needs it); `expect: 100-continue` is answered here, as Envoy does.
 */
export function upstreamRequestHeaders(h: IncomingHeaders): HeaderRecord {
  const out: HeaderRecord = {};
  const extra = connectionNamed(h.connection);
  for (const name in h) {
    const v = h[name];
    if (v === undefined || name.charCodeAt(0) === 58 /* : */) continue;
    if (HOP_BY_HOP.has(name)) {
      if (name === "te" && isTrailers(v)) out.te = "trailers";
      continue;
    }
    if (name === "expect" && typeof v === "string" && v.toLowerCase() === "100-continue") continue;
    if (extra?.has(name)) continue;
    out[name] = v;
  }
  return out;
}

/** The headers to send downstream: as upstreamRequestHeaders, but keeping none of te/expect. */
export function downstreamResponseHeaders(h: IncomingHeaders): HeaderRecord {
  const out: HeaderRecord = {};
  const extra = connectionNamed(h.connection);
  for (const name in h) {
    const v = h[name];
    if (v === undefined || name.charCodeAt(0) === 58 || HOP_BY_HOP.has(name)) continue;
    if (extra?.has(name)) continue;
    out[name] = v;
  }
  return out;
}

/** Trailers pass as they are, minus anything an HTTP/2 peer would reject. */
export function forwardableTrailers(h: IncomingHeaders): HeaderRecord | undefined {
  let out: HeaderRecord | undefined;
  for (const name in h) {
    const v = h[name];
    if (v === undefined || name.charCodeAt(0) === 58 || HOP_BY_HOP.has(name)) continue;
    out ??= {};
    out[name] = v;
  }
  return out;
}

function isTrailers(v: string | string[]): boolean {
  const s = typeof v === "string" ? v : v.join(",");
  return s.toLowerCase().includes("trailers");
}

function connectionNamed(v: string | string[] | undefined): Set<string> | undefined {
  if (v === undefined) return undefined;
  const s = (typeof v === "string" ? v : v.join(",")).toLowerCase();
  if (PLAIN_CONNECTION_TOKENS.has(s)) return undefined;
  let out: Set<string> | undefined;
  for (const token of s.split(",")) {
    const t = token.trim();
    if (!t || PLAIN_CONNECTION_TOKENS.has(t)) continue;
    if (out === undefined) out = new Set();
    out.add(t);
  }
  return out;
}

/** Removes, then sets or appends, in order (Envoy's HeaderParser). */
export function applyMutation(headers: HeaderRecord, m: HeaderMutation): void {
  if (m.add.length === 0 && m.remove.length === 0) return;
  for (const name of m.remove) delete headers[name];
  for (const a of m.add) {
    const existing = headers[a.name];
    if (!a.append || existing === undefined) headers[a.name] = a.value;
    else if (typeof existing === "string") headers[a.name] = [existing, a.value];
    // A fresh array: the existing one may belong to the incoming message.
    else headers[a.name] = [...existing, a.value];
  }
}

/** The first value of a header, for headers that are single-valued in practice. */
export function first(v: string | string[] | undefined): string | undefined {
  return typeof v === "string" ? v : v?.[0];
}
