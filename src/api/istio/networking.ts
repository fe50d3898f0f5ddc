// networking.istio.io: VirtualService, DestinationRule, ServiceEntry, Sidecar — schemas following
// Istio's API reference (field names, oneofs, value ranges). Durations become milliseconds.
import { z } from "zod";
import { Codes } from "../codes.js";
import { defineKind } from "../kinds.js";
import { addIssue, duration, hostname, labels, obj, percent, port } from "../schema.js";
import {
  exportTo,
  headerOperations,
  NETWORKING_VERSIONS,
  portSelector,
  presenceOrStringMatch,
  stringMatch,
  workloadSelector,
  workloadSelectorLabels,
} from "./common.js";

export const NETWORKING_GROUP = "networking.istio.io";

// ── VirtualService ───────────────────────────────────────────────────────────────────────────────────

const destination = () =>
  obj({ host: hostname(), subset: z.string().min(1).optional(), port: portSelector().optional() });

const headers = () =>
  obj({ request: headerOperations().optional(), response: headerOperations().optional() });

const httpMatch = obj({
  name: z.string().optional(),
  uri: stringMatch().optional(),
  scheme: stringMatch().optional(),
  method: stringMatch().optional(),
  authority: stringMatch().optional(),
  headers: z.record(z.string(), presenceOrStringMatch()).optional(),
  withoutHeaders: z.record(z.string(), presenceOrStringMatch()).optional(),
  queryParams: z.record(z.string(), presenceOrStringMatch()).optional(),
  port: port().optional(),
  sourceLabels: labels().optional(),
  sourceNamespace: z.string().optional(),
  gateways: z.array(z.string()).optional(),
  ignoreUriCase: z.boolean().optional(),
  statPrefix: z.string().optional(),
});

const weight = () =>
  z
    .number()
    .int()
    .superRefine((w, ctx) => {
      if (w < 0 || w > 100) addIssue(ctx, Codes.RANGE, `weight ${w} is outside 0–100`);
    });

const httpRouteDestination = obj({
  destination: destination(),
  weight: weight().optional(),
  headers: headers().optional(),
});

/** Envoy's retry_on conditions Istio passes through, plus gRPC status names; numbers are status codes. */
export const RETRY_ON = [
  "5xx",
  "gateway-error",
  "reset",
  "reset-before-request",
  "connect-failure",
  "envoy-ratelimited",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "retriable-headers",
  "http3-post-connect-failure",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
] as const;

const retryOn = () =>
  z.string().transform((s, ctx) => {
    const items = s
      .split(",")
      .map((x) => x.trim())
      .filter((x) => x.length > 0);
    for (const item of items) {
      if (/^\d+$/.test(item)) {
        const n = Number(item);
        if (n < 100 || n > 599) addIssue(ctx, Codes.RANGE, `retry status code ${item} is outside 100–599`);
      } else if (!(RETRY_ON as readonly string[]).includes(item)) {
        addIssue(
          ctx,
          Codes.ENUM,
          `"${item}" is not a retry condition`,
          [],
          `use HTTP status codes or: ${RETRY_ON.join(", ")}`,
        );
      }
    }
    return items;
  });

const httpRetry = obj({
  attempts: z.number().int().min(0),
  perTryTimeout: duration({ min: 1 }).optional(),
  retryOn: retryOn().optional(),
  retryRemoteLocalities: z.boolean().optional(),
  retryIgnorePreviousHosts: z.boolean().optional(),
  backoff: duration({ min: 1 }).optional(),
});

const faultPercentage = () => percent().optional();
const httpFault = obj({
  delay: obj({
    fixedDelay: duration({ min: 1 }),
    percentage: faultPercentage(),
    percent: z.number().int().min(0).max(100).optional(),
  }).optional(),
  abort: obj({
    httpStatus: z.number().int().min(200).max(599).optional(),
    grpcStatus: z.string().min(1).optional(),
    http2Error: z.string().optional(),
    percentage: faultPercentage(),
  })
    .superRefine((a, ctx) => {
      if ((a.httpStatus === undefined) === (a.grpcStatus === undefined))
        addIssue(ctx, Codes.ONE_OF, "an abort needs exactly one of httpStatus or grpcStatus");
    })
    .optional(),
});

const corsPolicy = obj({
  allowOrigins: z.array(stringMatch()).optional(),
  allowOrigin: z.array(z.string()).optional(),
  allowMethods: z.array(z.string()).optional(),
  allowHeaders: z.array(z.string()).optional(),
  exposeHeaders: z.array(z.string()).optional(),
  maxAge: duration().optional(),
  allowCredentials: z.boolean().optional(),
  unmatchedPreflights: z.enum(["UNSPECIFIED", "FORWARD", "IGNORE"]).optional(),
});

const httpRoute = obj({
  name: z.string().optional(),
  match: z.array(httpMatch).optional(),
  route: z.array(httpRouteDestination).min(1).optional(),
  redirect: obj({
    uri: z.string().optional(),
    authority: z.string().optional(),
    port: port().optional(),
    derivePort: z.enum(["FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"]).optional(),
    scheme: z.string().optional(),
    redirectCode: z.number().int().min(300).max(399).optional(),
  }).optional(),
  directResponse: obj({
    status: z.number().int().min(200).max(599),
    body: obj({ string: z.string().optional(), bytes: z.string().optional() }).optional(),
  }).optional(),
  rewrite: obj({
    uri: z.string().optional(),
    authority: z.string().optional(),
    uriRegexRewrite: obj({ match: z.string(), rewrite: z.string() }).optional(),
  }).optional(),
  timeout: duration().optional(),
  retries: httpRetry.optional(),
  fault: httpFault.optional(),
  mirror: destination().optional(),
  mirrors: z.array(obj({ destination: destination(), percentage: percent().optional() })).optional(),
  mirrorPercentage: percent().optional(),
  mirrorPercent: z.number().int().min(0).max(100).optional(),
  corsPolicy: corsPolicy.optional(),
  headers: headers().optional(),
}).superRefine((r, ctx) => {
  const actions = [r.route, r.redirect, r.directResponse].filter((a) => a !== undefined).length;
  if (actions === 0)
    addIssue(ctx, Codes.REQUIRED, "an http route needs one of route, redirect or directResponse");
  else if (r.route && (r.redirect || r.directResponse))
    addIssue(ctx, Codes.ONE_OF, "a route cannot also redirect or respond directly");
  else if (r.redirect && r.directResponse)
    addIssue(ctx, Codes.ONE_OF, "use only one of redirect or directResponse");
});

const routeDestination = obj({ destination: destination(), weight: weight().optional() });

const l4Match = {
  destinationSubnets: z.array(z.string()).optional(),
  port: port().optional(),
  sourceLabels: labels().optional(),
  gateways: z.array(z.string()).optional(),
  sourceNamespace: z.string().optional(),
};

const tcpRoute = obj({ match: z.array(obj(l4Match)).optional(), route: z.array(routeDestination).min(1) });
const tlsRoute = obj({
  match: z.array(obj({ ...l4Match, sniHosts: z.array(hostname()).min(1) })).min(1),
  route: z.array(routeDestination).min(1),
});

export const virtualServiceSpec = obj({
  hosts: z.array(hostname()).min(1),
  gateways: z.array(z.string()).optional(),
  http: z.array(httpRoute).optional(),
  tls: z.array(tlsRoute).optional(),
  tcp: z.array(tcpRoute).optional(),
  exportTo: exportTo(),
});
export type VirtualServiceSpec = z.output<typeof virtualServiceSpec>;
export type HttpRouteSpec = z.output<typeof httpRoute>;

// ── DestinationRule ──────────────────────────────────────────────────────────────────────────────────

const loadBalancer = obj({
  simple: z
    .enum(["UNSPECIFIED", "RANDOM", "PASSTHROUGH", "ROUND_ROBIN", "LEAST_REQUEST", "LEAST_CONN"])
    .optional(),
  consistentHash: obj({
    httpHeaderName: z.string().min(1).optional(),
    httpCookie: obj({
      name: z.string().min(1),
      path: z.string().optional(),
      ttl: duration().optional(),
    }).optional(),
    useSourceIp: z.boolean().optional(),
    httpQueryParameterName: z.string().min(1).optional(),
    ringHash: obj({ minimumRingSize: z.number().int().min(1).optional() }).optional(),
    maglev: obj({ tableSize: z.number().int().min(1).optional() }).optional(),
    minimumRingSize: z.number().int().min(1).optional(),
  })
    .superRefine((h, ctx) => {
      const keys = [h.httpHeaderName, h.httpCookie, h.useSourceIp, h.httpQueryParameterName].filter(
        (v) => v !== undefined,
      ).length;
      if (keys !== 1)
        addIssue(
          ctx,
          Codes.ONE_OF,
          "consistentHash needs exactly one of httpHeaderName, httpCookie, useSourceIp, httpQueryParameterName",
        );
      if (h.ringHash && h.maglev) addIssue(ctx, Codes.ONE_OF, "use only one of ringHash or maglev");
    })
    .optional(),
  localityLbSetting: z.record(z.string(), z.unknown()).optional(),
  warmupDurationSecs: duration().optional(),
}).superRefine((lb, ctx) => {
  if (lb.simple && lb.consistentHash) addIssue(ctx, Codes.ONE_OF, "use only one of simple or consistentHash");
});

const connectionPool = obj({
  tcp: obj({
    maxConnections: z.number().int().min(0).optional(),
    connectTimeout: duration({ min: 1 }).optional(),
    tcpKeepalive: obj({
      probes: z.number().int().min(0).optional(),
      time: duration().optional(),
      interval: duration().optional(),
    }).optional(),
    maxConnectionDuration: duration({ min: 1 }).optional(),
    idleTimeout: duration().optional(),
  }).optional(),
  http: obj({
    http1MaxPendingRequests: z.number().int().min(0).optional(),
    http2MaxRequests: z.number().int().min(0).optional(),
    maxRequestsPerConnection: z.number().int().min(0).optional(),
    maxRetries: z.number().int().min(0).optional(),
    idleTimeout: duration().optional(),
    h2UpgradePolicy: z.enum(["DEFAULT", "DO_NOT_UPGRADE", "UPGRADE"]).optional(),
    useClientProtocol: z.boolean().optional(),
    maxConcurrentStreams: z.number().int().min(0).optional(),
  }).optional(),
});

const outlierDetection = obj({
  splitExternalLocalOriginErrors: z.boolean().optional(),
  consecutiveLocalOriginFailures: z.number().int().min(0).optional(),
  consecutiveGatewayErrors: z.number().int().min(0).optional(),
  consecutive5xxErrors: z.number().int().min(0).optional(),
  consecutiveErrors: z.number().int().min(0).optional(),
  interval: duration({ min: 1 }).optional(),
  baseEjectionTime: duration({ min: 1 }).optional(),
  maxEjectionPercent: z.number().int().min(0).max(100).optional(),
  minHealthPercent: z.number().int().min(0).max(100).optional(),
});

const clientTls = obj({
  mode: z.enum(["DISABLE", "SIMPLE", "MUTUAL", "ISTIO_MUTUAL"]),
  clientCertificate: z.string().optional(),
  privateKey: z.string().optional(),
  caCertificates: z.string().optional(),
  credentialName: z.string().optional(),
  subjectAltNames: z.array(z.string()).optional(),
  sni: z.string().optional(),
  insecureSkipVerify: z.boolean().optional(),
  caCrl: z.string().optional(),
}).superRefine((t, ctx) => {
  if (t.mode === "MUTUAL" && !t.credentialName && !(t.clientCertificate && t.privateKey))
    addIssue(
      ctx,
      Codes.REQUIRED,
      "tls mode MUTUAL needs clientCertificate and privateKey, or credentialName",
      [],
      "or use ISTIO_MUTUAL to use the mesh's own certificates",
    );
});

const policyFields = {
  loadBalancer: loadBalancer.optional(),
  connectionPool: connectionPool.optional(),
  outlierDetection: outlierDetection.optional(),
  tls: clientTls.optional(),
};

const trafficPolicy = obj({
  ...policyFields,
  portLevelSettings: z.array(obj({ port: portSelector(), ...policyFields })).optional(),
  tunnel: z.record(z.string(), z.unknown()).optional(),
  proxyProtocol: z.record(z.string(), z.unknown()).optional(),
});

export const destinationRuleSpec = obj({
  host: hostname(),
  trafficPolicy: trafficPolicy.optional(),
  subsets: z
    .array(
      obj({ name: z.string().min(1), labels: labels().optional(), trafficPolicy: trafficPolicy.optional() }),
    )
    .optional(),
  exportTo: exportTo(),
  workloadSelector: workloadSelector().optional(),
}).superRefine((dr, ctx) => {
  const seen = new Set<string>();
  dr.subsets?.forEach((s, i) => {
    if (seen.has(s.name))
      addIssue(ctx, Codes.INVALID, `subset "${s.name}" is defined twice`, ["subsets", i, "name"]);
    seen.add(s.name);
  });
});
export type DestinationRuleSpec = z.output<typeof destinationRuleSpec>;
export type TrafficPolicySpec = z.output<typeof trafficPolicy>;

// ── ServiceEntry ─────────────────────────────────────────────────────────────────────────────────────

export const SERVICE_ENTRY_PROTOCOLS = ["HTTP", "HTTPS", "GRPC", "HTTP2", "MONGO", "TCP", "TLS"] as const;

const workloadEntry = obj({
  address: z.string().min(1),
  ports: z.record(z.string(), port()).optional(),
  labels: labels().optional(),
  network: z.string().optional(),
  locality: z.string().optional(),
  weight: z.number().int().min(0).optional(),
  serviceAccount: z.string().optional(),
});

export const serviceEntrySpec = obj({
  hosts: z.array(hostname()).min(1),
  addresses: z.array(z.string()).optional(),
  ports: z
    .array(
      obj({
        number: port(),
        protocol: z.enum(SERVICE_ENTRY_PROTOCOLS).optional(),
        name: z.string().min(1),
        targetPort: port().optional(),
      }),
    )
    .optional(),
  location: z.enum(["MESH_EXTERNAL", "MESH_INTERNAL"]).optional(),
  resolution: z.enum(["NONE", "STATIC", "DNS", "DNS_ROUND_ROBIN"]).optional(),
  endpoints: z.array(workloadEntry).optional(),
  workloadSelector: workloadSelectorLabels().optional(),
  exportTo: exportTo(),
  subjectAltNames: z.array(z.string()).optional(),
}).superRefine((se, ctx) => {
  if (se.resolution === "STATIC" && !se.endpoints?.length && !se.workloadSelector)
    addIssue(ctx, Codes.REQUIRED, "resolution STATIC needs endpoints or a workloadSelector", ["resolution"]);
  if ((se.resolution === "DNS" || se.resolution === "DNS_ROUND_ROBIN") && !se.endpoints?.length)
    se.hosts.forEach((h, i) => {
      if (h.startsWith("*"))
        addIssue(ctx, Codes.HOST, `wildcard host "${h}" cannot be resolved by DNS without endpoints`, [
          "hosts",
          i,
        ]);
    });
});
export type ServiceEntrySpec = z.output<typeof serviceEntrySpec>;

// ── Sidecar ──────────────────────────────────────────────────────────────────────────────────────────

/** Sidecar egress hosts: `namespace/dnsName`, namespace `*`, `.` or `~`, dnsName `*` or `*.suffix`. */
const egressHost = () =>
  z.string().superRefine((h, ctx) => {
    const slash = h.indexOf("/");
    const ns = h.slice(0, slash);
    const dns = h.slice(slash + 1);
    const okNs = ns === "*" || ns === "." || ns === "~" || /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns);
    const okDns = dns === "*" || (dns.length > 0 && /^(\*\.)?[A-Za-z0-9.-]+$/.test(dns));
    if (slash < 0 || !okNs || !okDns)
      addIssue(
        ctx,
        Codes.HOST,
        `"${h}" is not a Sidecar host`,
        [],
        'write namespace/dnsName: "./*" (own namespace), "istio-system/*", "*/order-service.production.svc.cluster.local"',
      );
  });

export const sidecarSpec = obj({
  workloadSelector: workloadSelectorLabels().optional(),
  ingress: z.array(z.record(z.string(), z.unknown())).optional(),
  egress: z
    .array(
      obj({
        port: obj({
          number: port(),
          protocol: z.string().optional(),
          name: z.string().optional(),
        }).optional(),
        bind: z.string().optional(),
        captureMode: z.enum(["DEFAULT", "IPTABLES", "NONE"]).optional(),
        hosts: z.array(egressHost()).min(1),
      }),
    )
    .optional(),
  outboundTrafficPolicy: obj({
    mode: z.enum(["ALLOW_ANY", "REGISTRY_ONLY"]),
    egressProxy: z.record(z.string(), z.unknown()).optional(),
  }).optional(),
  inboundConnectionPool: z.record(z.string(), z.unknown()).optional(),
});
export type SidecarSpec = z.output<typeof sidecarSpec>;

export const networkingKinds = [
  defineKind({
    group: NETWORKING_GROUP,
    kind: "VirtualService",
    versions: NETWORKING_VERSIONS,
    namespaced: true,
    spec: virtualServiceSpec,
  }),
  defineKind({
    group: NETWORKING_GROUP,
    kind: "DestinationRule",
    versions: NETWORKING_VERSIONS,
    namespaced: true,
    spec: destinationRuleSpec,
  }),
  defineKind({
    group: NETWORKING_GROUP,
    kind: "ServiceEntry",
    versions: NETWORKING_VERSIONS,
    namespaced: true,
    spec: serviceEntrySpec,
  }),
  defineKind({
    group: NETWORKING_GROUP,
    kind: "Sidecar",
    versions: NETWORKING_VERSIONS,
    namespaced: true,
    spec: sidecarSpec,
  }),
];
