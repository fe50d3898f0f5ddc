// Which attempt outcomes a RetryPolicy retries, and how long to wait before the next attempt. Follows
// Envoy's RetryStateImpl: overflow is never retried; a reset (or per-try timeout) counts as a 5xx; gRPC
// conditions read grpc-status; back-off is jittered exponential.
import type { RetryPolicy } from "../config/types.js";
import type { UpstreamError } from "../upstream/types.js";

/** Whether a failed attempt (no response headers) may be retried under `policy`. */
export function retriableError(policy: RetryPolicy, err: UpstreamError): boolean {
  const on = policy.retryOn;
  switch (err.flag) {
    case "UO":
      return false;
    case "UF":
      return (
        on.has("connect-failure") ||
        on.has("reset") ||
        on.has("reset-before-request") ||
        on.has("5xx") ||
        on.has("gateway-error")
      );
    case "UR":
      if (on.has("reset") || on.has("5xx") || on.has("gateway-error")) return true;
      // The upstream layer marks REFUSED_STREAM (and streams past a GOAWAY) as never started.
      return err.beforeRequest && (on.has("reset-before-request") || on.has("refused-stream"));
    case "UT":
      return retriableTimeout(policy);
  }
}

/** A per-try timeout is a "read timeout": Envoy retries it under 5xx, gateway-error and reset. */
export function retriableTimeout(policy: RetryPolicy): boolean {
  const on = policy.retryOn;
  return on.has("5xx") || on.has("gateway-error") || on.has("reset");
}

/** Whether response headers (status, and grpc-status when present) ask for a retry under `policy`. */
export function retriableResponse(
  policy: RetryPolicy,
  status: number,
  grpcStatus: number | undefined,
): boolean {
  const on = policy.retryOn;
  if (status >= 500) {
    if (on.has("5xx")) return true;
    if ((status === 502 || status === 503 || status === 504) && on.has("gateway-error")) return true;
  }
  if (status === 409 && on.has("retriable-4xx")) return true;
  if (on.has("retriable-status-codes") && policy.retriableStatusCodes.has(status)) return true;
  if (grpcStatus !== undefined) return retriableGrpc(policy, grpcStatus);
  return false;
}

export function retriableGrpc(policy: RetryPolicy, grpcStatus: number): boolean {
  const on = policy.retryOn;
  switch (grpcStatus) {
    case 1:
      return on.has("cancelled");
    case 4:
      return on.has("deadline-exceeded");
    case 8:
      return on.has("resource-exhausted");
    case 13:
      return on.has("internal");
    case 14:
      return on.has("unavailable");
    default:
      return false;
  }
}

/** True when the policy retries on any gRPC status (then a response's trailers may decide a retry). */
export function hasGrpcConditions(policy: RetryPolicy): boolean {
  const on = policy.retryOn;
  return (
    on.has("cancelled") ||
    on.has("deadline-exceeded") ||
    on.has("resource-exhausted") ||
    on.has("internal") ||
    on.has("unavailable")
  );
}

/**
 * Envoy's JitteredExponentialBackOffStrategy: retry n waits a uniform time in [0, (2^n − 1) × base),
 * never more than the cap.
 */
export function backoffMs(policy: RetryPolicy, retry: number, random: () => number): number {
  const base = policy.backoffBaseMs;
  if (base <= 0) return 0;
  const span = (2 ** Math.min(retry, 30) - 1) * base;
  return Math.min(Math.floor(random() * span), policy.backoffMaxMs);
}
