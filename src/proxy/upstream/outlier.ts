// Outlier detection (Envoy's consecutive_5xx, consecutive_gateway_failure, consecutive_local_origin_failure):
// counts each host's consecutive failures from the outcomes the router reports, ejects a host when a count
// reaches its threshold (subject to the enforcing percentage and max_ejection_percent) for
// base_ejection_time × the number of times it was ejected, and returns it when that time has passed.
import type { OutlierDetection } from "../config/types.js";
import type { HostOutcome } from "./types.js";

/** Envoy's max_ejection_time default, for configs compiled without it. */
const MAX_EJECTION_TIME_MS = 300_000;

/** The per-host fields the detector keeps; hosts carry them directly, so no side object per host. */
export interface OutlierHost {
  ejected: boolean;
  ejectedAt: number;
  /** Ejections not yet forgiven by a healthy interval; multiplies the ejection time. */
  ejectionMultiplier: number;
  ejectionsTotal: number;
  consecutive5xx: number;
  consecutiveGatewayFailure: number;
  consecutiveLocalOriginFailure: number;
}

export interface OutlierCluster<H extends OutlierHost> {
  readonly hostList: readonly H[];
  /** A host was ejected or returned: the cluster refreshes its available list. */
  ejectionChanged(host: H): void;
}

export class OutlierDetector<H extends OutlierHost> {
  ejectedCount = 0;
  ejectionsTotal = 0;
  private nextReturnAt = Number.POSITIVE_INFINITY;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private config: OutlierDetection,
    private readonly cluster: OutlierCluster<H>,
    private readonly now: () => number,
    private readonly random: () => number,
  ) {
    this.startTimer();
  }

  /** Applies a changed outlier_detection in place; hosts keep their counts and ejections. */
  setConfig(config: OutlierDetection): void {
    const restart = config.intervalMs !== this.config.intervalMs;
    this.config = config;
    if (restart) this.startTimer();
  }

  report(host: H, outcome: HostOutcome): void {
    const c = this.config;
    if (outcome.kind === "response") {
      // A response proves the connection works, whatever its status.
      host.consecutiveLocalOriginFailure = 0;
      if (outcome.status >= 500) this.externalFailure(host, outcome.status);
      else {
        host.consecutive5xx = 0;
        host.consecutiveGatewayFailure = 0;
      }
    } else if (c.consecutiveLocalOriginFailure !== undefined) {
      // split_external_local_origin_errors: local failures have their own counter, always enforced.
      if (++host.consecutiveLocalOriginFailure === c.consecutiveLocalOriginFailure) this.eject(host, 100);
    } else {
      // Otherwise Envoy counts them as the gateway errors a proxy would have answered with.
      this.externalFailure(host, outcome.kind === "timeout" ? 504 : 503);
    }
    if (this.ejectedCount > 0 && this.now() >= this.nextReturnAt) this.returnDue(this.now());
  }

  /** The interval sweep: returns hosts whose time is up and forgives one ejection of each healthy host. */
  tick(): void {
    // Forgive before returning, so a host that comes back now is forgiven only after a healthy interval.
    for (const h of this.cluster.hostList) if (!h.ejected && h.ejectionMultiplier > 0) h.ejectionMultiplier--;
    if (this.ejectedCount > 0) this.returnDue(this.now());
  }

  /** A passing active health check returns an ejected host at once and clears its counts (Envoy's default). */
  uneject(host: H): void {
    if (!host.ejected) return;
    host.consecutive5xx = 0;
    host.consecutiveGatewayFailure = 0;
    host.consecutiveLocalOriginFailure = 0;
    host.ejected = false;
    this.ejectedCount--;
    this.cluster.ejectionChanged(host);
  }

  /** A host left the cluster: drop it from the ejected count. */
  forget(host: H): void {
    if (host.ejected) {
      host.ejected = false;
      this.ejectedCount--;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private startTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.tick(), Math.max(1, this.config.intervalMs));
    this.timer.unref();
  }

  private externalFailure(host: H, status: number): void {
    const c = this.config;
    if (status === 502 || status === 503 || status === 504) {
      if (++host.consecutiveGatewayFailure === c.consecutiveGatewayFailure)
        this.eject(host, c.enforcingConsecutiveGatewayFailure);
    } else host.consecutiveGatewayFailure = 0;
    if (++host.consecutive5xx === c.consecutive5xx) this.eject(host, c.enforcingConsecutive5xx);
  }

  private ejectionTime(host: H): number {
    const base = this.config.baseEjectionTimeMs;
    const max = this.config.maxEjectionTimeMs ?? MAX_EJECTION_TIME_MS;
    return Math.min(base * Math.max(1, host.ejectionMultiplier), Math.max(base, max));
  }

  private eject(host: H, enforcingPercent: number): void {
    host.consecutive5xx = 0;
    host.consecutiveGatewayFailure = 0;
    host.consecutiveLocalOriginFailure = 0;
    if (host.ejected) return;
    if (enforcingPercent < 100 && this.random() * 100 >= enforcingPercent) return;
    // Envoy always allows one ejection, then keeps the ejected share at or under max_ejection_percent.
    const total = this.cluster.hostList.length;
    if (this.ejectedCount > 0 && (100 * (this.ejectedCount + 1)) / total > this.config.maxEjectionPercent)
      return;
    host.ejected = true;
    host.ejectedAt = this.now();
    host.ejectionMultiplier++;
    host.ejectionsTotal++;
    this.ejectedCount++;
    this.ejectionsTotal++;
    this.nextReturnAt = Math.min(this.nextReturnAt, host.ejectedAt + this.ejectionTime(host));
    this.cluster.ejectionChanged(host);
  }

  private returnDue(now: number): void {
    let next = Number.POSITIVE_INFINITY;
    for (const h of this.cluster.hostList) {
      if (!h.ejected) continue;
      const until = h.ejectedAt + this.ejectionTime(h);
      if (now >= until) {
        h.ejected = false;
        this.ejectedCount--;
        this.cluster.ejectionChanged(h);
      } else next = Math.min(next, until);
    }
    this.nextReturnAt = next;
  }
}
