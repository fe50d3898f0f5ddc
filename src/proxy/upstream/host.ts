// One endpoint of a cluster: its pools (HTTP/1.1 and HTTP/2, opened on first use), raw TCP connections,
// per-host counters, and its health as EDS, active health checks and outlier detection see it. Hosts survive
// EDS updates that keep their address:port, so their connections, counters and health do too.
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Cluster, Endpoint, TlsContext } from "../config/types.js";
import type { SecretManager } from "../identity/secrets.js";
import type { BalancedHost } from "./balancers.js";
import { Http2Pool } from "./h2.js";
import type { CheckedHost } from "./health-check.js";
import type { OutlierHost } from "./outlier.js";
import { abortReason, Http1Pool, openSocket, overflow, type PoolHost } from "./pool.js";
import { endpointTls } from "./tls.js";
import type {
  ClusterStats,
  Host,
  HostOutcome,
  HostStatus,
  UpstreamError,
  UpstreamRequest,
  UpstreamResponse,
} from "./types.js";

/** What a host needs from its cluster. */
export interface HostCluster {
  readonly name: string;
  readonly config: Cluster;
  readonly stats: ClusterStats;
  /** Secrets for TLS endpoints. */
  readonly secrets?: SecretManager;
  /** Routes a reported outcome to outlier detection. */
  outcome(host: UpstreamHost, outcome: HostOutcome): void;
}

function noop(): void {}

export function hostKey(address: string, port: number): string {
  return `${address}:${port}`;
}

export class UpstreamHost implements Host, BalancedHost, OutlierHost, PoolHost, CheckedHost {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  weight: number;
  healthy: boolean;
  locality: string;
  priority: number;
  lbIndex = 0;
  /** The endpoint's `envoy.transport_socket_match` metadata (kept up to date by EDS). */
  transportSocketMatch: Readonly<Record<string, unknown>> | undefined;
  /** The server identity verified on the last TLS connection to this host (StreamInfo.upstreamPeerPrincipal). */
  peerPrincipal: string | undefined;

  active = 0;
  requestsTotal = 0;
  failures = 0;
  overflows = 0;
  connections = 0;
  connectionsTotal = 0;
  connectFailures = 0;
  resets = 0;

  ejected = false;
  ejectedAt = 0;
  ejectionMultiplier = 0;
  ejectionsTotal = 0;
  consecutive5xx = 0;
  consecutiveGatewayFailure = 0;
  consecutiveLocalOriginFailure = 0;

  hcFailed = false;
  hcPending = false;

  private h1: Http1Pool | undefined;
  private h2: Http2Pool | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(
    readonly cluster: HostCluster,
    endpoint: Endpoint,
  ) {
    this.address = endpoint.address;
    this.port = endpoint.port;
    this.key = hostKey(endpoint.address, endpoint.port);
    this.weight = endpoint.weight;
    this.healthy = endpoint.healthy;
    this.locality = endpoint.locality;
    this.priority = endpoint.priority;
    this.transportSocketMatch = endpoint.transportSocketMatch;
  }

  /** TLS or plaintext, by the cluster's transport socket (matches) and this endpoint's metadata. */
  get tls(): TlsContext | undefined {
    return endpointTls(this.cluster.config, this.transportSocketMatch);
  }

  /** EDS says healthy, every active health check passes, and outlier detection has not ejected it. */
  get available(): boolean {
    return this.healthy && !this.ejected && !this.hcFailed;
  }

  request(req: UpstreamRequest): Promise<UpstreamResponse> {
    if (req.signal.aborted) return Promise.reject(abortReason(req.signal));
    const stats = this.cluster.stats;
    const max = this.cluster.config.circuitBreakers.maxRequests;
    if (stats.requestsActive >= max) return Promise.reject(overflow(this, "max_requests", max));
    this.active++;
    this.requestsTotal++;
    stats.requestsActive++;
    stats.requestsTotal++;
    if (req.http2) {
      this.h2 ??= new Http2Pool(this);
      return this.h2.request(req);
    }
    this.h1 ??= new Http1Pool(this);
    return this.h1.request(req);
  }

  exchangeDone(): void {
    this.active--;
    this.cluster.stats.requestsActive--;
  }

  connect(signal: AbortSignal): Promise<Duplex> {
    if (signal.aborted) return Promise.reject(abortReason(signal));
    const stats = this.cluster.stats;
    const max = this.cluster.config.circuitBreakers.maxConnections;
    if (stats.connectionsActive >= max) return Promise.reject(overflow(this, "max_connections", max));
    this.active++;
    this.connections++;
    this.connectionsTotal++;
    stats.connectionsActive++;
    stats.connectionsTotal++;
    // Per connection, not per request: closures are fine here.
    return new Promise<Duplex>((resolve, reject) => {
      const onAbort = () => {
        socket.destroy();
        reject(abortReason(signal));
      };
      const socket = openSocket(this, (err: UpstreamError | null, s: Socket | null) => {
        signal.removeEventListener("abort", onAbort);
        if (err) reject(err);
        else {
          // The caller adds its own listeners once it has the socket; until then an error must not crash
          // the proxy ('close' still reports it).
          (s as Socket).on("error", noop);
          resolve(s as Socket);
        }
      });
      this.sockets.add(socket);
      socket.once("close", () => {
        this.sockets.delete(socket);
        this.active--;
        this.connections--;
        stats.connectionsActive--;
      });
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  report(outcome: HostOutcome): void {
    const stats = this.cluster.stats;
    if (outcome.kind === "response") {
      const s = outcome.status;
      if (s >= 500) {
        stats.responses5xx++;
        this.failures++;
        stats.failuresTotal++;
      } else if (s >= 400) stats.responses4xx++;
      else if (s >= 300) stats.responses3xx++;
      else if (s >= 200) stats.responses2xx++;
    } else {
      this.failures++;
      stats.failuresTotal++;
      if (outcome.kind === "timeout") stats.timeoutsTotal++;
    }
    this.cluster.outcome(this, outcome);
  }

  status(): HostStatus {
    return {
      key: this.key,
      healthy: this.healthy,
      ejected: this.ejected,
      active: this.active,
      total: this.requestsTotal,
      failures: this.failures,
      weight: this.weight,
      ejections: this.ejectionsTotal,
      activeHealthCheckFailed: this.hcFailed,
      activeHealthCheckPending: this.hcPending,
      overflows: this.overflows,
      connections: this.connections,
      connectFailures: this.connectFailures,
    };
  }

  /** Left the cluster: keep serving what is in flight, close connections as they go idle. */
  drain(): Promise<void> {
    const waits: Promise<void>[] = [];
    if (this.h1) waits.push(this.h1.close());
    if (this.h2) waits.push(this.h2.close());
    // Raw TCP connections (TCP proxy, upgrades) belong to their callers, who end them.
    return Promise.all(waits).then(() => undefined);
  }

  /** Closes everything now (manager shutdown after its grace). */
  destroy(): void {
    this.h1?.destroy();
    this.h2?.destroy();
    for (const s of this.sockets) s.destroy();
  }
}
