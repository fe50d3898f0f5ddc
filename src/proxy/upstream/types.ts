// The contract between the router (which decides where a request goes) and the upstream layer (which
// keeps clusters, balancers, connection pools and endpoint health). The router never opens sockets itself.
import type { Duplex } from "node:stream";
import type { Cluster, EndpointSet, HashPolicy } from "../config/types.js";

/** What a load balancer may use to choose: a hash for RING_HASH/MAGLEV, hosts to avoid on a retry. */
export interface PickContext {
  /** From the route's hash policies (computed by the router); absent: no affinity. */
  hash?: bigint;
  /** `address:port` of hosts already tried on this request (previous_hosts retry predicate). */
  avoid?: ReadonlySet<string>;
}

/** Why a request to a host ended the way it did, for least-request counts and outlier detection. */
export type HostOutcome =
  | { kind: "response"; status: number }
  | { kind: "connect-failure" }
  | { kind: "reset" }
  | { kind: "timeout" };

/** A request as the upstream layer sends it: streaming body, headers already rewritten by the router. */
export interface UpstreamRequest {
  method: string;
  /** Path and query. */
  path: string;
  /** The :authority / Host to send. */
  authority: string;
  scheme: "http" | "https";
  /** Lower-case names; hop-by-hop headers already removed. */
  headers: Record<string, string | string[]>;
  /** null for no body; a stream otherwise (replayable bodies are the router's business). */
  body: NodeJS.ReadableStream | Buffer | null;
  /** Aborts the attempt (timeouts, downstream gone). */
  signal: AbortSignal;
  /** HTTP/2 upstream when the cluster says so (or when the downstream spoke HTTP/2 and useDownstreamProtocol). */
  http2: boolean;
}

/** The response as it streams back; trailers arrive at the end (gRPC status lives there). */
export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: NodeJS.ReadableStream;
  /** Resolves with the trailers (empty when none) once the body has ended. */
  trailers: Promise<Record<string, string | string[]>>;
}

export interface Host {
  /** `address:port`. */
  key: string;
  address: string;
  port: number;
  /** Requests in flight to this host (least-request reads it). */
  readonly active: number;
  /** Sends one request over a pooled keep-alive connection. Rejects with an UpstreamError. */
  request(req: UpstreamRequest): Promise<UpstreamResponse>;
  /** Opens a raw TCP connection (TCP proxy, WebSocket/CONNECT upgrades). */
  connect(signal: AbortSignal): Promise<Duplex>;
  /** Reports how an attempt ended (feeds least-request counts and outlier detection). */
  report(outcome: HostOutcome): void;
  /** The SPIFFE ID the server verified on the last mTLS connection to this host presented, if any. */
  readonly peerPrincipal?: string | undefined;
}

/** Errors the upstream layer raises; `flag` is Envoy's response flag for the access log and metrics. */
export class UpstreamError extends Error {
  constructor(
    readonly code:
      | "SKEIN_E_UPSTREAM_CONNECT" // UF: connection failure
      | "SKEIN_E_UPSTREAM_RESET" // UR: reset after connecting
      | "SKEIN_E_UPSTREAM_OVERFLOW" // UO: circuit breaker open (pending/connection/request limit)
      | "SKEIN_E_UPSTREAM_TIMEOUT", // UT: per-try or route timeout (raised by the router's abort)
    readonly flag: "UF" | "UR" | "UO" | "UT",
    message: string,
    /** True when no byte of the request reached the host (safe to retry even non-idempotent requests). */
    readonly beforeRequest = false,
  ) {
    super(message);
    this.name = "UpstreamError";
  }
}

export interface UpstreamCluster {
  readonly name: string;
  readonly config: Cluster;
  /** A healthy host, or undefined when none is (the router answers 503 UH). */
  pick(ctx: PickContext): Host | undefined;
  /** Retry budget / max_retries circuit breaker: false when another retry would exceed it. */
  tryRetry(): boolean;
  retryDone(): void;
  /** Hosts with their health and counters, for the admin /clusters page. */
  hosts(): readonly HostStatus[];
}

/** One host as the admin page shows it. `total` counts requests sent; `failures` the failed outcomes reported. */
export interface HostStatus {
  key: string;
  healthy: boolean;
  ejected: boolean;
  active: number;
  total: number;
  failures: number;
  /** Added later (optional so existing implementations still type-check): */
  weight?: number;
  /** Times outlier detection ejected the host. */
  ejections?: number;
  /** Active health checking: some check fails (or has not passed yet: pending). */
  activeHealthCheckFailed?: boolean;
  activeHealthCheckPending?: boolean;
  /** Requests refused by a circuit breaker (UO) while this host was chosen. */
  overflows?: number;
  /** Open connections (HTTP/1.1 connections, HTTP/2 sessions, raw TCP). */
  connections?: number;
  connectFailures?: number;
}

/**
 * Plain numbers for one cluster (admin page, Prometheus). `…Total` are monotonic counters that survive EDS
 * updates; the others are gauges. Names follow Envoy's cluster stats where one exists.
 */
export interface ClusterStats {
  /** membership_total, membership_healthy (EDS health and active health checks), membership_ejected (gauges). */
  hosts: number;
  healthyHosts: number;
  ejectedHosts: number;
  /** upstream_rq_total, upstream_rq_active, upstream_rq_pending_active. */
  requestsTotal: number;
  requestsActive: number;
  requestsPending: number;
  /** upstream_rq_2xx … 5xx, from the outcomes the router reports. */
  responses2xx: number;
  responses3xx: number;
  responses4xx: number;
  responses5xx: number;
  /** Reported failures: 5xx responses plus connect failures, resets and timeouts. */
  failuresTotal: number;
  /** upstream_cx_connect_fail, upstream_rq_rx_reset-like resets (UR), upstream_rq_timeout (reported). */
  connectFailuresTotal: number;
  resetsTotal: number;
  timeoutsTotal: number;
  /** Requests refused by max_requests / max_pending_requests / max_connections (UO). */
  overflowsTotal: number;
  /** upstream_rq_retry_overflow and the retries in flight (max_retries). */
  retryOverflowsTotal: number;
  retriesActive: number;
  /** upstream_cx_active, upstream_cx_total. */
  connectionsActive: number;
  connectionsTotal: number;
  /** outlier_detection.ejections_total. */
  ejectionsTotal: number;
}

/** Keeps one UpstreamCluster per CDS cluster; applies CDS/EDS updates without dropping valid pools. */
export interface ClusterManager {
  update(clusters: ReadonlyMap<string, Cluster>, endpoints: ReadonlyMap<string, EndpointSet>): void;
  get(name: string): UpstreamCluster | undefined;
  /** Computes the hash for RING_HASH/MAGLEV from the route's hash policies. */
  hashFor(
    policies: readonly HashPolicy[],
    req: { headers: Record<string, string | string[] | undefined>; sourceIp: string; query: URLSearchParams },
  ): bigint | undefined;
  /** Counters per cluster name (added later; optional so existing implementations still type-check). */
  stats?(): Record<string, ClusterStats>;
  close(): Promise<void>;
}
