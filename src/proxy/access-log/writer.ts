// Where access log lines go: one buffered writer per destination (a file path, stdout, stderr), shared by
// every listener that logs there. A request appends its line to memory; the buffer is written out
// asynchronously every second (Envoy's access_log_flush_interval default) or once 64 KiB are waiting, so
// no request ever waits on a write. Completion calls logAccess only for listeners with access logs.
import { createWriteStream } from "node:fs";
import type { Writable } from "node:stream";
import type { AccessLogConfig } from "../config/access-log.js";
import type { StreamInfo } from "../router/stream-info.js";
import { passesFilter, renderAccessLog } from "./format.js";

const FLUSH_MS = 1000;
const FLUSH_BYTES = 64 * 1024;

/** Lines for one destination, written out in batches. */
export class BufferedLogWriter {
  private lines: string[] = [];
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  private failed = false;

  constructor(
    private readonly out: Writable,
    private readonly label: string,
  ) {
    out.on("error", (err) => {
      if (this.failed) return;
      this.failed = true;
      this.lines = [];
      process.stderr.write(
        `skein proxy: access log ${label} cannot be written: ${err.message}; lines dropped\n`,
      );
    });
  }

  write(line: string): void {
    if (this.failed) return;
    this.lines.push(line);
    this.size += line.length;
    if (this.size >= FLUSH_BYTES) this.flush();
    else if (this.timer === undefined) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Hands what is buffered to the stream (which writes it asynchronously). */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.lines.length === 0 || this.failed) return;
    const chunk = this.lines.join("");
    this.lines = [];
    this.size = 0;
    this.out.write(chunk);
  }

  get pending(): number {
    return this.lines.length;
  }

  toString(): string {
    return this.label;
  }
}

const writers = new Map<string, BufferedLogWriter>();

function writerFor(sink: AccessLogConfig["sink"]): BufferedLogWriter {
  const key = sink.kind === "file" ? sink.path : `<${sink.kind}>`;
  let w = writers.get(key);
  if (w) return w;
  if (sink.kind === "stdout" || (sink.kind === "file" && sink.path === "/dev/stdout"))
    w = writers.get("<stdout>") ?? new BufferedLogWriter(process.stdout, "stdout");
  else if (sink.kind === "stderr" || (sink.kind === "file" && sink.path === "/dev/stderr"))
    w = writers.get("<stderr>") ?? new BufferedLogWriter(process.stderr, "stderr");
  else w = new BufferedLogWriter(createWriteStream(key, { flags: "a" }), key);
  writers.set(key, w);
  return w;
}

/** Writes one finished request to each of a listener's access logs whose filter it passes. */
export function logAccess(logs: readonly AccessLogConfig[], info: StreamInfo): void {
  for (const log of logs) {
    if (log.filter && !passesFilter(log.filter, info)) continue;
    writerFor(log.sink).write(renderAccessLog(log.format, info));
  }
}

/** Writes out every buffer now (on drain and shutdown, and for tests). */
export function flushAccessLogs(): void {
  for (const w of writers.values()) w.flush();
}
