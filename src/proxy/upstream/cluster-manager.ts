// The sidecar's ClusterManager: one UpstreamCluster per CDS cluster, updated from CDS+EDS in one
// synchronous step (no request sees half an update). New clusters are created, removed ones drained and
// closed, changed ones updated in place so hosts that stay keep their connections and counters.
import type { Cluster, EndpointSet, HashPolicy } from "../config/types.js";
import { SecretManager } from "../identity/secrets.js";
import { type ClusterEnvironment, lookupIPv4, UpstreamClusterImpl } from "./cluster.js";
import { hashFor } from "./hash.js";
import type { ClusterManager, ClusterStats } from "./types.js";

export interface ClusterManagerOptions {
  /** STRICT_DNS re-resolution period (Envoy's dns_refresh_rate default, 5000 ms). */
  dnsRefreshMs?: number;
  /** IPv4 addresses for a STRICT_DNS name; dns.lookup (family 4) by default. */
  resolve?: (hostname: string) => Promise<string[]>;
  /** Clock and randomness (outlier timing, balancer choices), replaceable in tests. */
  now?: () => number;
  random?: () => number;
  /** Secrets for TLS endpoints; default: an empty manager (TLS endpoints then fail to connect, UF). */
  secrets?: SecretManager;
}

/** The manager with its extras: stats() always present, close() with an optional grace period. */
export interface SkeinClusterManager extends ClusterManager {
  get(name: string): UpstreamClusterImpl | undefined;
  stats(): Record<string, ClusterStats>;
  /**
   * Drains every pool (in-flight requests finish). After `graceMs`, if given, whatever is still open is
   * closed hard.
   */
  close(graceMs?: number): Promise<void>;
}

class Manager implements SkeinClusterManager {
  private readonly clusters = new Map<string, UpstreamClusterImpl>();
  private readonly closing = new Map<UpstreamClusterImpl, Promise<void>>();
  private readonly env: ClusterEnvironment;

  constructor(options: ClusterManagerOptions) {
    this.env = {
      now: options.now ?? Date.now,
      random: options.random ?? Math.random,
      dnsRefreshMs: options.dnsRefreshMs ?? 5000,
      resolve: options.resolve ?? lookupIPv4,
      secrets: options.secrets ?? new SecretManager(),
    };
  }

  update(clusters: ReadonlyMap<string, Cluster>, endpoints: ReadonlyMap<string, EndpointSet>): void {
    for (const [name, config] of clusters) {
      const eds = config.type === "EDS" ? endpoints.get(config.edsServiceName)?.endpoints : undefined;
      const existing = this.clusters.get(name);
      if (existing) existing.update(config, eds);
      else this.clusters.set(name, new UpstreamClusterImpl(config, eds, this.env));
    }
    for (const [name, cluster] of this.clusters) {
      if (clusters.has(name)) continue;
      this.clusters.delete(name);
      const done = cluster.close().then(() => {
        this.closing.delete(cluster);
      });
      this.closing.set(cluster, done);
    }
  }

  get(name: string): UpstreamClusterImpl | undefined {
    return this.clusters.get(name);
  }

  hashFor(
    policies: readonly HashPolicy[],
    req: { headers: Record<string, string | string[] | undefined>; sourceIp: string; query: URLSearchParams },
  ): bigint | undefined {
    return hashFor(policies, req);
  }

  stats(): Record<string, ClusterStats> {
    const out: Record<string, ClusterStats> = {};
    for (const [name, c] of this.clusters) out[name] = c.snapshot();
    return out;
  }

  async close(graceMs?: number): Promise<void> {
    const all = [...this.clusters.values(), ...this.closing.keys()];
    const drained = Promise.all([
      ...[...this.clusters.values()].map((c) => c.close()),
      ...this.closing.values(),
    ]);
    this.clusters.clear();
    if (graceMs === undefined) {
      await drained;
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    await Promise.race([drained, expired]);
    if (timer) clearTimeout(timer);
    for (const c of all) c.destroy();
  }
}

export function createClusterManager(options: ClusterManagerOptions = {}): SkeinClusterManager {
  return new Manager(options);
}
