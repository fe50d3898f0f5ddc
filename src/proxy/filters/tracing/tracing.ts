// The tracing filter: first in the chain of a connection manager that traces (the listener config puts it
// there), so its span covers everything the request meets. Per request it extracts the caller's context,
// decides sampling, starts a SERVER span on inbound listeners or a CLIENT span on outbound ones, injects the
// span's context into the request going upstream, and ends the span with Envoy/Istio's tags when the request
// completes (StreamInfo.span, called by the listener). A filter rather than a listener hook: it is built only
// for listeners that trace, so a listener without tracing pays nothing, and it sees the resolved route.
import { randomUUID } from "node:crypto";
import {
  type Attributes,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import type { SpanTagSource, TracingConfig } from "../../config/tracing.js";
import type { FilterContext, FilterFactory, StreamFilter } from "../../router/chain.js";
import { Continue } from "../../router/chain.js";
import type { DownstreamRequest } from "../../router/downstream.js";
import { first, type HeaderRecord } from "../../router/headers.js";
import { formatResponseFlags, type StreamInfo } from "../../router/stream-info.js";
import {
  extractParent,
  injectContext,
  sampleDecision,
  spanContextFor,
  tracersFor,
} from "../../telemetry/tracing.js";

export { TRACING_FILTER } from "../../config/tracing.js";

/** The span of one request; StreamInfo.finish ends it with what happened. */
class RequestSpan {
  constructor(
    private readonly span: Span,
    private readonly filter: TracingFilter,
    private readonly url: string,
    private readonly userAgent: string | undefined,
    private readonly downstreamCluster: string,
  ) {}

  finish(info: StreamInfo): void {
    const span = this.span;
    if (!span.isRecording()) {
      span.end();
      return;
    }
    span.updateName(this.filter.operationName(info));
    const status = info.responseCode;
    const cluster = info.cluster ?? "-";
    const attrs: Attributes = {
      "http.url": this.url,
      "http.method": info.method,
      "http.protocol": info.protocol,
      "http.status_code": String(status),
      upstream_cluster: cluster,
      "upstream_cluster.name": cluster,
      response_flags: formatResponseFlags(info.responseFlags),
      request_size: String(info.bytesReceived),
      response_size: String(info.bytesSent),
      "peer.address": info.sourceAddress,
      downstream_cluster: this.downstreamCluster,
      "guid:x-request-id": info.requestId ?? "",
    };
    if (this.userAgent !== undefined) attrs.user_agent = this.userAgent;
    if (info.upstreamHost) attrs.upstream_address = info.upstreamHost;
    if (status >= 500 || status === 0) {
      attrs.error = "true";
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.setAttributes(attrs);
    span.end();
  }
}

class TracingFilter implements StreamFilter {
  private readonly kind: SpanKind;
  private readonly fixed: Attributes;
  constructor(
    private readonly config: TracingConfig,
    private readonly ctx: FilterContext,
  ) {
    this.kind = ctx.direction === "inbound" ? SpanKind.SERVER : SpanKind.CLIENT;
    const node = ctx.node;
    const labels = node.labels;
    this.fixed = {
      component: "proxy",
      node_id: node.id,
      "istio.canonical_service": labels["service.istio.io/canonical-name"] ?? node.app,
      "istio.canonical_revision": labels["service.istio.io/canonical-revision"] ?? node.version,
      "istio.namespace": node.namespace,
      // Istio's mesh id defaults to the trust domain.
      "istio.mesh_id": node.trustDomain,
    };
    for (const t of config.customTags) if (t.kind !== "header") this.fixed[t.tag] = tagValue(t, {});
  }

  decodeHeaders(req: DownstreamRequest): typeof Continue {
    const config = this.config;
    const headers = req.headers;
    const parent = extractParent(headers, config.propagation);
    const sampled = sampleDecision(
      config,
      parent?.sampled,
      headers["x-client-trace-id"] !== undefined,
      this.ctx.random,
    );
    const tracer = tracersFor(this.ctx.node, this.ctx.clusters).tracer(config.provider);
    const attributes: Attributes = { ...this.fixed };
    for (const t of config.customTags) if (t.kind === "header") attributes[t.tag] = tagValue(t, headers);
    const span = tracer.startSpan(
      req.authority,
      { kind: this.kind, attributes },
      spanContextFor(parent, sampled),
    );
    const out: HeaderRecord = {};
    const singleB3 = headers.b3 !== undefined;
    injectContext(trace.setSpan(parent?.context ?? ROOT_CONTEXT, span), out, config.propagation, singleB3);
    // Envoy makes x-request-id before tracing; the router keeps the one set here.
    if (headers["x-request-id"] === undefined && req.manager.config.generateRequestId)
      out["x-request-id"] = randomUUID();
    req.headers = { ...headers, ...out };
    const info = req.info;
    info.traceId = span.spanContext().traceId;
    const path =
      req.path.length > config.maxPathTagLength ? req.path.slice(0, config.maxPathTagLength) : req.path;
    info.span = new RequestSpan(
      span,
      this,
      `${req.scheme}://${req.authority}${path}`,
      first(headers["user-agent"]),
      first(headers["x-envoy-downstream-service-cluster"]) ?? "-",
    );
    return Continue;
  }

  /** Istio's operation name: the destination service's `<host>:<port>/*` (the route decorator it sets). */
  operationName(info: StreamInfo): string {
    const parts = info.cluster?.split("|");
    if (parts && parts[0] === "outbound" && parts.length === 4) return `${parts[3]}:${parts[1]}/*`;
    const authority = info.authority;
    const hasPort = /:\d+$/.test(authority);
    const port = info.listener.match(/_(\d+)$/)?.[1];
    return hasPort || !port ? `${authority}/*` : `${authority}:${port}/*`;
  }
}

function tagValue(t: SpanTagSource, headers: DownstreamRequest["headers"]): string {
  if (t.kind === "literal") return t.value;
  if (t.kind === "environment") return process.env[t.name] ?? t.defaultValue;
  return first(headers[t.name]) ?? t.defaultValue;
}

/** The factory the registry knows the filter by (TRACING_FILTER). */
export const createTracingFilter: FilterFactory = (config, _name, ctx) =>
  new TracingFilter(config as TracingConfig, ctx);
