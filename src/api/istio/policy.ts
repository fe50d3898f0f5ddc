// Schema pieces shared by Istio's policy kinds (security.istio.io, telemetry.istio.io): the workload
// selector, targetRef(s), and the rules for the strings of an authorization rule (principals, paths, IP
// blocks, ports, condition keys). The string rules follow Istio's authorization matching: a value is an
// exact match ("abc"), a prefix ("abc*"), a suffix ("*abc") or presence ("*"); Istio compares any other
// `*` literally, so such a value would silently never match — Skein rejects it instead.
import { isIP } from "node:net";
import { z } from "zod";
import { closest } from "../../lib/suggest.js";
import { Codes } from "../codes.js";
import { addIssue, labels, obj } from "../schema.js";

/** A problem with one string value: its code, what is wrong, and what to write instead. */
export interface Problem {
  code: string;
  message: string;
  hint?: string;
}

type IssueSink = Parameters<typeof addIssue>[0];

function report(ctx: IssueSink, p: Problem | undefined, path: (string | number)[] = []): void {
  if (p) addIssue(ctx, p.code, p.message, path, p.hint);
}

/** A string that must not be empty (Istio rejects empty values in these lists). */
export const nonEmpty = (what = "this value") =>
  z.string().superRefine((s, ctx) => {
    if (s === "") addIssue(ctx, Codes.REQUIRED, `${what} must not be empty`);
  });

// ── Attachment: selector and targetRef(s) ───────────────────────────────────────────────────────────

export const policySelector = () =>
  obj({ matchLabels: labels().optional() }).superRefine((s, ctx) => {
    for (const [k, v] of Object.entries(s.matchLabels ?? {})) {
      if (k === "")
        addIssue(ctx, Codes.INVALID, "a selector label key must not be empty", ["matchLabels", k]);
      else if (k.includes("*") || v.includes("*"))
        addIssue(
          ctx,
          Codes.INVALID,
          `selector label "${k}: ${v}" contains "*"; selectors match label values exactly`,
          ["matchLabels", k],
          "write the exact label value; to apply the policy to every workload in the namespace, remove the selector",
        );
    }
  });
export type PolicySelectorSpec = z.output<ReturnType<typeof policySelector>>;

/** The kinds Istio lets a policy target (group "" is the core group). */
const TARGET_KINDS: readonly { group: string; kind: string }[] = [
  { group: "", kind: "Service" },
  { group: "networking.istio.io", kind: "ServiceEntry" },
  { group: "gateway.networking.k8s.io", kind: "Gateway" },
];

export const targetRef = () =>
  obj({
    group: z.string().optional(),
    kind: z.string(),
    name: z.string(),
    namespace: z.string().optional(),
  }).superRefine((t, ctx) => {
    if (t.name === "") addIssue(ctx, Codes.REQUIRED, "targetRef name must not be empty", ["name"]);
    if (t.namespace !== undefined && t.namespace !== "")
      addIssue(
        ctx,
        Codes.INVALID,
        "targetRef namespace must not be set: a policy can only target resources in its own namespace",
        ["namespace"],
        "remove namespace and put the policy in the namespace of the resource it targets",
      );
    const group = t.group === "core" ? "" : (t.group ?? "");
    if (!TARGET_KINDS.some((k) => k.kind === t.kind && k.group === group)) {
      const byKind = TARGET_KINDS.find((k) => k.kind === t.kind);
      const guess = closest(
        t.kind,
        TARGET_KINDS.map((k) => k.kind),
      );
      addIssue(
        ctx,
        Codes.ENUM,
        byKind
          ? `${t.kind} belongs to group "${byKind.group}", not "${group}"`
          : `a policy cannot target kind "${t.kind}"${guess ? `; did you mean "${guess}"?` : ""}`,
        byKind ? ["group"] : ["kind"],
        `allowed targets: ${TARGET_KINDS.map((k) => (k.group ? `${k.group}/${k.kind}` : k.kind)).join(", ")}`,
      );
    }
  });
export type TargetRefSpec = z.output<ReturnType<typeof targetRef>>;

/** Istio allows at most one of selector, targetRef and targetRefs. */
export function checkAttachment(
  spec: { selector?: unknown; targetRef?: unknown; targetRefs?: readonly unknown[] },
  ctx: IssueSink,
): void {
  const set = (["selector", "targetRef", "targetRefs"] as const).filter((f) =>
    f === "targetRefs" ? (spec.targetRefs?.length ?? 0) > 0 : spec[f] !== undefined,
  );
  if (set.length > 1)
    addIssue(
      ctx,
      Codes.ONE_OF,
      `use only one of ${set.join(" and ")}`,
      [set[1] as string],
      "a policy applies either to the workloads a selector picks or to the resources targetRefs name",
    );
}

// ── Authorization strings ───────────────────────────────────────────────────────────────────────────

type WildcardForm = "exact" | "prefix" | "suffix" | "presence";

/** How Istio reads a value: exact, prefix (`abc*`), suffix (`*abc`), presence (`*`); undefined when invalid. */
export function wildcardForm(v: string): WildcardForm | undefined {
  if (v === "*") return "presence";
  const stars = v.split("*").length - 1;
  if (stars === 0) return "exact";
  if (stars === 1 && v.endsWith("*")) return "prefix";
  if (stars === 1 && v.startsWith("*")) return "suffix";
  return undefined;
}

function wildcardProblem(v: string, code: string, examples: string): Problem | undefined {
  if (wildcardForm(v) !== undefined) return undefined;
  return {
    code,
    message: `"${v}" uses "*" where Istio does not support it: "*" may only be the whole value, a prefix ("abc*") or a suffix ("*abc"), and any other "*" is compared literally, so this would never match`,
    hint: `write ${examples}`,
  };
}

/** A value of a plain authorization field (hosts, methods, namespaces, condition values). */
export function plainValueProblem(v: string, what: string): Problem | undefined {
  if (v === "")
    return {
      code: Codes.REQUIRED,
      message: `empty ${what} is not allowed`,
      hint: 'remove it, or write "*" to match any non-empty value',
    };
  return wildcardProblem(v, Codes.INVALID, '"*", a prefix such as "abc*" or a suffix such as "*abc"');
}

export function namespaceValueProblem(v: string): Problem | undefined {
  const p = plainValueProblem(v, "namespace");
  if (p) return p;
  const literal = v.replace("*", "");
  if (literal !== "" && !/^[a-z0-9-]+$/.test(literal))
    return {
      code: Codes.NAME,
      message: `"${v}" is not a namespace name`,
      hint: "namespaces are DNS labels: lower-case letters, digits and '-'",
    };
  return undefined;
}

const PRINCIPAL_FORM = "<trust-domain>/ns/<namespace>/sa/<service-account>";
const PRINCIPAL_EXAMPLE = "cluster.local/ns/production/sa/api-gateway";
const PRINCIPAL_SEGMENTS = 5; // trust domain, "ns", namespace, "sa", service account
const FIXED: Record<number, string> = { 1: "ns", 3: "sa" };

/** Does segment `seg` fit structure position `i` (`partial`: only part of the segment is written)? */
function segmentFits(seg: string, i: number, partial: "prefix" | "suffix" | "whole"): boolean {
  const fixed = FIXED[i];
  if (fixed !== undefined) {
    if (partial === "prefix") return fixed.startsWith(seg);
    if (partial === "suffix") return fixed.endsWith(seg);
    return seg === fixed;
  }
  return partial !== "whole" || seg.length > 0;
}

/** Whether `literal` (the written part of an exact, prefix or suffix principal) fits the SPIFFE form. */
function principalShapeFits(literal: string, form: "exact" | "prefix" | "suffix"): boolean {
  const segs = literal.split("/");
  if (segs.length > PRINCIPAL_SEGMENTS) return false;
  if (form === "exact")
    return segs.length === PRINCIPAL_SEGMENTS && segs.every((s, i) => segmentFits(s, i, "whole"));
  if (form === "prefix") {
    // Every segment is whole except the last, which the wildcard continues.
    return segs.every((s, i) => segmentFits(s, i, i === segs.length - 1 ? "prefix" : "whole"));
  }
  // Suffix: aligned from the end; the first segment is continued (to the left) by the wildcard.
  const offset = PRINCIPAL_SEGMENTS - segs.length;
  return segs.every((s, j) => segmentFits(s, offset + j, j === 0 ? "suffix" : "whole"));
}

/** A correction for common ways of miswriting a principal, or undefined. */
function principalSuggestion(v: string): string | undefined {
  if (v.length > 512) return undefined; // the patterns backtrack; real principals are short
  const patterns: [RegExp, (m: RegExpMatchArray) => string][] = [
    [/^spiffe:\/\/(.+)$/, (m) => principalSuggestion(m[1] as string) ?? (m[1] as string)],
    [/^system:serviceaccount:([^:/]+):([^:/]+)$/, (m) => `cluster.local/ns/${m[1]}/sa/${m[2]}`],
    [/^\/?ns\/([^/]+)\/sa\/([^/]+)$/, (m) => `cluster.local/ns/${m[1]}/sa/${m[2]}`],
    [/^([^/]+\.[^/]+)\/([^/]+)\/sa\/([^/]+)$/, (m) => `${m[1]}/ns/${m[2]}/sa/${m[3]}`],
    [/^([^/]+)\/ns\/([^/]+)\/([^/]+)$/, (m) => `${m[1]}/ns/${m[2]}/sa/${m[3]}`],
    [/^([a-z0-9-]+)\/([a-z0-9-]+)$/, (m) => `cluster.local/ns/${m[1]}/sa/${m[2]}`],
  ];
  for (const [re, fix] of patterns) {
    const m = v.match(re);
    if (m) {
      const s = fix(m);
      if (principalShapeFits(s, "exact")) return s;
    }
  }
  return undefined;
}

/** A peer principal: `*` or `<trust-domain>/ns/<namespace>/sa/<service-account>`, with `*` as prefix/suffix. */
export function principalProblem(v: string): Problem | undefined {
  const formHint = (s?: string) =>
    s
      ? `write "${s}" (the form is "${PRINCIPAL_FORM}")`
      : `write "${PRINCIPAL_FORM}", for example "${PRINCIPAL_EXAMPLE}"`;
  if (v === "") return { code: Codes.PRINCIPAL, message: "empty principal is not allowed", hint: formHint() };
  if (v.startsWith("spiffe://"))
    return {
      code: Codes.PRINCIPAL,
      message: `principal "${v}" starts with spiffe://, which Istio adds itself, so it would never match`,
      hint: formHint(principalSuggestion(v)),
    };
  const form = wildcardForm(v);
  if (form === undefined)
    return {
      code: Codes.PRINCIPAL,
      message: `principal "${v}" has "*" in the middle; Istio supports "*" only as the whole value, a prefix or a suffix, and would compare this one literally`,
      hint: 'write "cluster.local/ns/production/sa/*" (any service account of a namespace), "*/sa/api-gateway" or "*"',
    };
  if (form === "presence") return undefined;
  const literal = form === "prefix" ? v.slice(0, -1) : form === "suffix" ? v.slice(1) : v;
  if (principalShapeFits(literal, form)) return undefined;
  return {
    code: Codes.PRINCIPAL,
    message: `"${v}" is not a workload principal: peer principals have the form "${PRINCIPAL_FORM}"`,
    hint: formHint(form === "exact" ? principalSuggestion(v) : undefined),
  };
}

/** The namespace a principal names, when it names one completely (for analysis). */
export function principalNamespace(v: string): string | undefined {
  const form = wildcardForm(v);
  if (form === undefined || form === "presence") return undefined;
  const literal = form === "prefix" ? v.slice(0, -1) : form === "suffix" ? v.slice(1) : v;
  const segs = literal.split("/");
  // Index of the namespace segment within `segs`, and whether that segment is complete.
  const at = form === "suffix" ? 2 - (PRINCIPAL_SEGMENTS - segs.length) : 2;
  const complete = form === "exact" || (form === "prefix" ? at < segs.length - 1 : at > 0);
  const ns = segs[at];
  return at >= 0 && complete && ns ? ns : undefined;
}

/** A request (JWT) principal: `<issuer>/<subject>`, with the usual `*` forms. */
export function requestPrincipalProblem(v: string): Problem | undefined {
  if (v === "")
    return {
      code: Codes.PRINCIPAL,
      message: "empty request principal is not allowed",
      hint: 'write "<issuer>/<subject>" or "*"',
    };
  const form = wildcardForm(v);
  if (form === undefined)
    return wildcardProblem(v, Codes.PRINCIPAL, '"*", "https://accounts.example.com/*" or "*/admin"');
  if (form === "exact" && !v.includes("/"))
    return {
      code: Codes.PRINCIPAL,
      message: `request principal "${v}" is not "<issuer>/<subject>" and would never match`,
      hint: 'write the JWT issuer and subject joined by "/", for example "https://accounts.example.com/user-1"',
    };
  return undefined;
}

export function ipBlockProblem(v: string): Problem | undefined {
  const bad = (why: string): Problem => ({
    code: Codes.IP_BLOCK,
    message: `"${v}" is not an IP address or CIDR block: ${why}`,
    hint: 'write an address such as "10.1.2.3" or "2001:db8::1", or a block such as "10.1.0.0/16"',
  });
  if (v === "") return bad("it is empty");
  const parts = v.split("/");
  if (parts.length > 2) return bad("it has more than one '/'");
  const [addr = "", len] = parts;
  const family = isIP(addr);
  if (family === 0) return bad(`"${addr}" is not an IPv4 or IPv6 address`);
  if (len !== undefined) {
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(len) || Number(len) > max) return bad(`the prefix length must be 0–${max}`);
  }
  return undefined;
}

/** Istio writes ports in authorization rules as strings ("8080"); the model keeps numbers. */
export const portString = () =>
  z.unknown().transform((v, ctx) => {
    if (typeof v === "number") {
      addIssue(
        ctx,
        Codes.TYPE,
        `port ${v} must be a string here`,
        [],
        `Istio's authorization ports are strings: write "${v}"`,
      );
      return z.NEVER;
    }
    if (typeof v !== "string" || !/^\d+$/.test(v)) {
      addIssue(
        ctx,
        Codes.TYPE,
        `${typeof v === "string" ? JSON.stringify(v) : String(v)} is not a port number`,
        [],
        'write a port number as a string, for example "8080"',
      );
      return z.NEVER;
    }
    const n = Number(v);
    if (n < 1 || n > 65535) {
      addIssue(ctx, Codes.RANGE, `port ${v} is outside 1–65535`);
      return z.NEVER;
    }
    return n;
  });

export function portValueProblem(v: string): Problem | undefined {
  if (!/^\d+$/.test(v))
    return { code: Codes.TYPE, message: `"${v}" is not a port number`, hint: 'write "8080"' };
  const n = Number(v);
  return n < 1 || n > 65535 ? { code: Codes.RANGE, message: `port ${v} is outside 1–65535` } : undefined;
}

/** A path of an operation: exact, `*` prefix/suffix, or an Envoy URI template with `{*}` and `{**}`. */
export function pathProblem(v: string): Problem | undefined {
  const code = Codes.PATH_PATTERN;
  if (v === "")
    return { code, message: "empty path is not allowed", hint: 'remove it, or write "*" for any path' };
  if (v.includes("{*}") || v.includes("{**}")) {
    const templateHint = 'for example "/api/{*}/orders" (one segment) or "/static/{**}" (any number, last)';
    if (!v.startsWith("/"))
      return { code, message: `path template "${v}" must start with "/"`, hint: templateHint };
    let seenAny = false;
    for (const seg of v.replace(/^\/+|\/+$/g, "").split("/")) {
      if (seg === "{*}" || seg === "{**}") {
        if (seenAny)
          return {
            code,
            message: `in path template "${v}", {**} must be the last operator`,
            hint: templateHint,
          };
        seenAny = seg === "{**}";
        continue;
      }
      if (/[*{}]/.test(seg))
        return {
          code,
          message: `in path template "${v}", segment "${seg}" mixes "{*}", "{**}", "*", "{" or "}" with other text; an operator must be a whole path segment and no other "*" is allowed in a template`,
          hint: templateHint,
        };
    }
    return undefined;
  }
  if (/[{}]/.test(v))
    return {
      code,
      message: `path "${v}" contains "{" or "}" but is not a supported template; Istio would compare it literally`,
      hint: 'use "{*}" to match one path segment or "{**}" for any number of segments, for example "/api/{*}/orders"',
    };
  const form = wildcardForm(v);
  if (form === undefined)
    return {
      code,
      message: `path "${v}" uses "*" where Istio does not support it: "*" may only be the whole path, a prefix ("/api/*") or a suffix ("*.json"); any other "*" is compared literally`,
      hint: 'for a wildcard inside the path use a template, for example "/api/{*}/orders" or "/api/{**}"',
    };
  if ((form === "exact" || form === "prefix") && !v.startsWith("/"))
    return {
      code,
      message: `path "${v}" does not start with "/", so it would never match a request path`,
      hint: `write "/${v}"`,
    };
  return undefined;
}

// ── Condition keys (rules[].when[].key) ─────────────────────────────────────────────────────────────

/** What the values of a condition are checked as. */
export type ConditionKind = "ip" | "port" | "principal" | "plain";

const PLAIN_KEYS: Record<string, ConditionKind> = {
  "source.ip": "ip",
  "remote.ip": "ip",
  "source.namespace": "plain",
  "source.principal": "principal",
  "request.auth.principal": "plain",
  "request.auth.audiences": "plain",
  "request.auth.presenter": "plain",
  "destination.ip": "ip",
  "destination.port": "port",
  "connection.sni": "plain",
};
/** Keys written with a bracketed name: `request.headers[User-Agent]`. */
const MAP_KEYS = ["request.headers", "request.auth.claims"];
const EXPERIMENTAL_PREFIX = "experimental.envoy.filters.";
const RETIRED_KEYS: Record<string, string> = {
  "destination.namespace": "it is replaced by the policy's own namespace (metadata.namespace)",
  "destination.labels": "it is replaced by the workload selector (spec.selector.matchLabels)",
  "destination.name": "it was only supported by the old v1alpha1 RBAC API",
  "destination.user": "it was only supported by the old v1alpha1 RBAC API",
};

export const CONDITION_KEY_LIST = [
  ...Object.keys(PLAIN_KEYS),
  "request.headers[<name>]",
  "request.auth.claims[<claim>]",
  "experimental.envoy.filters.<filter>[<key>]",
];

function mapKeyOk(key: string): boolean {
  const open = key.indexOf("[");
  return key.endsWith("]") && open > 0 && open < key.length - 2;
}

/** The kind of a known condition key, or the problem with an unknown or malformed one. */
export function conditionKey(key: string): { kind: ConditionKind } | { problem: Problem } {
  const code = Codes.CONDITION_KEY;
  if (key === "") return { problem: { code: Codes.REQUIRED, message: "condition key must not be empty" } };
  const plain = PLAIN_KEYS[key];
  if (plain) return { kind: plain };
  const base = key.includes("[") ? key.slice(0, key.indexOf("[")) : key;
  const retired = RETIRED_KEYS[base];
  if (retired)
    return { problem: { code, message: `condition key "${key}" is no longer supported: ${retired}` } };
  if (MAP_KEYS.includes(base) || key.startsWith(EXPERIMENTAL_PREFIX)) {
    if (mapKeyOk(key)) return { kind: "plain" };
    return {
      problem: {
        code,
        message: `condition key "${key}" needs a name in brackets`,
        hint: `write ${base === "request.auth.claims" ? '"request.auth.claims[iss]"' : base === "request.headers" ? '"request.headers[User-Agent]"' : `"${base}[<key>]"`}`,
      },
    };
  }
  const guess = closest(base, [...Object.keys(PLAIN_KEYS), ...MAP_KEYS]);
  const suggestion =
    guess && MAP_KEYS.includes(guess) ? `${guess}${key.slice(base.length) || "[<name>]"}` : guess;
  return {
    problem: {
      code,
      message: `unknown condition key "${key}"${suggestion ? `; did you mean "${suggestion}"?` : ""}`,
      hint: `supported keys: ${CONDITION_KEY_LIST.join(", ")}`,
    },
  };
}

/** The problem with one value of a condition whose key is of `kind`. */
export function conditionValueProblem(kind: ConditionKind, v: string): Problem | undefined {
  switch (kind) {
    case "ip":
      return ipBlockProblem(v);
    case "port":
      return portValueProblem(v);
    case "principal":
      return principalProblem(v);
    default:
      return plainValueProblem(v, "condition value");
  }
}

/** A list of strings each checked by `check`; problems point at the offending item. */
export function checkedStrings(check: (v: string) => Problem | undefined) {
  return z.array(
    z.string().superRefine((v, ctx) => {
      report(ctx, check(v));
    }),
  );
}

export { report as reportProblem };
