// One upstream cluster: its hosts (from EDS, or inline for STATIC / STRICT_DNS / LOGICAL_DNS), the load
// balancer over them, circuit-breaker counters, retry budget, outlier detection and active health checks.
// Config and endpoint updates apply in place: hosts whose address:port stays keep their pools, counters,
// ejection and health-check state.
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import type { Cluster, Endpoint } from "../config/types.js";
import type { SecretManager } from "../identity/secrets.js";
import { createBalancer, type HostSets, type LoadBalancer } from "./balancers.js";
import { HealthChecker } from "./health-check.js";
import { type HostCluster, hostKey, UpstreamHost } from "./host.js";
import { OutlierDetector } from "./outlier.js";
import type { ClusterStats, HostOutcome, HostStatus, PickContext, UpstreamCluster } from "./types.js";

export interface ClusterEnvironment {
  now: () => number;
  random: () => number;
  /** STRICT_DNS re-resolution period. */
  dnsRefreshMs: number;
  /** IPv4 addresses of a name (dns.lookup by default; tests may substitute). */
  resolve: (hostname: string) => Promise<string[]>;
  /** The `default` and `ROOTCA` secrets TLS endpoints use. */
  secrets?: SecretManager;
}

export async function lookupIPv4(hostname: string): Promise<string[]> {
  const found = await lookup(hostname, { all: true, family: 4 });
  return found.map((a) => a.address);
}

function emptyStats(): ClusterStats {
  return {
    hosts: 0,
    healthyHosts: 0,
    ejectedHosts: 0,
    requestsTotal: 0,
    requestsActive: 0,
    requestsPending: 0,
    responses2xx: 0,
    responses3xx: 0,
    responses4xx: 0,
    responses5xx: 0,
    failuresTotal: 0,
    connectFailuresTotal: 0,
    resetsTotal: 0,
    timeoutsTotal: 0,
    overflowsTotal: 0,
    retryOverflowsTotal: 0,
    retriesActive: 0,
    connectionsActive: 0,
    connectionsTotal: 0,
    ejectionsTotal: 0,
  };
}

export class UpstreamClusterImpl implements UpstreamCluster, HostCluster {
  readonly stats: ClusterStats = emptyStats();
  hostList: UpstreamHost[] = [];
  private byKey = new Map<string, UpstreamHost>();
  // Handed to the balancer once; its lists are replaced when membership or availability changes.
  private readonly sets: { all: UpstreamHost[]; available: UpstreamHost[] } = { all: [], available: [] };
  private balancer: LoadBalancer<UpstreamHost>;
  private outlier: OutlierDetector<UpstreamHost> | undefined;
  private checker: HealthChecker<UpstreamHost> | undefined;
  private readonly draining = new Set<Promise<void>>();
  private readonly drainingHosts = new Set<UpstreamHost>();
  private dnsTimer: NodeJS.Timeout | undefined;
  private dnsGeneration = 0;
  private dnsSignature = "";
  /** Last good addresses per DNS name, kept when a refresh fails. */
  private readonly dnsCache = new Map<string, string[]>();
  private closed = false;

  constructor(
    public config: Cluster,
    endpoints: readonly Endpoint[] | undefined,
    private readonly env: ClusterEnvironment,
  ) {
    this.balancer = this.buildBalancer();
    this.apply(config, endpoints, true);
  }

  get name(): string {
    return this.config.name;
  }

  /** The sidecar's secrets, for TLS endpoints. */
  get secrets(): SecretManager | undefined {
    return this.env.secrets;
  }

  /** A CDS and/or EDS change for this cluster. `endpoints` is the EDS set (EDS clusters only). */
  update(config: Cluster, endpoints: readonly Endpoint[] | undefined): void {
    this.apply(config, endpoints, false);
  }

  pick(ctx: PickContext): UpstreamHost | undefined {
    const total = this.hostList.length;
    if (total === 0) return undefined;
    // Envoy's panic mode: below the healthy threshold, spread over every host rather than overload a few.
    const panic = this.sets.available.length * 100 < this.config.panicThreshold * total;
    return this.balancer.pick(ctx, panic);
  }

  tryRetry(): boolean {
    if (this.stats.retriesActive >= this.config.circuitBreakers.maxRetries) {
      this.stats.retryOverflowsTotal++;
      return false;
    }
    this.stats.retriesActive++;
    return true;
  }

  retryDone(): void {
    if (this.stats.retriesActive > 0) this.stats.retriesActive--;
  }

  hosts(): readonly HostStatus[] {
    return this.hostList.map((h) => h.status());
  }

  snapshot(): ClusterStats {
    let healthy = 0;
    let ejected = 0;
    for (const h of this.hostList) {
      if (h.healthy && !h.hcFailed) healthy++;
      if (h.ejected) ejected++;
    }
    return {
      ...this.stats,
      hosts: this.hostList.length,
      healthyHosts: healthy,
      ejectedHosts: ejected,
      // Ejections of detectors retired by config changes, plus the current one's.
      ejectionsTotal: this.stats.ejectionsTotal + (this.outlier?.ejectionsTotal ?? 0),
    };
  }

  outcome(host: UpstreamHost, outcome: HostOutcome): void {
    // A router may report on a host an EDS update has just removed: it no longer counts for ejection.
    if (this.outlier && this.byKey.get(host.key) === host) this.outlier.report(host, outcome);
  }

  /** Outlier detection ejected or returned a host. */
  ejectionChanged(): void {
    this.refreshAvailable();
  }

  /** Active health checking failed a host or passed it again. */
  healthCheckChanged(): void {
    this.refreshAvailable();
  }

  healthCheckPassed(host: UpstreamHost): void {
    if (this.outlier && this.config.outlierDetection?.successfulActiveHealthCheckUnejectHost !== false)
      this.outlier.uneject(host);
  }

  /** Removed from CDS: no new DNS work, drain every pool; resolves once in-flight requests have finished. */
  close(): Promise<void> {
    this.closed = true;
    this.stopDns();
    this.checker?.close();
    this.checker = undefined;
    if (this.outlier) {
      this.stats.ejectionsTotal += this.outlier.ejectionsTotal;
      this.outlier.close();
      this.outlier = undefined;
    }
    for (const h of this.hostList) this.drainHost(h);
    this.hostList = [];
    this.byKey.clear();
    this.refreshAvailable();
    return Promise.all([...this.draining]).then(() => undefined);
  }

  /** Closes every connection now, in-flight requests included (shutdown after the grace period). */
  destroy(): void {
    for (const h of this.drainingHosts) h.destroy();
    for (const h of this.hostList) h.destroy();
  }

  private drainHost(h: UpstreamHost): void {
    this.outlier?.forget(h);
    this.drainingHosts.add(h);
    const p = h.drain().then(() => {
      this.draining.delete(p);
      this.drainingHosts.delete(h);
    });
    this.draining.add(p);
  }

  private apply(config: Cluster, edsEndpoints: readonly Endpoint[] | undefined, first: boolean): void {
    const prev = this.config;
    this.config = config;
    const od = config.outlierDetection;
    if (od) {
      if (this.outlier) this.outlier.setConfig(od);
      else this.outlier = new OutlierDetector(od, this, this.env.now, this.env.random);
    } else if (this.outlier) {
      // Detection turned off: everyone returns.
      this.stats.ejectionsTotal += this.outlier.ejectionsTotal;
      this.outlier.close();
      this.outlier = undefined;
      for (const h of this.hostList) h.ejected = false;
    }
    const checks = config.healthChecks;
    if (checks && checks.length > 0) {
      if (this.checker) this.checker.setChecks(checks);
      else this.checker = new HealthChecker(checks, this);
    } else if (this.checker) {
      // Checks turned off: only EDS and outlier detection decide from now on.
      this.checker.close();
      this.checker = undefined;
      for (const h of this.hostList) {
        h.hcFailed = false;
        h.hcPending = false;
      }
    }
    const rebuild = first || prev.lbPolicy !== config.lbPolicy || prev.ringSize !== config.ringSize;
    if (config.type === "STRICT_DNS") {
      this.startDns(config);
      if (rebuild) this.balancer = this.buildBalancer();
      this.refreshAvailable();
      return;
    }
    this.stopDns();
    let endpoints: readonly Endpoint[];
    if (config.type === "EDS") endpoints = edsEndpoints ?? [];
    // LOGICAL_DNS connects to the name itself (resolved per connection) and has exactly one endpoint.
    else if (config.type === "LOGICAL_DNS") endpoints = (config.loadAssignment?.endpoints ?? []).slice(0, 1);
    else endpoints = config.loadAssignment?.endpoints ?? [];
    this.setEndpoints(endpoints, rebuild);
  }

  private setEndpoints(endpoints: readonly Endpoint[], forceRebuild: boolean): void {
    const next = new Map<string, UpstreamHost>();
    const order: UpstreamHost[] = [];
    let changed = forceRebuild;
    for (const e of endpoints) {
      const key = hostKey(e.address, e.port);
      if (next.has(key)) continue; // the same address twice: the first entry wins
      let h = this.byKey.get(key);
      if (h) {
        if (h.weight !== e.weight) changed = true;
        h.weight = e.weight;
        h.healthy = e.healthy;
        h.locality = e.locality;
        h.priority = e.priority;
        h.transportSocketMatch = e.transportSocketMatch;
      } else {
        h = new UpstreamHost(this, e);
        // As in Envoy, a host joining a health-checked cluster takes no traffic until a check passes.
        if (this.checker) {
          h.hcFailed = true;
          h.hcPending = true;
        }
        changed = true;
      }
      next.set(key, h);
      order.push(h);
    }
    for (const [key, h] of this.byKey) {
      if (!next.has(key)) {
        changed = true;
        this.drainHost(h);
      }
    }
    if (!changed && order.length === this.hostList.length) {
      for (let i = 0; i < order.length; i++) if (order[i] !== this.hostList[i]) changed = true;
    } else changed = true;
    this.byKey = next;
    this.hostList = order;
    this.checker?.sync();
    if (changed) {
      for (let i = 0; i < order.length; i++) (order[i] as UpstreamHost).lbIndex = i;
      this.sets.all = order;
      this.balancer = this.buildBalancer();
    }
    this.refreshAvailable();
  }

  private buildBalancer(): LoadBalancer<UpstreamHost> {
    this.sets.all = this.hostList;
    return createBalancer(this.config.lbPolicy, this.sets as HostSets<UpstreamHost>, {
      ringSize: this.config.ringSize,
      random: this.env.random,
    });
  }

  private refreshAvailable(): void {
    this.sets.all = this.hostList;
    this.sets.available = this.hostList.filter((h) => h.available);
  }

  // ── STRICT_DNS ──

  private startDns(config: Cluster): void {
    const endpoints = config.loadAssignment?.endpoints ?? [];
    const signature = endpoints.map((e) => `${e.address}:${e.port}/${e.weight}/${e.healthy}`).join(",");
    if (this.dnsTimer === undefined) {
      this.dnsTimer = setInterval(() => this.resolveDns(), Math.max(1, this.env.dnsRefreshMs));
      this.dnsTimer.unref();
    }
    if (signature !== this.dnsSignature) {
      this.dnsSignature = signature;
      this.resolveDns();
    }
  }

  private stopDns(): void {
    if (this.dnsTimer) clearInterval(this.dnsTimer);
    this.dnsTimer = undefined;
    this.dnsSignature = "";
    this.dnsGeneration++;
  }

  private resolveDns(): void {
    const generation = ++this.dnsGeneration;
    const endpoints = this.config.loadAssignment?.endpoints ?? [];
    Promise.all(
      endpoints.map(async (e): Promise<Endpoint[]> => {
        if (isIP(e.address)) return [e];
        let addresses: string[];
        try {
          addresses = await this.env.resolve(e.address);
          this.dnsCache.set(e.address, addresses);
        } catch {
          // Keep serving the last good answer; a name that never resolved has no hosts yet.
          addresses = this.dnsCache.get(e.address) ?? [];
        }
        return addresses.map((address) => ({ ...e, address }));
      }),
    ).then((lists) => {
      if (generation !== this.dnsGeneration || this.closed) return;
      this.setEndpoints(lists.flat(), false);
    });
  }
}
