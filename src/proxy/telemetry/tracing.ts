// The sidecar's tracer: OpenTelemetry SDK tracer providers (one per collector and workload, each with a
// batching processor and an exporter that sends to a host of the collector cluster), the propagation formats
// (W3C trace context, B3 multi- and single-header) and the sampling decision (an upstream decision wins; else
// the HCM's random sampling). Spans are started and ended by the tracing filter (src/proxy/filters/tracing).
import {
  type Context,
  createContextKey,
  isSpanContextValid,
  ROOT_CONTEXT,
  type SpanContext,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from "@opentelemetry/api";
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter as OtlpGrpcExporter } from "@opentelemetry/exporter-trace-otlp-grpc";
import { OTLPTraceExporter as OtlpHttpExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { ZipkinExporter } from "@opentelemetry/exporter-zipkin";
import { B3InjectEncoding, B3Propagator } from "@opentelemetry/propagator-b3";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  type ReadableSpan,
  type Sampler,
  SamplingDecision,
  type SamplingResult,
  type SpanExporter,
} from "@opentelemetry/sdk-trace-base";
import type { PropagationFormat, TracingConfig, TracingProviderConfig } from "../config/tracing.js";
import type { LocalNode } from "../node.js";
import type { HeaderRecord, IncomingHeaders } from "../router/headers.js";
import type { ClusterManager } from "../upstream/types.js";

export const TracingCodes = {
  /** The collector cluster has no host to send spans to (unknown cluster, or no healthy endpoint). */
  NO_COLLECTOR: "SKEIN_E_TRACING_NO_COLLECTOR",
} as const;

const getter: TextMapGetter<IncomingHeaders> = {
  keys: (h) => Object.keys(h),
  get: (h, key) => h[key],
};
const setter: TextMapSetter<HeaderRecord> = {
  set: (h, key, value) => {
    h[key] = value;
  },
};

const w3c = new W3CTraceContextPropagator();
const b3Multi = new B3Propagator({ injectEncoding: B3InjectEncoding.MULTI_HEADER });
const b3Single = new B3Propagator({ injectEncoding: B3InjectEncoding.SINGLE_HEADER });

/** A parent found in the request headers, and the sampling decision it carries (undefined: none, decide here). */
export interface ExtractedParent {
  context: Context;
  spanContext: SpanContext;
  format: PropagationFormat;
  sampled: boolean | undefined;
}

/** The first configured format whose headers carry a valid parent (the formats are tried in order). */
export function extractParent(
  headers: IncomingHeaders,
  formats: readonly PropagationFormat[],
): ExtractedParent | undefined {
  for (const format of formats) {
    const ctx = (format === "B3" ? b3Multi : w3c).extract(ROOT_CONTEXT, headers, getter);
    const sc = trace.getSpanContext(ctx);
    if (sc && isSpanContextValid(sc))
      return { context: ctx, spanContext: sc, format, sampled: upstreamDecision(headers, format) };
  }
  return undefined;
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The sampling decision the caller made, in the given format: W3C's sampled flag (always present), B3's
 * `X-B3-Sampled`/`X-B3-Flags` or the single header's third field; undefined when B3 defers the decision.
 */
export function upstreamDecision(headers: IncomingHeaders, format: PropagationFormat): boolean | undefined {
  if (format === "W3C_TRACE_CONTEXT") {
    const tp = first(headers.traceparent) ?? "";
    const flags = Number.parseInt(tp.split("-")[3] ?? "", 16);
    return Number.isNaN(flags) ? undefined : (flags & 1) === 1;
  }
  const single = first(headers.b3);
  if (single !== undefined) {
    const parts = single.split("-");
    const state = parts.length === 1 ? parts[0] : parts[2];
    if (state === "1" || state === "d") return true;
    if (state === "0") return false;
    return undefined;
  }
  if (first(headers["x-b3-flags"]) === "1") return true;
  const sampled = first(headers["x-b3-sampled"]);
  if (sampled === "1" || sampled === "true") return true;
  if (sampled === "0" || sampled === "false") return false;
  return undefined;
}

/**
 * Whether a request is traced: the upstream decision when there is one; else `x-client-trace-id` forces it
 * under client sampling, and otherwise random sampling decides; overall sampling caps both local decisions.
 * `random` is uniform in [0, 1).
 */
export function sampleDecision(
  config: Pick<TracingConfig, "randomSamplingPercent" | "clientSamplingPercent" | "overallSamplingPercent">,
  upstream: boolean | undefined,
  clientForced: boolean,
  random: () => number,
): boolean {
  if (upstream !== undefined) return upstream;
  const local = clientForced
    ? random() * 100 < config.clientSamplingPercent
    : random() * 100 < config.randomSamplingPercent;
  return local && (config.overallSamplingPercent >= 100 || random() * 100 < config.overallSamplingPercent);
}

/** Writes the span's context into the upstream request headers in every configured format. */
export function injectContext(
  ctx: Context,
  headers: HeaderRecord,
  formats: readonly PropagationFormat[],
  singleB3: boolean,
): void {
  for (const format of formats) {
    if (format === "W3C_TRACE_CONTEXT") w3c.inject(ctx, headers, setter);
    else {
      b3Multi.inject(ctx, headers, setter);
      // The single header too when the caller used it, so an application that reads only `b3` keeps working.
      if (singleB3) b3Single.inject(ctx, headers, setter);
    }
  }
}

const DECISION = createContextKey("skein.tracing.decision");

/** Samples as the decision put in the context says (sampleDecision made it, with the request's headers). */
class DecisionSampler implements Sampler {
  shouldSample(ctx: Context): SamplingResult {
    return {
      decision:
        ctx.getValue(DECISION) === true ? SamplingDecision.RECORD_AND_SAMPLED : SamplingDecision.NOT_RECORD,
    };
  }
  toString(): string {
    return "SkeinDecisionSampler";
  }
}

/** The context to start a span in: the parent (or none) and the sampling decision. */
export function spanContextFor(parent: ExtractedParent | undefined, sampled: boolean): Context {
  return (parent?.context ?? ROOT_CONTEXT).setValue(DECISION, sampled);
}

/**
 * Sends spans to a host of the collector cluster, as Envoy's tracers send to their collector cluster. One
 * exporter per host address, made on first use.
 */
class ClusterExporter implements SpanExporter {
  private readonly exporters = new Map<string, SpanExporter>();
  constructor(
    private readonly provider: TracingProviderConfig,
    private readonly clusters: ClusterManager,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    const host = this.clusters.get(this.provider.cluster)?.pick({});
    if (!host) {
      const error = new Error(
        `${TracingCodes.NO_COLLECTOR}: no host in collector cluster ${this.provider.cluster}; spans dropped`,
      );
      done({ code: ExportResultCode.FAILED, error });
      return;
    }
    let exporter = this.exporters.get(host.key);
    if (!exporter) {
      exporter = makeExporter(this.provider, host.key);
      this.exporters.set(host.key, exporter);
    }
    exporter.export(spans, done);
  }

  async forceFlush(): Promise<void> {
    await Promise.all([...this.exporters.values()].map((e) => e.forceFlush?.()));
  }

  async shutdown(): Promise<void> {
    await Promise.all([...this.exporters.values()].map((e) => e.shutdown()));
  }
}

function makeExporter(p: TracingProviderConfig, hostPort: string): SpanExporter {
  if (p.kind === "otlp-grpc") return new OtlpGrpcExporter({ url: `http://${hostPort}` });
  if (p.kind === "otlp-http") return new OtlpHttpExporter({ url: `http://${hostPort}${p.path}` });
  return new ZipkinExporter({
    url: `http://${hostPort}${p.path}`,
    ...(p.hostname && { headers: { host: p.hostname } }),
  });
}

/** One tracer provider per collector, for one sidecar (its resource names the workload). */
export class Tracers {
  private readonly providers = new Map<string, BasicTracerProvider>();
  constructor(
    private readonly node: LocalNode,
    private readonly clusters: ClusterManager,
  ) {}

  tracer(p: TracingProviderConfig) {
    const key = JSON.stringify(p);
    let provider = this.providers.get(key);
    if (!provider) {
      // Istio's service name: <app>.<namespace> (the OpenTelemetry config's own name when it sets one).
      const serviceName =
        p.kind === "zipkin" || p.serviceName === "unknown_service:envoy"
          ? `${this.node.app}.${this.node.namespace}`
          : p.serviceName;
      provider = new BasicTracerProvider({
        resource: resourceFromAttributes({ "service.name": serviceName }),
        sampler: new DecisionSampler(),
        spanProcessors: [
          new BatchSpanProcessor(new ClusterExporter(p, this.clusters), { scheduledDelayMillis: 1000 }),
        ],
      });
      this.providers.set(key, provider);
    }
    return provider.getTracer("skein-proxy");
  }

  /** Sends what is buffered. */
  async flush(): Promise<void> {
    await Promise.all([...this.providers.values()].map((p) => p.forceFlush()));
  }

  /** Flushes and stops every provider (sidecar shutdown). */
  async shutdown(): Promise<void> {
    const all = [...this.providers.values()];
    this.providers.clear();
    await Promise.all(all.map((p) => p.shutdown()));
  }
}

/** Tracers by sidecar node id: the filter factory makes them, the sidecar flushes them when it stops. */
const byNode = new Map<string, Tracers>();

export function tracersFor(node: LocalNode, clusters: ClusterManager): Tracers {
  let t = byNode.get(node.id);
  if (!t) {
    t = new Tracers(node, clusters);
    byNode.set(node.id, t);
  }
  return t;
}

/** Flushes and stops the tracers of one sidecar; its buffered spans are sent first. */
export async function shutdownTracing(nodeId: string): Promise<void> {
  const t = byNode.get(nodeId);
  byNode.delete(nodeId);
  await t?.shutdown();
}
