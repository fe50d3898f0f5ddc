// HTTP/1.1 keep-alive connection pool for one host, over undici. Each connection is its own undici Client
// with pipelining 1, so this pool (not undici) decides when a connection opens, is reused, retired or
// closed, and applies the cluster-wide circuit breakers the way Envoy does: a request takes an idle
// connection, else waits as pending (bounded by max_pending_requests) for a new one (bounded by
// max_connections) or a busy one to free up; past either bound it fails at once with UO.
// Also: the TCP connect with its timeout shared by every protocol (and the TLS handshake on top when the
// endpoint's transport socket says TLS), and the streamed response type.
import { connect as netConnect, Socket } from "node:net";
import { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";
import { Client, type Dispatcher } from "undici";
import type { Cluster, TlsContext } from "../config/types.js";
import type { SecretManager } from "../identity/secrets.js";
import { peerPrincipal } from "../identity/tls-contexts.js";
import { startClientTls } from "./tls.js";
import { type ClusterStats, UpstreamError, type UpstreamRequest, type UpstreamResponse } from "./types.js";

/** What a pool needs from its host and cluster. */
export interface PoolHost {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  readonly cluster: {
    readonly name: string;
    readonly config: Cluster;
    readonly stats: ClusterStats;
    /** The `default` and `ROOTCA` secrets for TLS endpoints (absent: TLS endpoints cannot be reached). */
    readonly secrets?: SecretManager;
  };
  /** This endpoint's transport (the cluster's transport socket or its matching transport socket match). */
  readonly tls?: TlsContext | undefined;
  /** The SPIFFE ID the server presented on the last verified TLS connection to this host. */
  peerPrincipal?: string | undefined;
  connections: number;
  connectionsTotal: number;
  connectFailures: number;
  overflows: number;
  resets: number;
  /** A request or raw connection to this host ended: its active count drops. */
  exchangeDone(): void;
}

export type Headers = Record<string, string | string[]>;

// ── Shared helpers ──────────────────────────────────────────────────────────────────────────────────

/** The rejection for an aborted attempt: the signal's reason, as fetch does, so the router sees its own. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  return r instanceof Error ? r : new DOMException(String(r ?? "This operation was aborted"), "AbortError");
}

export function overflow(host: PoolHost, limit: string, value: number): UpstreamError {
  host.overflows++;
  host.cluster.stats.overflowsTotal++;
  return new UpstreamError(
    "SKEIN_E_UPSTREAM_OVERFLOW",
    "UO",
    `cluster ${host.cluster.name}: circuit breaker ${limit} (${value}) reached; raise the DestinationRule ` +
      "connectionPool limits or add endpoints",
    true,
  );
}

export function resetError(host: PoolHost, cause: unknown, beforeRequest: boolean): UpstreamError {
  host.resets++;
  host.cluster.stats.resetsTotal++;
  const e = new UpstreamError(
    "SKEIN_E_UPSTREAM_RESET",
    "UR",
    `upstream ${host.key} (cluster ${host.cluster.name}) reset the request: ${describe(cause)}`,
    beforeRequest,
  );
  e.cause = cause;
  return e;
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" ? `${code} ${err.message}` : err.message;
}

/** `address:port`, bracketing IPv6 literals for URLs. */
export function originOf(address: string, port: number): string {
  return address.includes(":") ? `http://[${address}]:${port}` : `http://${address}:${port}`;
}

/**
 * Opens a TCP connection with the cluster's connect timeout, and for a TLS endpoint does the handshake and
 * verification within that same time. `done` is called once: with the connected (TLS) socket, or with a UF
 * error (beforeRequest: nothing was sent) that says why. Destroying the socket early calls nothing.
 * `protocol` narrows the ALPN offered to what the caller will speak.
 */
export function openSocket(
  host: PoolHost,
  done: (err: UpstreamError | null, socket: Socket | null) => void,
  protocol: "http1" | "http2" | "tcp" = "tcp",
): Socket {
  const timeoutMs = host.cluster.config.connectTimeoutMs;
  const tls = host.tls;
  let settled = false;
  let timer: NodeJS.Timeout | undefined;
  let socket: Socket;
  let raw: Socket | undefined;
  const CHECK_ENDPOINT = "check that the endpoint is up and listening";
  const CHECK_TLS = "check the server's certificate, the trust bundle (ROOTCA) and the expected identities";
  const fail = (why: string, hint = CHECK_ENDPOINT) => {
    if (settled) return;
    settled = true;
    if (timer) clearTimeout(timer);
    host.connectFailures++;
    host.cluster.stats.connectFailuresTotal++;
    socket.destroy();
    raw?.destroy();
    done(
      new UpstreamError(
        "SKEIN_E_UPSTREAM_CONNECT",
        "UF",
        `cannot connect to ${host.key} (cluster ${host.cluster.name}): ${why}${hint ? `; ${hint}` : ""}`,
        true,
      ),
      null,
    );
  };
  if (tls) {
    raw = netConnect({ host: host.address, port: host.port, noDelay: true });
    try {
      if (!host.cluster.secrets) throw new Error("this sidecar has no secret manager for TLS");
      socket = startClientTls(raw, tls, host.cluster.secrets, protocol);
    } catch (e) {
      // No identity: fail like a refused connect, after the caller has the socket (as connect errors are).
      socket = new Socket();
      const code = (e as { code?: string }).code;
      const why = `${code ?? "TLS"}: ${(e as Error).message}`;
      process.nextTick(() => fail(why, ""));
      return socket;
    }
    const tcp = raw;
    tcp.once("error", (err: Error) => fail(describe(err)));
    tcp.once("connect", () => tcp.setKeepAlive(true, 60_000));
  } else socket = netConnect({ host: host.address, port: host.port, noDelay: true });
  const onError = (err: Error) =>
    tls ? fail(`TLS handshake failed: ${describe(err)}`, CHECK_TLS) : fail(describe(err));
  socket.once("error", onError);
  socket.once(tls ? "secureConnect" : "connect", () => {
    if (settled) return;
    settled = true;
    if (timer) clearTimeout(timer);
    socket.off("error", onError);
    if (tls) {
      const s = socket as TLSSocket;
      if (s.authorized) host.peerPrincipal = peerPrincipal(s.getPeerCertificate());
    } else socket.setKeepAlive(true, 60_000);
    done(null, socket);
  });
  socket.once("close", () => {
    if (timer) clearTimeout(timer);
    settled = true;
  });
  if (timeoutMs > 0) timer = setTimeout(() => fail(`connect timeout after ${timeoutMs} ms`), timeoutMs);
  return socket;
}

function noop(): void {}

/**
 * Trailers of one response, handed out as a promise only if someone asks (most HTTP/1 callers never do,
 * so they pay for no promise). A rejection is pre-handled: the body stream reports the error too.
 */
export class TrailerLatch {
  private state: 0 | 1 | 2 = 0;
  private value: Headers | undefined;
  private error: Error | undefined;
  private promise: Promise<Headers> | undefined;
  private resolveFn: ((h: Headers) => void) | undefined;
  private rejectFn: ((e: Error) => void) | undefined;

  get(): Promise<Headers> {
    if (this.promise) return this.promise;
    if (this.state === 1) this.promise = Promise.resolve(this.value as Headers);
    else if (this.state === 2) this.promise = Promise.reject(this.error);
    else
      this.promise = new Promise<Headers>((resolve, reject) => {
        this.resolveFn = resolve;
        this.rejectFn = reject;
      });
    this.promise.catch(noop);
    return this.promise;
  }

  /** Resolved or rejected already: a later reject is a no-op, so callers can skip building its error. */
  get settled(): boolean {
    return this.state !== 0;
  }

  resolve(h: Headers): void {
    if (this.state !== 0) return;
    this.state = 1;
    this.value = h;
    this.resolveFn?.(h);
  }

  reject(e: Error): void {
    if (this.state !== 0) return;
    this.state = 2;
    this.error = e;
    this.rejectFn?.(e);
  }
}

export class StreamedResponse implements UpstreamResponse {
  constructor(
    readonly status: number,
    readonly headers: Headers,
    readonly body: NodeJS.ReadableStream,
    private readonly latch: TrailerLatch,
  ) {}

  get trailers(): Promise<Headers> {
    return this.latch.get();
  }
}

// Describe the upstream connection's framing only; the downstream side sets its own.
const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"]);
// Request headers undici refuses or manages itself; the router should not send them, but never let one
// turn into an InvalidArgumentError mid-flight.
const REQUEST_SKIP = new Set([...HOP_BY_HOP, "host", "expect"]);

/** undici's raw [name, value, …] (Buffers) into lower-case names, repeated names as arrays. */
export function parseRawHeaders(raw: readonly (Buffer | string)[] | null, dropHopByHop: boolean): Headers {
  const out: Headers = Object.create(null);
  if (raw === null) return out;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = (raw[i] as Buffer | string).toString("latin1").toLowerCase();
    if (dropHopByHop && HOP_BY_HOP.has(k)) continue;
    const v = (raw[i + 1] as Buffer | string).toString("latin1");
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else if (Array.isArray(prev)) prev.push(v);
    else out[k] = [prev, v];
  }
  return out;
}

function requestHeaders(req: UpstreamRequest): string[] {
  const out: string[] = ["host", req.authority];
  const h = req.headers;
  for (const name in h) {
    if (REQUEST_SKIP.has(name)) continue;
    const v = h[name];
    if (typeof v === "string") out.push(name, v);
    else if (v !== undefined) for (const x of v) out.push(name, x);
  }
  return out;
}

function requestBody(body: UpstreamRequest["body"]): Buffer | Readable | null {
  if (body === null || Buffer.isBuffer(body) || body instanceof Readable) return body;
  return Readable.from(body as AsyncIterable<Buffer>);
}

// ── HTTP/1.1 ───────────────────────────────────────────────────────────────────────────────────────

/** One keep-alive connection: an undici Client that never has more than one request. */
class H1Connection {
  readonly client: Client;
  busy = false;
  served = 0;
  retired = false;

  constructor(private readonly pool: Http1Pool) {
    const host = pool.host;
    const cfg = host.cluster.config;
    // Envoy's idle_timeout 0 disables it; undici needs a positive number, so use the longest timer.
    const idle = cfg.idleTimeoutMs > 0 ? cfg.idleTimeoutMs : 2_147_483_647;
    this.client = new Client(originOf(host.address, host.port), {
      connect: (_opts, cb) => {
        openSocket(host, (err, socket) => (err ? cb(err, null) : cb(null, socket as Socket)), "http1");
      },
      pipelining: 1,
      keepAliveTimeout: idle,
      keepAliveMaxTimeout: idle,
      // Timeouts are the router's (per try, per route), delivered through the request's signal.
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    this.client.on("disconnect", () => pool.onDisconnect(this));
    this.client.on("connectionError", (_origin, _targets, err) => pool.onConnectionError(this, err));
  }

  dispatch(ex: H1Exchange): void {
    this.busy = true;
    this.served++;
    ex.conn = this;
    const max = this.pool.host.cluster.config.maxRequestsPerConnection;
    // The last request a connection may carry says so (Connection: close); the pool closes it afterwards.
    if (max > 0 && this.served >= max) this.retired = true;
    this.client.dispatch(ex.options(this.retired), ex);
  }
}

export class Http1Pool {
  private readonly idle: H1Connection[] = [];
  private readonly open = new Set<H1Connection>();
  // Requests waiting for a connection, FIFO through H1Exchange.nextWaiter (no array churn).
  private waitHead: H1Exchange | undefined;
  private waitTail: H1Exchange | undefined;
  private serveScheduled = false;
  private draining = false;
  private drained: (() => void) | undefined;
  private readonly serveWaitersBound = () => this.serveWaiters();

  constructor(readonly host: PoolHost) {}

  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    const conn = this.takeIdle();
    if (conn) {
      const ex = new H1Exchange(this, req);
      conn.dispatch(ex);
      return ex.promise;
    }
    const stats = this.host.cluster.stats;
    const cb = this.host.cluster.config.circuitBreakers;
    if (stats.requestsPending >= cb.maxPendingRequests) {
      // Refused before anything is allocated for it: overload is when allocation hurts most.
      this.host.exchangeDone();
      return Promise.reject(overflow(this.host, "max_pending_requests", cb.maxPendingRequests));
    }
    const ex = new H1Exchange(this, req);
    ex.enterPending();
    if (this.canOpen()) this.openConnection().dispatch(ex);
    else this.enqueue(ex);
    return ex.promise;
  }

  /** Stops keeping connections: idle ones close now, busy ones when their request ends. */
  close(): Promise<void> {
    this.draining = true;
    for (const c of this.idle.splice(0)) this.retire(c, true);
    if (this.open.size === 0 && this.peek() === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      this.drained = resolve;
    });
  }

  /** Closes every connection now, failing what is in flight or waiting. */
  destroy(): void {
    this.draining = true;
    for (const c of [...this.open]) this.retire(c, false);
    this.idle.length = 0;
    for (let ex = this.dequeue(); ex !== undefined; ex = this.dequeue())
      ex.fail(resetError(this.host, new Error("the upstream pool was shut down"), true));
  }

  private canOpen(): boolean {
    // Envoy's rule: a host with no connection may always open one, or pending requests could wait on
    // connections that other hosts hold.
    const stats = this.host.cluster.stats;
    return (
      this.open.size === 0 ||
      stats.connectionsActive < this.host.cluster.config.circuitBreakers.maxConnections
    );
  }

  private openConnection(): H1Connection {
    const c = new H1Connection(this);
    this.open.add(c);
    this.host.connections++;
    this.host.connectionsTotal++;
    this.host.cluster.stats.connectionsActive++;
    this.host.cluster.stats.connectionsTotal++;
    return c;
  }

  private takeIdle(): H1Connection | undefined {
    // Most recently used first: it is the likeliest to still be open, and the rest can idle out.
    let c = this.idle.pop();
    while (c !== undefined && (c.retired || c.client.destroyed || c.client.closed)) c = this.idle.pop();
    return c;
  }

  private enqueue(ex: H1Exchange): void {
    ex.queued = true;
    if (this.waitTail) this.waitTail.nextWaiter = ex;
    else this.waitHead = ex;
    this.waitTail = ex;
  }

  /** The first waiter still waiting; aborted ones stay linked until they reach the head (O(1) removal). */
  private peek(): H1Exchange | undefined {
    let ex = this.waitHead;
    while (ex !== undefined && !ex.queued) ex = ex.nextWaiter;
    this.waitHead = ex;
    if (ex === undefined) this.waitTail = undefined;
    return ex;
  }

  private dequeue(): H1Exchange | undefined {
    const ex = this.peek();
    if (ex === undefined) return undefined;
    this.waitHead = ex.nextWaiter;
    if (this.waitHead === undefined) this.waitTail = undefined;
    ex.nextWaiter = undefined;
    ex.queued = false;
    return ex;
  }

  private scheduleServe(): void {
    if (this.serveScheduled) return;
    this.serveScheduled = true;
    // Not inline: release runs inside undici's parser callbacks, where dispatching again is re-entrant.
    queueMicrotask(this.serveWaitersBound);
  }

  private serveWaiters(): void {
    this.serveScheduled = false;
    while (this.peek() !== undefined) {
      const conn = this.takeIdle() ?? (this.canOpen() ? this.openConnection() : undefined);
      if (conn === undefined) return;
      conn.dispatch(this.dequeue() as H1Exchange);
    }
    this.checkDrained();
  }

  /** An exchange on `conn` ended; `reusable` when it completed cleanly. */
  release(conn: H1Connection, reusable: boolean): void {
    conn.busy = false;
    if (this.open.has(conn)) {
      if (!reusable || conn.retired || conn.client.destroyed || conn.client.closed)
        this.retire(conn, reusable);
      else if (this.draining && this.peek() === undefined) this.retire(conn, true);
      else this.idle.push(conn);
    }
    if (this.peek() !== undefined) this.scheduleServe();
    else this.checkDrained();
  }

  onDisconnect(conn: H1Connection): void {
    // A busy connection whose socket closed still has its request queued in undici, which reconnects
    // for it; keep the slot. An idle one is gone.
    if (!conn.busy) this.retire(conn, true);
  }

  onConnectionError(conn: H1Connection, err: Error): void {
    this.retire(conn, false);
    // With no connection left, waiters would each try (and time out) in turn: fail them now, as Envoy
    // purges pending requests on a connect failure.
    if (this.open.size === 0) {
      for (let ex = this.dequeue(); ex !== undefined; ex = this.dequeue()) ex.fail(err);
    }
    this.checkDrained();
  }

  private retire(conn: H1Connection, graceful: boolean): void {
    if (!this.open.delete(conn)) return;
    conn.retired = true;
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.host.connections--;
    this.host.cluster.stats.connectionsActive--;
    if (graceful) conn.client.close().catch(noop);
    else conn.client.destroy().catch(noop);
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.drained && this.open.size === 0 && this.peek() === undefined) {
      const d = this.drained;
      this.drained = undefined;
      d();
    }
  }
}

const WAITING = 0;
const STREAMING = 1;
const DONE = 2;

/**
 * One request/response over HTTP/1.1. The exchange is at once undici's dispatch handler, the listener for
 * the request's abort signal (handleEvent) and the response body stream, so a request costs one object
 * (plus its promise) and no closures.
 */
class H1Exchange extends Readable implements Dispatcher.DispatchHandlers {
  readonly promise: Promise<UpstreamResponse>;
  conn: H1Connection | undefined;
  queued = false;
  nextWaiter: H1Exchange | undefined;
  private resolveFn!: (r: UpstreamResponse) => void;
  private rejectFn!: (e: Error) => void;
  private state = WAITING;
  private settled = false;
  private pending = false;
  private connected = false;
  private finished = false;
  private paused = false;
  private abandoned = false;
  private abortFn: ((err?: Error) => void) | undefined;
  private resumeFn: (() => void) | undefined;
  private readonly latch = new TrailerLatch();

  constructor(
    private readonly pool: Http1Pool,
    private readonly req: UpstreamRequest,
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.promise = new Promise<UpstreamResponse>((resolve, reject) => {
      this.resolveFn = resolve;
      this.rejectFn = reject;
    });
    req.signal.addEventListener("abort", this);
  }

  options(last: boolean): Dispatcher.DispatchOptions {
    const req = this.req;
    return {
      path: req.path,
      method: req.method as Dispatcher.HttpMethod,
      headers: requestHeaders(req),
      body: requestBody(req.body),
      // Only ever true: an explicit false would undo undici's close-after-HEAD safety.
      reset: last ? true : undefined,
    };
  }

  enterPending(): void {
    this.pending = true;
    this.pool.host.cluster.stats.requestsPending++;
  }

  private leavePending(): void {
    if (!this.pending) return;
    this.pending = false;
    this.pool.host.cluster.stats.requestsPending--;
  }

  /** Fails an exchange that never reached undici (connect failure or abort while queued, shutdown). */
  fail(err: Error): void {
    this.queued = false;
    this.settle(err);
    this.finish(false);
  }

  // The request's AbortSignal fired.
  handleEvent(): void {
    const reason = abortReason(this.req.signal);
    if (this.queued) {
      this.fail(reason);
      return;
    }
    if (this.abortFn) this.abortFn(reason);
    // Dispatched but not yet on a socket: answer now; undici's onConnect aborts it when the socket is ready.
    else this.settle(reason);
  }

  // ── undici handler ──

  onConnect(abort: (err?: Error) => void): void {
    this.connected = true;
    this.abortFn = abort;
    this.leavePending();
    if (this.req.signal.aborted) abort(abortReason(this.req.signal));
  }

  onHeaders(statusCode: number, headers: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx informational: the final response follows
    this.resumeFn = resume;
    this.state = STREAMING;
    if (this.settled) return true;
    this.settled = true;
    this.resolveFn(new StreamedResponse(statusCode, parseRawHeaders(headers, true), this, this.latch));
    return true;
  }

  onData(chunk: Buffer): boolean {
    const more = this.push(chunk);
    if (!more) this.paused = true;
    return more;
  }

  onComplete(trailers: string[] | null): void {
    this.state = DONE;
    this.latch.resolve(parseRawHeaders(trailers as (Buffer | string)[] | null, false));
    this.push(null);
    this.finish(true);
  }

  onError(err: Error): void {
    if (this.abandoned) {
      // Our own abort after the consumer destroyed the body: not an upstream failure.
      this.latch.reject(err);
      this.finish(false);
      return;
    }
    const e = this.classify(err);
    const streaming = this.state === STREAMING;
    this.state = DONE;
    this.latch.reject(e);
    this.settle(e);
    if (streaming) this.destroy(e);
    this.finish(false);
  }

  // ── Readable ──

  override _read(): void {
    if (this.paused) {
      this.paused = false;
      this.resumeFn?.();
    }
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // The consumer gave up on the body: stop reading from the upstream (the connection is not reusable).
    if (this.state !== DONE && this.abortFn) {
      this.abandoned = true;
      this.abortFn(err ?? new Error("response body destroyed before its end"));
    }
    cb(err);
  }

  private classify(err: Error): Error {
    if (this.req.signal.aborted) return abortReason(this.req.signal);
    if (err instanceof UpstreamError) return err;
    // Failures before undici handed us a socket sent nothing, so a retry is safe even for a POST.
    return resetError(this.pool.host, err, !this.connected);
  }

  private settle(err: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.rejectFn(err);
  }

  private finish(reusable: boolean): void {
    if (this.finished) return;
    this.finished = true;
    this.req.signal.removeEventListener("abort", this);
    this.leavePending();
    this.pool.host.exchangeDone();
    if (this.conn) this.pool.release(this.conn, reusable);
  }
}
