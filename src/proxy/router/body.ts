// The downstream request body as the router hands it to upstream attempts. It streams as it arrives and
// keeps a copy of up to `limit` bytes so a retry can send it again; past the limit the copy is dropped and
// the request can no longer be retried (Envoy's retry buffer overflow), but the current attempt streams on.
import { Readable } from "node:stream";

/** How much request body the router keeps for replaying on a retry. */
export const RETRY_BUFFER_LIMIT = 64 * 1024;

export class RequestBody {
  private chunks: Buffer[] = [];
  private size = 0;
  private overflowed: boolean;
  private ended = false;
  private failed: Error | undefined;
  private reader: BodyReader | undefined;
  /** Bytes received from downstream. */
  received = 0;

  /**
   * @param limit bytes to keep for replay; 0 keeps none (one attempt only).
   * @param owner told once the whole body has arrived (the route timeout starts then, as in Envoy).
   */
  constructor(
    private readonly source: Readable,
    private readonly limit: number,
    private readonly owner: { onBodyEnd(): void },
  ) {
    this.overflowed = limit <= 0;
    source.on("data", this.onData);
    source.once("end", this.onSourceEnd);
    source.once("error", this.onSourceError);
    // An HTTP/1 request whose client went away emits 'aborted' (and maybe never 'error').
    source.once("aborted", this.onSourceAborted);
  }

  /** Whether another attempt could send the whole body again. */
  get replayable(): boolean {
    return !this.overflowed;
  }

  get complete(): boolean {
    return this.ended;
  }

  /** The whole body as one buffer, once it has arrived and if it fitted the limit (request mirroring). */
  buffered(): Buffer | undefined {
    if (!this.ended || this.overflowed) return undefined;
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.size);
  }

  /** A stream of the whole body for a new attempt; the previous attempt's stream is detached. */
  open(): Readable {
    if (this.reader) this.reader.detach();
    const r = new BodyReader(this);
    this.reader = r;
    for (const c of this.chunks) r.push(c);
    // Every kept chunk now sits in the reader; once past the limit nobody needs them again.
    if (this.overflowed) this.chunks = [];
    if (this.failed) r.destroy(this.failed);
    else if (this.ended) r.push(null);
    else this.source.resume();
    return r;
  }

  /**
   * The exchange is over. A body still arriving (the upstream answered early) is read and dropped, as
   * node:http would, so an HTTP/1 connection can carry its next request.
   */
  close(): void {
    if (this.reader) this.reader.detach();
    this.reader = undefined;
    this.chunks = [];
    this.source.off("data", this.onData);
    if (!this.ended && !this.failed) this.source.resume();
  }

  resumeSource(r: BodyReader): void {
    if (r === this.reader && !this.ended) this.source.resume();
  }

  private readonly onData = (chunk: Buffer): void => {
    this.received += chunk.length;
    if (!this.overflowed) {
      this.chunks.push(chunk);
      this.size += chunk.length;
      if (this.size > this.limit) {
        this.overflowed = true;
        if (this.reader) this.chunks = [];
      }
    }
    const r = this.reader;
    // Between attempts nothing reads: hold the source so no more than one chunk past the limit waits here.
    if (r === undefined) this.source.pause();
    else if (!r.push(chunk)) this.source.pause();
  };

  private readonly onSourceEnd = (): void => {
    this.ended = true;
    this.reader?.push(null);
    this.owner.onBodyEnd();
  };

  private readonly onSourceError = (err: Error): void => {
    this.failed = err;
    this.reader?.destroy(err);
  };

  private readonly onSourceAborted = (): void => {
    if (!this.ended) this.onSourceError(new Error("downstream request aborted"));
  };
}

class BodyReader extends Readable {
  private attached = true;

  constructor(private readonly body: RequestBody) {
    super({ highWaterMark: 64 * 1024 });
  }

  override _read(): void {
    if (this.attached) this.body.resumeSource(this);
  }

  /** A later attempt took over: this stream ends its life without data loss for the new one. */
  detach(): void {
    this.attached = false;
    if (!this.destroyed) this.destroy();
  }
}
