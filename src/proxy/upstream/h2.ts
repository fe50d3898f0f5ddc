// HTTP/2 cleartext to one host (h2c with prior knowledge, what gRPC servers speak): one multiplexed
// node:http2 session at a time, replaced after GOAWAY, close, max_requests_per_connection or idle timeout;
// a draining session finishes its streams before it closes. Streams are bounded by the cluster's
// max_requests (checked by the host) and wait as pending only while the session connects.
import http2, { type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from "node:http2";
import { pipeline, type Readable } from "node:stream";
import {
  abortReason,
  type Headers,
  openSocket,
  originOf,
  overflow,
  type PoolHost,
  resetError,
  StreamedResponse,
  TrailerLatch,
} from "./pool.js";
import { UpstreamError, type UpstreamRequest, type UpstreamResponse } from "./types.js";

const REFUSED_STREAM = http2.constants.NGHTTP2_REFUSED_STREAM;
// Connection-specific headers are illegal in HTTP/2 (RFC 9113 §8.2.2); Node throws on them.
const SKIP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "host",
]);

function noop(): void {}

class H2Connection {
  readonly session: ClientHttp2Session;
  connected = false;
  /** Set when the connect failed: every stream opened on this session fails with it (UF). */
  failure: UpstreamError | undefined;
  draining = false;
  streams = 0;
  private served = 0;
  private pendingStreams = 0;
  private closed = false;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly onIdleBound = () => this.onIdle();

  constructor(readonly pool: Http2Pool) {
    const host = pool.host;
    this.session = http2.connect(originOf(host.address, host.port), {
      createConnection: () =>
        openSocket(
          host,
          (err) => {
            if (err) {
              this.failure = err;
              this.session.destroy();
            }
          },
          "http2",
        ),
      settings: { enablePush: false },
    });
    this.session.on("connect", () => {
      this.connected = true;
      this.leavePending();
    });
    this.session.on("goaway", () => this.drain());
    this.session.on("error", noop); // the cause reaches each stream; 'close' does the bookkeeping
    this.session.on("close", () => this.onClose());
  }

  usable(): boolean {
    return !this.draining && !this.closed && !this.session.closed && !this.session.destroyed;
  }

  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const host = this.pool.host;
    if (!this.connected) {
      const cb = host.cluster.config.circuitBreakers;
      if (host.cluster.stats.requestsPending >= cb.maxPendingRequests) {
        host.exchangeDone();
        return Promise.reject(overflow(host, "max_pending_requests", cb.maxPendingRequests));
      }
      this.pendingStreams++;
      host.cluster.stats.requestsPending++;
    }
    let stream: ClientHttp2Stream;
    try {
      stream = this.session.request(h2Headers(req), { endStream: req.body === null, signal: req.signal });
    } catch (err) {
      // The session closed between the usable() check and now: nothing was sent.
      host.exchangeDone();
      return Promise.reject(resetError(host, err, true));
    }
    this.streams++;
    this.served++;
    const max = host.cluster.config.maxRequestsPerConnection;
    if (max > 0 && this.served >= max) this.drain();
    const ex = new H2Exchange(this, req, stream);
    if (req.body !== null) {
      if (Buffer.isBuffer(req.body)) stream.end(req.body);
      // pipeline destroys the upstream stream if the downstream body fails, and the reverse.
      else pipeline(req.body as Readable, stream, noop);
    }
    return ex.promise;
  }

  streamClosed(): void {
    this.streams--;
    if (this.streams > 0) return;
    if (this.draining) this.session.close();
    else {
      const idle = this.pool.host.cluster.config.idleTimeoutMs;
      if (idle > 0) {
        // One timer per session, re-armed each time the session goes idle; firing while busy is ignored.
        if (this.idleTimer) this.idleTimer.refresh();
        else {
          this.idleTimer = setTimeout(this.onIdleBound, idle);
          this.idleTimer.unref();
        }
      }
    }
  }

  /** No new streams; close once the open ones end. */
  drain(): void {
    if (!this.draining) {
      this.draining = true;
      this.pool.forget(this);
    }
    if (this.streams === 0 && !this.session.closed) this.session.close();
  }

  destroy(): void {
    this.draining = true;
    this.session.destroy();
  }

  private onIdle(): void {
    if (this.streams === 0) this.drain();
  }

  private leavePending(): void {
    this.pool.host.cluster.stats.requestsPending -= this.pendingStreams;
    this.pendingStreams = 0;
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.draining = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.leavePending();
    this.pool.closed(this);
  }
}

export class Http2Pool {
  private current: H2Connection | undefined;
  private readonly open = new Set<H2Connection>();
  private stopped = false;
  private drained: (() => void) | undefined;

  constructor(readonly host: PoolHost) {}

  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    let conn = this.current;
    if (conn === undefined || !conn.usable()) {
      if (conn) this.forget(conn);
      conn = new H2Connection(this);
      this.open.add(conn);
      this.host.connections++;
      this.host.connectionsTotal++;
      this.host.cluster.stats.connectionsActive++;
      this.host.cluster.stats.connectionsTotal++;
      // A draining pool (host removed while a router still held it) serves the request, then lets go.
      if (!this.stopped) this.current = conn;
      else queueMicrotask(() => conn?.drain());
    }
    return conn.request(req);
  }

  /** The session stops taking streams (GOAWAY, max requests, idle): the next request opens another. */
  forget(conn: H2Connection): void {
    if (this.current === conn) this.current = undefined;
  }

  closed(conn: H2Connection): void {
    this.forget(conn);
    if (!this.open.delete(conn)) return;
    this.host.connections--;
    this.host.cluster.stats.connectionsActive--;
    if (this.drained && this.open.size === 0) {
      const d = this.drained;
      this.drained = undefined;
      d();
    }
  }

  close(): Promise<void> {
    this.stopped = true;
    this.current = undefined;
    for (const c of this.open) c.drain();
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = resolve;
    });
  }

  destroy(): void {
    this.stopped = true;
    this.current = undefined;
    for (const c of [...this.open]) c.destroy();
  }
}

function h2Headers(req: UpstreamRequest): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {
    ":method": req.method,
    ":path": req.path,
    ":authority": req.authority,
    ":scheme": req.scheme,
  };
  const h = req.headers;
  for (const name in h) {
    if (SKIP.has(name) || name.charCodeAt(0) === 0x3a) continue;
    const v = h[name];
    // TE is allowed in HTTP/2 only as "trailers" (which gRPC sends).
    if (name === "te" && v !== "trailers") continue;
    out[name] = v;
  }
  return out;
}

const EXCHANGE = Symbol("skein.h2exchange");
type TaggedStream = ClientHttp2Stream & { [EXCHANGE]?: H2Exchange };

// Stream listeners are module functions reading the exchange off the stream (`this`), not per-request closures.
function onResponse(
  this: TaggedStream,
  headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader,
): void {
  this[EXCHANGE]?.onResponse(headers);
}
function onTrailers(this: TaggedStream, trailers: http2.IncomingHttpHeaders): void {
  this[EXCHANGE]?.latch.resolve(plainHeaders(trailers));
}
function onEnd(this: TaggedStream): void {
  this[EXCHANGE]?.latch.resolve(Object.create(null));
}
function onError(this: TaggedStream, err: Error): void {
  this[EXCHANGE]?.onError(err);
}
function onClose(this: TaggedStream): void {
  this[EXCHANGE]?.onClose();
}

function plainHeaders(h: http2.IncomingHttpHeaders): Headers {
  const out: Headers = Object.create(null);
  for (const k in h) {
    if (k.charCodeAt(0) === 0x3a) continue;
    const v = h[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** One stream. The response body is the http2 stream itself; trailers come from its 'trailers' event. */
class H2Exchange {
  readonly promise: Promise<UpstreamResponse>;
  readonly latch = new TrailerLatch();
  private resolveFn!: (r: UpstreamResponse) => void;
  private rejectFn!: (e: Error) => void;
  private settled = false;
  private done = false;

  constructor(
    private readonly conn: H2Connection,
    private readonly req: UpstreamRequest,
    private readonly stream: TaggedStream,
  ) {
    this.promise = new Promise<UpstreamResponse>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    stream[EXCHANGE] = this;
    stream.on("response", onResponse);
    stream.on("trailers", onTrailers);
    stream.on("end", onEnd);
    stream.on("error", onError);
    stream.on("close", onClose);
  }

  onResponse(headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void {
    if (this.settled) return;
    this.settled = true;
    const status = Number(headers[":status"]);
    this.resolveFn(new StreamedResponse(status, plainHeaders(headers), this.stream, this.latch));
  }

  onError(err: Error): void {
    const e = this.classify(err);
    this.latch.reject(e);
    if (!this.settled) {
      this.settled = true;
      this.rejectFn(e);
    }
  }

  onClose(): void {
    if (this.done) return;
    this.done = true;
    if (!this.settled) {
      // Closed without a response and without an error event (e.g. RST_STREAM CANCEL).
      this.settled = true;
      this.rejectFn(this.classify(new Error(`stream closed (rst code ${this.stream.rstCode})`)));
    }
    // Every stream closes, most after a normal end: build (and stack-trace) the error only when it is needed.
    if (!this.latch.settled) this.latch.reject(this.classify(new Error("stream closed before its end")));
    this.conn.streamClosed();
    this.conn.pool.host.exchangeDone();
  }

  private classify(err: Error): Error {
    if (this.req.signal.aborted) return abortReason(this.req.signal);
    if (err instanceof UpstreamError) return err;
    if (!this.conn.connected) {
      return (
        this.conn.failure ??
        new UpstreamError("SKEIN_E_UPSTREAM_CONNECT", "UF", `cannot connect: ${err.message}`, true)
      );
    }
    // REFUSED_STREAM and streams above a GOAWAY's last stream id were never processed: safe to retry.
    const code = (err as { code?: string }).code;
    const unprocessed = this.stream.rstCode === REFUSED_STREAM || code === "ERR_HTTP2_GOAWAY_SESSION";
    return resetError(this.conn.pool.host, err, unprocessed);
  }
}
