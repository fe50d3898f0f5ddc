// monitoring.coreos.com/v1 ServiceMonitor (the Prometheus Operator's kind): which Services' endpoints
// Prometheus scrapes and how. Skein keeps them in the model to generate Prometheus scrape configuration.
// Durations are Prometheus durations (`30s`, `1m`, `1h30m`, `15d`), not Go durations: whole numbers,
// units y w d h m s ms, largest first — the pattern the Prometheus Operator's CRD enforces.
// Cross-field checks run only once an object's own fields parse (`ctx.issues` empty), so that one
// mistake (an unknown field, say) is not reported a second time as "this object is empty".
import { z } from "zod";
import { closest } from "../lib/suggest.js";
import { Codes } from "./codes.js";
import { defineKind } from "./kinds.js";
import { addIssue, labels, obj, port, regex } from "./schema.js";

export const MONITORING_GROUP = "monitoring.coreos.com";

const PROM_DURATION = /^(0|(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?)$/;
const PROM_UNIT_MS: Record<string, number> = {
  y: 365 * 86_400_000,
  w: 7 * 86_400_000,
  d: 86_400_000,
  h: 3_600_000,
  m: 60_000,
  s: 1000,
  ms: 1,
};

/** Milliseconds for a Prometheus duration, or undefined when it is not one. */
export function parsePrometheusDuration(text: string): number | undefined {
  if (text === "" || !PROM_DURATION.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(/(\d+)(ms|y|w|d|h|m|s)/g))
    ms += Number(m[1]) * (PROM_UNIT_MS[m[2] as string] as number);
  return ms;
}

export const promDuration = () =>
  z.string().transform((s, ctx) => {
    const ms = parsePrometheusDuration(s);
    if (ms === undefined) {
      addIssue(
        ctx,
        Codes.DURATION,
        `"${s}" is not a Prometheus duration`,
        [],
        'write whole numbers with units, largest first: "15s", "1m", "1m30s", "2h", "7d" (units ms, s, m, h, d, w, y)',
      );
      return z.NEVER;
    }
    return ms;
  });

// ── Label selector (Kubernetes metav1.LabelSelector) ────────────────────────────────────────────────

export const SELECTOR_OPERATORS = ["In", "NotIn", "Exists", "DoesNotExist"] as const;

const matchExpression = obj({
  key: z.string(),
  operator: z.enum(SELECTOR_OPERATORS),
  values: z.array(z.string()).optional(),
}).superRefine((e, ctx) => {
  if (ctx.issues.length > 0) return;
  if (e.key === "") addIssue(ctx, Codes.REQUIRED, "matchExpressions key must not be empty", ["key"]);
  const n = e.values?.length ?? 0;
  if ((e.operator === "In" || e.operator === "NotIn") && n === 0)
    addIssue(
      ctx,
      Codes.REQUIRED,
      `operator ${e.operator} needs values`,
      ["operator"],
      "list the label values to match",
    );
  if ((e.operator === "Exists" || e.operator === "DoesNotExist") && n > 0)
    addIssue(
      ctx,
      Codes.INVALID,
      `operator ${e.operator} takes no values`,
      ["values"],
      "remove values, or use In / NotIn to compare values",
    );
});

export const labelSelector = () =>
  obj({ matchLabels: labels().optional(), matchExpressions: z.array(matchExpression).optional() });

// ── Endpoint ────────────────────────────────────────────────────────────────────────────────────────

const secretKey = () => obj({ name: z.string(), key: z.string().min(1), optional: z.boolean().optional() });
const secretOrConfigMap = () =>
  obj({ secret: secretKey().optional(), configMap: secretKey().optional() }).superRefine((s, ctx) => {
    if (s.secret && s.configMap)
      addIssue(ctx, Codes.ONE_OF, "use only one of secret and configMap", ["configMap"]);
  });

const TLS_VERSIONS = ["TLS10", "TLS11", "TLS12", "TLS13"] as const;
const tlsConfig = obj({
  ca: secretOrConfigMap().optional(),
  cert: secretOrConfigMap().optional(),
  keySecret: secretKey().optional(),
  serverName: z.string().optional(),
  insecureSkipVerify: z.boolean().optional(),
  caFile: z.string().optional(),
  certFile: z.string().optional(),
  keyFile: z.string().optional(),
  minVersion: z.enum(TLS_VERSIONS).optional(),
  maxVersion: z.enum(TLS_VERSIONS).optional(),
});

export const RELABEL_ACTIONS = [
  "replace",
  "keep",
  "drop",
  "hashmod",
  "labelmap",
  "labeldrop",
  "labelkeep",
  "lowercase",
  "uppercase",
  "keepequal",
  "dropequal",
] as const;

/** Relabel actions are case-insensitive in the Prometheus Operator (`Replace` = `replace`). */
const relabelAction = () =>
  z.string().transform((a, ctx) => {
    const lower = a.toLowerCase();
    if (!(RELABEL_ACTIONS as readonly string[]).includes(lower)) {
      const guess = closest(a, RELABEL_ACTIONS);
      addIssue(
        ctx,
        Codes.ENUM,
        `${JSON.stringify(a)} is not a relabel action${guess ? `; did you mean "${guess}"?` : ""}`,
        [],
        `allowed values: ${RELABEL_ACTIONS.join(", ")}`,
      );
      return z.NEVER;
    }
    return lower;
  });

const relabelConfig = obj({
  sourceLabels: z.array(z.string()).optional(),
  separator: z.string().optional(),
  targetLabel: z.string().optional(),
  regex: regex().optional(),
  modulus: z.number().int().nonnegative().optional(),
  replacement: z.string().optional(),
  action: relabelAction().optional(),
}).superRefine((r, ctx) => {
  if (ctx.issues.length > 0) return;
  const action = r.action ?? "replace";
  const needsTarget = ["replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal"];
  if (needsTarget.includes(action) && !r.targetLabel)
    addIssue(
      ctx,
      Codes.REQUIRED,
      `relabel action ${action} needs targetLabel`,
      [],
      "name the label to write",
    );
  if (action === "hashmod" && !r.modulus)
    addIssue(ctx, Codes.REQUIRED, "relabel action hashmod needs a modulus above 0", []);
  if ((action === "keep" || action === "drop" || action === "hashmod") && (r.sourceLabels?.length ?? 0) === 0)
    addIssue(
      ctx,
      Codes.REQUIRED,
      `relabel action ${action} needs sourceLabels`,
      [],
      "list the labels to read",
    );
});
export type RelabelConfigSpec = z.output<typeof relabelConfig>;

/** Endpoint fields Skein accepts but does not carry into scrape configuration yet. */
export const ENDPOINT_FIELDS_WITHOUT_EFFECT = [
  "bearerTokenFile",
  "authorization",
  "basicAuth",
  "oauth2",
  "trackTimestampsStaleness",
  "proxyUrl",
  "noProxy",
  "proxyFromEnvironment",
  "proxyConnectHeader",
  "filterRunning",
] as const;

const accepted = (names: readonly string[]) =>
  Object.fromEntries(names.map((n) => [n, z.unknown().optional()])) as Record<
    string,
    z.ZodOptional<z.ZodUnknown>
  >;

const endpoint = obj({
  port: z.string().min(1).optional(),
  targetPort: z.union([port(), z.string().min(1)]).optional(),
  path: z
    .string()
    .superRefine((p, ctx) => {
      if (!p.startsWith("/"))
        addIssue(ctx, Codes.INVALID, `metrics path "${p}" must start with "/"`, [], `write "/${p}"`);
    })
    .optional(),
  scheme: z
    .string()
    .transform((s, ctx) => {
      const lower = s.toLowerCase();
      if (lower !== "http" && lower !== "https") {
        addIssue(
          ctx,
          Codes.ENUM,
          `${JSON.stringify(s)} is not a scrape scheme`,
          [],
          "allowed values: http, https",
        );
        return z.NEVER;
      }
      return lower as "http" | "https";
    })
    .optional(),
  params: z.record(z.string(), z.array(z.string())).optional(),
  interval: promDuration().optional(),
  scrapeTimeout: promDuration().optional(),
  tlsConfig: tlsConfig.optional(),
  bearerTokenSecret: secretKey().optional(),
  honorLabels: z.boolean().optional(),
  honorTimestamps: z.boolean().optional(),
  relabelings: z.array(relabelConfig).optional(),
  metricRelabelings: z.array(relabelConfig).optional(),
  followRedirects: z.boolean().optional(),
  enableHttp2: z.boolean().optional(),
  ...accepted(ENDPOINT_FIELDS_WITHOUT_EFFECT),
}).superRefine((e, ctx) => {
  if (ctx.issues.length > 0) return;
  if (e.interval !== undefined && e.scrapeTimeout !== undefined && e.scrapeTimeout > e.interval)
    addIssue(
      ctx,
      Codes.RANGE,
      "scrapeTimeout is longer than interval; Prometheus rejects a scrape timeout above the scrape interval",
      ["scrapeTimeout"],
      "make scrapeTimeout at most the interval",
    );
});
export type ServiceMonitorEndpointSpec = z.output<typeof endpoint>;

/** ServiceMonitor spec fields Skein accepts but does not carry into scrape configuration yet. */
export const SPEC_FIELDS_WITHOUT_EFFECT = [
  "selectorMechanism",
  "scrapeProtocols",
  "fallbackScrapeProtocol",
  "labelLimit",
  "labelNameLengthLimit",
  "labelValueLengthLimit",
  "keepDroppedTargets",
  "attachMetadata",
  "scrapeClass",
  "bodySizeLimit",
  "scrapeClassicHistograms",
  "nativeHistogramBucketLimit",
  "nativeHistogramMinBucketFactor",
  "convertClassicHistogramsToNHCB",
] as const;

export const serviceMonitorSpec = obj({
  jobLabel: z.string().optional(),
  targetLabels: z.array(z.string()).optional(),
  podTargetLabels: z.array(z.string()).optional(),
  endpoints: z.array(endpoint).optional(),
  selector: labelSelector(),
  namespaceSelector: obj({
    any: z.boolean().optional(),
    matchNames: z.array(z.string().min(1)).optional(),
  }).optional(),
  sampleLimit: z.number().int().nonnegative().optional(),
  targetLimit: z.number().int().nonnegative().optional(),
  ...accepted(SPEC_FIELDS_WITHOUT_EFFECT),
});
export type ServiceMonitorSpec = z.output<typeof serviceMonitorSpec>;

export const monitoringKinds = [
  defineKind({
    group: MONITORING_GROUP,
    kind: "ServiceMonitor",
    versions: ["v1"],
    namespaced: true,
    spec: serviceMonitorSpec,
  }),
];
