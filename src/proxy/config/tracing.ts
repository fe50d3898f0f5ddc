// HttpConnectionManager.tracing → TracingConfig: the provider (OpenTelemetry over gRPC or HTTP, Zipkin v2 JSON),
// the collector cluster, sampling, custom tags, and the propagation formats. The formats come from the
// listener's `skein.tracing` metadata (see src/translate/tracing.ts), else the provider's own: W3C trace
// context for OpenTelemetry, B3 for Zipkin, as Envoy's tracers propagate.
import type { Metadata__Output } from "../../xds/generated/envoy/config/core/v3/Metadata.js";
import type { OpenTelemetryConfig__Output } from "../../xds/generated/envoy/config/trace/v3/OpenTelemetryConfig.js";
import type { ZipkinConfig__Output } from "../../xds/generated/envoy/config/trace/v3/ZipkinConfig.js";
import type { _envoy_extensions_filters_network_http_connection_manager_v3_HttpConnectionManager_Tracing__Output as HcmTracing } from "../../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.js";
import { type At, decodeAny, headerName, names, onlyFields, wrapped } from "./fields.js";

export const OPENTELEMETRY_CONFIG = "envoy.config.trace.v3.OpenTelemetryConfig";
export const ZIPKIN_CONFIG = "envoy.config.trace.v3.ZipkinConfig";
/** The chain name of the tracing filter the listener puts first when its HCM traces. */
export const TRACING_FILTER = "skein.filters.http.tracing";
/** The listener metadata namespace carrying the propagation formats. */
export const TRACING_METADATA = "skein.tracing";

export type PropagationFormat = "W3C_TRACE_CONTEXT" | "B3";

/** Where spans go. The collector is a cluster; each export goes to one of its hosts. */
export type TracingProviderConfig =
  | { kind: "otlp-grpc"; cluster: string; authority: string; serviceName: string }
  | { kind: "otlp-http"; cluster: string; path: string; serviceName: string }
  | { kind: "zipkin"; cluster: string; path: string; hostname: string; traceId128: boolean };

/** A span tag taken from a literal, the proxy's environment or a request header. */
export type SpanTagSource =
  | { tag: string; kind: "literal"; value: string }
  | { tag: string; kind: "environment"; name: string; defaultValue: string }
  | { tag: string; kind: "header"; name: string; defaultValue: string };

export interface TracingConfig {
  kind: "tracing";
  provider: TracingProviderConfig;
  /** Percent of requests without an upstream decision that start a sampled trace. */
  randomSamplingPercent: number;
  /** Percent of requests forced by `x-client-trace-id` that are traced (Envoy client_sampling). */
  clientSamplingPercent: number;
  /** Cap applied after the others (Envoy overall_sampling). */
  overallSamplingPercent: number;
  customTags: SpanTagSource[];
  maxPathTagLength: number;
  /** In the order they are tried when extracting; all are injected. */
  propagation: PropagationFormat[];
}

const TRACING_FIELDS = names(
  "clientSampling",
  "randomSampling",
  "overallSampling",
  "verbose",
  "maxPathTagLength",
  "customTags",
  "provider",
  "spawnUpstreamSpan",
);

function percent(p: { value: number } | null, fallback: number, at: At): number {
  if (!p) return fallback;
  if (!(p.value >= 0 && p.value <= 100)) return at.field("value").invalid("must be between 0 and 100");
  return p.value;
}

/** Compiles the HCM's tracing field; the formats default to the provider's own. */
export function compileHcmTracing(t: HcmTracing, at: At): TracingConfig {
  onlyFields(
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.Tracing",
    t,
    TRACING_FIELDS,
    at,
  );
  // Sidecar client spans are the connection manager's own spans, as Istio configures sidecars.
  if (wrapped(t.spawnUpstreamSpan, false))
    at.field("spawnUpstreamSpan").unsupported(
      "upstream spans per attempt are not supported by the Skein sidecar",
    );
  if (!t.provider?.typedConfig)
    return at.field("provider").invalid("a tracing provider with typed_config is required");
  const pat = at.field("provider").field("typedConfig");
  const decoded = decodeAny(t.provider.typedConfig, pat);
  let provider: TracingProviderConfig;
  let propagation: PropagationFormat[];
  if (decoded.typeName === OPENTELEMETRY_CONFIG) {
    provider = openTelemetry(decoded.message as unknown as OpenTelemetryConfig__Output, pat);
    propagation = ["W3C_TRACE_CONTEXT"];
  } else if (decoded.typeName === ZIPKIN_CONFIG) {
    provider = zipkin(decoded.message as unknown as ZipkinConfig__Output, pat);
    propagation = ["B3"];
  } else
    return pat.unsupported(
      `tracer ${decoded.typeName}: the Skein sidecar speaks OpenTelemetry (OTLP) and Zipkin`,
    );
  return {
    kind: "tracing",
    provider,
    randomSamplingPercent: percent(t.randomSampling, 100, at.field("randomSampling")),
    clientSamplingPercent: percent(t.clientSampling, 100, at.field("clientSampling")),
    overallSamplingPercent: percent(t.overallSampling, 100, at.field("overallSampling")),
    customTags: t.customTags.map((c, i) => customTag(c, at.field("customTags").index(i))),
    maxPathTagLength: wrapped(t.maxPathTagLength, 256),
    propagation,
  };
}

function openTelemetry(c: OpenTelemetryConfig__Output, at: At): TracingProviderConfig {
  onlyFields(OPENTELEMETRY_CONFIG, c, names("grpcService", "httpService", "serviceName"), at);
  const serviceName = c.serviceName || "unknown_service:envoy";
  if (c.grpcService) {
    const g = c.grpcService;
    if (g.targetSpecifier !== "envoyGrpc" || !g.envoyGrpc)
      return at.field("grpcService").unsupported("only envoy_grpc (a cluster) is supported");
    if (!g.envoyGrpc.clusterName)
      return at.field("grpcService").field("envoyGrpc").field("clusterName").invalid("must not be empty");
    return {
      kind: "otlp-grpc",
      cluster: g.envoyGrpc.clusterName,
      authority: g.envoyGrpc.authority,
      serviceName,
    };
  }
  if (c.httpService?.httpUri) {
    const u = c.httpService.httpUri;
    const uat = at.field("httpService").field("httpUri");
    if (!u.cluster) return uat.field("cluster").invalid("must name the collector cluster");
    let path: string;
    try {
      path = new URL(u.uri).pathname;
    } catch {
      return uat.field("uri").invalid(`${JSON.stringify(u.uri)} is not a URL`);
    }
    return { kind: "otlp-http", cluster: u.cluster, path: path === "/" ? "/v1/traces" : path, serviceName };
  }
  return at.invalid("one of grpc_service or http_service is required (where to send spans)");
}

function zipkin(c: ZipkinConfig__Output, at: At): TracingProviderConfig {
  onlyFields(
    ZIPKIN_CONFIG,
    c,
    names(
      "collectorCluster",
      "collectorEndpoint",
      "traceId_128bit",
      "sharedSpanContext",
      "collectorEndpointVersion",
      "collectorHostname",
    ),
    at,
  );
  if (!c.collectorCluster) return at.field("collectorCluster").invalid("must not be empty");
  if (!c.collectorEndpoint.startsWith("/"))
    return at.field("collectorEndpoint").invalid("must be a path, such as /api/v2/spans");
  if (c.collectorEndpointVersion !== "HTTP_JSON")
    at.field("collectorEndpointVersion").unsupported(
      `${c.collectorEndpointVersion}: the Skein sidecar sends Zipkin v2 JSON (HTTP_JSON)`,
    );
  if (wrapped(c.sharedSpanContext, true))
    at.field("sharedSpanContext").unsupported(
      "client and server spans always have their own ids in the Skein sidecar; set it false",
    );
  return {
    kind: "zipkin",
    cluster: c.collectorCluster,
    path: c.collectorEndpoint,
    hostname: c.collectorHostname,
    traceId128: c.traceId_128bit,
  };
}

type EnvoyCustomTag = HcmTracing["customTags"][number];

function customTag(c: EnvoyCustomTag, at: At): SpanTagSource {
  if (!c.tag) return at.field("tag").invalid("must not be empty");
  if (c.type === "literal" && c.literal) return { tag: c.tag, kind: "literal", value: c.literal.value };
  if (c.type === "environment" && c.environment)
    return {
      tag: c.tag,
      kind: "environment",
      name: c.environment.name,
      defaultValue: c.environment.defaultValue,
    };
  if (c.type === "requestHeader" && c.requestHeader)
    return {
      tag: c.tag,
      kind: "header",
      name: headerName(c.requestHeader.name, at.field("requestHeader").field("name")),
      defaultValue: c.requestHeader.defaultValue,
    };
  return at.unsupported("only literal, environment and request_header custom tags are supported");
}

/** Applies the listener's `skein.tracing` metadata (`context`: W3C_TRACE_CONTEXT, B3) when present. */
export function applyTracingMetadata(config: TracingConfig, metadata: Metadata__Output | null, at: At): void {
  const entry = metadata?.filterMetadata?.[TRACING_METADATA];
  const list = entry?.fields?.context;
  if (!list) return;
  const cat = at.field("metadata").field("filterMetadata").key(TRACING_METADATA).field("context");
  const values = list.listValue?.values ?? [];
  if (values.length === 0) cat.invalid("must list at least one of W3C_TRACE_CONTEXT, B3");
  const formats: PropagationFormat[] = [];
  for (const [i, v] of values.entries()) {
    const s = v.stringValue;
    if (s !== "W3C_TRACE_CONTEXT" && s !== "B3") {
      cat.index(i).unsupported(`${JSON.stringify(s)}: the sidecar propagates W3C_TRACE_CONTEXT and B3`);
      continue;
    }
    if (!formats.includes(s)) formats.push(s);
  }
  config.propagation = formats;
}
