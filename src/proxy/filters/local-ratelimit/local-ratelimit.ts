// Envoy's local rate limit filter (envoy.filters.http.local_ratelimit): a token bucket per config (the
// route's override, else the filter's own), local to this sidecar. A request takes a token or, when none is
// left and the limit is enforced, is answered 429 `local_rate_limited` (gRPC: UNAVAILABLE, or
// RESOURCE_EXHAUSTED if configured) with response flag RL. With x-ratelimit headers enabled (draft 03),
// every response the bucket governs says the limit, the tokens left and the seconds until the next fill.
// Buckets refill lazily from the clock on use: no timers, nothing allocated per request. They live in a
// store that outlasts config updates (keyed by stat prefix and bucket settings), so pushing unrelated
// config does not hand every client a fresh bucket.
import type { LocalRateLimitConfig } from "../../config/types.js";
import { Continue, type FilterContext, type FilterStatus, type StreamFilter } from "../../router/chain.js";
import type { DownstreamRequest } from "../../router/downstream.js";
import type { HeaderRecord } from "../../router/headers.js";
import { GrpcStatus, type LocalReply, localReply } from "../../router/local-reply.js";
import type { Stat, Stats } from "../../router/stats.js";
import { ResponseFlag } from "../../router/stream-info.js";

export const LOCAL_RATE_LIMIT_FILTER = "envoy.filters.http.local_ratelimit";

/** Envoy's TokenBucketImpl semantics: starts full; whole fills are added as their intervals pass. */
export class TokenBucket {
  tokens: number;
  private lastFill: number;

  constructor(
    private readonly spec: NonNullable<LocalRateLimitConfig["tokenBucket"]>,
    now: number,
  ) {
    this.tokens = spec.maxTokens;
    this.lastFill = now;
  }

  private refill(now: number): void {
    const interval = this.spec.fillIntervalMs;
    const elapsed = now - this.lastFill;
    if (elapsed < interval) return;
    const fills = Math.floor(elapsed / interval);
    this.tokens = Math.min(this.spec.maxTokens, this.tokens + fills * this.spec.tokensPerFill);
    this.lastFill += fills * interval;
  }

  /** Takes a token if there is one. */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  remaining(now: number): number {
    this.refill(now);
    return this.tokens;
  }

  /** Whole seconds until the next fill (x-ratelimit-reset). */
  resetSeconds(now: number): number {
    this.refill(now);
    return Math.max(0, Math.ceil((this.lastFill + this.spec.fillIntervalMs - now) / 1000));
  }
}

/** A config's bucket, its limited reply and its stats (`<stat_prefix>.http_local_rate_limit.*`). */
class Limiter {
  readonly bucket: TokenBucket;
  readonly reply: LocalReply;
  readonly enabled: Stat;
  readonly enforced: Stat;
  readonly rateLimited: Stat;
  readonly ok: Stat;
  readonly limit: string;

  constructor(config: LocalRateLimitConfig, stats: Stats, now: number) {
    const spec = config.tokenBucket as NonNullable<LocalRateLimitConfig["tokenBucket"]>;
    this.bucket = new TokenBucket(spec, now);
    this.limit = String(spec.maxTokens);
    this.reply = localReply(
      config.status,
      "local_rate_limited",
      ResponseFlag.RateLimited,
      "local_rate_limited",
      {
        grpcStatus: config.grpcResourceExhausted ? GrpcStatus.RESOURCE_EXHAUSTED : GrpcStatus.UNAVAILABLE,
      },
    );
    const p = `${config.statPrefix}.http_local_rate_limit.`;
    this.enabled = stats.counter(`${p}enabled`);
    this.enforced = stats.counter(`${p}enforced`);
    this.rateLimited = stats.counter(`${p}rate_limited`);
    this.ok = stats.counter(`${p}ok`);
  }
}

/**
 * The buckets of one sidecar by stat prefix and settings: a config update that keeps a limit keeps its
 * bucket (and its tokens); changed settings start a fresh one.
 */
export class LimiterStore {
  private readonly byKey = new Map<string, Limiter>();

  get(c: LocalRateLimitConfig, stats: Stats, now: number): Limiter {
    const t = c.tokenBucket as NonNullable<LocalRateLimitConfig["tokenBucket"]>;
    const key = `${c.statPrefix}|${t.maxTokens}|${t.tokensPerFill}|${t.fillIntervalMs}|${c.status}|${c.grpcResourceExhausted}`;
    let l = this.byKey.get(key);
    if (l === undefined) {
      l = new Limiter(c, stats, now);
      this.byKey.set(key, l);
    }
    return l;
  }
}

/** Marks a request the filter_enabled roll left alone (only configs enabled below 100% roll). */
const SKIPPED = 1;

/** A factory whose filters share one LimiterStore (one per listener manager, i.e. per sidecar). */
export function localRateLimitFactory(
  store = new LimiterStore(),
): (config: unknown, name: string, ctx: FilterContext) => StreamFilter {
  return (config, name, ctx) => new LocalRateLimitFilter(config as LocalRateLimitConfig, name, ctx, store);
}

export class LocalRateLimitFilter implements StreamFilter {
  // Per config object, so a request costs one WeakMap lookup; the store is consulted once per new config.
  private readonly limiters = new WeakMap<LocalRateLimitConfig, Limiter>();

  constructor(
    private readonly config: LocalRateLimitConfig,
    private readonly name: string,
    private readonly ctx: FilterContext,
    private readonly store: LimiterStore,
    private readonly now: () => number = performance.now.bind(performance),
  ) {}

  decodeHeaders(req: DownstreamRequest, perRoute: unknown): FilterStatus {
    const c = this.configFor(perRoute);
    if (c.tokenBucket === undefined) return Continue;
    if (c.enabled < 1 && (c.enabled <= 0 || this.ctx.random() >= c.enabled)) {
      req.setFilterState(this.name, SKIPPED);
      return Continue;
    }
    const l = this.limiter(c);
    l.enabled.value++;
    if (l.bucket.take(this.now())) {
      l.ok.value++;
      return Continue;
    }
    l.rateLimited.value++;
    if (c.enforced < 1 && (c.enforced <= 0 || this.ctx.random() >= c.enforced)) return Continue;
    l.enforced.value++;
    return l.reply;
  }

  encodeHeaders(req: DownstreamRequest, _status: number, headers: HeaderRecord): void {
    const c = this.configFor(req.perFilterConfig(this.name));
    if (!c.xRateLimitHeaders || c.tokenBucket === undefined) return;
    if (c.enabled < 1 && req.filterState(this.name) === SKIPPED) return;
    const l = this.limiter(c);
    const now = this.now();
    headers["x-ratelimit-limit"] = l.limit;
    headers["x-ratelimit-remaining"] = String(l.bucket.remaining(now));
    headers["x-ratelimit-reset"] = String(l.bucket.resetSeconds(now));
  }

  /** The route's (or virtual host's) override replaces the filter's own config as a whole. */
  private configFor(perRoute: unknown): LocalRateLimitConfig {
    return (perRoute as { kind?: unknown } | undefined)?.kind === "local-ratelimit"
      ? (perRoute as LocalRateLimitConfig)
      : this.config;
  }

  private limiter(c: LocalRateLimitConfig): Limiter {
    let l = this.limiters.get(c);
    if (l === undefined) {
      l = this.store.get(c, this.ctx.stats, this.now());
      this.limiters.set(c, l);
    }
    return l;
  }
}
