// The sidecar's counters and gauges, named as Envoy names them (http.<stat_prefix>.downstream_rq_total,
// cluster.<name>.upstream_rq_retry, ...). Handles are resolved once per listener or cluster, so counting on
// the request path is a field increment; the admin /stats page prints them all.

/** A counter or a gauge: one number behind a stable object. */
export class Stat {
  value = 0;
  constructor(readonly kind: "counter" | "gauge") {}
}

export class Stats {
  private readonly all = new Map<string, Stat>();
  private readonly httpByPrefix = new Map<string, HttpStats>();
  private readonly clusterByName = new Map<string, ClusterRouterStats>();

  counter(name: string): Stat {
    return this.stat(name, "counter");
  }

  gauge(name: string): Stat {
    return this.stat(name, "gauge");
  }

  private stat(name: string, kind: Stat["kind"]): Stat {
    let s = this.all.get(name);
    if (!s) {
      s = new Stat(kind);
      this.all.set(name, s);
    }
    return s;
  }

  /** The connection manager stats of a stat prefix (shared by listeners that use the same prefix). */
  http(prefix: string): HttpStats {
    let s = this.httpByPrefix.get(prefix);
    if (!s) {
      s = new HttpStats(this, prefix);
      this.httpByPrefix.set(prefix, s);
    }
    return s;
  }

  /** The router's per-cluster stats; one map lookup per request. */
  cluster(name: string): ClusterRouterStats {
    let s = this.clusterByName.get(name);
    if (!s) {
      s = new ClusterRouterStats(this, name);
      this.clusterByName.set(name, s);
    }
    return s;
  }

  /** Every stat, sorted by name. */
  entries(): [string, Stat][] {
    return [...this.all.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  }

  /** Envoy's text form: `name: value` per line. */
  text(): string {
    let out = "";
    for (const [name, s] of this.entries()) out += `${name}: ${s.value}\n`;
    return out;
  }
}

/** Counters for status classes 1xx–5xx, indexed by class. */
function byClass(stats: Stats, prefix: string): (Stat | undefined)[] {
  return [undefined, 1, 2, 3, 4, 5].map((c) =>
    c === undefined ? undefined : stats.counter(`${prefix}${c}xx`),
  );
}

export class HttpStats {
  readonly cxTotal: Stat;
  readonly cxActive: Stat;
  readonly cxHttp1Total: Stat;
  readonly cxHttp2Total: Stat;
  readonly rqTotal: Stat;
  readonly rqActive: Stat;
  /** downstream_rq_1xx … _5xx by status class (index 1–5). */
  readonly rqByClass: (Stat | undefined)[];
  readonly rqMaxDurationReached: Stat;
  readonly noRoute: Stat;
  readonly cxDrainClose: Stat;
  readonly rqWsOnNonWsRoute: Stat;

  constructor(stats: Stats, prefix: string) {
    const p = `http.${prefix}.`;
    this.cxTotal = stats.counter(`${p}downstream_cx_total`);
    this.cxActive = stats.gauge(`${p}downstream_cx_active`);
    this.cxHttp1Total = stats.counter(`${p}downstream_cx_http1_total`);
    this.cxHttp2Total = stats.counter(`${p}downstream_cx_http2_total`);
    this.rqTotal = stats.counter(`${p}downstream_rq_total`);
    this.rqActive = stats.gauge(`${p}downstream_rq_active`);
    this.rqByClass = byClass(stats, `${p}downstream_rq_`);
    this.rqMaxDurationReached = stats.counter(`${p}downstream_rq_max_duration_reached`);
    this.noRoute = stats.counter(`${p}no_route`);
    this.cxDrainClose = stats.counter(`${p}downstream_cx_drain_close`);
    this.rqWsOnNonWsRoute = stats.counter(`${p}downstream_rq_ws_on_non_ws_route`);
  }

  responded(status: number): void {
    const c = this.rqByClass[(status / 100) | 0];
    if (c) c.value++;
  }
}

export class ClusterRouterStats {
  readonly rqTotal: Stat;
  readonly rqByClass: (Stat | undefined)[];
  readonly retry: Stat;
  readonly retrySuccess: Stat;
  readonly retryOverflow: Stat;
  readonly retryLimitExceeded: Stat;
  readonly timeout: Stat;
  readonly perTryTimeout: Stat;
  readonly noHealthy: Stat;
  readonly connectFail: Stat;
  readonly reset: Stat;
  readonly overflow: Stat;

  constructor(stats: Stats, name: string) {
    const p = `cluster.${name}.`;
    this.rqTotal = stats.counter(`${p}upstream_rq_total`);
    this.rqByClass = byClass(stats, `${p}upstream_rq_`);
    this.retry = stats.counter(`${p}upstream_rq_retry`);
    this.retrySuccess = stats.counter(`${p}upstream_rq_retry_success`);
    this.retryOverflow = stats.counter(`${p}upstream_rq_retry_overflow`);
    this.retryLimitExceeded = stats.counter(`${p}upstream_rq_retry_limit_exceeded`);
    this.timeout = stats.counter(`${p}upstream_rq_timeout`);
    this.perTryTimeout = stats.counter(`${p}upstream_rq_per_try_timeout`);
    this.noHealthy = stats.counter(`${p}upstream_cx_none_healthy`);
    this.connectFail = stats.counter(`${p}upstream_cx_connect_fail`);
    this.reset = stats.counter(`${p}upstream_rq_rx_reset`);
    this.overflow = stats.counter(`${p}upstream_rq_pending_overflow`);
  }

  responded(status: number): void {
    const c = this.rqByClass[(status / 100) | 0];
    if (c) c.value++;
  }
}
