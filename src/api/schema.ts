// Building blocks for resource schemas (zod) and the bridge from zod issues to Skein diagnostics with
// stable codes, file:line:column and "did you mean" suggestions.
import { z } from "zod";
import { type Diagnostic, formatPath } from "../lib/diagnostics.js";
import { closest } from "../lib/suggest.js";
import { Codes } from "./codes.js";
import type { PathSegment, PositionIndex } from "./yaml.js";

const KNOWN_MARK = "\u0000known:";

/**
 * A strict object: unknown fields are errors. The known field names ride along in the issue message
 * so that the diagnostic can suggest the closest one.
 */
export function obj<S extends z.ZodRawShape>(shape: S) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => (iss.code === "unrecognized_keys" ? `${KNOWN_MARK}${JSON.stringify(known)}` : undefined),
  });
}

/** Adds an issue that maps to a specific Skein code. */
export function addIssue(
  ctx: { addIssue: (i: z.core.$ZodRawIssue) => void },
  code: string,
  message: string,
  path: PathSegment[] = [],
  hint?: string,
): void {
  ctx.addIssue({ code: "custom", message, path, params: { skein: code, hint }, input: undefined });
}

// ── Durations ────────────────────────────────────────────────────────────────────────────────────────
// Istio accepts Go/protobuf duration strings: "10s", "1.5s", "100ms", "1m30s", "2h".
const DURATION_PART = /(\d+(?:\.\d+)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Milliseconds for a duration string, or undefined when it is not one. */
export function parseDuration(text: string): number | undefined {
  if (text === "0") return 0;
  if (text.length === 0) return undefined;
  let ms = 0;
  DURATION_PART.lastIndex = 0;
  let at = 0;
  while (at < text.length) {
    DURATION_PART.lastIndex = at;
    const m = DURATION_PART.exec(text);
    if (!m) return undefined;
    ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    at = DURATION_PART.lastIndex;
  }
  return ms;
}

/** A duration string; parses to milliseconds. `min` in ms (Istio requires ≥ 1ms for most fields). */
export function duration(opts: { min?: number } = {}) {
  return z.string().transform((s, ctx) => {
    const ms = parseDuration(s);
    if (ms === undefined) {
      addIssue(
        ctx,
        Codes.DURATION,
        `"${s}" is not a duration`,
        [],
        'write a number with a unit: "10s", "250ms", "1m30s" (units ns, us, ms, s, m, h)',
      );
      return z.NEVER;
    }
    if (opts.min !== undefined && ms < opts.min) {
      addIssue(ctx, Codes.DURATION, `duration "${s}" is below the minimum of ${opts.min}ms`);
      return z.NEVER;
    }
    return ms;
  });
}

/** A percentage in [0, 100] (Istio's `Percent.value`, a double). */
export function percentValue() {
  return z.number().superRefine((v, ctx) => {
    if (!(v >= 0 && v <= 100)) addIssue(ctx, Codes.PERCENTAGE, `percentage ${v} is outside 0–100`);
  });
}

/** Istio's `Percent` message: `{ value: 12.5 }`. */
export const percent = () => obj({ value: percentValue() });

export const port = () =>
  z
    .number()
    .int()
    .superRefine((v, ctx) => {
      if (v < 1 || v > 65535) addIssue(ctx, Codes.RANGE, `port ${v} is outside 1–65535`);
    });

export const labels = () => z.record(z.string(), z.string());

/** A hostname, optionally with a leading `*.` wildcard or `*` alone (Istio's host syntax). */
export function hostname() {
  return z.string().superRefine((h, ctx) => {
    if (!isValidHost(h))
      addIssue(
        ctx,
        Codes.HOST,
        `"${h}" is not a valid host`,
        [],
        "use a DNS name (order-service, order-service.production.svc.cluster.local) or *.example.com",
      );
  });
}

const LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;
export function isValidHost(h: string): boolean {
  if (h === "*") return true;
  const body = h.startsWith("*.") ? h.slice(2) : h;
  if (body.length === 0 || body.length > 253) return false;
  return body.split(".").every((l) => LABEL.test(l));
}

/** A regular expression (RE2 syntax in Istio; checked here with JavaScript's engine). */
export function regex() {
  return z.string().superRefine((r, ctx) => {
    try {
      new RegExp(r, "u");
    } catch (err) {
      addIssue(ctx, Codes.REGEX, `invalid regular expression: ${(err as Error).message}`);
    }
  });
}

/** Kubernetes object metadata (the fields that matter to a mesh; server-set ones accepted). */
export const metadata = () =>
  obj({
    name: z.string().superRefine((n, ctx) => {
      if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(n) || n.length > 253)
        addIssue(
          ctx,
          Codes.NAME,
          `"${n}" is not a valid name`,
          [],
          "use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit",
        );
    }),
    namespace: z
      .string()
      .superRefine((n, ctx) => {
        if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(n))
          addIssue(
            ctx,
            Codes.NAME,
            `"${n}" is not a valid namespace`,
            [],
            "a DNS label: lower-case, digits, '-'",
          );
      })
      .optional(),
    labels: labels().optional(),
    annotations: labels().optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    generation: z.number().optional(),
    creationTimestamp: z.string().optional(),
  });

// ── zod issues → diagnostics ─────────────────────────────────────────────────────────────────────────

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v} ${String(v)}`;
}

export interface IssueContext {
  positions: PositionIndex;
  /** Path of the validated value inside its document (prefix for issue paths). */
  base: PathSegment[];
  resource?: string;
}

export function issuesToDiagnostics(issues: readonly z.core.$ZodIssue[], ctx: IssueContext): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const iss of issues) collect(iss, ctx, out);
  return out;
}

function collect(iss: z.core.$ZodIssue, ctx: IssueContext, out: Diagnostic[]): void {
  const path = [...ctx.base, ...(iss.path as PathSegment[])];
  const at = (p: PathSegment[], key = false) => {
    const pos = key ? ctx.positions.keyOf(p) : ctx.positions.value(p);
    return { file: pos?.file ?? ctx.positions.file, line: pos?.line, column: pos?.column };
  };
  const base = { severity: "error" as const, resource: ctx.resource };
  switch (iss.code) {
    case "unrecognized_keys": {
      const known: string[] = iss.message.startsWith(KNOWN_MARK)
        ? JSON.parse(iss.message.slice(KNOWN_MARK.length))
        : [];
      for (const key of iss.keys) {
        const p = [...path, key];
        const guess = closest(key, known);
        out.push({
          ...base,
          code: Codes.UNKNOWN_FIELD,
          message: `unknown field "${key}"${guess ? `; did you mean "${guess}"?` : ""}`,
          hint: known.length ? `fields allowed here: ${known.join(", ")}` : undefined,
          path: formatPath(p),
          ...at(p, true),
        });
      }
      return;
    }
    case "invalid_type": {
      const missing = iss.input === undefined;
      out.push({
        ...base,
        code: missing ? Codes.REQUIRED : Codes.TYPE,
        message: missing
          ? `required field "${String(path[path.length - 1] ?? "")}" is missing`
          : `expected ${iss.expected === "object" ? "a mapping" : iss.expected === "array" ? "a list" : iss.expected}, got ${describe(iss.input)}`,
        path: formatPath(path),
        // A missing field is reported at the key of the mapping that lacks it.
        ...at(missing ? path.slice(0, -1) : path, missing),
      });
      return;
    }
    case "invalid_value": {
      const allowed = iss.values.map(String);
      const got = String(iss.input);
      const guess = closest(got, allowed);
      out.push({
        ...base,
        code: Codes.ENUM,
        message: `${JSON.stringify(iss.input)} is not allowed here${guess ? `; did you mean "${guess}"?` : ""}`,
        hint: `allowed values: ${allowed.join(", ")}`,
        path: formatPath(path),
        ...at(path),
      });
      return;
    }
    case "too_big":
    case "too_small": {
      out.push({
        ...base,
        code: Codes.RANGE,
        message: `${describe(iss.input)} is ${iss.code === "too_big" ? "too large" : "too small"}: ${iss.message.replace(/^Too (big|small): /, "")}`,
        path: formatPath(path),
        ...at(path),
      });
      return;
    }
    case "custom": {
      const params = (iss.params ?? {}) as { skein?: string; hint?: string };
      out.push({
        ...base,
        code: params.skein ?? Codes.INVALID,
        message: iss.message,
        hint: params.hint,
        path: formatPath(path),
        ...at(path),
      });
      return;
    }
    case "invalid_union": {
      // Report the branch that got furthest (the most specific explanation).
      const branches = iss.errors;
      if (branches.length > 0) {
        const best = branches.reduce((a, b) => (depthOf(b) > depthOf(a) ? b : a));
        if (best.length > 0 && depthOf(best) > 0) {
          for (const sub of best)
            collect({ ...sub, path: [...iss.path, ...sub.path] } as z.core.$ZodIssue, ctx, out);
          return;
        }
      }
      out.push({
        ...base,
        code: Codes.TYPE,
        message: `${describe(iss.input)} matches none of the accepted forms`,
        path: formatPath(path),
        ...at(path),
      });
      return;
    }
    default: {
      out.push({ ...base, code: Codes.INVALID, message: iss.message, path: formatPath(path), ...at(path) });
    }
  }
}

function depthOf(issues: readonly z.core.$ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length + (i.code === "invalid_type" ? 0 : 1)));
}

/** Validates `value` against `schema`; returns the typed value or the diagnostics. */
export function validate<T>(
  schema: z.ZodType<T>,
  value: unknown,
  ctx: IssueContext,
): { ok: true; value: T } | { ok: false; diagnostics: Diagnostic[] } {
  const r = schema.safeParse(value, { reportInput: true });
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, diagnostics: issuesToDiagnostics(r.error.issues, ctx) };
}
