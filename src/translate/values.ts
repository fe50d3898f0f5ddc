// Small builders for the protobuf values every resource uses: durations, wrappers, fractional
// percentages, string matchers, header operations, ADS config sources and socket addresses.

import type { HeaderOperations, StringMatch } from "../model/types.js";
import type { Address } from "../xds/generated/envoy/config/core/v3/Address.js";
import type { ConfigSource } from "../xds/generated/envoy/config/core/v3/ConfigSource.js";
import type { HeaderValueOption } from "../xds/generated/envoy/config/core/v3/HeaderValueOption.js";
import type { StringMatcher } from "../xds/generated/envoy/type/matcher/v3/StringMatcher.js";
import type { FractionalPercent } from "../xds/generated/envoy/type/v3/FractionalPercent.js";
import type { Duration } from "../xds/generated/google/protobuf/Duration.js";

/** The model keeps milliseconds; protobuf wants whole seconds plus nanoseconds. */
export function duration(ms: number): Duration {
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  return nanos === 0 ? { seconds } : { seconds, nanos };
}

export function durationMs(d: Duration | null | undefined): number | undefined {
  if (!d) return undefined;
  return Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6;
}

export const u32 = (value: number): { value: number } => ({ value });
export const bool = (value: boolean): { value: boolean } => ({ value });

/** Envoy's "no limit" for circuit breakers (Istio's default: Envoy's own 1024 is too low for a mesh). */
export const MAX_UINT32 = 4294967295;

const DENOMINATORS = [
  { name: "HUNDRED", scale: 1 },
  { name: "TEN_THOUSAND", scale: 100 },
  { name: "MILLION", scale: 10_000 },
] as const;

/**
 * A percentage (0–100) as the smallest FractionalPercent denominator that holds it exactly: 10 → 10/100,
 * 12.5 → 1250/10000, 0.0001 → 1/1000000. Finer values round to millionths, Envoy's finest unit.
 */
export function fractionalPercent(percentage: number): FractionalPercent {
  const p = Math.min(100, Math.max(0, percentage));
  for (const d of DENOMINATORS) {
    const n = p * d.scale;
    if (Math.abs(n - Math.round(n)) < 1e-9) return { numerator: Math.round(n), denominator: d.name };
  }
  return { numerator: Math.round(p * 10_000), denominator: "MILLION" };
}

/** The inverse, for the simulator and tests: a FractionalPercent as a percentage. */
export function percentOf(f: FractionalPercent | null | undefined): number {
  if (!f) return 0;
  const scale =
    f.denominator === "TEN_THOUSAND" || f.denominator === 1
      ? 100
      : f.denominator === "MILLION" || f.denominator === 2
        ? 10_000
        : 1;
  return (f.numerator ?? 0) / scale;
}

/**
 * RE2 is Envoy's default (and only built-in) regex engine; the `google_re2` field that used to select
 * it is deprecated since API 3.0, so matchers carry only the pattern.
 */
export function regex(pattern: string): { regex: string } {
  return { regex: pattern };
}

export function stringMatcher(m: StringMatch, ignoreCase = false): StringMatcher {
  const base: StringMatcher =
    m.kind === "exact"
      ? { exact: m.value }
      : m.kind === "prefix"
        ? { prefix: m.value }
        : { safeRegex: regex(m.value) };
  // ignore_case is meaningless (and rejected by some validators) for regexes.
  return ignoreCase && m.kind !== "regex" ? { ...base, ignoreCase: true } : base;
}

/** Envoy reads `%…%` in header values as a formatter command; a mesh value is literal, so escape `%`. */
const literal = (value: string) => value.replaceAll("%", "%%");

/** `set` replaces a header, `add` appends a value: Envoy's append_action says which, explicitly. */
export function headersToAdd(ops: HeaderOperations | undefined): HeaderValueOption[] {
  if (!ops) return [];
  return [
    ...Object.entries(ops.set).map(
      ([key, value]): HeaderValueOption => ({
        header: { key, value: literal(value) },
        appendAction: "OVERWRITE_IF_EXISTS_OR_ADD",
      }),
    ),
    ...Object.entries(ops.add).map(
      ([key, value]): HeaderValueOption => ({
        header: { key, value: literal(value) },
        appendAction: "APPEND_IF_EXISTS_OR_ADD",
      }),
    ),
  ];
}

/** Resources come over the same ADS stream; V3 is explicit because AUTO meant v2 in older Envoys. */
export function adsConfigSource(): ConfigSource {
  return { ads: {}, resourceApiVersion: "V3" };
}

export function socketAddress(address: string, port: number): Address {
  return { socketAddress: { address, portValue: port } };
}

/** gRPC status names (Istio's `abort.grpcStatus`) to their codes. */
export const GRPC_STATUS: Record<string, number> = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
};

export function grpcStatusCode(status: string): number | undefined {
  if (/^\d+$/.test(status)) return Number(status);
  return GRPC_STATUS[status.toUpperCase()];
}

export function byName<T extends { name?: string }>(a: T, b: T): number {
  return compare(a.name ?? "", b.name ?? "");
}

/** Code-unit order, not locale order: the same on every machine, so snapshots hash stably. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
