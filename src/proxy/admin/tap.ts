// Live requests (`GET /tap` on the admin port, what `skein tap` reads): every finished request of this
// sidecar as one NDJSON object, to each client whose filters it passes. Nothing is built unless someone
// taps: completion checks `active` (a boolean) first.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { LocalNode } from "../node.js";
import { formatResponseFlags, type StreamInfo } from "../router/stream-info.js";

/** One end of a tapped request, as far as this sidecar knows it. */
export interface TapPeer {
  workload?: string;
  namespace?: string;
  /** SPIFFE ID: verified (mTLS) for the remote end, this sidecar's own for the local end. */
  principal?: string;
  /** `address:port` (the caller's) or the upstream host chosen. */
  address?: string;
  /** The upstream cluster (outbound) or inbound cluster. */
  cluster?: string;
}

/** One finished request, as `GET /tap` streams it. */
export interface TapEvent {
  /** ISO time the request started. */
  time: string;
  direction: "inbound" | "outbound" | "unspecified";
  protocol: string;
  method: string;
  authority: string;
  path: string;
  /** 0 when no response started (reset, downstream gone). */
  status: number;
  latencyMs: number;
  source: TapPeer;
  destination: TapPeer;
  /** The downstream connection had a verified client certificate. */
  mtls: boolean;
  /** Envoy's response flags, `-` for none. */
  responseFlags: string;
  requestId?: string;
  listener: string;
}

/** What a tap client asked for; every field narrows. */
export interface TapFilter {
  pathPrefix?: string;
  method?: string;
  /** An exact status, or a class: 5 for `5xx`. */
  status?: { exact: number } | { class: number };
  direction?: "inbound" | "outbound";
  /** Outbound requests to this service only (the hostname ending their cluster name, `...|<hostname>`). */
  host?: string;
  /** Stop after this many events (0: no limit). */
  max: number;
}

export class TapError extends Error {
  readonly code = "SKEIN_E_TAP_QUERY";
}

/** Reads `/tap?path=/api&method=GET&status=5xx&direction=inbound&host=<fqdn>&max=10`. */
export function parseTapQuery(q: URLSearchParams): TapFilter {
  const f: TapFilter = { max: 0 };
  const path = q.get("path");
  if (path) {
    if (!path.startsWith("/")) throw new TapError(`path ${JSON.stringify(path)} must start with "/"`);
    f.pathPrefix = path;
  }
  const method = q.get("method");
  if (method) {
    if (!/^[A-Za-z]+$/.test(method))
      throw new TapError(`method ${JSON.stringify(method)} is not an HTTP method`);
    f.method = method.toUpperCase();
  }
  const status = q.get("status");
  if (status) {
    const cls = /^([1-5])xx$/i.exec(status);
    if (cls) f.status = { class: Number(cls[1]) };
    else if (/^[1-5]\d\d$/.test(status)) f.status = { exact: Number(status) };
    else throw new TapError(`status ${JSON.stringify(status)}: write a code (404) or a class (5xx)`);
  }
  const direction = q.get("direction");
  if (direction) {
    if (direction !== "inbound" && direction !== "outbound")
      throw new TapError(`direction ${JSON.stringify(direction)}: inbound or outbound`);
    f.direction = direction;
  }
  const host = q.get("host");
  if (host) f.host = host;
  const max = q.get("max");
  if (max) {
    const n = Number(max);
    if (!Number.isInteger(n) || n < 0)
      throw new TapError(`max ${JSON.stringify(max)} must be a whole number`);
    f.max = n;
  }
  return f;
}

/** Whether a finished request passes a tap filter (checked before its event is built). */
export function tapMatches(f: TapFilter, info: StreamInfo, direction: string): boolean {
  if (info.protocol === "TCP") return false;
  if (f.direction && direction !== f.direction) return false;
  if (f.method && info.method !== f.method) return false;
  if (f.pathPrefix && !info.path.startsWith(f.pathPrefix)) return false;
  if (f.status) {
    const s = info.responseCode;
    if ("exact" in f.status ? s !== f.status.exact : Math.floor(s / 100) !== f.status.class) return false;
  }
  if (f.host) {
    const c = info.cluster ?? "";
    if (!c.endsWith(`|${f.host}`)) return false;
  }
  return true;
}

function spiffeParts(principal: string | undefined): { namespace?: string; workload?: string } {
  const m = principal ? /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal) : null;
  return m ? { namespace: m[1], workload: m[2] } : {};
}

/** The event for one finished request, seen from `node`'s sidecar. */
export function tapEvent(info: StreamInfo, direction: TapEvent["direction"], node: LocalNode): TapEvent {
  const c = info.connection;
  const self: TapPeer = { workload: node.workloadName, namespace: node.namespace, principal: node.principal };
  const peer = (info as StreamInfo & { peer?: { workloadName: string; namespace: string } }).peer;
  const caller: TapPeer = {
    // A verified peer names itself by certificate (and, with mTLS, by the metadata exchange); else only its address.
    ...spiffeParts(c?.peerPrincipal),
    ...(peer &&
      peer.workloadName !== "unknown" && { workload: peer.workloadName, namespace: peer.namespace }),
    ...(c?.peerPrincipal && { principal: c.peerPrincipal }),
    address: c ? `${c.sourceAddress}:${c.sourcePort}` : info.sourceAddress,
  };
  const inbound = direction === "inbound";
  const upstream: TapPeer = {
    ...(info.cluster && { cluster: info.cluster }),
    ...(info.upstreamHost && { address: info.upstreamHost }),
    ...(info.upstreamPeerPrincipal && {
      principal: info.upstreamPeerPrincipal,
      ...spiffeParts(info.upstreamPeerPrincipal),
    }),
  };
  return {
    time: new Date(info.startTime).toISOString(),
    direction,
    protocol: info.protocol,
    method: info.method,
    authority: info.authority,
    path: info.path,
    status: info.responseCode,
    latencyMs: Math.round(info.durationMs * 10) / 10,
    source: inbound
      ? caller
      : { ...self, address: c ? `${c.sourceAddress}:${c.sourcePort}` : info.sourceAddress },
    destination: inbound ? { ...self, ...upstream } : upstream,
    mtls: c?.peerPrincipal !== undefined,
    responseFlags: formatResponseFlags(info.responseFlags),
    ...(info.requestId && { requestId: info.requestId }),
    listener: info.listener,
  };
}

interface Subscriber {
  filter: TapFilter;
  send(e: TapEvent): void;
}

/** The tap clients of one sidecar. */
export class TapHub {
  private readonly subscribers = new Set<Subscriber>();
  /** True while at least one client taps; completion checks only this when nobody does. */
  active = false;

  subscribe(filter: TapFilter, send: (e: TapEvent) => void): () => void {
    const s: Subscriber = { filter, send };
    this.subscribers.add(s);
    this.active = true;
    return () => {
      this.subscribers.delete(s);
      this.active = this.subscribers.size > 0;
    };
  }

  get clients(): number {
    return this.subscribers.size;
  }

  /** Hands a finished request to the clients whose filters it passes (built once, only if one does). */
  publish(info: StreamInfo, direction: TapEvent["direction"] | undefined, node: LocalNode): void {
    const dir = direction ?? "unspecified";
    let event: TapEvent | undefined;
    for (const s of this.subscribers) {
      if (!tapMatches(s.filter, info, dir)) continue;
      event ??= tapEvent(info, dir, node);
      s.send(event);
    }
  }
}

/**
 * Serves `GET /tap` as a stream of NDJSON lines until the client goes away or `max` events were sent. A
 * bad query gets 400 with a SKEIN_E_TAP_QUERY code.
 */
export function serveTap(hub: TapHub, url: URL, req: IncomingMessage, res: ServerResponse): void {
  let filter: TapFilter;
  try {
    if (req.method !== "GET") throw new TapError("use GET /tap");
    filter = parseTapQuery(url.searchParams);
  } catch (err) {
    const body = `${JSON.stringify({ code: "SKEIN_E_TAP_QUERY", message: (err as Error).message })}\n`;
    res.writeHead(400, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(200, { "content-type": "application/x-ndjson", "cache-control": "no-store" });
  // Headers now, so the client knows the tap is on before the first request arrives.
  res.flushHeaders();
  let sent = 0;
  const unsubscribe = hub.subscribe(filter, (e) => {
    res.write(`${JSON.stringify(e)}\n`);
    sent++;
    if (filter.max > 0 && sent >= filter.max) {
      unsubscribe();
      res.end();
    }
  });
  res.on("close", unsubscribe);
}
