// telemetry.istio.io (v1alpha1 and v1): Telemetry — tracing, access logging and metrics overrides for
// the mesh (root namespace, no selector), a namespace, or selected workloads. Fields and checks follow
// Istio's API reference and validation (ValidateTelemetry).
// Cross-field checks run only once an object's own fields parse (`ctx.issues` empty), so that one
// mistake (an unknown field, say) is not reported a second time as "this object is empty".
import { z } from "zod";
import { Codes } from "../codes.js";
import { defineKind } from "../kinds.js";
import { addIssue, duration, obj, percentValue } from "../schema.js";
import { checkAttachment, nonEmpty, policySelector, targetRef } from "./policy.js";

export const TELEMETRY_GROUP = "telemetry.istio.io";

export const WORKLOAD_MODES = ["CLIENT_AND_SERVER", "CLIENT", "SERVER"] as const;
const match = () => obj({ mode: z.enum(WORKLOAD_MODES).optional() });

const providerRef = () => obj({ name: nonEmpty("provider name") });

/** A span tag from a literal, an environment variable of the proxy, or a request header: exactly one. */
export const customTag = () =>
  obj({
    literal: obj({ value: nonEmpty("literal tag value") }).optional(),
    environment: obj({
      name: nonEmpty("environment variable name"),
      defaultValue: z.string().optional(),
    }).optional(),
    header: obj({ name: nonEmpty("header name"), defaultValue: z.string().optional() }).optional(),
  }).superRefine((t, ctx) => {
    if (ctx.issues.length > 0) return;
    const set = [t.literal, t.environment, t.header].filter((x) => x !== undefined).length;
    if (set !== 1)
      addIssue(
        ctx,
        Codes.ONE_OF,
        set === 0
          ? "a custom tag needs one of literal, environment or header"
          : "use only one of literal, environment or header",
        [],
        'for example `literal: {value: "canary"}` or `header: {name: x-user-id}`',
      );
  });
export type CustomTagSpec = z.output<ReturnType<typeof customTag>>;

const tracing = obj({
  match: match().optional(),
  providers: z.array(providerRef()).optional(),
  randomSamplingPercentage: percentValue().optional(),
  disableSpanReporting: z.boolean().optional(),
  customTags: z.record(z.string(), customTag()).optional(),
  useRequestIdForTraceSampling: z.boolean().optional(),
  enableIstioTags: z.boolean().optional(),
});

export const ISTIO_METRICS = [
  "ALL_METRICS",
  "REQUEST_COUNT",
  "REQUEST_DURATION",
  "REQUEST_SIZE",
  "RESPONSE_SIZE",
  "TCP_OPENED_CONNECTIONS",
  "TCP_CLOSED_CONNECTIONS",
  "TCP_SENT_BYTES",
  "TCP_RECEIVED_BYTES",
  "GRPC_REQUEST_MESSAGES",
  "GRPC_RESPONSE_MESSAGES",
] as const;

const metricSelector = obj({
  metric: z.enum(ISTIO_METRICS).optional(),
  customMetric: z.string().optional(),
  mode: z.enum(WORKLOAD_MODES).optional(),
}).superRefine((m, ctx) => {
  if (ctx.issues.length > 0) return;
  if (m.metric !== undefined && m.customMetric !== undefined)
    addIssue(ctx, Codes.ONE_OF, "use only one of metric and customMetric", ["customMetric"]);
  if (m.customMetric === "")
    addIssue(ctx, Codes.REQUIRED, "customMetric must not be empty", ["customMetric"]);
});

const tagOverride = obj({
  operation: z.enum(["UPSERT", "REMOVE"]).optional(),
  value: z.string().optional(),
}).superRefine((t, ctx) => {
  if (ctx.issues.length > 0) return;
  const op = t.operation ?? "UPSERT";
  if (op === "UPSERT" && !t.value)
    addIssue(
      ctx,
      Codes.REQUIRED,
      "an UPSERT tag override needs a value",
      [],
      'write a CEL expression, e.g. value: "request.host"',
    );
  if (op === "REMOVE" && t.value)
    addIssue(ctx, Codes.INVALID, "value is only used when operation is UPSERT", ["value"], "remove value");
});

const metrics = obj({
  providers: z.array(providerRef()).optional(),
  overrides: z
    .array(
      obj({
        match: metricSelector.optional(),
        disabled: z.boolean().optional(),
        tagOverrides: z.record(z.string(), tagOverride).optional(),
      }),
    )
    .optional(),
  reportingInterval: duration({ min: 1 }).optional(),
});

const accessLogging = obj({
  match: match().optional(),
  providers: z.array(providerRef()).optional(),
  disabled: z.boolean().optional(),
  filter: obj({ expression: nonEmpty("filter expression") }).optional(),
});

export const telemetrySpec = obj({
  selector: policySelector().optional(),
  targetRef: targetRef().optional(),
  targetRefs: z.array(targetRef()).optional(),
  tracing: z.array(tracing).optional(),
  metrics: z.array(metrics).optional(),
  accessLogging: z.array(accessLogging).optional(),
}).superRefine((s, ctx) => checkAttachment(s, ctx));
export type TelemetrySpec = z.output<typeof telemetrySpec>;

export const telemetryKinds = [
  defineKind({
    group: TELEMETRY_GROUP,
    kind: "Telemetry",
    versions: ["v1alpha1", "v1"],
    namespaced: true,
    spec: telemetrySpec,
    specOptional: true,
  }),
];
