// Tracing for a sidecar's connection managers: the HttpConnectionManager `tracing` field (provider, sampling,
// custom tags), the cluster that reaches the collector, and the propagation formats.
//
// Which settings apply (Istio's order): Telemetry resources (root namespace, then the proxy's namespace, then
// those selecting the workload; later ones override fields the earlier set) over
// meshConfig.defaultConfig.tracing, and only while meshConfig.enableTracing or a Telemetry rule names a
// provider. The provider is the Telemetry rule's, else meshConfig.defaultProviders.tracing, else the tracer of
// defaultConfig.tracing (zipkin, or openCensusAgent spoken to as an OTLP/gRPC receiver: docs/observability.md).
//
// Propagation formats are not in Envoy's OpenTelemetryConfig or the bundled ZipkinConfig, so they travel as
// listener metadata under `skein.tracing` (`{context: ["W3C_TRACE_CONTEXT", "B3"]}`): filter_metadata in a
// namespace no Envoy extension reads, which a real Envoy accepts and ignores (it then propagates its
// provider's own format: W3C for OpenTelemetry, B3 for Zipkin, the same defaults the Skein sidecar uses
// when the metadata is absent).

import type { MeshModel, TelemetryPolicy, TraceContext } from "../model/types.js";
import type { Cluster } from "../xds/generated/envoy/config/cluster/v3/Cluster.js";
import type { Metadata } from "../xds/generated/envoy/config/core/v3/Metadata.js";
import type { _envoy_extensions_filters_network_http_connection_manager_v3_HttpConnectionManager_Tracing as HcmTracing } from "../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.js";
import type { CustomTag as EnvoyCustomTag } from "../xds/generated/envoy/type/tracing/v3/CustomTag.js";
import { outboundClusterName } from "./names.js";
import { telemetryLevel, telemetryModeMatches } from "./policy-applies.js";
import type { ProxyView } from "./scope.js";
import { FILTER, typed } from "./typed.js";
import { bool, compare, duration, u32 } from "./values.js";

/** The listener metadata namespace that carries the propagation formats. */
export const TRACING_METADATA = "skein.tracing";
/** Istio's default sampling when neither meshConfig nor Telemetry says (PILOT_TRACE_SAMPLING). */
export const DEFAULT_SAMPLING_PERCENT = 1;
/** Istio's default max_path_tag_length. */
export const DEFAULT_MAX_PATH_TAG_LENGTH = 256;
/** Where a Zipkin collector takes v2 JSON spans. */
export const ZIPKIN_ENDPOINT = "/api/v2/spans";

/** The provider a proxy's spans go to, resolved from Telemetry, extension providers or defaultConfig.tracing. */
export interface TracingProvider {
  kind: "zipkin" | "opentelemetry";
  host: string;
  port: number;
  /** The formats the sidecar extracts and injects. */
  context: TraceContext[];
}

/** What tracing is for one proxy and one side (inbound: server spans, outbound: client spans). */
export interface TracingPlan {
  provider: TracingProvider;
  samplingPercent: number;
  customTags: EnvoyCustomTag[];
  maxPathTagLength: number;
  /** The cluster spans are sent to. */
  cluster: string;
}

type Side = "inbound" | "outbound";

/** The HCM `tracing` for one side of a sidecar, or undefined when tracing is off for it. */
export function hcmTracing(view: ProxyView, side: Side): HcmTracing | undefined {
  const plan = tracingPlan(view, side);
  if (!plan) return undefined;
  const { provider } = plan;
  const authority = `${provider.host}:${provider.port}`;
  const typedConfig =
    provider.kind === "zipkin"
      ? typed("envoy.config.trace.v3.ZipkinConfig", {
          collectorCluster: plan.cluster,
          collectorEndpoint: ZIPKIN_ENDPOINT,
          collectorEndpointVersion: "HTTP_JSON",
          collectorHostname: authority,
          traceId_128bit: true,
          // As Istio: client and server spans are separate spans, each with its own id.
          sharedSpanContext: bool(false),
        })
      : typed("envoy.config.trace.v3.OpenTelemetryConfig", {
          grpcService: { envoyGrpc: { clusterName: plan.cluster, authority }, timeout: duration(1000) },
          serviceName: serviceName(view),
        });
  return {
    provider: {
      name: provider.kind === "zipkin" ? "envoy.tracers.zipkin" : "envoy.tracers.opentelemetry",
      typedConfig,
    },
    randomSampling: { value: plan.samplingPercent },
    customTags: plan.customTags,
    maxPathTagLength: u32(plan.maxPathTagLength),
    spawnUpstreamSpan: bool(false),
  };
}

/** The listener metadata naming the propagation formats, for listeners whose HCM traces. */
export function tracingMetadata(view: ProxyView, side: Side): Metadata | undefined {
  const plan = tracingPlan(view, side);
  if (!plan) return undefined;
  return {
    filterMetadata: {
      [TRACING_METADATA]: {
        fields: {
          context: { listValue: { values: plan.provider.context.map((c) => ({ stringValue: c })) } },
        },
      },
    },
  };
}

/** The collector clusters a sidecar's tracing needs and does not already have (one per collector). */
export function tracingClusters(view: ProxyView): Cluster[] {
  const out = new Map<string, Cluster>();
  for (const side of ["inbound", "outbound"] as const) {
    const plan = tracingPlan(view, side);
    if (!plan || out.has(plan.cluster) || isMeshCluster(view, plan)) continue;
    const { host, port } = plan.provider;
    const ip = /^\d{1,3}(\.\d{1,3}){3}$/.test(host);
    out.set(plan.cluster, {
      name: plan.cluster,
      type: ip ? "STATIC" : "STRICT_DNS",
      connectTimeout: duration(1000),
      lbPolicy: "ROUND_ROBIN",
      loadAssignment: {
        clusterName: plan.cluster,
        endpoints: [
          { lbEndpoints: [{ endpoint: { address: { socketAddress: { address: host, portValue: port } } } }] },
        ],
      },
      ...(plan.provider.kind === "opentelemetry" && {
        typedExtensionProtocolOptions: {
          [FILTER.httpProtocolOptions]: typed("envoy.extensions.upstreams.http.v3.HttpProtocolOptions", {
            explicitHttpConfig: { http2ProtocolOptions: {} },
          }),
        },
      }),
    });
  }
  return [...out.values()];
}

/** Resolves what tracing means for one side of a sidecar (undefined: no spans on that side). */
export function tracingPlan(view: ProxyView, side: Side): TracingPlan | undefined {
  if (view.proxy.kind !== "sidecar") return undefined;
  const model = view.model;
  const mc = model.meshConfig;
  const rule = telemetryTracing(model, view, side);
  if (rule?.disableSpanReporting) return undefined;
  const named = rule?.providers[0] ?? mc.defaultProviders?.tracing[0];
  if (!mc.enableTracing && !rule?.providers.length) return undefined;
  const provider = named !== undefined ? extensionProvider(model, named) : defaultConfigProvider(model);
  if (!provider) return undefined;
  const samplingPercent = clampPercent(
    rule?.randomSamplingPercentage ?? mc.tracing?.sampling ?? DEFAULT_SAMPLING_PERCENT,
  );
  const tags = { ...(mc.tracing?.customTags ?? {}), ...(rule?.customTags ?? {}) };
  const customTags = Object.keys(tags)
    .sort(compare)
    .map((tag): EnvoyCustomTag => {
      const t = tags[tag] as NonNullable<(typeof tags)[string]>;
      if (t.kind === "literal") return { tag, literal: { value: t.value } };
      if (t.kind === "environment")
        return { tag, environment: { name: t.name, defaultValue: t.defaultValue ?? "" } };
      return { tag, requestHeader: { name: t.name, defaultValue: t.defaultValue ?? "" } };
    });
  const plan: TracingPlan = {
    provider,
    samplingPercent,
    customTags,
    maxPathTagLength: mc.tracing?.maxPathTagLength ?? DEFAULT_MAX_PATH_TAG_LENGTH,
    cluster: `tracing|${provider.port}||${provider.host}`,
  };
  if (isMeshCluster(view, plan)) plan.cluster = outboundClusterName(provider.port, undefined, provider.host);
  return plan;
}

/** A collector that is a mesh service this proxy sees is reached through that service's own cluster. */
function isMeshCluster(view: ProxyView, plan: TracingPlan): boolean {
  const { host, port } = plan.provider;
  return view.services.some((v) => v.service.hostname === host && v.ports.some((p) => p.number === port));
}

function clampPercent(p: number): number {
  return Math.min(100, Math.max(0, p));
}

function serviceName(view: ProxyView): string {
  const w = view.proxy.workload;
  const app = w?.labels.app ?? w?.labels["app.kubernetes.io/name"] ?? w?.name ?? "unknown";
  return `${app}.${view.proxy.namespace}`;
}

function splitAddress(address: string): { host: string; port: number } | undefined {
  const i = address.lastIndexOf(":");
  if (i <= 0) return undefined;
  const port = Number(address.slice(i + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  return { host: address.slice(0, i), port };
}

/** defaultConfig.tracing's tracer: zipkin (B3, Zipkin v2 JSON) or openCensusAgent (its context, OTLP/gRPC). */
function defaultConfigProvider(model: MeshModel): TracingProvider | undefined {
  const t = model.meshConfig.tracing;
  const address = t?.tracer?.address ? splitAddress(t.tracer.address) : undefined;
  if (!t?.tracer || !address) return undefined;
  if (t.tracer.kind === "zipkin") return { kind: "zipkin", ...address, context: ["B3"] };
  if (t.tracer.kind === "openCensusAgent")
    return { kind: "opentelemetry", ...address, context: supported(t.context, ["W3C_TRACE_CONTEXT"]) };
  return undefined;
}

/** meshConfig.extensionProviders by name: zipkin propagates B3, opentelemetry W3C trace context. */
function extensionProvider(model: MeshModel, name: string): TracingProvider | undefined {
  const p = model.meshConfig.extensionProviders.find((e) => e.name === name);
  if (!p?.service || !p.port) return undefined;
  if (p.kind === "zipkin") return { kind: "zipkin", host: p.service, port: p.port, context: ["B3"] };
  if (p.kind === "opentelemetry")
    return { kind: "opentelemetry", host: p.service, port: p.port, context: ["W3C_TRACE_CONTEXT"] };
  return undefined;
}

/** The formats the sidecar speaks (GRPC_BIN and CLOUD_TRACE_CONTEXT are not); `fallback` when none is left. */
function supported(context: readonly TraceContext[], fallback: TraceContext[]): TraceContext[] {
  const out = context.filter((c) => c === "W3C_TRACE_CONTEXT" || c === "B3");
  return out.length > 0 ? [...new Set(out)] : fallback;
}

type TracingRule = TelemetryPolicy["tracing"][number];

/** The Telemetry tracing rule for this proxy and side: root namespace, then namespace, then workload. */
function telemetryTracing(model: MeshModel, view: ProxyView, side: Side): TracingRule | undefined {
  const rules = model.telemetry
    .map((p) => ({ p, level: telemetryLevel(view, p) }))
    .filter((x) => x.level >= 0)
    .sort((a, b) => a.level - b.level || compare(a.p.name, b.p.name))
    .map((x) => x.p.tracing[0])
    .filter((t): t is TracingRule => t !== undefined && telemetryModeMatches(t.match, side));
  if (rules.length === 0) return undefined;
  const merged: TracingRule = { providers: [], customTags: {} };
  for (const r of rules) {
    if (r.providers.length > 0) merged.providers = r.providers;
    if (r.randomSamplingPercentage !== undefined)
      merged.randomSamplingPercentage = r.randomSamplingPercentage;
    if (r.disableSpanReporting !== undefined) merged.disableSpanReporting = r.disableSpanReporting;
    merged.customTags = { ...merged.customTags, ...r.customTags };
  }
  return merged;
}

/** `{tracing}` for an HCM on this side, or nothing: spread into the HttpConnectionManager. */
export function hcmTracingField(view: ProxyView, side: Side): { tracing?: HcmTracing } {
  const tracing = hcmTracing(view, side);
  return tracing ? { tracing } : {};
}

/** `{metadata}` for a listener whose HCM traces, or nothing: spread into the Listener. */
export function tracingListenerMetadata(view: ProxyView, side: Side): { metadata?: Metadata } {
  const metadata = tracingMetadata(view, side);
  return metadata ? { metadata } : {};
}
