// install.istio.io/v1alpha1 IstioOperator: only `spec.meshConfig` configures the mesh (tracing, access
// logs, outbound policy, trust domain, root namespace, extension providers). The rest of an IstioOperator
// (profile, components, values, hub, tag, …) describes an Istio installation: accepted so that real
// files load, and reported as having no effect. Commonly written without metadata.
// Cross-field checks run only once an object's own fields parse (`ctx.issues` empty), so that one
// mistake (an unknown field, say) is not reported a second time as "this object is empty".
import { z } from "zod";
import { Codes } from "../codes.js";
import { defineKind } from "../kinds.js";
import { addIssue, duration, obj, percentValue, port } from "../schema.js";
import { nonEmpty } from "./policy.js";
import { customTag } from "./telemetry.js";

export const INSTALL_GROUP = "install.istio.io";

export const TRACE_CONTEXTS = ["W3C_TRACE_CONTEXT", "B3", "GRPC_BIN", "CLOUD_TRACE_CONTEXT"] as const;

const accepted = (names: readonly string[]) =>
  Object.fromEntries(names.map((n) => [n, z.unknown().optional()])) as Record<
    string,
    z.ZodOptional<z.ZodUnknown>
  >;

/** `host:port`, the address form of Istio's zipkin, lightstep and datadog tracers. */
const hostPort = () =>
  z.string().superRefine((a, ctx) => {
    const m = a.match(/^(\[[0-9a-fA-F:.]+\]|[^:/\s]+):(\d+)$/);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535)
      addIssue(
        ctx,
        Codes.HOST,
        `"${a}" is not a host:port address`,
        [],
        'write for example "zipkin.istio-system:9411"',
      );
  });

/** A gRPC target (OpenCensus agent): host:port, dns:[//authority/]host[:port] or unix:path. */
const grpcTarget = () =>
  z.string().superRefine((a, ctx) => {
    const ok =
      /^(\[[0-9a-fA-F:.]+\]|[^:/\s]+):(\d+)$/.test(a) ||
      /^dns:(\/\/[^/]*\/)?[^/\s:]+(:\d+)?$/.test(a) ||
      /^unix:\S+$/.test(a);
    if (!ok)
      addIssue(
        ctx,
        Codes.HOST,
        `"${a}" is not a gRPC address`,
        [],
        'write host:port ("otel-collector.observability:55678"), dns:///host:port or unix:/path',
      );
  });

const maxTagLength = () => z.number().int().nonnegative().optional();

/** ProxyConfig.tracing (`meshConfig.defaultConfig.tracing`): one tracer, sampling, custom tags. */
export const TRACER_KINDS = ["zipkin", "lightstep", "datadog", "stackdriver", "openCensusAgent"] as const;

const proxyTracing = obj({
  sampling: percentValue().optional(),
  zipkin: obj({ address: hostPort() }).optional(),
  lightstep: obj({ address: hostPort(), accessToken: z.string().optional() }).optional(),
  datadog: obj({ address: hostPort() }).optional(),
  stackdriver: obj({
    debug: z.boolean().optional(),
    maxNumberOfAttributes: z.number().int().nonnegative().optional(),
    maxNumberOfAnnotations: z.number().int().nonnegative().optional(),
    maxNumberOfMessageEvents: z.number().int().nonnegative().optional(),
  }).optional(),
  openCensusAgent: obj({
    address: grpcTarget().optional(),
    context: z.array(z.enum(TRACE_CONTEXTS)).optional(),
  }).optional(),
  // Protobuf JSON accepts the field's proto name too; Istio's own docs write max_path_tag_length.
  maxPathTagLength: z.number().int().nonnegative().optional(),
  max_path_tag_length: z.number().int().nonnegative().optional(),
  customTags: z.record(z.string(), customTag()).optional(),
  custom_tags: z.record(z.string(), customTag()).optional(),
  tlsSettings: z.unknown().optional(),
}).superRefine((t, ctx) => {
  if (ctx.issues.length > 0) return;
  const tracers = TRACER_KINDS.filter((k) => t[k] !== undefined);
  if (tracers.length > 1)
    addIssue(
      ctx,
      Codes.ONE_OF,
      `use only one tracer (found ${tracers.join(" and ")})`,
      [tracers[1] as string],
      "a proxy reports spans to one tracer",
    );
  for (const [camel, snake] of [
    ["maxPathTagLength", "max_path_tag_length"],
    ["customTags", "custom_tags"],
  ] as const)
    if (t[camel] !== undefined && t[snake] !== undefined)
      addIssue(ctx, Codes.ONE_OF, `${camel} and ${snake} are the same field; write it once`, [snake]);
});
export type ProxyTracingSpec = z.output<typeof proxyTracing>;

/** ProxyConfig fields that configure the proxy process itself; Skein's sidecar does not read them. */
export const OTHER_PROXY_CONFIG_FIELDS = [
  "configPath",
  "binaryPath",
  "serviceCluster",
  "drainDuration",
  "parentShutdownDuration",
  "discoveryAddress",
  "discoveryRefreshDelay",
  "zipkinAddress",
  "statsdUdpAddress",
  "envoyMetricsServiceAddress",
  "proxyAdminPort",
  "availabilityZone",
  "controlPlaneAuthPolicy",
  "customConfigFile",
  "statNameLength",
  "concurrency",
  "proxyBootstrapTemplatePath",
  "interceptionMode",
  "sds",
  "envoyAccessLogService",
  "envoyMetricsService",
  "proxyMetadata",
  "runtimeValues",
  "statusPort",
  "extraStatTags",
  "gatewayTopology",
  "terminationDrainDuration",
  "meshId",
  "readinessProbe",
  "proxyStatsMatcher",
  "holdApplicationUntilProxyStarts",
  "caCertificatesPem",
  "image",
  "privateKeyProvider",
  "proxyHeaders",
  "fileFlushInterval",
  "fileFlushMinSizeKb",
  "tracingServiceName",
] as const;

const defaultConfig = obj({ tracing: proxyTracing.optional(), ...accepted(OTHER_PROXY_CONFIG_FIELDS) });

// ── Extension providers ─────────────────────────────────────────────────────────────────────────────

const service = () => ({ service: nonEmpty("service"), port: port() });
const logFormat = () =>
  obj({ text: z.string().optional(), labels: z.record(z.string(), z.unknown()).optional() }).optional();
const alsFields = () => ({
  ...service(),
  logName: z.string().optional(),
  filterStateObjectsToLog: z.array(z.string()).optional(),
  additionalRequestHeadersToLog: z.array(z.string()).optional(),
  additionalResponseHeadersToLog: z.array(z.string()).optional(),
  additionalResponseTrailersToLog: z.array(z.string()).optional(),
});
const requestBody = () =>
  obj({
    maxRequestBytes: z.number().int().nonnegative().optional(),
    allowPartialMessage: z.boolean().optional(),
    packAsBytes: z.boolean().optional(),
  }).optional();

/** Each provider kind and the fields of its body. */
const PROVIDER_KINDS = {
  zipkin: obj({
    ...service(),
    maxTagLength: maxTagLength(),
    enable64bitTraceId: z.boolean().optional(),
    path: z.string().optional(),
    headers: z.array(z.unknown()).optional(),
    traceContextOption: z.enum(["USE_B3", "USE_B3_WITH_W3C_PROPAGATION"]).optional(),
    timeout: duration({ min: 1 }).optional(),
  }),
  lightstep: obj({ ...service(), accessToken: z.string().optional(), maxTagLength: maxTagLength() }),
  datadog: obj({ ...service(), maxTagLength: maxTagLength() }),
  stackdriver: obj({
    debug: z.boolean().optional(),
    maxNumberOfAttributes: z.number().int().nonnegative().optional(),
    maxNumberOfAnnotations: z.number().int().nonnegative().optional(),
    maxNumberOfMessageEvents: z.number().int().nonnegative().optional(),
    maxTagLength: maxTagLength(),
    logging: z.unknown().optional(),
  }),
  opencensus: obj({
    ...service(),
    maxTagLength: maxTagLength(),
    context: z.array(z.enum(TRACE_CONTEXTS)).optional(),
  }),
  skywalking: obj({ ...service(), accessToken: z.string().optional() }),
  opentelemetry: obj({
    ...service(),
    maxTagLength: maxTagLength(),
    http: obj({
      path: z.string().optional(),
      timeout: duration({ min: 1 }).optional(),
      headers: z.array(z.unknown()).optional(),
    }).optional(),
    grpc: obj({
      timeout: duration({ min: 1 }).optional(),
      initialMetadata: z.array(z.unknown()).optional(),
    }).optional(),
    resourceDetectors: z.unknown().optional(),
    dynatraceSampler: z.unknown().optional(),
  }),
  prometheus: obj({}),
  envoyFileAccessLog: obj({ path: z.string().optional(), logFormat: logFormat() }),
  envoyOtelAls: obj({ ...service(), logName: z.string().optional(), logFormat: logFormat() }),
  envoyHttpAls: obj(alsFields()),
  envoyTcpAls: obj(alsFields()),
  envoyExtAuthzHttp: obj({
    ...service(),
    timeout: duration({ min: 1 }).optional(),
    pathPrefix: z.string().optional(),
    failOpen: z.boolean().optional(),
    clearRouteCache: z.boolean().optional(),
    statusOnError: z.string().optional(),
    includeHeadersInCheck: z.array(z.string()).optional(),
    includeRequestHeadersInCheck: z.array(z.string()).optional(),
    includeAdditionalHeadersInCheck: z.record(z.string(), z.string()).optional(),
    includeRequestBodyInCheck: requestBody(),
    headersToUpstreamOnAllow: z.array(z.string()).optional(),
    headersToDownstreamOnDeny: z.array(z.string()).optional(),
    headersToDownstreamOnAllow: z.array(z.string()).optional(),
  }),
  envoyExtAuthzGrpc: obj({
    ...service(),
    timeout: duration({ min: 1 }).optional(),
    failOpen: z.boolean().optional(),
    clearRouteCache: z.boolean().optional(),
    statusOnError: z.string().optional(),
    includeRequestBodyInCheck: requestBody(),
  }),
  sds: obj({ name: nonEmpty("name") }),
};
export const EXTENSION_PROVIDER_KINDS = Object.keys(PROVIDER_KINDS) as (keyof typeof PROVIDER_KINDS)[];

const extensionProvider = obj({
  name: nonEmpty("provider name"),
  ...Object.fromEntries(Object.entries(PROVIDER_KINDS).map(([k, s]) => [k, s.optional()])),
}).superRefine((p, ctx) => {
  if (ctx.issues.length > 0) return;
  const kinds = EXTENSION_PROVIDER_KINDS.filter((k) => (p as Record<string, unknown>)[k] !== undefined);
  if (kinds.length !== 1)
    addIssue(
      ctx,
      Codes.ONE_OF,
      kinds.length === 0
        ? `extension provider "${p.name}" needs a kind`
        : `extension provider "${p.name}" has more than one kind (${kinds.join(", ")})`,
      kinds.length > 1 ? [kinds[1] as string] : [],
      `use one of ${EXTENSION_PROVIDER_KINDS.join(", ")}, e.g. \`opentelemetry: {service: otel-collector.observability.svc.cluster.local, port: 4317}\``,
    );
});

/** Providers Istio's default mesh configuration always defines. */
export const BUILTIN_PROVIDERS: readonly string[] = ["prometheus", "stackdriver", "envoy"];

// ── MeshConfig ──────────────────────────────────────────────────────────────────────────────────────

/** MeshConfig fields of Istio's control plane and installation that Skein does not act on. */
export const OTHER_MESH_CONFIG_FIELDS = [
  "proxyListenPort",
  "proxyInboundListenPort",
  "proxyHttpPort",
  "connectTimeout",
  "protocolDetectionTimeout",
  "tcpKeepalive",
  "ingressClass",
  "ingressService",
  "ingressControllerMode",
  "ingressSelector",
  "enableEnvoyAccessLogService",
  "disableEnvoyListenerLog",
  "inboundTrafficPolicy",
  "configSources",
  "enableAutoMtls",
  "trustDomainAliases",
  "caCertificates",
  "defaultServiceExportTo",
  "defaultVirtualServiceExportTo",
  "defaultDestinationRuleExportTo",
  "localityLbSetting",
  "dnsRefreshRate",
  "h2UpgradePolicy",
  "inboundClusterStatName",
  "outboundClusterStatName",
  "certificates",
  "serviceSettings",
  "enablePrometheusMerge",
  "verifyCertificateAtClient",
  "ca",
  "discoverySelectors",
  "pathNormalization",
  "defaultHttpRetryPolicy",
  "meshMTLS",
  "tlsDefaults",
  "serviceScopeConfigs",
] as const;

export const meshConfigSpec = obj({
  enableTracing: z.boolean().optional(),
  accessLogFile: z.string().optional(),
  accessLogEncoding: z.enum(["TEXT", "JSON"]).optional(),
  accessLogFormat: z.string().optional(),
  outboundTrafficPolicy: obj({
    mode: z.enum(["ALLOW_ANY", "REGISTRY_ONLY"]).optional(),
    egressProxy: z.unknown().optional(),
  }).optional(),
  trustDomain: nonEmpty("trustDomain").optional(),
  rootNamespace: z
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
  defaultConfig: defaultConfig.optional(),
  extensionProviders: z.array(extensionProvider).optional(),
  defaultProviders: obj({
    tracing: z.array(z.string()).optional(),
    metrics: z.array(z.string()).optional(),
    accessLogging: z.array(z.string()).optional(),
  }).optional(),
  ...accepted(OTHER_MESH_CONFIG_FIELDS),
}).superRefine((m, ctx) => {
  if (ctx.issues.length > 0) return;
  const names = new Map<string, number>();
  m.extensionProviders?.forEach((p, i) => {
    const first = names.get(p.name);
    if (first !== undefined)
      addIssue(
        ctx,
        Codes.INVALID,
        `extension provider name "${p.name}" is used twice (first at extensionProviders[${first}])`,
        ["extensionProviders", i, "name"],
        "give each provider a unique name",
      );
    else names.set(p.name, i);
  });
  for (const list of ["tracing", "metrics", "accessLogging"] as const)
    m.defaultProviders?.[list]?.forEach((n, i) => {
      if (!names.has(n) && !BUILTIN_PROVIDERS.includes(n))
        addIssue(
          ctx,
          Codes.INVALID,
          `default ${list} provider "${n}" is not one of extensionProviders`,
          ["defaultProviders", list, i],
          `define it under extensionProviders, or use one of: ${[...names.keys(), ...BUILTIN_PROVIDERS].join(", ")}`,
        );
    });
});
export type MeshConfigSpec = z.output<typeof meshConfigSpec>;

/** IstioOperator spec fields that describe the installation rather than the mesh. */
export const INSTALL_ONLY_FIELDS = [
  "profile",
  "installPackagePath",
  "hub",
  "tag",
  "resourceSuffix",
  "namespace",
  "revision",
  "compatibilityVersion",
  "components",
  "addonComponents",
  "values",
  "unvalidatedValues",
] as const;

export const istioOperatorSpec = obj({
  meshConfig: meshConfigSpec.optional(),
  ...accepted(INSTALL_ONLY_FIELDS),
});
export type IstioOperatorSpec = z.output<typeof istioOperatorSpec>;

export const operatorKinds = [
  defineKind({
    group: INSTALL_GROUP,
    kind: "IstioOperator",
    versions: ["v1alpha1"],
    // It configures the whole mesh; its namespace (usually istio-system) does not scope anything.
    namespaced: false,
    spec: istioOperatorSpec,
    defaultName: "installed-state",
  }),
];
