// TypeScript shape of envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit (and the TokenBucket and
// HttpStatus it uses), written by hand from local_rate_limit.proto: the generated interfaces cover only the
// protos listed in scripts/gen-xds-types.mjs. Input form (what translation builds) and output form (what
// decoding with proto-loader's options returns: defaults filled, enums as names, oneofs named).
import type {
  RuntimeFractionalPercent,
  RuntimeFractionalPercent__Output,
} from "./generated/envoy/config/core/v3/RuntimeFractionalPercent.js";
import type { Duration, Duration__Output } from "./generated/google/protobuf/Duration.js";
import type { UInt32Value, UInt32Value__Output } from "./generated/google/protobuf/UInt32Value.js";

export const LOCAL_RATE_LIMIT_TYPE = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

/** envoy.type.v3.TokenBucket. */
export interface TokenBucket {
  maxTokens?: number;
  tokensPerFill?: UInt32Value | null;
  fillInterval?: Duration | null;
}

export interface TokenBucket__Output {
  maxTokens: number;
  tokensPerFill: UInt32Value__Output | null;
  fillInterval: Duration__Output | null;
}

/** envoy.type.v3.HttpStatus: the code as its enum name ("TooManyRequests") or number. */
export interface HttpStatus {
  code?: string | number;
}

export interface HttpStatus__Output {
  code: string;
}

export type XRateLimitHeadersRFCVersion = "OFF" | "DRAFT_VERSION_03";

export interface LocalRateLimit {
  statPrefix?: string;
  status?: HttpStatus | null;
  tokenBucket?: TokenBucket | null;
  filterEnabled?: RuntimeFractionalPercent | null;
  filterEnforced?: RuntimeFractionalPercent | null;
  enableXRatelimitHeaders?: XRateLimitHeadersRFCVersion;
  rateLimitedAsResourceExhausted?: boolean;
}

/** The decoded message; fields the sidecar refuses are read only to name them in a NACK. */
export interface LocalRateLimit__Output {
  statPrefix: string;
  status: HttpStatus__Output | null;
  tokenBucket: TokenBucket__Output | null;
  filterEnabled: RuntimeFractionalPercent__Output | null;
  filterEnforced: RuntimeFractionalPercent__Output | null;
  requestHeadersToAddWhenNotEnforced: unknown[];
  responseHeadersToAdd: unknown[];
  descriptors: unknown[];
  stage: number;
  localRateLimitPerDownstreamConnection: boolean;
  localClusterRateLimit: unknown | null;
  enableXRatelimitHeaders: XRateLimitHeadersRFCVersion;
  vhRateLimits: string;
  alwaysConsumeDefaultTokenBucket: { value: boolean } | null;
  rateLimitedAsResourceExhausted: boolean;
}
