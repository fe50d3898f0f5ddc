// Shared by the config compilers: where in a resource a problem is (`Listener "x": filter_chains[0]...`), the
// errors that become NACK messages, the generic "which fields are set" check that refuses what the sidecar
// cannot honour, and conversions of protobuf well-known values (durations, wrappers, percentages, Anys).
import { readFileSync } from "node:fs";
import protobuf from "protobufjs";
import { SkeinError } from "../../lib/diagnostics.js";
import type { DataSource__Output } from "../../xds/generated/envoy/config/core/v3/DataSource.js";
import { fullNameOf, messageType, TYPE_URL_PREFIX, unpack } from "../../xds/protos.js";
import { type ProxyConfigCode, ProxyConfigCodes } from "./codes.js";

/** camelCase (as decoded) → the snake_case field names of the .proto files and Envoy's own messages. */
export function snake(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * A position inside one resource. Immutable: field()/index()/key() return a new position. The error helpers
 * throw a SkeinError whose message is the NACK message: `<Kind> "<name>": <path>: <what>`.
 */
export class At {
  constructor(
    /** `Listener "virtualOutbound"`. */
    readonly resource: string,
    /** `filter_chains[0].filters[0]`; empty at the resource itself. */
    readonly path = "",
  ) {}

  /** A field, given by its decoded (camelCase) name. */
  field(name: string): At {
    const s = snake(name);
    return new At(this.resource, this.path ? `${this.path}.${s}` : s);
  }

  index(i: number): At {
    return new At(this.resource, `${this.path}[${i}]`);
  }

  /** A map entry (typed_per_filter_config["envoy.filters.http.fault"]). */
  key(k: string): At {
    return new At(this.resource, `${this.path}[${JSON.stringify(k)}]`);
  }

  fail(code: ProxyConfigCode, what: string): never {
    const where = this.path ? `${this.resource}: ${this.path}` : this.resource;
    const message = `${where}: ${what}`;
    throw new SkeinError(code, message, [
      { code, severity: "error", message, resource: this.resource, ...(this.path && { path: this.path }) },
    ]);
  }

  unsupported(what: string): never {
    return this.fail(ProxyConfigCodes.UNSUPPORTED, what);
  }

  invalid(what: string): never {
    return this.fail(ProxyConfigCodes.INVALID, what);
  }
}

export function resourceLabel(kind: string, name: string): string {
  return `${kind} ${JSON.stringify(name)}`;
}

// ---- "which fields are set" ----------------------------------------------------------------------------

interface FieldInfo {
  name: string;
  isSet(value: unknown): boolean;
}

const fieldCache = new Map<string, FieldInfo[]>();

// Decoded with defaults (proto-loader's options), unset fields hold their defaults; this tells them apart.
function fieldInfo(field: protobuf.Field): FieldInfo {
  field.resolve();
  const rt = field.resolvedType;
  const name = field.name;
  if (field.map) return { name, isSet: (v) => v != null && Object.keys(v as object).length > 0 };
  if (field.repeated) return { name, isSet: (v) => Array.isArray(v) && v.length > 0 };
  // Oneof members (and proto3 `optional` fields) appear only when set.
  if (field.partOf) return { name, isSet: (v) => v !== undefined && v !== null };
  if (rt instanceof protobuf.Type) return { name, isSet: (v) => v !== undefined && v !== null };
  if (rt instanceof protobuf.Enum) {
    const zero = rt.valuesById[0];
    return { name, isSet: (v) => v !== undefined && v !== null && v !== zero && v !== 0 };
  }
  switch (field.type) {
    case "string":
      return { name, isSet: (v) => typeof v === "string" && v !== "" };
    case "bool":
      return { name, isSet: (v) => v === true };
    case "bytes":
      return { name, isSet: (v) => v != null && (v as { length: number }).length > 0 };
    default:
      return { name, isSet: (v) => v != null && Number(v) !== 0 };
  }
}

function fieldsOf(typeName: string): FieldInfo[] {
  let infos = fieldCache.get(typeName);
  if (!infos) {
    infos = messageType(typeName).fieldsArray.map(fieldInfo);
    fieldCache.set(typeName, infos);
  }
  return infos;
}

/** Field names (camelCase) of `typeName` that are set in the decoded `message`. */
export function setFields(typeName: string, message: object): string[] {
  const m = message as Record<string, unknown>;
  return fieldsOf(typeName)
    .filter((f) => f.isSet(m[f.name]))
    .map((f) => f.name);
}

/**
 * Refuses every set field of `message` that is not in `allowed`: the sidecar NACKs what it cannot honour
 * rather than silently behaving differently from what the control plane asked for. `allowed` lists both
 * the fields that are compiled and those that are deliberately ignored (observability, socket tuning).
 */
export function onlyFields(typeName: string, message: object, allowed: ReadonlySet<string>, at: At): void {
  const m = message as Record<string, unknown>;
  for (const f of fieldsOf(typeName)) {
    if (!allowed.has(f.name) && f.isSet(m[f.name]))
      at.field(f.name).unsupported("not supported by the Skein sidecar");
  }
}

// ---- well-known values ---------------------------------------------------------------------------------

type DurationLike = { seconds?: string | number | null; nanos?: number | null } | null | undefined;

/** A google.protobuf.Duration in milliseconds (undefined when unset); negative durations are invalid. */
export function durationMs(d: DurationLike, at: At): number | undefined {
  if (!d) return undefined;
  const ms = Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6;
  if (!Number.isFinite(ms) || ms < 0) at.invalid(`duration must not be negative (got ${ms} ms)`);
  return ms;
}

/** A required positive duration (Envoy's `duration.gt = {}` rule). */
export function positiveDurationMs(d: DurationLike, at: At, fallback?: number): number {
  const ms = durationMs(d, at);
  if (ms === undefined) {
    if (fallback !== undefined) return fallback;
    return at.invalid("is required");
  }
  if (ms <= 0) at.invalid("must be greater than 0");
  return ms;
}

/** A wrapper message ({value}) or its default when unset. */
export function wrapped<T>(w: { value?: T | null } | null | undefined, fallback: T): T {
  return w ? ((w.value ?? fallback) as T) : fallback;
}

type FractionalPercentLike = { numerator?: number | null; denominator?: string | number | null } | null;

const DENOMINATOR: Record<string, number> = {
  HUNDRED: 100,
  "0": 100,
  TEN_THOUSAND: 10_000,
  "1": 10_000,
  MILLION: 1_000_000,
  "2": 1_000_000,
};

/** A FractionalPercent as a percentage in [0, 100]; Envoy caps the numerator at the denominator. Unset: 0. */
export function percentOf(f: FractionalPercentLike | undefined, at: At): number {
  if (!f) return 0;
  const denominator = denominatorOf(f, at);
  return (Math.min(f.numerator ?? 0, denominator) / denominator) * 100;
}

/** A FractionalPercent's denominator as a number (100 when unset). */
export function denominatorOf(f: FractionalPercentLike | undefined, at: At): number {
  const denominator = DENOMINATOR[String(f?.denominator ?? "HUNDRED")];
  if (denominator === undefined) return at.invalid(`unknown denominator ${String(f?.denominator)}`);
  return denominator;
}

/** An Any that arrived inside a resource: its message type's full name and the decoded message. */
export interface DecodedAny {
  typeName: string;
  message: Record<string, unknown>;
}

type AnyLike = { type_url?: string; typeUrl?: string; value?: Uint8Array | null } | null | undefined;

/** The full type name an Any carries, without decoding it (for "unsupported filter" messages). */
export function anyTypeName(any: AnyLike): string {
  const url = any?.type_url ?? any?.typeUrl ?? "";
  return url ? fullNameOf(url) : "";
}

/** Decodes an embedded Any as the wire delivers it (defaults, oneofs, enums and longs as strings). */
export function decodeAny(any: AnyLike, at: At): DecodedAny {
  const url = any?.type_url ?? any?.typeUrl ?? "";
  if (!url) return at.invalid("typed_config has no type URL");
  if (!url.startsWith(TYPE_URL_PREFIX))
    at.fail(ProxyConfigCodes.DECODE, `unsupported type URL prefix in "${url}"`);
  try {
    return { typeName: fullNameOf(url), message: unpack(any as { type_url: string }) };
  } catch (e) {
    return at.fail(ProxyConfigCodes.DECODE, (e as Error).message);
  }
}

/** Lower-case HTTP header names, as HTTP/2 carries them and Envoy compares them. */
export function headerName(name: string, at: At): string {
  if (name === "") at.invalid("header name must not be empty");
  if (!/^:?[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name))
    at.invalid(`invalid header name ${JSON.stringify(name)}`);
  return name.toLowerCase();
}

/** `new Set(names)`, for the allowed-field lists. */
export function names(...list: string[]): ReadonlySet<string> {
  return new Set(list);
}

/** An optional duration where 0 means "disabled" and unset means the Envoy default. */
export function msOr(d: DurationLike, at: At, fallback: number): number {
  return durationMs(d, at) ?? fallback;
}

/**
 * An Envoy DataSource as text: a file (read now, as Envoy reads it at config load) or inline. `check` refuses
 * fields other than the three specifiers (onlyFields by default; TLS contexts refuse with their own code).
 */
export function dataSourceText(
  d: DataSource__Output | null | undefined,
  at: At,
  check: (typeName: string, message: object, allowed: ReadonlySet<string>, at: At) => void = onlyFields,
): string {
  if (!d) return at.invalid("is required");
  check("envoy.config.core.v3.DataSource", d, names("filename", "inlineBytes", "inlineString"), at);
  switch (d.specifier) {
    case "filename":
      try {
        return readFileSync(d.filename as string, "utf8");
      } catch (e) {
        return at
          .field("filename")
          .invalid(`cannot read ${d.filename}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      }
    case "inlineString":
      return d.inlineString as string;
    case "inlineBytes":
      return Buffer.from(d.inlineBytes as Uint8Array).toString("utf8");
    default:
      return at.invalid("filename, inline_bytes or inline_string is required");
  }
}
