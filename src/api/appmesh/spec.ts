// The App Mesh object specifications, written once and validated in the two spellings users have:
// CloudFormation's PascalCase (`PortMapping`, `AWSCloudMap`, `TLS`) and the appmesh.k8s.aws CRDs'
// camelCase (`portMapping`, `awsCloudMap`, `tls`). Whatever the spelling, the validated output is the
// camelCase shape of the App Mesh API (CreateVirtualNode & co.), so lowering reads one structure.
// References to other App Mesh objects are the one real difference (names in CloudFormation, object
// references or ARNs in Kubernetes); both come out as an `AmRef`.
//
// Field names, enums and ranges follow the App Mesh API reference and the CloudFormation resource
// schemas (AWS::AppMesh::*), and the aws-app-mesh-controller-for-k8s v1beta2 types.
import { z } from "zod";
import { Codes } from "../codes.js";
import { addIssue, hostname, labels, obj, port, regex } from "../schema.js";

export type Style = "cfn" | "k8s";

/** CloudFormation spellings that are not the camelCase key with a capital first letter. */
const CFN_KEYS: Record<string, string> = {
  dns: "DNS",
  awsCloudMap: "AWSCloudMap",
  tls: "TLS",
  grpc: "GRPC",
  http: "HTTP",
  http2: "HTTP2",
  tcp: "TCP",
  acm: "ACM",
  sds: "SDS",
  certificateARN: "CertificateArn",
  certificateAuthorityARNs: "CertificateAuthorityArns",
};

/** The key as written in `style` for a camelCase App Mesh field name. */
export function key(style: Style, camel: string): string {
  if (style === "k8s") return camel;
  return CFN_KEYS[camel] ?? camel.charAt(0).toUpperCase() + camel.slice(1);
}

/**
 * A strict object in `style` whose output is keyed in camelCase. Unknown fields are errors with a
 * did-you-mean against the keys as the user spells them.
 */
export function o<S extends z.ZodRawShape>(
  style: Style,
  shape: S,
): z.ZodType<z.output<z.ZodObject<S, z.core.$strict>>> {
  if (style === "k8s") return obj(shape);
  const renamed: Record<string, z.core.$ZodType> = {};
  const back = new Map<string, string>();
  for (const [camel, schema] of Object.entries(shape)) {
    renamed[key("cfn", camel)] = schema;
    back.set(key("cfn", camel), camel);
  }
  return obj(renamed).transform((v) => {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[back.get(k) ?? k] = x;
    return out;
  }) as unknown as z.ZodType<z.output<z.ZodObject<S, z.core.$strict>>>;
}

/** An integer in [min, max] with a message that names the field. */
export function int(what: string, min: number, max?: number) {
  return z
    .number()
    .int()
    .superRefine((v, ctx) => {
      if (v < min || (max !== undefined && v > max))
        addIssue(
          ctx,
          Codes.RANGE,
          max === undefined
            ? `${what} ${v} is below the minimum of ${min}`
            : `${what} ${v} is outside ${min}–${max}`,
        );
    });
}

/** An App Mesh resource name (1–255 characters). */
export const resourceName = () => z.string().min(1).max(255);

/** Exactly one (or, with `required: false`, at most one) of `fields` may be set. */
function exclusive<T>(
  style: Style,
  schema: z.ZodType<T>,
  fields: readonly (keyof T & string)[],
  what: string,
  required: boolean,
): z.ZodType<T> {
  return schema.superRefine((v, ctx) => {
    const set = fields.filter((f) => (v as Record<string, unknown>)[f] !== undefined);
    const spelled = fields.map((f) => key(style, f));
    if (set.length > 1)
      addIssue(
        ctx,
        Codes.ONE_OF,
        `${what} takes only one of ${spelled.join(", ")}; found ${set.map((f) => key(style, f)).join(" and ")}`,
        [key(style, set[1] as string)],
        `remove all but one of ${set.map((f) => key(style, f)).join(", ")}`,
      );
    else if (required && set.length === 0)
      addIssue(
        ctx,
        Codes.ONE_OF,
        `${what} needs one of ${spelled.join(", ")}`,
        [],
        `add one of ${spelled.join(", ")}`,
      );
  });
}

// ── Enumerations ────────────────────────────────────────────────────────────────────────────────────

export const PORT_PROTOCOLS = ["http", "http2", "grpc", "tcp"] as const;
export type PortProtocol = (typeof PORT_PROTOCOLS)[number];
export const GATEWAY_PROTOCOLS = ["http", "http2", "grpc"] as const;
export const IP_PREFERENCES = ["IPv6_PREFERRED", "IPv4_PREFERRED", "IPv4_ONLY", "IPv6_ONLY"] as const;
export const HTTP_RETRY_EVENTS = ["server-error", "gateway-error", "client-error", "stream-error"] as const;
export const TCP_RETRY_EVENTS = ["connection-error"] as const;
export const GRPC_RETRY_EVENTS = [
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
] as const;
export const HTTP_METHODS = [
  "CONNECT",
  "DELETE",
  "GET",
  "HEAD",
  "OPTIONS",
  "PATCH",
  "POST",
  "PUT",
  "TRACE",
] as const;

// ── References ──────────────────────────────────────────────────────────────────────────────────────

/**
 * A reference to another App Mesh object: by App Mesh name (CloudFormation), by Kubernetes object
 * (CRDs; namespace defaults to the referrer's) or by ARN (CRDs). `field` is the key it is written
 * under, to point diagnostics at it.
 */
export type AmRef =
  | { by: "name"; name: string; field: string }
  | { by: "k8s"; name: string; namespace?: string; field: string }
  | { by: "arn"; arn: string; field: string };

const k8sObjectRef = () => obj({ name: z.string().min(1), namespace: z.string().min(1).optional() });
const arnString = () =>
  z.string().superRefine((s, ctx) => {
    if (!/^arn:[^:]+:appmesh:[^:]*:[^:]*:mesh\/.+/.test(s))
      addIssue(
        ctx,
        Codes.INVALID,
        `"${s}" is not an App Mesh ARN`,
        [],
        "write arn:aws:appmesh:<region>:<account>:mesh/<mesh>/<kind>/<name>",
      );
  });

/**
 * A reference field: `Name` (CloudFormation, e.g. VirtualNodeName) or `ref`/`arn` (CRDs, e.g.
 * virtualNodeRef / virtualNodeARN), with any `extra` fields next to it. Output: `{ target, ...extra }`.
 */
function refField<E extends z.ZodRawShape>(
  style: Style,
  names: { cfn: string; ref: string; arn: string },
  extra: E,
  what: string,
): z.ZodType<{ target: AmRef } & z.output<z.ZodObject<E>>> {
  type Out = { target: AmRef } & z.output<z.ZodObject<E>>;
  if (style === "cfn") {
    return obj({ [names.cfn]: resourceName(), ...renameShape(extra) }).transform((v) => {
      const rec = v as Record<string, unknown>;
      const out: Record<string, unknown> = {
        target: { by: "name", name: rec[names.cfn] as string, field: names.cfn },
      };
      for (const k of Object.keys(extra)) if (rec[key("cfn", k)] !== undefined) out[k] = rec[key("cfn", k)];
      return out as Out;
    }) as unknown as z.ZodType<Out>;
  }
  return obj({ [names.ref]: k8sObjectRef().optional(), [names.arn]: arnString().optional(), ...extra })
    .superRefine((v, ctx) => {
      const rec = v as Record<string, unknown>;
      if ((rec[names.ref] === undefined) === (rec[names.arn] === undefined))
        addIssue(
          ctx,
          Codes.ONE_OF,
          `${what} needs exactly one of ${names.ref} or ${names.arn}`,
          rec[names.ref] === undefined ? [] : [names.arn],
          `reference the Kubernetes object with ${names.ref}: {name, namespace} or give its ${names.arn}`,
        );
    })
    .transform((v) => {
      const rec = v as Record<string, unknown>;
      const ref = rec[names.ref] as { name: string; namespace?: string } | undefined;
      const target: AmRef = ref
        ? { by: "k8s", name: ref.name, namespace: ref.namespace, field: names.ref }
        : { by: "arn", arn: rec[names.arn] as string, field: names.arn };
      const out: Record<string, unknown> = { target };
      for (const k of Object.keys(extra)) if (rec[k] !== undefined) out[k] = rec[k];
      return out as Out;
    }) as unknown as z.ZodType<Out>;
}

function renameShape(shape: z.ZodRawShape): z.ZodRawShape {
  return Object.fromEntries(Object.entries(shape).map(([k, v]) => [key("cfn", k), v]));
}

// ── Shared pieces ───────────────────────────────────────────────────────────────────────────────────

/** App Mesh `Duration` ({unit: s|ms, value}); output in milliseconds. */
export const duration = (style: Style) =>
  o(style, { unit: z.enum(["s", "ms"]), value: int("duration value", 0) }).transform((d) =>
    d.unit === "s" ? d.value * 1000 : d.value,
  );

const portMapping = (style: Style, protocols: readonly [string, ...string[]] = PORT_PROTOCOLS) =>
  o(style, { port: port(), protocol: z.enum(protocols as readonly [PortProtocol, ...PortProtocol[]]) });

const healthCheck = (style: Style, protocols: readonly [string, ...string[]] = PORT_PROTOCOLS) =>
  o(style, {
    healthyThreshold: int("healthyThreshold", 2, 10),
    unhealthyThreshold: int("unhealthyThreshold", 2, 10),
    timeoutMillis: int("timeoutMillis", 2000, 60000),
    intervalMillis: int("intervalMillis", 5000, 300000),
    protocol: z.enum(protocols as readonly [PortProtocol, ...PortProtocol[]]),
    path: z.string().min(1).optional(),
    port: port().optional(),
  });

const outlierDetection = (style: Style) =>
  o(style, {
    maxServerErrors: int("maxServerErrors", 1),
    interval: duration(style),
    baseEjectionDuration: duration(style),
    maxEjectionPercent: int("maxEjectionPercent", 0, 100),
  });

const httpTimeout = (style: Style) =>
  o(style, { perRequest: duration(style).optional(), idle: duration(style).optional() });
const tcpTimeout = (style: Style) => o(style, { idle: duration(style).optional() });

const subjectAlternativeNames = (style: Style) =>
  o(style, { match: o(style, { exact: z.array(z.string().min(1)).min(1) }) });
const fileCertificate = (style: Style) =>
  o(style, { certificateChain: z.string().min(1), privateKey: z.string().min(1) });
const sdsSecret = (style: Style) => o(style, { secretName: z.string().min(1) });
const fileTrust = (style: Style) => o(style, { certificateChain: z.string().min(1) });
const acmTrust = (style: Style) => o(style, { certificateAuthorityARNs: z.array(z.string().min(1)).min(1) });

const listenerTls = (style: Style) =>
  o(style, {
    mode: z.enum(["STRICT", "PERMISSIVE", "DISABLED"]),
    certificate: exclusive(
      style,
      o(style, {
        acm: o(style, { certificateARN: z.string().min(1) }).optional(),
        file: fileCertificate(style).optional(),
        sds: sdsSecret(style).optional(),
      }),
      ["acm", "file", "sds"],
      "a listener certificate",
      true,
    ),
    validation: o(style, {
      trust: exclusive(
        style,
        o(style, { file: fileTrust(style).optional(), sds: sdsSecret(style).optional() }),
        ["file", "sds"],
        "a validation trust",
        true,
      ),
      subjectAlternativeNames: subjectAlternativeNames(style).optional(),
    }).optional(),
  });

const clientPolicy = (style: Style) =>
  o(style, {
    tls: o(style, {
      enforce: z.boolean().optional(),
      ports: z.array(port()).optional(),
      certificate: exclusive(
        style,
        o(style, { file: fileCertificate(style).optional(), sds: sdsSecret(style).optional() }),
        ["file", "sds"],
        "a client certificate",
        true,
      ).optional(),
      validation: o(style, {
        trust: exclusive(
          style,
          o(style, {
            acm: acmTrust(style).optional(),
            file: fileTrust(style).optional(),
            sds: sdsSecret(style).optional(),
          }),
          ["acm", "file", "sds"],
          "a validation trust",
          true,
        ),
        subjectAlternativeNames: subjectAlternativeNames(style).optional(),
      }),
    }).optional(),
  });

const logging = (style: Style) =>
  o(style, {
    accessLog: o(style, {
      file: o(style, {
        path: z.string().min(1).max(255),
        format: exclusive(
          style,
          o(style, {
            json: z
              .array(o(style, { key: z.string().min(1), value: z.string().min(1) }))
              .min(1)
              .optional(),
            text: z.string().min(1).optional(),
          }),
          ["json", "text"],
          "a log format",
          true,
        ).optional(),
      }).optional(),
    }).optional(),
  });

// ── Mesh ────────────────────────────────────────────────────────────────────────────────────────────

export const egressFilter = (style: Style) => o(style, { type: z.enum(["ALLOW_ALL", "DROP_ALL"]) });
export const meshServiceDiscovery = (style: Style) =>
  o(style, { ipPreference: z.enum(IP_PREFERENCES).optional() });

// ── Virtual node ───────────────────────────────────────────────────────────────────────────────────

const nodeConnectionPool = (style: Style) =>
  exclusive(
    style,
    o(style, {
      tcp: o(style, { maxConnections: int("maxConnections", 1) }).optional(),
      http: o(style, {
        maxConnections: int("maxConnections", 1),
        maxPendingRequests: int("maxPendingRequests", 1).optional(),
      }).optional(),
      http2: o(style, { maxRequests: int("maxRequests", 1) }).optional(),
      grpc: o(style, { maxRequests: int("maxRequests", 1) }).optional(),
    }),
    ["tcp", "http", "http2", "grpc"],
    "a connection pool",
    true,
  );

const listenerTimeout = (style: Style) =>
  exclusive(
    style,
    o(style, {
      tcp: tcpTimeout(style).optional(),
      http: httpTimeout(style).optional(),
      http2: httpTimeout(style).optional(),
      grpc: httpTimeout(style).optional(),
    }),
    ["tcp", "http", "http2", "grpc"],
    "a listener timeout",
    true,
  );

/** A listener's per-protocol settings (connection pool, timeout) must name the listener's protocol. */
function protocolMatches(
  style: Style,
  listener: { portMapping: { protocol: string }; connectionPool?: object; timeout?: object },
  ctx: { addIssue: (i: z.core.$ZodRawIssue) => void },
): void {
  const protocol = listener.portMapping.protocol;
  for (const field of ["connectionPool", "timeout"] as const) {
    const value = listener[field] as Record<string, unknown> | undefined;
    if (!value) continue;
    for (const [p, v] of Object.entries(value)) {
      if (v !== undefined && p !== protocol)
        addIssue(
          ctx,
          Codes.INVALID,
          `${key(style, field)}.${key(style, p)} does not apply to a ${protocol} listener`,
          [key(style, field), key(style, p)],
          `use ${key(style, field)}.${key(style, protocol)} for a ${protocol} listener`,
        );
    }
  }
}

const nodeListener = (style: Style) =>
  o(style, {
    portMapping: portMapping(style),
    healthCheck: healthCheck(style).optional(),
    outlierDetection: outlierDetection(style).optional(),
    connectionPool: nodeConnectionPool(style).optional(),
    timeout: listenerTimeout(style).optional(),
    tls: listenerTls(style).optional(),
  }).superRefine((l, ctx) => protocolMatches(style, l, ctx));

const cloudMapAttribute = (style: Style) =>
  o(style, { key: z.string().min(1).max(255), value: z.string().min(1).max(1024) });

const serviceDiscovery = (style: Style) =>
  exclusive(
    style,
    o(style, {
      dns: o(style, {
        hostname: hostname(),
        responseType: z.enum(["LOADBALANCER", "ENDPOINTS"]).optional(),
        ipPreference: z.enum(IP_PREFERENCES).optional(),
      }).optional(),
      awsCloudMap: o(style, {
        namespaceName: z.string().min(1).max(1024),
        serviceName: z.string().min(1).max(1024),
        attributes: z.array(cloudMapAttribute(style)).optional(),
        ipPreference: z.enum(IP_PREFERENCES).optional(),
      }).optional(),
    }),
    ["dns", "awsCloudMap"],
    "serviceDiscovery",
    true,
  );

const backend = (style: Style) =>
  o(style, {
    virtualService: refField(
      style,
      { cfn: "VirtualServiceName", ref: "virtualServiceRef", arn: "virtualServiceARN" },
      { clientPolicy: clientPolicy(style).optional() },
      "a backend virtual service",
    ),
  });

/** The App Mesh VirtualNodeSpec fields (CRDs add their own next to them). */
export const virtualNodeShape = (style: Style) => ({
  listeners: z.array(nodeListener(style)).optional(),
  serviceDiscovery: serviceDiscovery(style).optional(),
  backends: z.array(backend(style)).optional(),
  backendDefaults: o(style, { clientPolicy: clientPolicy(style).optional() }).optional(),
  logging: logging(style).optional(),
});

/** App Mesh requires service discovery on a node that has listeners. */
export function nodeNeedsDiscovery<T extends { listeners?: unknown[]; serviceDiscovery?: unknown }>(
  style: Style,
  schema: z.ZodType<T>,
): z.ZodType<T> {
  return schema.superRefine((v, ctx) => {
    if ((v.listeners?.length ?? 0) > 0 && v.serviceDiscovery === undefined)
      addIssue(
        ctx,
        Codes.REQUIRED,
        `a virtual node with listeners needs ${key(style, "serviceDiscovery")}`,
        [],
        `add ${key(style, "serviceDiscovery")} with ${key(style, "dns")} or ${key(style, "awsCloudMap")}, so callers can find its instances`,
      );
  });
}

// ── Virtual service and router ─────────────────────────────────────────────────────────────────────

export const serviceProvider = (style: Style) =>
  exclusive(
    style,
    o(style, {
      virtualNode: refField(
        style,
        { cfn: "VirtualNodeName", ref: "virtualNodeRef", arn: "virtualNodeARN" },
        {},
        "a virtual node provider",
      ).optional(),
      virtualRouter: refField(
        style,
        { cfn: "VirtualRouterName", ref: "virtualRouterRef", arn: "virtualRouterARN" },
        {},
        "a virtual router provider",
      ).optional(),
    }),
    ["virtualNode", "virtualRouter"],
    "a virtual service provider",
    true,
  );

export const routerListener = (style: Style) => o(style, { portMapping: portMapping(style) });

// ── Routes ──────────────────────────────────────────────────────────────────────────────────────────

const matchRange = (style: Style) =>
  o(style, { start: z.number().int(), end: z.number().int() }).superRefine((r, ctx) => {
    if (r.start >= r.end)
      addIssue(
        ctx,
        Codes.RANGE,
        `range start ${r.start} is not below its end ${r.end}`,
        [],
        "the end is exclusive",
      );
  });

/** Header or gRPC metadata match: exactly one method. */
const headerMatchMethod = (style: Style) =>
  exclusive(
    style,
    o(style, {
      exact: z.string().min(1).optional(),
      prefix: z.string().min(1).optional(),
      suffix: z.string().min(1).optional(),
      regex: regex().optional(),
      range: matchRange(style).optional(),
    }),
    ["exact", "prefix", "suffix", "regex", "range"],
    "a header match",
    true,
  );

const headerMatch = (style: Style) =>
  o(style, {
    name: z.string().min(1).max(50),
    match: headerMatchMethod(style).optional(),
    invert: z.boolean().optional(),
  });

const pathMatch = (style: Style) =>
  exclusive(
    style,
    o(style, { exact: z.string().min(1).optional(), regex: regex().optional() }),
    ["exact", "regex"],
    "a path match",
    true,
  );

const prefixString = () =>
  z.string().superRefine((p, ctx) => {
    if (!p.startsWith("/"))
      addIssue(ctx, Codes.INVALID, `prefix "${p}" must start with "/"`, [], `write "/${p}"`);
  });

const queryParameter = (style: Style) =>
  o(style, { name: z.string().min(1), match: o(style, { exact: z.string() }).optional() });

const httpRouteMatch = (style: Style) =>
  exclusive(
    style,
    o(style, {
      prefix: prefixString().optional(),
      path: pathMatch(style).optional(),
      headers: z.array(headerMatch(style)).min(1).max(10).optional(),
      method: z.enum(HTTP_METHODS).optional(),
      scheme: z.enum(["http", "https"]).optional(),
      queryParameters: z.array(queryParameter(style)).min(1).max(10).optional(),
      port: port().optional(),
    }),
    ["prefix", "path"],
    "a route match",
    false,
  );

const weightedTarget = (style: Style) =>
  refField(
    style,
    { cfn: "VirtualNode", ref: "virtualNodeRef", arn: "virtualNodeARN" },
    { weight: int("weight", 0, 100), port: port().optional() },
    "a weighted target",
  );

const routeAction = (style: Style) =>
  o(style, { weightedTargets: z.array(weightedTarget(style)).min(1).max(10) });

const retryFields = (style: Style) => ({
  maxRetries: int("maxRetries", 0),
  perRetryTimeout: duration(style),
  httpRetryEvents: z.array(z.enum(HTTP_RETRY_EVENTS)).min(1).max(25).optional(),
  tcpRetryEvents: z.array(z.enum(TCP_RETRY_EVENTS)).min(1).max(1).optional(),
});

function needsRetryEvent<T extends object>(
  style: Style,
  schema: z.ZodType<T>,
  fields: string[],
): z.ZodType<T> {
  return schema.superRefine((v, ctx) => {
    if (fields.every((f) => (v as Record<string, unknown>)[f] === undefined))
      addIssue(
        ctx,
        Codes.REQUIRED,
        `a retry policy needs at least one of ${fields.map((f) => key(style, f)).join(", ")}`,
        [],
        "say which events to retry on, e.g. server-error and gateway-error",
      );
  });
}

const httpRoute = (style: Style) =>
  o(style, {
    match: httpRouteMatch(style),
    action: routeAction(style),
    retryPolicy: needsRetryEvent(style, o(style, retryFields(style)), [
      "httpRetryEvents",
      "tcpRetryEvents",
    ]).optional(),
    timeout: httpTimeout(style).optional(),
  });

const grpcRouteMatch = (style: Style) =>
  o(style, {
    serviceName: z.string().min(1).optional(),
    methodName: z.string().min(1).max(50).optional(),
    metadata: z.array(headerMatch(style)).min(1).max(10).optional(),
    port: port().optional(),
  }).superRefine((m, ctx) => {
    if (m.methodName !== undefined && m.serviceName === undefined)
      addIssue(
        ctx,
        Codes.REQUIRED,
        `${key(style, "methodName")} needs ${key(style, "serviceName")}`,
        [key(style, "methodName")],
        `add ${key(style, "serviceName")}: the fully qualified gRPC service the method belongs to`,
      );
  });

const grpcRoute = (style: Style) =>
  o(style, {
    match: grpcRouteMatch(style),
    action: routeAction(style),
    retryPolicy: needsRetryEvent(
      style,
      o(style, {
        ...retryFields(style),
        grpcRetryEvents: z.array(z.enum(GRPC_RETRY_EVENTS)).min(1).max(5).optional(),
      }),
      ["httpRetryEvents", "tcpRetryEvents", "grpcRetryEvents"],
    ).optional(),
    timeout: httpTimeout(style).optional(),
  });

const tcpRoute = (style: Style) =>
  o(style, {
    match: o(style, { port: port().optional() }).optional(),
    action: routeAction(style),
    timeout: tcpTimeout(style).optional(),
  });

/** The App Mesh RouteSpec fields: one of the four route kinds, and a priority (0 is matched first). */
export const routeShape = (style: Style) => ({
  httpRoute: httpRoute(style).optional(),
  http2Route: httpRoute(style).optional(),
  grpcRoute: grpcRoute(style).optional(),
  tcpRoute: tcpRoute(style).optional(),
  priority: int("priority", 0, 1000).optional(),
});

export const ROUTE_KINDS = ["httpRoute", "http2Route", "grpcRoute", "tcpRoute"] as const;

export function oneRouteKind<T extends object>(style: Style, schema: z.ZodType<T>): z.ZodType<T> {
  return exclusive(style, schema, ROUTE_KINDS as unknown as (keyof T & string)[], "a route", true);
}

// ── Virtual gateway and gateway routes ─────────────────────────────────────────────────────────────

const gatewayListener = (style: Style) =>
  o(style, {
    portMapping: portMapping(style, GATEWAY_PROTOCOLS),
    healthCheck: healthCheck(style, GATEWAY_PROTOCOLS).optional(),
    connectionPool: exclusive(
      style,
      o(style, {
        http: o(style, {
          maxConnections: int("maxConnections", 1),
          maxPendingRequests: int("maxPendingRequests", 1).optional(),
        }).optional(),
        http2: o(style, { maxRequests: int("maxRequests", 1) }).optional(),
        grpc: o(style, { maxRequests: int("maxRequests", 1) }).optional(),
      }),
      ["http", "http2", "grpc"],
      "a connection pool",
      true,
    ).optional(),
    tls: listenerTls(style).optional(),
  }).superRefine((l, ctx) => protocolMatches(style, l, ctx));

/** The App Mesh VirtualGatewaySpec fields. */
export const virtualGatewayShape = (style: Style) => ({
  listeners: z.array(gatewayListener(style)).min(1),
  backendDefaults: o(style, { clientPolicy: clientPolicy(style).optional() }).optional(),
  logging: logging(style).optional(),
});

const hostnameMatch = (style: Style) =>
  exclusive(
    style,
    o(style, { exact: z.string().min(1).optional(), suffix: z.string().min(1).optional() }),
    ["exact", "suffix"],
    "a hostname match",
    true,
  );

const gatewayTarget = (style: Style) =>
  o(style, {
    virtualService: refField(
      style,
      { cfn: "VirtualServiceName", ref: "virtualServiceRef", arn: "virtualServiceARN" },
      {},
      "a gateway route target",
    ),
    port: port().optional(),
  });

const hostnameRewrite = (style: Style) =>
  o(style, { defaultTargetHostname: z.enum(["ENABLED", "DISABLED"]).optional() });

const httpGatewayRoute = (style: Style) =>
  o(style, {
    match: exclusive(
      style,
      o(style, {
        prefix: prefixString().optional(),
        path: pathMatch(style).optional(),
        headers: z.array(headerMatch(style)).min(1).max(10).optional(),
        hostname: hostnameMatch(style).optional(),
        method: z.enum(HTTP_METHODS).optional(),
        queryParameters: z.array(queryParameter(style)).min(1).max(10).optional(),
        port: port().optional(),
      }),
      ["prefix", "path"],
      "a gateway route match",
      false,
    ),
    action: o(style, {
      target: gatewayTarget(style),
      rewrite: o(style, {
        hostname: hostnameRewrite(style).optional(),
        path: o(style, { exact: z.string().min(1).optional() }).optional(),
        prefix: o(style, {
          defaultPrefix: z.enum(["ENABLED", "DISABLED"]).optional(),
          value: z.string().min(1).max(255).optional(),
        }).optional(),
      }).optional(),
    }),
  });

const grpcGatewayRoute = (style: Style) =>
  o(style, {
    match: o(style, {
      serviceName: z.string().min(1).optional(),
      hostname: hostnameMatch(style).optional(),
      metadata: z.array(headerMatch(style)).min(1).max(10).optional(),
      port: port().optional(),
    }),
    action: o(style, {
      target: gatewayTarget(style),
      rewrite: o(style, { hostname: hostnameRewrite(style).optional() }).optional(),
    }),
  });

export const GATEWAY_ROUTE_KINDS = ["httpRoute", "http2Route", "grpcRoute"] as const;

/** The App Mesh GatewayRouteSpec fields. */
export const gatewayRouteShape = (style: Style) => ({
  httpRoute: httpGatewayRoute(style).optional(),
  http2Route: httpGatewayRoute(style).optional(),
  grpcRoute: grpcGatewayRoute(style).optional(),
  priority: int("priority", 0, 1000).optional(),
});

export function oneGatewayRouteKind<T extends object>(style: Style, schema: z.ZodType<T>): z.ZodType<T> {
  return exclusive(
    style,
    schema,
    GATEWAY_ROUTE_KINDS as unknown as (keyof T & string)[],
    "a gateway route",
    true,
  );
}

// ── Kubernetes-only pieces ─────────────────────────────────────────────────────────────────────────

export const labelSelector = () =>
  obj({
    matchLabels: labels().optional(),
    matchExpressions: z
      .array(
        obj({
          key: z.string().min(1),
          operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
          values: z.array(z.string()).optional(),
        }),
      )
      .optional(),
  });

export const meshReference = () => obj({ name: z.string().min(1), uid: z.string().min(1) });

// ── Output types ────────────────────────────────────────────────────────────────────────────────────

const nodeSpecSchema = o("k8s", virtualNodeShape("k8s"));
export type VirtualNodeSpec = z.output<typeof nodeSpecSchema>;
export type NodeListener = NonNullable<VirtualNodeSpec["listeners"]>[number];
export type ServiceDiscovery = NonNullable<VirtualNodeSpec["serviceDiscovery"]>;
const routeSpecSchema = o("k8s", routeShape("k8s"));
export type RouteSpec = z.output<typeof routeSpecSchema>;
export type HttpRouteSpec = NonNullable<RouteSpec["httpRoute"]>;
export type GrpcRouteSpec = NonNullable<RouteSpec["grpcRoute"]>;
export type TcpRouteSpec = NonNullable<RouteSpec["tcpRoute"]>;
export type HeaderMatchSpec = NonNullable<HttpRouteSpec["match"]["headers"]>[number];
export type WeightedTargetSpec = HttpRouteSpec["action"]["weightedTargets"][number];
const gatewaySpecSchema = o("k8s", virtualGatewayShape("k8s"));
export type VirtualGatewaySpec = z.output<typeof gatewaySpecSchema>;
const gatewayRouteSpecSchema = o("k8s", gatewayRouteShape("k8s"));
export type GatewayRouteSpec = z.output<typeof gatewayRouteSpecSchema>;
export type HttpGatewayRouteSpec = NonNullable<GatewayRouteSpec["httpRoute"]>;
export type GrpcGatewayRouteSpec = NonNullable<GatewayRouteSpec["grpcRoute"]>;
const providerSchema = serviceProvider("k8s");
export type ServiceProviderSpec = z.output<typeof providerSchema>;
