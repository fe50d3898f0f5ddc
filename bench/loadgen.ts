// Open-loop, constant-rate load generator (and a closed-loop one for saturation) over HTTP/1.1 keep-alive,
// h2c and gRPC, recording latency in HDR histograms. Open loop avoids coordinated omission: request i is
// due at start + i/rate whatever happened to request i-1, and its latency is measured from that intended
// time, so a stalled server or a late scheduler shows up in the percentiles instead of hiding.
import { type ClientHttp2Session, connect as http2Connect } from "node:http2";
import { performance } from "node:perf_hooks";
import * as grpc from "@grpc/grpc-js";
import * as hdr from "hdr-histogram-js";
import { Pool } from "undici";

export type Protocol = "http1" | "h2c" | "grpc";

export interface Target {
  protocol: Protocol;
  /** Where to connect. */
  host: string;
  port: number;
  /** Host header / :authority (the sidecar routes by it). */
  authority: string;
  /** HTTP path, or the gRPC method path. */
  path: string;
  payload: Buffer;
  /** Connections (HTTP/1.1), sessions (h2c) or channels (gRPC) to spread requests over. */
  connections: number;
  timeoutMs?: number;
}

export interface LatencySummary {
  count: number;
  /** Microseconds. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface RunResult {
  mode: "rate" | "saturation";
  protocol: Protocol;
  /** Requests per second asked for (rate mode). */
  rate?: number;
  /** Requests kept in flight (saturation mode). */
  concurrency?: number;
  /** Length of the measured window, seconds (warm-up excluded). */
  durationS: number;
  /** Requests due in the measured window (rate mode) or started in it (saturation). */
  scheduled: number;
  completed: number;
  errors: number;
  errorKinds: Record<string, number>;
  /** Completed per second over the measured window. */
  achievedRps: number;
  latencyUs: LatencySummary;
  /** The worst delay between a request's intended time and the moment it was actually sent (rate mode). */
  maxSendLagUs: number;
  responseBytes: number;
  /** The HDR histogram of the measured window, compressed (hdr-histogram-js encodeIntoCompressedBase64). */
  histogram: string;
}

export interface RateOptions {
  rate: number;
  durationMs: number;
  warmupMs: number;
  /** Called when the measured window starts (after warm-up): the harness snapshots CPU there. */
  onMeasureStart?: () => void;
}

export interface SaturationOptions {
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  onMeasureStart?: () => void;
}

type Done = (err: string | undefined, bytes: number) => void;

/** One protocol's way of sending the request; `send` must call `done` exactly once. */
interface Sender {
  send(done: Done): void;
  close(): Promise<void>;
}

function newHistogram(): hdr.Histogram {
  // 1 µs to 60 s at 3 significant digits: enough for p99.9 of sub-millisecond latencies.
  return hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
    useWebAssembly: false,
  });
}

export function summarize(h: hdr.Histogram): LatencySummary {
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50),
    p90: h.getValueAtPercentile(90),
    p99: h.getValueAtPercentile(99),
    p999: h.getValueAtPercentile(99.9),
    max: h.maxValue,
    mean: Math.round(h.mean),
  };
}

async function http1Sender(t: Target): Promise<Sender> {
  const pool = new Pool(`http://${t.host}:${t.port}`, {
    connections: t.connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    headersTimeout: t.timeoutMs ?? 10_000,
    bodyTimeout: t.timeoutMs ?? 10_000,
  });
  const headers = {
    host: t.authority,
    "content-type": "application/octet-stream",
    "content-length": String(t.payload.length),
  };
  return {
    send(done) {
      pool.request({ path: t.path, method: "POST", headers, body: t.payload }).then(
        async ({ statusCode, body }) => {
          let bytes = 0;
          for await (const c of body) bytes += (c as Buffer).length;
          done(statusCode === 200 ? undefined : `http ${statusCode}`, bytes);
        },
        (err: Error & { code?: string }) => done(err.code ?? err.message, 0),
      );
    },
    close: () => pool.destroy(),
  };
}

async function h2cSender(t: Target): Promise<Sender> {
  const sessions: ClientHttp2Session[] = [];
  for (let i = 0; i < t.connections; i++) {
    const s = http2Connect(`http://${t.host}:${t.port}`);
    s.on("error", () => undefined);
    await new Promise<void>((resolve, reject) => {
      s.once("connect", () => resolve());
      s.once("error", reject);
    });
    sessions.push(s);
  }
  let next = 0;
  const headers = {
    ":method": "POST",
    ":path": t.path,
    ":authority": t.authority,
    "content-type": "application/octet-stream",
    "content-length": String(t.payload.length),
  };
  const timeout = t.timeoutMs ?? 10_000;
  return {
    send(done) {
      const s = sessions[next++ % sessions.length] as ClientHttp2Session;
      let status = 0;
      let bytes = 0;
      let finished = false;
      const finish = (err: string | undefined) => {
        if (finished) return;
        finished = true;
        done(err, bytes);
      };
      try {
        const req = s.request(headers);
        req.setTimeout(timeout, () => {
          req.close();
          finish("timeout");
        });
        req.on("response", (h) => {
          status = Number(h[":status"]);
        });
        req.on("data", (c: Buffer) => {
          bytes += c.length;
        });
        req.on("end", () => finish(status === 200 ? undefined : `http ${status}`));
        req.on("error", (err: Error & { code?: string }) => finish(err.code ?? err.message));
        req.end(t.payload);
      } catch (err) {
        finish((err as Error & { code?: string }).code ?? (err as Error).message);
      }
    },
    close: async () => {
      for (const s of sessions) s.destroy();
    },
  };
}

async function grpcSender(t: Target): Promise<Sender> {
  const clients: grpc.Client[] = [];
  const identity = (b: Buffer) => b;
  for (let i = 0; i < t.connections; i++) {
    const c = new grpc.Client(`${t.host}:${t.port}`, grpc.credentials.createInsecure(), {
      "grpc.default_authority": t.authority,
      // Its own connection per client, like separate HTTP/2 sessions.
      "grpc.use_local_subchannel_pool": 1,
    });
    await new Promise<void>((resolve, reject) =>
      c.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())),
    );
    clients.push(c);
  }
  let next = 0;
  const timeout = t.timeoutMs ?? 10_000;
  return {
    send(done) {
      const c = clients[next++ % clients.length] as grpc.Client;
      c.makeUnaryRequest<Buffer, Buffer>(
        t.path,
        identity,
        identity,
        t.payload,
        new grpc.Metadata(),
        { deadline: Date.now() + timeout },
        (err, res) => done(err ? `grpc ${err.code}` : undefined, res?.length ?? 0),
      );
    },
    close: async () => {
      for (const c of clients) c.close();
    },
  };
}

export function sender(t: Target): Promise<Sender> {
  if (t.protocol === "http1") return http1Sender(t);
  if (t.protocol === "h2c") return h2cSender(t);
  return grpcSender(t);
}

/** Waits until nothing is in flight or the deadline passes. */
async function drain(inFlight: () => number, ms: number): Promise<void> {
  const deadline = performance.now() + ms;
  while (inFlight() > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

/** Open loop at a constant rate: warm-up, then `durationMs` measured. */
export async function runAtRate(t: Target, o: RateOptions): Promise<RunResult> {
  const s = await sender(t);
  const h = newHistogram();
  const intervalMs = 1000 / o.rate;
  const total = Math.round(((o.warmupMs + o.durationMs) * o.rate) / 1000);
  const firstMeasured = Math.round((o.warmupMs * o.rate) / 1000);
  const errorKinds: Record<string, number> = {};
  let completed = 0;
  let errors = 0;
  let inFlight = 0;
  let bytes = 0;
  let maxLag = 0;
  let measureEnd = 0;
  const start = performance.now() + 20;
  let i = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < total) {
        const intended = start + i * intervalMs;
        if (intended > now) break;
        if (i === firstMeasured) o.onMeasureStart?.();
        const measured = i >= firstMeasured;
        const lag = (now - intended) * 1000;
        if (measured && lag > maxLag) maxLag = lag;
        inFlight++;
        s.send((err, n) => {
          inFlight--;
          if (!measured) return;
          const end = performance.now();
          if (end > measureEnd) measureEnd = end;
          if (err) {
            errors++;
            errorKinds[err] = (errorKinds[err] ?? 0) + 1;
            return;
          }
          completed++;
          bytes += n;
          h.recordValue(Math.max(1, Math.round((end - intended) * 1000)));
        });
        i++;
      }
      if (i >= total) resolve();
      else setTimeout(tick, Math.max(0, start + i * intervalMs - performance.now()));
    };
    setTimeout(tick, Math.max(0, start - performance.now()));
  });
  await drain(() => inFlight, t.timeoutMs ?? 10_000);
  await s.close();
  const measuredStart = start + firstMeasured * intervalMs;
  // Throughput over the window in which the measured requests were due (or, if they finished late, done).
  const windowMs = Math.max(o.durationMs, measureEnd - measuredStart);
  return {
    mode: "rate",
    protocol: t.protocol,
    rate: o.rate,
    durationS: o.durationMs / 1000,
    scheduled: total - firstMeasured,
    completed,
    errors,
    errorKinds,
    achievedRps: Math.round((completed * 1000) / windowMs),
    latencyUs: summarize(h),
    maxSendLagUs: Math.round(maxLag),
    responseBytes: bytes,
    histogram: hdr.encodeIntoCompressedBase64(h),
  };
}

/** Closed loop: `concurrency` requests always in flight; what completes per second is the maximum throughput. */
export async function runSaturation(t: Target, o: SaturationOptions): Promise<RunResult> {
  const s = await sender(t);
  const h = newHistogram();
  const errorKinds: Record<string, number> = {};
  const t0 = performance.now();
  const measureFrom = t0 + o.warmupMs;
  const stopAt = measureFrom + o.durationMs;
  let measuring = false;
  let completed = 0;
  let errors = 0;
  let started = 0;
  let inFlight = 0;
  let bytes = 0;
  await new Promise<void>((resolve) => {
    let workers = o.concurrency;
    const loop = () => {
      const now = performance.now();
      if (now >= stopAt) {
        if (--workers === 0) resolve();
        return;
      }
      if (!measuring && now >= measureFrom) {
        measuring = true;
        o.onMeasureStart?.();
      }
      const measured = now >= measureFrom;
      if (measured) started++;
      inFlight++;
      s.send((err, n) => {
        inFlight--;
        const end = performance.now();
        if (measured && end <= stopAt) {
          if (err) {
            errors++;
            errorKinds[err] = (errorKinds[err] ?? 0) + 1;
          } else {
            completed++;
            bytes += n;
            h.recordValue(Math.max(1, Math.round((end - now) * 1000)));
          }
        }
        // A failing target answers instantly: do not spin on it.
        if (err) setTimeout(loop, 1);
        else loop();
      });
    };
    for (let k = 0; k < o.concurrency; k++) loop();
  });
  await drain(() => inFlight, t.timeoutMs ?? 10_000);
  await s.close();
  return {
    mode: "saturation",
    protocol: t.protocol,
    concurrency: o.concurrency,
    durationS: o.durationMs / 1000,
    scheduled: started,
    completed,
    errors,
    errorKinds,
    achievedRps: Math.round((completed * 1000) / o.durationMs),
    latencyUs: summarize(h),
    maxSendLagUs: 0,
    responseBytes: bytes,
    histogram: hdr.encodeIntoCompressedBase64(h),
  };
}
