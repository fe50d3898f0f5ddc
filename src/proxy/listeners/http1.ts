// A downstream HTTP/1.1 request over node:http. Trailers are not sent to HTTP/1 peers (Envoy's default);
// while the listener drains, responses carry `Connection: close` so clients move to a new connection.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import type { Readable } from "node:stream";
import { type AbortListener, DownstreamRequest, type HttpConnectionManager } from "../router/downstream.js";
import type { HeaderRecord } from "../router/headers.js";
import type { StreamInfo } from "../router/stream-info.js";

export class Http1Request extends DownstreamRequest {
  readonly http2 = false;
  private gone = false;
  private abortListener: AbortListener | undefined;

  constructor(
    manager: HttpConnectionManager,
    info: StreamInfo,
    authority: string,
    path: string,
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    readonly socket: Socket,
    /** The body when node:http does not parse it (a request that asked for an h2c upgrade). */
    private readonly bodySource?: Readable | null,
  ) {
    super(manager, info, req.method ?? "GET", authority, path, "http", req.headers);
    res.once("close", this.onClose);
    // Writes racing a client that just left report here; the close handler does the bookkeeping.
    res.on("error", noop);
  }

  get sourceAddress(): string {
    return this.req.socket.remoteAddress ?? "";
  }

  get aborted(): boolean {
    return this.gone;
  }

  body(): Readable | null {
    if (this.bodySource !== undefined) return this.bodySource;
    const h = this.req.headers;
    if (h["transfer-encoding"] !== undefined) return this.req;
    const len = h["content-length"];
    return len !== undefined && len !== "0" ? this.req : null;
  }

  onAbort(listener: AbortListener): void {
    this.abortListener = listener;
  }

  protected writeHeaders(status: number, headers: HeaderRecord, endStream: boolean): void {
    if (this.gone) return;
    if (this.manager.draining) headers.connection = "close";
    try {
      this.res.writeHead(status, headers);
    } catch {
      // A header value HTTP/1 cannot carry: nothing sensible can be sent any more.
      this.res.destroy();
      return;
    }
    if (endStream) this.res.end();
  }

  write(chunk: Buffer): boolean {
    if (this.gone) return true;
    return this.res.write(chunk);
  }

  onceDrain(fn: () => void): void {
    this.res.once("drain", fn);
  }

  protected writeEnd(_trailers: HeaderRecord | undefined): void {
    if (!this.gone) this.res.end();
  }

  protected writeReset(): void {
    // HTTP/1 has no stream reset: closing the connection is how a proxy says the response is broken.
    this.res.destroy();
  }

  private readonly onClose = (): void => {
    if (!this.res.writableFinished) {
      this.gone = true;
      const l = this.abortListener;
      this.abortListener = undefined;
      l?.onDownstreamAbort();
      if (!this.ended) this.markEnded();
    }
    this.manager.complete(this);
  };
}

function noop(): void {}
