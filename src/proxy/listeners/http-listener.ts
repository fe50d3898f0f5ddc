// An HTTP listener (Envoy's HTTP connection manager on one address:port): HTTP/1.1 and h2c on the same
// port, told apart by the HTTP/2 connection preface; absolute-form targets for HTTP_PROXY clients; the
// filter chain per request; Upgrade (WebSocket) and CONNECT tunnels when the listener allows them;
// idle timeouts and graceful drain. Config swaps in place, so open connections keep working.
import { randomUUID } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  ServerResponse,
  STATUS_CODES,
} from "node:http";
import {
  createServer as createHttp2Server,
  type Http2Server,
  type IncomingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from "node:http2";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { type Duplex, PassThrough, type Readable } from "node:stream";
import { logAccess } from "../access-log/writer.js";
import type { HttpListenerConfig, Listener, RouteTable } from "../config/types.js";
import { authorizeTunnel } from "../filters/rbac/rbac.js";
import type { FilterChain } from "../router/chain.js";
import { type ConnectionInfo, plaintextConnection } from "../router/connection.js";
import type { DownstreamRequest, HttpConnectionManager } from "../router/downstream.js";
import { applyMutation, type HeaderRecord } from "../router/headers.js";
import { type LocalReply, Replies } from "../router/local-reply.js";
import { selectRoute, selectVirtualHost, selectWeightedCluster } from "../router/match.js";
import { applyPathNormalization } from "../router/normalize.js";
import { redirectLocation, rewritePath } from "../router/router.js";
import type { HttpStats } from "../router/stats.js";
import { ResponseFlag, StreamInfo } from "../router/stream-info.js";
import type { ListenerContext } from "./context.js";
import { Http1Request } from "./http1.js";
import { Http2Request } from "./http2.js";
import { DownstreamTransport } from "./transport.js";
import { tunnel } from "./tunnel.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** One accepted connection and what it turned out to speak. */
class DownstreamConnection {
  kind: "sniffing" | "http1" | "http2" | "tunnel" = "sniffing";
  /** Requests (HTTP/1) or streams (HTTP/2) in flight. */
  active = 0;
  session: ServerHttp2Session | undefined;
  /** Addresses and TLS identity, shared by every request on the connection. */
  info: ConnectionInfo;
  constructor(readonly socket: Socket) {
    this.info = plaintextConnection(socket);
  }
}

type Target = { authority: string; path: string } | LocalReply;

/** Splits an HTTP/1 request target into authority and path (origin, absolute and asterisk forms). */
export function http1Target(url: string, host: string | undefined, acceptAbsolute: boolean): Target {
  if (url.charCodeAt(0) === 47 /* / */ || url === "*") {
    return host ? { authority: host, path: url } : Replies.missingHost;
  }
  const sep = url.indexOf("://");
  if (sep <= 0) return Replies.badPath;
  if (!acceptAbsolute) return Replies.absoluteUrlNotAllowed;
  const start = sep + 3;
  let end = start;
  while (end < url.length) {
    const c = url.charCodeAt(end);
    if (c === 47 /* / */ || c === 63 /* ? */) break;
    end++;
  }
  let authority = url.slice(start, end);
  const at = authority.lastIndexOf("@");
  if (at >= 0) authority = authority.slice(at + 1);
  if (!authority) return Replies.missingHost;
  const rest = url.slice(end);
  const path = rest === "" ? "/" : rest.charCodeAt(0) === 63 ? `/${rest}` : rest;
  return { authority, path };
}

export class HttpListener implements HttpConnectionManager {
  config: HttpListenerConfig;
  stats: HttpStats;
  draining = false;
  private readonly server: NetServer;
  private readonly h1: Server;
  private readonly h2: Http2Server;
  private readonly conns = new Map<Socket, DownstreamConnection>();
  private readonly sessions = new WeakMap<ServerHttp2Session, DownstreamConnection>();
  private assigning: DownstreamConnection | undefined;
  private drained: (() => void) | undefined;
  /** Filter chain selection by transport protocol and TLS termination, before the HTTP sniffing below. */
  readonly transport: DownstreamTransport;

  constructor(
    public listener: Listener,
    private chain: FilterChain,
    private readonly ctx: ListenerContext,
  ) {
    this.config = listener.config as HttpListenerConfig;
    this.stats = ctx.stats.http(this.config.statPrefix);
    this.transport = new DownstreamTransport(listener.name, ctx.stats, ctx.secrets, this.onConnection);
    this.server = createNetServer({ noDelay: true }, (s) =>
      this.transport.accept(s, this.listener.transport),
    );
    this.h1 = createHttpServer({ noDelay: true, requestTimeout: 0 });
    this.h1.keepAliveTimeout = this.config.idleTimeoutMs;
    this.h1.on("request", this.onHttp1Request);
    this.h1.on("upgrade", this.onHttp1Upgrade);
    this.h1.on("connect", this.onHttp1Connect);
    this.h2 = createHttp2Server();
    this.h2.on("session", this.onSession);
    this.h2.on("stream", this.onStream);
    this.h2.on("sessionError", noop);
  }

  get name(): string {
    return this.listener.name;
  }

  listen(): Promise<void> {
    return listen(this.server, this.listener);
  }

  /** Takes a new config for the same address:port; connections in progress use it from their next request. */
  update(listener: Listener, chain: FilterChain): void {
    this.listener = listener;
    this.config = listener.config as HttpListenerConfig;
    this.chain = chain;
    this.stats = this.ctx.stats.http(this.config.statPrefix);
    this.h1.keepAliveTimeout = this.config.idleTimeoutMs;
  }

  routeTable(): RouteTable | undefined {
    const c = this.config;
    if (c.routes) return c.routes;
    return c.routeConfigName !== undefined ? this.ctx.routes().get(c.routeConfigName) : undefined;
  }

  encodeHeaders(req: DownstreamRequest, status: number, headers: HeaderRecord): void {
    this.chain.encodeHeaders(req, status, headers);
  }

  complete(req: DownstreamRequest): void {
    req.stats.rqActive.value--;
    if (req instanceof Http1Request) {
      const conn = this.conns.get(req.socket);
      if (conn) {
        conn.active--;
        if (conn.active === 0) this.connectionIdle(conn);
      }
    }
    const logs = this.config.accessLog;
    if (logs) logAccess(logs, req.info);
    req.info.span?.finish(req.info);
    this.ctx.onRequestComplete?.(req.info);
  }

  /**
   * Stops accepting, asks clients to go elsewhere (`Connection: close`, GOAWAY), lets requests in flight
   * finish, and closes what is left after `ms`.
   */
  drain(ms: number): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      this.server.close();
      for (const conn of this.conns.values()) {
        if (conn.kind === "http2") conn.session?.close();
        else if (conn.kind !== "tunnel" && conn.active === 0) this.connectionIdle(conn);
      }
    }
    return this.waitClosed(ms);
  }

  /** Closes everything now. */
  close(): void {
    this.draining = true;
    this.server.close();
    this.transport.close();
    for (const conn of this.conns.values()) {
      conn.session?.destroy();
      conn.socket.destroy();
    }
  }

  get connectionCount(): number {
    return this.conns.size;
  }

  private waitClosed(ms: number): Promise<void> {
    if (this.conns.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.close();
        finish();
      }, ms);
      const prev = this.drained;
      const finish = () => {
        clearTimeout(timer);
        prev?.();
        resolve();
      };
      this.drained = finish;
    });
  }

  private connectionIdle(conn: DownstreamConnection): void {
    if (!this.draining) return;
    this.stats.cxDrainClose.value++;
    if (conn.kind === "http1") conn.socket.end();
    else if (conn.kind === "sniffing") conn.socket.destroy();
  }

  // ── Connections ────────────────────────────────────────────────────────────────────────────────

  private readonly onConnection = (socket: Socket, info?: ConnectionInfo): void => {
    const conn = new DownstreamConnection(socket);
    if (info) conn.info = info;
    this.conns.set(socket, conn);
    const stats = this.stats;
    stats.cxTotal.value++;
    stats.cxActive.value++;
    socket.once("close", () => {
      this.conns.delete(socket);
      stats.cxActive.value--;
      if (this.draining && this.conns.size === 0) {
        const d = this.drained;
        this.drained = undefined;
        d?.();
      }
    });
    // Until a protocol server owns the socket, its errors are ours (a reset during sniffing).
    socket.on("error", noop);
    // A connection that never says anything is idle too.
    const idle = this.config.idleTimeoutMs;
    const onIdle = () => socket.destroy();
    if (idle > 0) {
      socket.setTimeout(idle);
      socket.once("timeout", onIdle);
    }
    let buf: Buffer | undefined;
    const onData = (chunk: Buffer) => {
      buf = buf === undefined ? chunk : Buffer.concat([buf, chunk]);
      const n = Math.min(buf.length, PREFACE.length);
      const h2 = buf.compare(PREFACE, 0, n, 0, n) === 0;
      if (h2 && buf.length < PREFACE.length) return; // a prefix of the preface: wait for the rest
      socket.off("data", onData);
      if (idle > 0) {
        socket.setTimeout(0);
        socket.off("timeout", onIdle);
      }
      socket.pause();
      socket.unshift(buf);
      if (h2) {
        conn.kind = "http2";
        this.stats.cxHttp2Total.value++;
        // The preface decides, as Envoy's codec AUTO does: node's h2 server would refuse a TLS socket whose
        // ALPN did not say h2 (prior-knowledge h2 over TLS), so the negotiated value is hidden from it.
        if (conn.info.tls && conn.info.alpn !== "h2")
          (socket as unknown as { alpnProtocol: unknown }).alpnProtocol = undefined;
        this.assigning = conn;
        this.h2.emit("connection", socket);
        this.assigning = undefined;
      } else {
        conn.kind = "http1";
        this.stats.cxHttp1Total.value++;
        this.h1.emit("connection", socket);
        // node:http reads through the socket's 'data' events here; it must flow again to see the bytes.
        socket.resume();
      }
    };
    socket.on("data", onData);
    // A socket whose first bytes the transport inspected arrives paused.
    socket.resume();
  };

  private readonly onSession = (session: ServerHttp2Session): void => {
    const conn = this.assigning;
    if (!conn) return;
    conn.session = session;
    this.sessions.set(session, conn);
    session.on("error", noop);
    if (this.draining) session.close();
    else this.sessionIdle(session, conn);
  };

  /** Envoy's idle_timeout: a connection with no stream in flight for this long is closed. */
  private sessionIdle(session: ServerHttp2Session, conn: DownstreamConnection): void {
    const ms = this.config.idleTimeoutMs;
    if (ms > 0 && conn.active === 0 && !session.closed) {
      session.setTimeout(ms, () => {
        if (conn.active === 0) session.close();
      });
    }
  }

  // ── HTTP/1.1 ───────────────────────────────────────────────────────────────────────────────────

  private readonly onHttp1Request = (req: IncomingMessage, res: ServerResponse): void => {
    this.serveHttp1(req, res, req.socket as Socket, undefined);
  };

  private serveHttp1(
    req: IncomingMessage,
    res: ServerResponse,
    socket: Socket,
    body: Readable | null | undefined,
  ): void {
    const conn = this.conns.get(socket);
    if (conn) conn.active++;
    this.stats.rqTotal.value++;
    this.stats.rqActive.value++;
    const target = http1Target(req.url ?? "/", req.headers.host, this.config.acceptAbsoluteUrls);
    const ok = !("kind" in target);
    const authority = ok ? target.authority : (req.headers.host ?? "");
    const path = ok ? target.path : (req.url ?? "/");
    const info = new StreamInfo(
      this.listener.name,
      "HTTP/1.1",
      req.method ?? "GET",
      authority,
      path,
      socket.remoteAddress ?? "",
    );
    info.connection = conn?.info;
    const r = new Http1Request(this, info, authority, path, req, res, socket, body);
    if (!ok) {
      r.sendLocalReply(target);
      return;
    }
    this.run(r);
  }

  /**
   * An HTTP/1.1 request asking to upgrade to h2c: Envoy ignores the offer and answers over HTTP/1.1. node:http
   * stopped parsing at its headers, so it is answered on the raw socket (a content-length body is read
   * from there too) and the connection closes afterwards.
   */
  private serveIgnoringH2cUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const h = req.headers;
    if (h["transfer-encoding"] !== undefined) {
      rawReply(socket, Replies.h2cChunked);
      return;
    }
    delete h.upgrade;
    delete h["http2-settings"];
    const conn = this.conns.get(socket);
    if (conn) conn.kind = "http1";
    let body: Readable | null = null;
    let left = Number(h["content-length"] ?? 0);
    if (left > 0) {
      const pt = new PassThrough();
      const feed = (c: Buffer) => {
        const part = c.length > left ? c.subarray(0, left) : c;
        left -= part.length;
        pt.write(part);
        if (left === 0) {
          socket.off("data", feed);
          pt.end();
        }
      };
      if (head.length > 0) feed(head);
      if (left > 0) socket.on("data", feed);
      body = pt;
    }
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket);
    res.once("finish", () => {
      res.detachSocket(socket);
      socket.end();
    });
    this.serveHttp1(req, res, socket, body);
  }

  private run(r: DownstreamRequest): void {
    // The path every filter, route and the upstream see is the normalised one (authorization depends on it).
    if (this.config.pathNormalization && !applyPathNormalization(r, this.config.pathNormalization)) return;
    this.chain.run(r, this.ctx.random).catch(() => {
      // A filter threw: a bug, but the client still deserves an answer.
      if (!r.responseEnded) r.sendLocalReply(INTERNAL_ERROR);
    });
  }

  private readonly onHttp1Upgrade = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    const type = (req.headers.upgrade ?? "").toLowerCase();
    if (type === "h2c") {
      this.serveIgnoringH2cUpgrade(req, socket, head);
      return;
    }
    this.stats.rqTotal.value++;
    const conn = this.conns.get(socket);
    if (conn) conn.kind = "tunnel";
    if (!this.config.upgrades.has(type)) {
      this.stats.rqWsOnNonWsRoute.value++;
      rawReply(socket, Replies.upgradeNotAllowed);
      return;
    }
    const target = http1Target(req.url ?? "/", req.headers.host, this.config.acceptAbsoluteUrls);
    if ("kind" in target) {
      rawReply(socket, target);
      return;
    }
    this.openTunnel(socket, head, req.method ?? "GET", target.authority, target.path, req.headers, "upgrade");
  };

  private readonly onHttp1Connect = (req: IncomingMessage, socket: Socket, head: Buffer): void => {
    this.stats.rqTotal.value++;
    const conn = this.conns.get(socket);
    if (conn) conn.kind = "tunnel";
    if (!this.config.upgrades.has("connect")) {
      rawReply(socket, Replies.connectNotAllowed);
      return;
    }
    const authority = req.url ?? "";
    this.openTunnel(socket, head, "CONNECT", authority, "/", req.headers, "connect");
  };

  // ── HTTP/2 ─────────────────────────────────────────────────────────────────────────────────────

  private readonly onStream = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders): void => {
    const conn = this.sessions.get(stream.session as ServerHttp2Session);
    if (conn) {
      conn.active++;
      (stream.session as ServerHttp2Session).setTimeout(0);
      stream.once("close", () => {
        conn.active--;
        if (conn.active === 0 && conn.session) this.sessionIdle(conn.session, conn);
      });
    }
    this.stats.rqTotal.value++;
    this.stats.rqActive.value++;
    const method = headers[":method"] ?? "GET";
    const authority = headers[":authority"] ?? headers.host ?? "";
    const path = headers[":path"] ?? "";
    const info = new StreamInfo(
      this.listener.name,
      "HTTP/2",
      method,
      authority,
      path,
      stream.session?.socket?.remoteAddress ?? "",
    );
    info.connection = conn?.info;
    const r = new Http2Request(this, info, authority, path, headers, stream);
    if (method === "CONNECT") {
      r.sendLocalReply(Replies.connectNotAllowed);
      return;
    }
    if (!authority) {
      r.sendLocalReply(Replies.missingHost);
      return;
    }
    if (path.charCodeAt(0) !== 47 && path !== "*") {
      r.sendLocalReply(Replies.badPath);
      return;
    }
    this.run(r);
  };

  // ── Tunnels (Upgrade, CONNECT) ─────────────────────────────────────────────────────────────────

  /**
   * Routes an Upgrade or CONNECT request like any other, then connects to the chosen host and passes bytes
   * both ways. An upgrade's request head is replayed to the host, whose 101 goes back untouched; CONNECT is
   * answered here with 200 once the host is connected.
   */
  private async openTunnel(
    socket: Socket,
    head: Buffer,
    method: string,
    authority: string,
    path: string,
    headers: IncomingMessage["headers"],
    kind: "upgrade" | "connect",
  ): Promise<void> {
    socket.on("error", noop);
    const info = new StreamInfo(
      this.listener.name,
      "HTTP/1.1",
      method,
      authority,
      path,
      socket.remoteAddress ?? "",
    );
    info.connection = this.conns.get(socket)?.info;
    const done = () => {
      const logs = this.config.accessLog;
      if (logs) logAccess(logs, info);
      this.ctx.onRequestComplete?.(info);
    };
    const fail = (reply: LocalReply) => {
      info.setFlag(reply.flag);
      info.responseCode = reply.status;
      info.responseCodeDetails = reply.details;
      this.stats.responded(reply.status);
      rawReply(socket, reply);
      done();
    };
    const table = this.routeTable();
    const req = { method, authority, path, scheme: "http", headers };
    // Tunnels skip the filter chain, not authorization: the same path normalisation and RBAC rules.
    const refused = authorizeTunnel(this.config, req, info.connection);
    if (refused) {
      fail(refused);
      return;
    }
    path = req.path;
    const vh = table ? selectVirtualHost(table, authority) : undefined;
    const route = vh ? selectRoute(vh, req, this.ctx.random) : undefined;
    info.virtualHost = vh?.name;
    info.routeName = route?.name;
    if (!route) {
      this.stats.noRoute.value++;
      fail(Replies.noRoute);
      return;
    }
    const action = route.action;
    if (action.kind === "direct") {
      fail({
        ...Replies.noRoute,
        status: action.status,
        body: action.body ?? "",
        flag: 0,
        details: "direct_response",
      });
      return;
    }
    if (action.kind === "redirect") {
      fail({
        ...Replies.noRoute,
        status: action.status,
        flag: 0,
        details: "redirect",
        headers: { location: redirectLocation(req, route, action) },
      });
      return;
    }
    const wc = selectWeightedCluster(action, this.ctx.random());
    const cluster = wc ? this.ctx.clusters.get(wc.name) : undefined;
    info.cluster = wc?.name;
    if (!wc || !cluster) {
      fail(Replies.noCluster);
      return;
    }
    const host = cluster.pick({});
    if (!host) {
      fail(Replies.noHealthy);
      return;
    }
    info.upstreamHost = host.key;
    info.attempts = 1;
    const ac = new AbortController();
    const onEarlyClose = () => ac.abort(new Error("downstream went away"));
    socket.once("close", onEarlyClose);
    let upstream: Duplex;
    try {
      upstream = await host.connect(ac.signal);
    } catch (err) {
      socket.off("close", onEarlyClose);
      if (ac.signal.aborted) {
        info.setFlag(ResponseFlag.DownstreamConnectionTermination);
        done();
        return;
      }
      const flag = (err as { flag?: string }).flag;
      if (flag === "UF") host.report({ kind: "connect-failure" });
      fail(flag === "UO" ? Replies.overflow : Replies.connectFailure);
      return;
    }
    socket.off("close", onEarlyClose);
    if (socket.destroyed) {
      upstream.destroy();
      info.setFlag(ResponseFlag.DownstreamConnectionTermination);
      done();
      return;
    }
    if (kind === "upgrade") {
      const h: HeaderRecord = {};
      for (const name in headers) {
        const v = headers[name];
        if (v !== undefined && name !== "host") h[name] = v;
      }
      applyMutation(h, wc.requestHeaders);
      applyMutation(h, route.requestHeaders);
      applyMutation(h, vh?.requestHeaders ?? NO_MUTATION);
      if (table) applyMutation(h, table.requestHeaders);
      if (h["x-forwarded-proto"] === undefined) h["x-forwarded-proto"] = "http";
      if (h["x-request-id"] === undefined && this.config.generateRequestId) h["x-request-id"] = randomUUID();
      let text = `${method} ${rewritePath(route, action, path)} HTTP/1.1\r\nhost: ${action.hostRewrite ?? authority}\r\n`;
      for (const name in h) {
        const v = h[name] as string | string[];
        if (typeof v === "string") text += `${name}: ${v}\r\n`;
        else for (const x of v) text += `${name}: ${x}\r\n`;
      }
      upstream.write(`${text}\r\n`);
      info.responseCode = 101;
    } else {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      info.responseCode = 200;
    }
    if (head.length > 0) upstream.write(head);
    info.responseCodeDetails = "via_upstream";
    this.stats.responded(info.responseCode);
    tunnel(socket, upstream, {
      idleTimeoutMs: this.config.idleTimeoutMs,
      onClose: (bytes) => {
        info.bytesReceived = bytes.downstreamToUpstream;
        info.bytesSent = bytes.upstreamToDownstream;
        info.downstreamResponseEnd = info.elapsed();
        done();
      },
    });
  }
}

const NO_MUTATION = { add: [], remove: [] };
const INTERNAL_ERROR: LocalReply = {
  ...Replies.reset,
  status: 500,
  body: "internal error",
  flag: 0,
  details: "filter_error",
};

/** A complete HTTP/1.1 response written straight to a socket that no HTTP server owns any more. */
function rawReply(socket: Socket, reply: LocalReply): void {
  let text = `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ""}\r\n`;
  if (reply.headers) for (const [k, v] of Object.entries(reply.headers)) text += `${k}: ${v}\r\n`;
  if (reply.body) text += "content-type: text/plain\r\n";
  text += `content-length: ${Buffer.byteLength(reply.body)}\r\nconnection: close\r\n\r\n${reply.body}`;
  socket.end(text);
}

/** Binds a server on the listener's address:port; rejects with the listen error. */
export function listen(server: NetServer, listener: Listener): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => {
      server.off("listening", onListening);
      reject(err);
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen({ host: listener.address, port: listener.port, exclusive: true, backlog: 1024 });
  });
}

function noop(): void {}
