// One downstream request as the filter chain and the router see it, whatever the protocol: the request
// line and headers, the body, and the ways to answer (headers, body, trailers, reset). The listeners
// implement it for HTTP/1.1 and HTTP/2; this base keeps the shared bookkeeping (stats, StreamInfo, route
// cache, local replies), so each request costs this object and its StreamInfo.
import type { Readable } from "node:stream";
import type { HttpListenerConfig, Route, RouteTable, VirtualHost } from "../config/types.js";
import type { AttemptFilters } from "./chain.js";
import type { ConnectionInfo } from "./connection.js";
import { applyMutation, type HeaderRecord, type IncomingHeaders } from "./headers.js";
import { encodeGrpcMessage, httpToGrpcStatus, isGrpc, type LocalReply } from "./local-reply.js";
import { type MatchableRequest, selectRoute, selectVirtualHost } from "./match.js";
import type { HttpStats } from "./stats.js";
import type { StreamInfo } from "./stream-info.js";

/** What a request needs from the listener that accepted it; read per request, swapped with config. */
export interface HttpConnectionManager {
  readonly config: HttpListenerConfig;
  readonly stats: HttpStats;
  /** The route table now in force (inline, or the RDS table by name); undefined before RDS arrives. */
  routeTable(): RouteTable | undefined;
  /** The listener is draining: HTTP/1 responses carry `Connection: close`. */
  readonly draining: boolean;
  /** Response filters (encodeHeaders), in chain order. */
  encodeHeaders(req: DownstreamRequest, status: number, headers: HeaderRecord): void;
  /** Called once per request when its response ended or the stream went away. */
  complete(req: DownstreamRequest): void;
}

export interface AbortListener {
  onDownstreamAbort(): void;
}

export abstract class DownstreamRequest implements MatchableRequest {
  /** Route cache (Envoy's cached route): resolved before the filters run, cleared by clearRouteCache(). */
  table: RouteTable | undefined;
  virtualHost: VirtualHost | undefined;
  route: Route | undefined;
  /** The chain's filters that act on each upstream attempt (set by the chain; shared, not per request). */
  attemptFilters: AttemptFilters | undefined;
  /** Per-request state filters may keep by filter name (created on first use). */
  private state: Map<string, unknown> | undefined;
  protected started = false;
  protected ended = false;
  /** The stats the request counted itself in when it arrived (a config swap may change the listener's). */
  readonly stats: HttpStats;

  constructor(
    readonly manager: HttpConnectionManager,
    readonly info: StreamInfo,
    public method: string,
    public authority: string,
    public path: string,
    public scheme: string,
    public headers: IncomingHeaders,
  ) {
    this.stats = manager.stats;
    // A reference, not a copy: access logs read it only once the request is over.
    info.requestHeaders = headers;
  }

  abstract readonly http2: boolean;
  /** The peer's IP address. */
  abstract readonly sourceAddress: string;
  /** True once the downstream stream or connection went away. */
  abstract readonly aborted: boolean;
  /** The request body, or null when the request has none. */
  abstract body(): Readable | null;
  /** Tells `listener` once if the downstream goes away before the response ends (an object, not a closure). */
  abstract onAbort(listener: AbortListener): void;
  /** Sends the response headers; with `endStream` the response is complete. */
  protected abstract writeHeaders(status: number, headers: HeaderRecord, endStream: boolean): void;
  /** Writes body bytes; false when the peer is slow (wait for onceDrain). */
  abstract write(chunk: Buffer): boolean;
  abstract onceDrain(fn: () => void): void;
  /** Ends the response, with trailers when the protocol carries them (HTTP/2). */
  protected abstract writeEnd(trailers: HeaderRecord | undefined): void;
  /** Abandons the response: RST_STREAM on HTTP/2, closing the connection on HTTP/1. */
  protected abstract writeReset(): void;

  /** The connection the request arrived on (TLS, verified peer principal); undefined only in unit tests. */
  get connection(): ConnectionInfo | undefined {
    return this.info.connection;
  }

  /** Whether response headers went out (after that, errors can only reset the stream). */
  get responseStarted(): boolean {
    return this.started;
  }

  get responseEnded(): boolean {
    return this.ended;
  }

  filterState(name: string): unknown {
    return this.state?.get(name);
  }

  setFilterState(name: string, value: unknown): void {
    if (this.state === undefined) this.state = new Map();
    this.state.set(name, value);
  }

  /** Resolves (again) the virtual host and route for the current authority, path and headers. */
  resolveRoute(random: () => number = Math.random): Route | undefined {
    const table = this.manager.routeTable();
    this.table = table;
    this.virtualHost = table ? selectVirtualHost(table, this.authority) : undefined;
    this.route = this.virtualHost ? selectRoute(this.virtualHost, this, random) : undefined;
    this.info.virtualHost = this.virtualHost?.name;
    this.info.routeName = this.route?.name;
    return this.route;
  }

  /** Call after changing headers the route depends on; the next resolveRoute() sees the change. */
  clearRouteCache(): void {
    this.table = undefined;
    this.virtualHost = undefined;
    this.route = undefined;
  }

  /** Per-route config of a filter: the route's, else the virtual host's. */
  perFilterConfig(name: string): unknown {
    return this.route?.filterConfig.get(name) ?? this.virtualHost?.filterConfig.get(name);
  }

  isGrpc(): boolean {
    return isGrpc(this.headers["content-type"]);
  }

  sendHeaders(status: number, headers: HeaderRecord, endStream: boolean): void {
    if (this.started) return;
    this.started = true;
    this.info.responseCode = status;
    this.info.responseHeaders = headers;
    this.stats.responded(status);
    this.manager.encodeHeaders(this, status, headers);
    this.writeHeaders(status, headers, endStream);
    if (endStream) this.markEnded();
  }

  end(trailers: HeaderRecord | undefined): void {
    if (this.ended) return;
    this.writeEnd(trailers);
    this.markEnded();
  }

  reset(): void {
    if (this.ended) return;
    this.writeReset();
    this.markEnded();
  }

  protected markEnded(): void {
    this.ended = true;
    this.info.downstreamResponseEnd = this.info.elapsed();
  }

  /**
   * Answers from the proxy itself. gRPC requests get gRPC's shape (HTTP 200, grpc-status and grpc-message,
   * trailers-only) as Envoy does; `route` adds the route's response header mutations (direct responses,
   * redirects). After the response started, the only honest answer is a reset.
   */
  sendLocalReply(reply: LocalReply, route?: Route): void {
    const info = this.info;
    info.setFlag(reply.flag);
    if (!info.responseCodeDetails) info.responseCodeDetails = reply.details;
    if (this.started) {
      this.reset();
      return;
    }
    const headers: HeaderRecord = {};
    if (reply.headers) Object.assign(headers, reply.headers);
    if (route) {
      applyMutation(headers, route.responseHeaders);
      if (this.virtualHost) applyMutation(headers, this.virtualHost.responseHeaders);
      if (this.table) applyMutation(headers, this.table.responseHeaders);
    }
    if (this.isGrpc()) {
      const grpcStatus = reply.grpcStatus ?? httpToGrpcStatus(reply.status);
      info.grpcStatus = grpcStatus;
      headers["content-type"] = "application/grpc";
      headers["grpc-status"] = String(grpcStatus);
      if (reply.body) headers["grpc-message"] = encodeGrpcMessage(reply.body);
      this.sendHeaders(200, headers, true);
      return;
    }
    const body = reply.body;
    if (body && this.method !== "HEAD") {
      headers["content-type"] ??= "text/plain";
      headers["content-length"] = String(Buffer.byteLength(body));
      this.sendHeaders(reply.status, headers, false);
      const bytes = Buffer.from(body);
      this.write(bytes);
      this.info.bytesSent += bytes.length;
      this.end(undefined);
      return;
    }
    headers["content-length"] = "0";
    this.sendHeaders(reply.status, headers, true);
  }
}
