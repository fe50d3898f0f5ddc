// Replies the proxy makes itself (no route, no healthy upstream, timeouts, resets), with Envoy's codes,
// bodies and response flags, and their gRPC shape: gRPC clients read grpc-status, not the HTTP status.
import { ResponseFlag } from "./stream-info.js";

export interface LocalReply {
  readonly kind: "local-reply";
  readonly status: number;
  readonly body: string;
  /** ResponseFlag bits to record. */
  readonly flag: number;
  /** Envoy's response_code_details. */
  readonly details: string;
  /** For gRPC requests; absent: mapped from the HTTP status. */
  readonly grpcStatus?: number;
  /** Extra response headers (a redirect's location, ...). */
  readonly headers?: Readonly<Record<string, string>>;
}

export function localReply(
  status: number,
  body: string,
  flag: number,
  details: string,
  extra?: { grpcStatus?: number; headers?: Record<string, string> },
): LocalReply {
  return { kind: "local-reply", status, body, flag, details, ...extra };
}

const RESET_PREFIX = "upstream connect error or disconnect/reset before headers. reset reason: ";

/** The router's fixed replies, built once. */
export const Replies = {
  noRoute: localReply(404, "", ResponseFlag.NoRouteFound, "route_not_found"),
  noCluster: localReply(503, "", ResponseFlag.NoClusterFound, "cluster_not_found"),
  noHealthy: localReply(503, "no healthy upstream", ResponseFlag.NoHealthyUpstream, "no_healthy_upstream"),
  connectFailure: localReply(
    503,
    `${RESET_PREFIX}connection failure`,
    ResponseFlag.UpstreamConnectionFailure,
    "upstream_reset_before_response_started{connection_failure}",
  ),
  reset: localReply(
    503,
    `${RESET_PREFIX}connection termination`,
    ResponseFlag.UpstreamRemoteReset,
    "upstream_reset_before_response_started{connection_termination}",
  ),
  /** A circuit breaker refused the request: Envoy says so in x-envoy-overloaded (unless Envoy headers are suppressed). */
  overflow: localReply(
    503,
    `${RESET_PREFIX}overflow`,
    ResponseFlag.UpstreamOverflow,
    "upstream_reset_before_response_started{overflow}",
    { headers: { "x-envoy-overloaded": "true" } },
  ),
  overflowQuiet: localReply(
    503,
    `${RESET_PREFIX}overflow`,
    ResponseFlag.UpstreamOverflow,
    "upstream_reset_before_response_started{overflow}",
  ),
  timeout: localReply(
    504,
    "upstream request timeout",
    ResponseFlag.UpstreamRequestTimeout,
    "upstream_response_timeout",
  ),
  perTryTimeout: localReply(
    504,
    "upstream request timeout",
    ResponseFlag.UpstreamRequestTimeout,
    "upstream_per_try_timeout",
  ),
  /** A route's max_stream_duration passed (Envoy answers 408 and counts it against the downstream). */
  maxDuration: localReply(
    408,
    "downstream duration timeout",
    ResponseFlag.DurationTimeout,
    "max_duration_timeout",
    {
      grpcStatus: 4,
    },
  ),
  connectNotAllowed: localReply(405, "", 0, "connect_not_allowed"),
  upgradeNotAllowed: localReply(403, "", 0, "upgrade_failed"),
  absoluteUrlNotAllowed: localReply(
    400,
    "absolute URL not allowed",
    ResponseFlag.DownstreamProtocolError,
    "absolute_path_rejected",
  ),
  missingHost: localReply(
    400,
    "missing host header",
    ResponseFlag.DownstreamProtocolError,
    "missing_host_header",
  ),
  badPath: localReply(400, "", ResponseFlag.DownstreamProtocolError, "invalid_path"),
  h2cChunked: localReply(
    400,
    "an h2c upgrade request with a chunked body is not supported; send it over HTTP/2 directly or without Upgrade",
    ResponseFlag.DownstreamProtocolError,
    "h2c_upgrade_chunked_body",
  ),
} as const;

export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

/** Envoy's httpToGrpcStatus, except that a timeout (504) is DEADLINE_EXCEEDED, which is what it means. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400:
      return GrpcStatus.INTERNAL;
    case 401:
      return GrpcStatus.UNAUTHENTICATED;
    case 403:
      return GrpcStatus.PERMISSION_DENIED;
    case 404:
      return GrpcStatus.UNIMPLEMENTED;
    case 504:
      return GrpcStatus.DEADLINE_EXCEEDED;
    case 429:
    case 502:
    case 503:
      return GrpcStatus.UNAVAILABLE;
    default:
      return GrpcStatus.UNKNOWN;
  }
}

/** Envoy's Grpc::Utility::grpcToHttpStatus, for outlier detection of gRPC responses and gRPC faults seen by HTTP clients. */
export function grpcToHttpStatus(status: number): number {
  switch (status) {
    case 0:
      return 200;
    case 1:
      return 499;
    case 3:
    case 9:
    case 11:
      return 400;
    case 4:
      return 504;
    case 5:
      return 404;
    case 6:
    case 10:
      return 409;
    case 7:
      return 403;
    case 8:
      return 429;
    case 12:
      return 501;
    case 14:
      return 503;
    case 16:
      return 401;
    default:
      return 500;
  }
}

/** gRPC (and gRPC-Web) requests are recognised by content type, as Envoy's Grpc::Common::isGrpcRequestHeaders. */
export function isGrpc(contentType: string | string[] | undefined): boolean {
  const ct = typeof contentType === "string" ? contentType : contentType?.[0];
  return ct?.startsWith("application/grpc") === true;
}

/** grpc-timeout (`<digits><H|M|S|m|u|n>`, at most 8 digits) in ms; undefined when malformed. */
export function parseGrpcTimeout(v: string | undefined): number | undefined {
  if (v === undefined || v.length < 2 || v.length > 9) return undefined;
  const n = Number(v.slice(0, -1));
  if (!Number.isInteger(n) || n < 0) return undefined;
  switch (v.charCodeAt(v.length - 1)) {
    case 72: // H
      return n * 3_600_000;
    case 77: // M
      return n * 60_000;
    case 83: // S
      return n * 1000;
    case 109: // m
      return n;
    case 117: // u
      return Math.ceil(n / 1000);
    case 110: // n
      return Math.ceil(n / 1_000_000);
    default:
      return undefined;
  }
}

/** grpc-message is percent-encoded outside printable ASCII (and `%` itself). */
export function encodeGrpcMessage(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
        : String.fromCharCode(byte);
  }
  return out;
}
