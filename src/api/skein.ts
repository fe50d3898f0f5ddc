// Skein's own kinds: `Service` (a name, a label selector and ports, like a Kubernetes Service) and `Workload`
// (one running instance with its identity, like a pod or Istio WorkloadEntry), for running without
// Kubernetes; and `RateLimit` (a local token bucket on the requests a workload serves), since Istio has no
// first-class API for it. Group skein.dev, version v1alpha1.
import { z } from "zod";
import { Codes } from "./codes.js";
import { presenceOrStringMatch, stringMatch } from "./istio/common.js";
import { defineKind } from "./kinds.js";
import { addIssue, duration, labels, obj, port } from "./schema.js";

export const SKEIN_GROUP = "skein.dev";

export const PROTOCOLS = ["HTTP", "HTTP2", "GRPC", "TCP", "TLS", "HTTPS"] as const;

/** Istio's protocol selection by port name prefix (`http-web`, `grpc`, `tcp-db`, …). */
export function protocolFromPortName(name: string): (typeof PROTOCOLS)[number] | undefined {
  const prefix = name.toLowerCase().split("-")[0] ?? "";
  const byPrefix: Record<string, (typeof PROTOCOLS)[number]> = {
    http: "HTTP",
    http2: "HTTP2",
    grpc: "GRPC",
    "grpc-web": "HTTP2",
    tcp: "TCP",
    tls: "TLS",
    https: "HTTPS",
  };
  return byPrefix[prefix];
}

const servicePort = obj({
  name: z.string().min(1),
  port: port(),
  /** Istio protocol; when absent, taken from the name's prefix (http-, grpc-, tcp-…), else HTTP. */
  protocol: z.enum(PROTOCOLS).optional(),
  targetPort: port().optional(),
});

export const serviceSpec = obj({
  selector: labels().optional(),
  ports: z.array(servicePort).min(1),
});
export type SkeinServiceSpec = z.output<typeof serviceSpec>;

export const workloadSpec = obj({
  serviceAccount: z.string().min(1).default("default"),
  address: z.string().min(1).optional(),
  ports: z.record(z.string(), port()).optional(),
});
export type SkeinWorkloadSpec = z.output<typeof workloadSpec>;

/** Which requests a RateLimit counts: Istio's HTTPMatchRequest fields that concern one request. */
const rateLimitMatch = obj({
  uri: stringMatch().optional(),
  method: stringMatch().optional(),
  headers: z.record(z.string(), presenceOrStringMatch()).optional(),
  queryParams: z.record(z.string(), presenceOrStringMatch()).optional(),
  ignoreUriCase: z.boolean().optional(),
});

const positiveInt = (what: string) =>
  z
    .number()
    .int()
    .superRefine((v, ctx) => {
      if (v < 1) addIssue(ctx, Codes.RANGE, `${what} must be at least 1, got ${v}`);
    });

/** Envoy's TokenBucket: starts full; every fillInterval, tokensPerFill come back, up to maxTokens. */
const tokenBucket = obj({
  maxTokens: positiveInt("maxTokens"),
  tokensPerFill: positiveInt("tokensPerFill").default(1),
  // Envoy refuses fill intervals under 50 ms.
  fillInterval: duration({ min: 50 }),
});

export const rateLimitSpec = obj({
  /** The workloads (in the RateLimit's namespace) whose inbound requests are limited, by label... */
  selector: labels().optional(),
  /** ...or by the Service whose selector picks them (only that service's ports then). */
  service: z.string().min(1).optional(),
  /** Only this port (the service port or the port the workload serves it on); default: every HTTP port. */
  port: port().optional(),
  /** Only requests matching this; default: every request. */
  match: rateLimitMatch.optional(),
  tokenBucket,
}).superRefine((s, ctx) => {
  if ((s.selector === undefined) === (s.service === undefined))
    addIssue(
      ctx,
      Codes.ONE_OF,
      s.selector === undefined
        ? "a RateLimit needs selector (workload labels) or service"
        : "use selector or service, not both",
    );
});
export type SkeinRateLimitSpec = z.output<typeof rateLimitSpec>;

export const skeinKinds = [
  defineKind({
    group: SKEIN_GROUP,
    kind: "Service",
    versions: ["v1alpha1"],
    namespaced: true,
    spec: serviceSpec,
  }),
  defineKind({
    group: SKEIN_GROUP,
    kind: "Workload",
    versions: ["v1alpha1"],
    namespaced: true,
    spec: workloadSpec,
  }),
  defineKind({
    group: SKEIN_GROUP,
    kind: "RateLimit",
    versions: ["v1alpha1"],
    namespaced: true,
    spec: rateLimitSpec,
  }),
];
