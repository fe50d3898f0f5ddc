// Envoy's HTTP fault filter (envoy.filters.http.fault): injected delays and aborts, by percentage, fixed or
// taken from x-envoy-fault-* request headers, limited to requests matching headers, downstream nodes and an
// upstream cluster, with max_active_faults. Skein's semantics (docs/resilience.md): on forwarded routes the
// fault applies to each upstream attempt, through the router (AttemptFilter), so retries and timeouts see it
// exactly as they would see a slow or failing upstream; on direct responses and redirects, once, here.
import type { FaultConfig } from "../../config/types.js";
import {
  type AttemptFilter,
  Continue,
  type FilterContext,
  type FilterStatus,
  type StreamFilter,
} from "../../router/chain.js";
import type { DownstreamRequest } from "../../router/downstream.js";
import { first } from "../../router/headers.js";
import { grpcToHttpStatus, type LocalReply, localReply } from "../../router/local-reply.js";
import { headerMatches, headerValue } from "../../router/match.js";
import type { Stat } from "../../router/stats.js";
import { ResponseFlag } from "../../router/stream-info.js";

export const FAULT_FILTER = "envoy.filters.http.fault";

/** The request headers Envoy's header-controlled faults read. */
export const FaultHeaders = {
  /** Delay in milliseconds (header_delay). */
  delay: "x-envoy-fault-delay-request",
  delayPercentage: "x-envoy-fault-delay-request-percentage",
  /** HTTP status to abort with, 200–599 (header_abort). */
  abort: "x-envoy-fault-abort-request",
  /** gRPC status to abort with (header_abort). */
  abortGrpc: "x-envoy-fault-abort-grpc-request",
  abortPercentage: "x-envoy-fault-abort-request-percentage",
  /** Who is calling, for downstream_nodes. */
  downstreamCluster: "x-envoy-downstream-service-cluster",
} as const;

const ABORT_BODY = "fault filter abort";

/** Envoy's fault stats, under `http.<stat prefix>.fault.`. */
class FaultStats {
  readonly delaysInjected: Stat;
  readonly abortsInjected: Stat;
  readonly faultsOverflow: Stat;
  readonly activeFaults: Stat;

  constructor(ctx: FilterContext, name: string) {
    const p = `http.${ctx.statPrefix ?? name}.fault.`;
    this.delaysInjected = ctx.stats.counter(`${p}delays_injected`);
    this.abortsInjected = ctx.stats.counter(`${p}aborts_injected`);
    this.faultsOverflow = ctx.stats.counter(`${p}faults_overflow`);
    this.activeFaults = ctx.stats.gauge(`${p}active_faults`);
  }
}

export function createFaultFilter(config: unknown, name: string, ctx: FilterContext): StreamFilter {
  return new FaultFilter(config as FaultConfig, ctx.random, new FaultStats(ctx, name));
}

export class FaultFilter implements StreamFilter, AttemptFilter {
  readonly attempt: AttemptFilter = this;
  /** Delays in progress (max_active_faults counts them; aborts are over as soon as they are made). */
  private active = 0;

  constructor(
    /** The listener-level config: the default for routes without their own. */
    private readonly config: FaultConfig,
    private readonly random: () => number,
    private readonly stats: FaultStats,
  ) {}

  decodeHeaders(req: DownstreamRequest, perRoute: unknown): FilterStatus | Promise<FilterStatus> {
    const route = req.route;
    // Forwarded requests are faulted per attempt, by the router.
    if (route === undefined || route.action.kind === "route") return Continue;
    // A direct response or redirect has no attempts: the fault applies once, before it, as in Envoy.
    const delay = this.attemptDelay(req, perRoute, undefined);
    if (delay > 0) return this.delayThenAbort(req, perRoute, delay);
    return this.attemptAbort(req, perRoute, undefined) ?? Continue;
  }

  attemptDelay(req: DownstreamRequest, perRoute: unknown, cluster: string | undefined): number {
    const c = this.configFor(perRoute);
    const d = c.delay;
    if (d === undefined || !this.applies(req, c, cluster)) return 0;
    let ms: number;
    let percentage = d.percentage;
    if (d.fromHeader) {
      const v = Number(first(req.headers[FaultHeaders.delay]));
      if (!(Number.isInteger(v) && v > 0)) return 0;
      ms = v;
      percentage = headerPercentage(req, FaultHeaders.delayPercentage, percentage, d.denominator);
    } else ms = d.fixedDelayMs ?? 0;
    if (ms <= 0 || !this.roll(percentage) || this.overflow(c)) return 0;
    this.active++;
    this.stats.activeFaults.value++;
    this.stats.delaysInjected.value++;
    req.info.setFlag(ResponseFlag.DelayInjected);
    return ms;
  }

  attemptDelayEnded(_req: DownstreamRequest): void {
    this.active--;
    this.stats.activeFaults.value--;
  }

  attemptAbort(
    req: DownstreamRequest,
    perRoute: unknown,
    cluster: string | undefined,
  ): LocalReply | undefined {
    const c = this.configFor(perRoute);
    const a = c.abort;
    if (a === undefined || !this.applies(req, c, cluster)) return undefined;
    let httpStatus = a.httpStatus;
    let grpcStatus = a.grpcStatus;
    let percentage = a.percentage;
    if (a.fromHeader) {
      httpStatus = undefined;
      grpcStatus = undefined;
      const h = Number(first(req.headers[FaultHeaders.abort]));
      if (Number.isInteger(h) && h >= 200 && h < 600) httpStatus = h;
      else {
        const g = Number(first(req.headers[FaultHeaders.abortGrpc]));
        if (Number.isInteger(g) && g >= 0) grpcStatus = g;
        else return undefined;
      }
      percentage = headerPercentage(req, FaultHeaders.abortPercentage, percentage, a.denominator);
    }
    if (!this.roll(percentage) || this.overflow(c)) return undefined;
    this.stats.abortsInjected.value++;
    // A gRPC status reaches gRPC clients as grpc-status; plain HTTP clients get the HTTP status it maps to.
    if (grpcStatus !== undefined)
      return localReply(
        grpcToHttpStatus(grpcStatus),
        ABORT_BODY,
        ResponseFlag.FaultInjected,
        "fault_filter_abort",
        { grpcStatus },
      );
    return localReply(httpStatus ?? 503, ABORT_BODY, ResponseFlag.FaultInjected, "fault_filter_abort");
  }

  /** The route's (or virtual host's) override replaces the filter's own config as a whole. */
  private configFor(perRoute: unknown): FaultConfig {
    return (perRoute as { kind?: unknown } | undefined)?.kind === "fault"
      ? (perRoute as FaultConfig)
      : this.config;
  }

  private applies(req: DownstreamRequest, c: FaultConfig, cluster: string | undefined): boolean {
    if (c.upstreamCluster !== undefined && c.upstreamCluster !== cluster) return false;
    if (c.downstreamNodes.length > 0) {
      const node = first(req.headers[FaultHeaders.downstreamCluster]);
      if (node === undefined || !c.downstreamNodes.includes(node)) return false;
    }
    const headers = c.headers;
    for (let i = 0; i < headers.length; i++) {
      const h = headers[i] as (typeof headers)[number];
      if (!headerMatches(h, headerValue(req, h.name))) return false;
    }
    return true;
  }

  private roll(percentage: number): boolean {
    return percentage > 0 && (percentage >= 100 || this.random() * 100 < percentage);
  }

  private overflow(c: FaultConfig): boolean {
    if (c.maxActiveFaults === undefined || this.active < c.maxActiveFaults) return false;
    this.stats.faultsOverflow.value++;
    return true;
  }

  private async delayThenAbort(req: DownstreamRequest, perRoute: unknown, ms: number): Promise<FilterStatus> {
    await new Promise<void>((resolve) => setTimeout(resolve, ms));
    this.attemptDelayEnded(req);
    return this.attemptAbort(req, perRoute, undefined) ?? Continue;
  }
}

/**
 * Envoy's HeaderPercentageProvider: the header is a numerator over the configured denominator, and can only
 * lower the configured percentage.
 */
function headerPercentage(
  req: DownstreamRequest,
  name: string,
  configured: number,
  denominator = 100,
): number {
  const v = first(req.headers[name]);
  if (v === undefined) return configured;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) return configured;
  return Math.min((n / denominator) * 100, configured);
}
