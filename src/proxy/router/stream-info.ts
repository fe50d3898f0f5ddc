// What happened to one request, for access logs and metrics: Envoy's response flags and timings. The data
// path fills it in as it goes and hands it to an optional completion hook; nothing here logs.
import type { PeerMetadata } from "../telemetry/peer-metadata.js";
import type { ConnectionInfo } from "./connection.js";

/** Envoy response flags as bits, so setting one allocates nothing. */
export const ResponseFlag = {
  /** UH: no healthy upstream host. */
  NoHealthyUpstream: 1 << 0,
  /** UF: upstream connection failure. */
  UpstreamConnectionFailure: 1 << 1,
  /** UO: upstream overflow (circuit breaker). */
  UpstreamOverflow: 1 << 2,
  /** NR: no route (no virtual host or no route). */
  NoRouteFound: 1 << 3,
  /** URX: the retry limit was reached. */
  UpstreamRetryLimitExceeded: 1 << 4,
  /** NC: the route's cluster is unknown. */
  NoClusterFound: 1 << 5,
  /** DC: the downstream went away before the response ended. */
  DownstreamConnectionTermination: 1 << 6,
  /** UT: upstream request timeout (route or per try). */
  UpstreamRequestTimeout: 1 << 7,
  /** LR: reset locally. */
  LocalReset: 1 << 8,
  /** UR: upstream reset. */
  UpstreamRemoteReset: 1 << 9,
  /** UC: upstream connection termination. */
  UpstreamConnectionTermination: 1 << 10,
  /** DI: a fault filter delayed the request. */
  DelayInjected: 1 << 11,
  /** FI: a fault filter aborted the request. */
  FaultInjected: 1 << 12,
  /** DPE: downstream protocol error. */
  DownstreamProtocolError: 1 << 13,
  /** UAEX: unauthorized (RBAC / external authorization). */
  UnauthorizedExternalService: 1 << 14,
  /** DT: the stream outlived its max_stream_duration. */
  DurationTimeout: 1 << 15,
  /** RL: a rate limit refused the request (local rate limiting). */
  RateLimited: 1 << 16,
} as const;

const SHORT: readonly [number, string][] = [
  [ResponseFlag.NoHealthyUpstream, "UH"],
  [ResponseFlag.UpstreamConnectionFailure, "UF"],
  [ResponseFlag.UpstreamOverflow, "UO"],
  [ResponseFlag.NoRouteFound, "NR"],
  [ResponseFlag.UpstreamRetryLimitExceeded, "URX"],
  [ResponseFlag.NoClusterFound, "NC"],
  [ResponseFlag.DownstreamConnectionTermination, "DC"],
  [ResponseFlag.UpstreamRequestTimeout, "UT"],
  [ResponseFlag.LocalReset, "LR"],
  [ResponseFlag.UpstreamRemoteReset, "UR"],
  [ResponseFlag.UpstreamConnectionTermination, "UC"],
  [ResponseFlag.DelayInjected, "DI"],
  [ResponseFlag.FaultInjected, "FI"],
  [ResponseFlag.DownstreamProtocolError, "DPE"],
  [ResponseFlag.UnauthorizedExternalService, "UAEX"],
  [ResponseFlag.DurationTimeout, "DT"],
  [ResponseFlag.RateLimited, "RL"],
];

/** `UF,URX` as Envoy's %RESPONSE_FLAGS% prints them; `-` for none. */
export function formatResponseFlags(flags: number): string {
  if (flags === 0) return "-";
  let out = "";
  for (const [bit, name] of SHORT) if (flags & bit) out = out ? `${out},${name}` : name;
  return out;
}

export class StreamInfo {
  /** Wall clock at the start (ms since the epoch), for logs. */
  readonly startTime = Date.now();
  /** Monotonic start; the other times are offsets from it in ms (performance.now() based). */
  readonly start = performance.now();
  requestId: string | undefined;
  virtualHost: string | undefined;
  routeName: string | undefined;
  cluster: string | undefined;
  /** `address:port` of the last host tried. */
  upstreamHost: string | undefined;
  /** 0 until a response (upstream or local) starts. */
  responseCode = 0;
  /** Envoy's response_code_details: via_upstream, route_not_found, upstream_reset_before_response_started{...}. */
  responseCodeDetails = "";
  responseFlags = 0;
  /** gRPC status from the response headers or trailers, when there was one. */
  grpcStatus: number | undefined;
  /** Upstream attempts made (1 without retries). */
  attempts = 0;
  bytesReceived = 0;
  bytesSent = 0;
  /** When the last attempt was sent and its response headers arrived (offsets in ms; -1 never). */
  upstreamRequestStart = -1;
  upstreamResponseStart = -1;
  /** The downstream connection (TLS, verified peer identity); set by the listener that accepted it. */
  connection: ConnectionInfo | undefined;
  /** The URI SAN of the upstream's certificate, verified, when the last attempt went over mutual TLS. */
  upstreamPeerPrincipal: string | undefined;
  /**
   * The other end's workload from the peer-metadata exchange, set only when it arrived over mutual TLS
   * (the caller's on inbound listeners, the answering workload's on outbound ones).
   */
  peer: PeerMetadata | undefined;
  /** When the downstream request finished arriving and the response finished leaving. */
  downstreamRequestEnd = -1;
  downstreamResponseEnd = -1;
  /** The request's span when the listener traces; ended with the request (the tracing filter sets it). */
  span: { finish(info: StreamInfo): void } | undefined;
  /** The trace the request belongs to (32 hex digits), when the listener traces. */
  traceId: string | undefined;
  /** The downstream request's headers as received, for access logs (%REQ(...)%); undefined for TCP. */
  requestHeaders: Readonly<Record<string, string | string[] | undefined>> | undefined;
  /** The response headers as sent downstream, for access logs (%RESP(...)%); undefined before a response. */
  responseHeaders: Readonly<Record<string, string | string[] | undefined>> | undefined;

  constructor(
    readonly listener: string,
    readonly protocol: "HTTP/1.1" | "HTTP/2" | "TCP",
    readonly method: string,
    readonly authority: string,
    readonly path: string,
    readonly sourceAddress: string,
  ) {}

  setFlag(bit: number): void {
    this.responseFlags |= bit;
  }

  hasFlag(bit: number): boolean {
    return (this.responseFlags & bit) !== 0;
  }

  /** Milliseconds since the request started. */
  elapsed(): number {
    return performance.now() - this.start;
  }

  /** Total duration, once the response ended (else so far). */
  get durationMs(): number {
    return this.downstreamResponseEnd >= 0 ? this.downstreamResponseEnd : this.elapsed();
  }
}
