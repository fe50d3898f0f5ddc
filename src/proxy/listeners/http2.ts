// A downstream HTTP/2 (h2c) request over a node:http2 stream. Responses ask for trailers so the upstream's
// arrive intact (gRPC status and metadata); with none, node ends the stream with an empty DATA frame.
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { Readable } from "node:stream";
import { type AbortListener, DownstreamRequest, type HttpConnectionManager } from "../router/downstream.js";
import type { HeaderRecord } from "../router/headers.js";
import type { StreamInfo } from "../router/stream-info.js";

export class Http2Request extends DownstreamRequest {
  readonly http2 = true;
  private gone = false;
  private abortListener: AbortListener | undefined;
  private trailers: HeaderRecord | undefined;

  constructor(
    manager: HttpConnectionManager,
    info: StreamInfo,
    authority: string,
    path: string,
    headers: IncomingHttpHeaders,
    private readonly stream: ServerHttp2Stream,
  ) {
    super(manager, info, headers[":method"] ?? "GET", authority, path, headers[":scheme"] ?? "http", headers);
    stream.once("close", this.onClose);
    // A reset stream emits 'error' too; the close handler does the bookkeeping.
    stream.on("error", noop);
  }

  get sourceAddress(): string {
    return this.stream.session?.socket?.remoteAddress ?? "";
  }

  get aborted(): boolean {
    return this.gone;
  }

  body(): Readable | null {
    return this.stream.endAfterHeaders ? null : this.stream;
  }

  onAbort(listener: AbortListener): void {
    this.abortListener = listener;
  }

  protected writeHeaders(status: number, headers: HeaderRecord, endStream: boolean): void {
    if (this.stream.destroyed) return;
    headers[":status"] = String(status);
    try {
      this.stream.respond(headers, endStream ? { endStream: true } : { waitForTrailers: true });
    } catch {
      // A header HTTP/2 refuses (a connection-specific one, a repeated single-value one).
      this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    if (!endStream) this.stream.once("wantTrailers", this.sendTrailers);
  }

  write(chunk: Buffer): boolean {
    if (this.stream.destroyed) return true;
    return this.stream.write(chunk);
  }

  onceDrain(fn: () => void): void {
    this.stream.once("drain", fn);
  }

  protected writeEnd(trailers: HeaderRecord | undefined): void {
    if (this.stream.destroyed) return;
    this.trailers = trailers;
    this.stream.end();
  }

  protected writeReset(): void {
    if (!this.stream.destroyed) this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
  }

  private readonly sendTrailers = (): void => {
    try {
      this.stream.sendTrailers(this.trailers ?? {});
    } catch {
      this.stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    }
  };

  private readonly onClose = (): void => {
    if (!this.ended) {
      this.gone = true;
      const l = this.abortListener;
      this.abortListener = undefined;
      l?.onDownstreamAbort();
      this.markEnded();
    }
    this.manager.complete(this);
  };
}

function noop(): void {}
