// Traffic telemetry for the dashboard: the control plane scrapes each connected sidecar's Istio standard
// metrics (`<workload address>:15020/stats/prometheus`), keeps the last two scrapes per sidecar and turns
// the counter and histogram-bucket deltas between them into per-edge request rate, 5xx share, p99 latency
// and mTLS share. Istio's rule for which side counts an edge: the destination's report where there is one
// (it saw the request arrive, with its peer's identity), else the source's.
import { SkeinError } from "../lib/diagnostics.js";
import type { Logger } from "../lib/log.js";

export const TelemetryCodes = {
  /** A metrics body is not the Prometheus text exposition format. */
  PARSE: "SKEIN_E_TELEMETRY_PARSE",
} as const;

/** One sample of the Prometheus text format. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

function parseValue(text: string, lineNo: number): number {
  if (text === "+Inf" || text === "Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  if (text === "NaN") return Number.NaN;
  const v = Number(text);
  if (text === "" || Number.isNaN(v))
    throw new SkeinError(TelemetryCodes.PARSE, `line ${lineNo}: "${text}" is not a sample value`);
  return v;
}

/**
 * Parses the Prometheus text exposition format (version 0.0.4): `# HELP`/`# TYPE` and other comments
 * are skipped, label values unescape `\\`, `\"` and `\n`, values may be `+Inf`, `-Inf` or `NaN`, and a
 * trailing timestamp is ignored. A malformed line throws SKEIN_E_TELEMETRY_PARSE naming the line.
 */
export function parsePrometheusText(text: string): PromSample[] {
  const out: PromSample[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const line = (lines[i] as string).replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) continue;
    const name = NAME.exec(line)?.[0];
    if (!name) throw new SkeinError(TelemetryCodes.PARSE, `line ${lineNo}: expected a metric name`);
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (line[pos] === "{") {
      pos++;
      for (;;) {
        while (line[pos] === " ") pos++;
        if (line[pos] === "}") {
          pos++;
          break;
        }
        const label = LABEL_NAME.exec(line.slice(pos))?.[0];
        if (!label) throw new SkeinError(TelemetryCodes.PARSE, `line ${lineNo}: expected a label name`);
        pos += label.length;
        while (line[pos] === " ") pos++;
        if (line[pos] !== "=" || line[pos + 1] !== '"')
          throw new SkeinError(TelemetryCodes.PARSE, `line ${lineNo}: expected ="…" after label ${label}`);
        pos += 2;
        let value = "";
        for (;;) {
          const c = line[pos];
          if (c === undefined)
            throw new SkeinError(
              TelemetryCodes.PARSE,
              `line ${lineNo}: unterminated value of label ${label}`,
            );
          pos++;
          if (c === '"') break;
          if (c === "\\") {
            const e = line[pos++];
            value += e === "n" ? "\n" : (e ?? "");
          } else value += c;
        }
        labels[label] = value;
        while (line[pos] === " ") pos++;
        if (line[pos] === ",") pos++;
        else if (line[pos] !== "}")
          throw new SkeinError(TelemetryCodes.PARSE, `line ${lineNo}: expected , or } after label ${label}`);
      }
    }
    const rest = line.slice(pos).trim().split(/\s+/);
    if (rest.length < 1 || rest.length > 2 || rest[0] === "")
      throw new SkeinError(TelemetryCodes.PARSE, `line ${lineNo}: expected a value after ${name}`);
    out.push({ name, labels, value: parseValue(rest[0] as string, lineNo) });
  }
  return out;
}

/** A stable key for one series: its name and sorted labels. */
export function seriesKey(name: string, labels: Record<string, string>): string {
  return `${name}{${Object.keys(labels)
    .sort()
    .map((k) => `${k}=${JSON.stringify(labels[k])}`)
    .join(",")}}`;
}

/**
 * histogram_quantile as Prometheus computes it: `buckets` maps each upper bound (`le`, +Inf included) to
 * a cumulative count (or rate); linear interpolation inside the bucket the rank falls in, the lower bound
 * of the first bucket being 0; a rank in the +Inf bucket answers the highest finite bound. Null when there
 * are no observations or no +Inf bucket.
 */
export function histogramQuantile(q: number, buckets: ReadonlyMap<number, number>): number | null {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const last = sorted.at(-1);
  if (!last || last[0] !== Number.POSITIVE_INFINITY || sorted.length < 2) return null;
  // Counts are cumulative, but summed deltas of several series can dip from noise: keep them monotonic.
  for (let i = 1; i < sorted.length; i++) {
    const prev = (sorted[i - 1] as [number, number])[1];
    const cur = sorted[i] as [number, number];
    if (cur[1] < prev) cur[1] = prev;
  }
  const total = last[1];
  if (!(total > 0)) return null;
  const rank = q * total;
  const b = sorted.findIndex(([, count]) => count >= rank);
  if (b === sorted.length - 1) return (sorted[sorted.length - 2] as [number, number])[0];
  const [upper, count] = sorted[b] as [number, number];
  if (b === 0 && upper <= 0) return upper;
  const [lower, below] = b === 0 ? [0, 0] : (sorted[b - 1] as [number, number]);
  const inBucket = count - below;
  if (inBucket <= 0) return upper;
  return lower + (upper - lower) * ((rank - below) / inBucket);
}

/** One side of an edge as Istio's labels name it. */
export interface PeerLabels {
  namespace: string;
  workload: string;
  version: string;
  /** `*_canonical_service` (the app label), when the reporter set it. */
  canonicalService?: string;
}

/** Per-edge traffic over the window, from one reporter's series, before it is summarised. */
export interface EdgeTraffic {
  source: PeerLabels;
  destination: PeerLabels;
  /** `destination_service_name`. */
  destinationService?: string;
  destinationServiceNamespace?: string;
  reporter: "destination" | "source";
  rps: number;
  errorRps: number;
  mtlsRps: number;
  /** Bucket upper bound (ms) → observations per second at or under it. */
  buckets: Map<number, number>;
  /** Whole-life mTLS share, for an edge idle in the window. */
  lifetimeMtlsShare: number;
}

/** A 5xx the sidecars counted in the last window. */
export interface TelemetryError {
  at: number;
  source: PeerLabels;
  destination: PeerLabels;
  destinationService?: string;
  destinationServiceNamespace?: string;
  responseCode: string;
  responseFlags?: string;
  count: number;
  reporter: "destination" | "source";
}

const REQUESTS = "istio_requests_total";
const DURATION_BUCKET = "istio_request_duration_milliseconds_bucket";

function label(labels: Record<string, string>, name: string): string | undefined {
  const v = labels[name];
  return v === undefined || v === "" ? undefined : v;
}

function peer(labels: Record<string, string>, side: "source" | "destination"): PeerLabels {
  return {
    namespace: label(labels, `${side}_workload_namespace`) ?? "unknown",
    workload: label(labels, `${side}_workload`) ?? "unknown",
    version: label(labels, `${side}_version`) ?? label(labels, `${side}_canonical_revision`) ?? "unknown",
    canonicalService: known(label(labels, `${side}_canonical_service`) ?? label(labels, `${side}_app`)),
  };
}

const known = (v: string | undefined) => (v === "unknown" ? undefined : v);

const is5xx = (code: string | undefined) => !!code && /^5\d\d$/.test(code);

interface Scrape {
  at: number;
  series: Map<string, PromSample>;
}

/** Per target (sidecar), the last two scrapes; the window is the time between them. */
export class TelemetryWindow {
  private readonly scrapes = new Map<string, { prev?: Scrape; cur: Scrape }>();
  private errors: TelemetryError[] = [];

  constructor(private readonly maxErrors = 200) {}

  /** Records a scrape of `target` taken at `at` (ms), keeping the Istio request series only. */
  record(target: string, at: number, samples: readonly PromSample[]): void {
    const series = new Map<string, PromSample>();
    for (const s of samples)
      if (s.name === REQUESTS || s.name === DURATION_BUCKET) series.set(seriesKey(s.name, s.labels), s);
    const prev = this.scrapes.get(target)?.cur;
    const cur = { at, series };
    this.scrapes.set(target, { prev, cur });
    if (prev) this.noteErrors(prev, cur);
  }

  /** Forgets the targets not in `keep` (sidecars that left). */
  retain(keep: ReadonlySet<string>): void {
    for (const t of this.scrapes.keys()) if (!keep.has(t)) this.scrapes.delete(t);
  }

  /** The last window's length in seconds, longest over targets; undefined before two scrapes. */
  windowSeconds(): number | undefined {
    let w: number | undefined;
    for (const { prev, cur } of this.scrapes.values())
      if (prev) w = Math.max(w ?? 0, (cur.at - prev.at) / 1000);
    return w;
  }

  /** Errors seen in recent windows, newest first. */
  recentErrors(): readonly TelemetryError[] {
    return this.errors;
  }

  private noteErrors(prev: Scrape, cur: Scrape): void {
    const found: TelemetryError[] = [];
    for (const [key, s] of cur.series) {
      if (s.name !== REQUESTS || !is5xx(s.labels.response_code)) continue;
      const reporter = s.labels.reporter === "source" ? "source" : "destination";
      const flags = label(s.labels, "response_flags");
      // The destination saw what reached it; the source adds only what its own proxy produced (no upstream,
      // a fault injected), which the destination never saw.
      if (reporter === "source" && (!flags || flags === "-")) continue;
      const delta = counterDelta(prev.series.get(key)?.value, s.value);
      if (delta <= 0) continue;
      found.push({
        at: cur.at,
        source: peer(s.labels, "source"),
        destination: peer(s.labels, "destination"),
        destinationService: label(s.labels, "destination_service_name"),
        destinationServiceNamespace: label(s.labels, "destination_service_namespace"),
        responseCode: s.labels.response_code as string,
        responseFlags: flags && flags !== "-" ? flags : undefined,
        count: delta,
        reporter,
      });
    }
    if (found.length) this.errors = [...found, ...this.errors].slice(0, this.maxErrors);
  }

  /**
   * Traffic per edge over each target's window, rates summed over targets (replicas), from the
   * destination's reports where any exist for the edge, else from the source's.
   */
  edges(): EdgeTraffic[] {
    const byEdge = new Map<string, { destination?: EdgeTraffic; source?: EdgeTraffic }>();
    const lifetime = new Map<string, { total: number; mtls: number }>();
    for (const { prev, cur } of this.scrapes.values()) {
      const dt = prev ? (cur.at - prev.at) / 1000 : 0;
      for (const [key, s] of cur.series) {
        const reporter = s.labels.reporter === "source" ? "source" : "destination";
        const source = peer(s.labels, "source");
        const destination = peer(s.labels, "destination");
        const service = label(s.labels, "destination_service_name");
        const serviceNs = label(s.labels, "destination_service_namespace");
        const edgeKey = JSON.stringify([source, destination, service, serviceNs]);
        const slot = byEdge.get(edgeKey) ?? {};
        byEdge.set(edgeKey, slot);
        let t = slot[reporter];
        if (!t) {
          t = {
            source,
            destination,
            destinationService: service,
            destinationServiceNamespace: serviceNs,
            reporter,
            rps: 0,
            errorRps: 0,
            mtlsRps: 0,
            buckets: new Map(),
            lifetimeMtlsShare: 0,
          };
          slot[reporter] = t;
        }
        const mtls = s.labels.connection_security_policy === "mutual_tls";
        if (s.name === REQUESTS) {
          const life = lifetime.get(`${reporter}|${edgeKey}`) ?? { total: 0, mtls: 0 };
          life.total += s.value;
          if (mtls) life.mtls += s.value;
          lifetime.set(`${reporter}|${edgeKey}`, life);
          t.lifetimeMtlsShare = life.total > 0 ? life.mtls / life.total : 0;
        }
        if (!prev || dt <= 0) continue;
        const rate = counterDelta(prev.series.get(key)?.value, s.value) / dt;
        if (s.name === REQUESTS) {
          t.rps += rate;
          if (is5xx(s.labels.response_code)) t.errorRps += rate;
          if (mtls) t.mtlsRps += rate;
        } else {
          const le = Number(s.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : s.labels.le);
          if (!Number.isNaN(le)) t.buckets.set(le, (t.buckets.get(le) ?? 0) + rate);
        }
      }
    }
    const out: EdgeTraffic[] = [];
    for (const slot of byEdge.values()) {
      const chosen = slot.destination ?? slot.source;
      if (chosen) out.push(chosen);
    }
    return out;
  }
}

/** The increase of a counter between two samples; a drop means the process restarted (counted from 0). */
export function counterDelta(prev: number | undefined, cur: number): number {
  if (!Number.isFinite(cur)) return 0;
  // A series absent from the previous scrape started inside the window: Istio creates it on first use.
  if (prev === undefined || !Number.isFinite(prev)) return Math.max(cur, 0);
  return cur >= prev ? cur - prev : cur;
}

const serviceOf = (t: EdgeTraffic) =>
  t.destinationService ? `${t.destinationServiceNamespace ?? ""}/${t.destinationService}` : undefined;

function scaled(t: EdgeTraffic, factor: number, over: Partial<EdgeTraffic> = {}): EdgeTraffic {
  return {
    ...t,
    rps: t.rps * factor,
    errorRps: t.errorRps * factor,
    mtlsRps: t.mtlsRps * factor,
    buckets: new Map([...t.buckets].map(([le, r]) => [le, r * factor])),
    ...over,
  };
}

/**
 * Without peer metadata exchange a destination reports its callers as `unknown`, and a source names only
 * the service it called, not the workload that answered. This joins the two halves per destination
 * service: each known source's requests to the service are spread over the service's workloads in
 * proportion to what those reported from unknown callers (rates from the source's report; 5xx share the
 * larger of the source's and the workload's, as a source's own proxy may fail requests the destination
 * never sees; latency and mTLS from the workload's report). What the known sources do not account for stays
 * `unknown → workload` (callers outside the mesh) when it is over `noise` of that workload's traffic: the
 * sidecars' windows are not aligned, so small remainders are timing, not callers.
 */
export function joinHalfEdges(traffic: readonly EdgeTraffic[], noise = 0.2): EdgeTraffic[] {
  const srcHalves = new Map<string, EdgeTraffic[]>();
  const dstHalves = new Map<string, EdgeTraffic[]>();
  const out: EdgeTraffic[] = [];
  for (const t of traffic) {
    const svc = serviceOf(t);
    const list =
      svc &&
      t.reporter === "source" &&
      t.destination.workload === "unknown" &&
      t.source.workload !== "unknown"
        ? srcHalves
        : svc &&
            t.reporter === "destination" &&
            t.source.workload === "unknown" &&
            t.destination.workload !== "unknown"
          ? dstHalves
          : undefined;
    if (!list || !svc) {
      out.push(t);
      continue;
    }
    list.set(svc, [...(list.get(svc) ?? []), t]);
  }
  for (const svc of new Set([...srcHalves.keys(), ...dstHalves.keys()])) {
    const sources = srcHalves.get(svc) ?? [];
    const dests = dstHalves.get(svc) ?? [];
    const fromMesh = sources.reduce((a, t) => a + t.rps, 0);
    const seen = dests.reduce((a, t) => a + t.rps, 0);
    if (fromMesh <= 0 || seen <= 0) {
      out.push(...sources, ...dests);
      continue;
    }
    for (const s of sources) {
      const sourceErr = s.rps > 0 ? s.errorRps / s.rps : 0;
      for (const d of dests) {
        if (d.rps <= 0) continue;
        const rps = s.rps * (d.rps / seen);
        const share = scaled(d, rps / d.rps);
        out.push({
          ...share,
          source: s.source,
          reporter: "source",
          errorRps: rps * Math.max(sourceErr, d.errorRps / d.rps),
        });
      }
    }
    const outside = 1 - fromMesh / seen;
    if (outside > noise) for (const d of dests) out.push(scaled(d, outside));
  }
  return out;
}

/** Summary of several EdgeTraffic merged into one edge (e.g. the replicas of a version). */
export interface EdgeSummary {
  rps: number;
  errorRate: number;
  p99Ms: number | null;
  mtlsShare: number;
}

/** Merges edges (summing rates and bucket rates) and computes their 5xx share, p99 and mTLS share. */
export function summarize(parts: readonly EdgeTraffic[]): EdgeSummary {
  let rps = 0;
  let errorRps = 0;
  let mtlsRps = 0;
  let lifetime = 0;
  const buckets = new Map<number, number>();
  for (const p of parts) {
    rps += p.rps;
    errorRps += p.errorRps;
    mtlsRps += p.mtlsRps;
    lifetime = Math.max(lifetime, p.lifetimeMtlsShare);
    for (const [le, r] of p.buckets) buckets.set(le, (buckets.get(le) ?? 0) + r);
  }
  return {
    rps,
    errorRate: rps > 0 ? errorRps / rps : 0,
    p99Ms: histogramQuantile(0.99, buckets),
    mtlsShare: rps > 0 ? mtlsRps / rps : lifetime,
  };
}

/** A sidecar to scrape. */
export interface ScrapeTarget {
  /** Its proxy's node id. */
  id: string;
  address: string;
}

export interface TelemetryScraperOptions {
  /** The sidecars to scrape now (asked before every round). */
  targets: () => ScrapeTarget[];
  /** Istio's merged-metrics port on each workload address. */
  port?: number;
  path?: string;
  intervalMs?: number;
  /** Per request. */
  timeoutMs?: number;
  /** Requests in flight at once. */
  concurrency?: number;
  /** Bodies larger than this are dropped (a misbehaving target must not exhaust memory). */
  maxBytes?: number;
  logger?: Logger;
}

/** Scrapes every sidecar on an interval into a TelemetryWindow. */
export class TelemetryScraper {
  readonly window = new TelemetryWindow();
  readonly intervalMs: number;
  private readonly failures = new Map<string, string>();
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  private targetCount = 0;
  private lastAt?: number;

  constructor(private readonly options: TelemetryScraperOptions) {
    this.intervalMs = options.intervalMs ?? 3000;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      // A round still running (slow targets) is not stacked on.
      this.round ??= this.scrapeOnce().finally(() => {
        this.round = undefined;
      });
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.round;
  }

  /** How the last round went. */
  health(): { targets: number; ok: number; failures: { target: string; error: string }[]; lastAt?: number } {
    return {
      targets: this.targetCount,
      ok: this.targetCount - this.failures.size,
      failures: [...this.failures].map(([target, error]) => ({ target, error })),
      lastAt: this.lastAt,
    };
  }

  /** One round: every target, `concurrency` at a time, each bounded by the timeout. */
  async scrapeOnce(): Promise<void> {
    const targets = this.options.targets();
    this.targetCount = targets.length;
    this.window.retain(new Set(targets.map((t) => t.id)));
    for (const id of this.failures.keys()) if (!targets.some((t) => t.id === id)) this.failures.delete(id);
    const queue = [...targets];
    const worker = async () => {
      for (let t = queue.shift(); t; t = queue.shift()) await this.scrapeTarget(t);
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency ?? 8, queue.length) }, worker));
    this.lastAt = Date.now();
  }

  private async scrapeTarget(t: ScrapeTarget): Promise<void> {
    const host = t.address.includes(":") ? `[${t.address}]` : t.address;
    const url = `http://${host}:${this.options.port ?? 15020}${this.options.path ?? "/stats/prometheus"}`;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(this.options.timeoutMs ?? 2000) });
      const text = await res.text();
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const max = this.options.maxBytes ?? 8 * 1024 * 1024;
      if (text.length > max) throw new Error(`metrics body over ${max} bytes`);
      this.window.record(t.id, Date.now(), parsePrometheusText(text));
      this.failures.delete(t.id);
    } catch (err) {
      const message = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
      if (this.failures.get(t.id) !== message)
        this.options.logger?.debug("telemetry scrape failed", { target: url, error: message });
      this.failures.set(t.id, message);
    }
  }
}
