// Tracing units: propagation formats (W3C trace context, B3 multi and single header) extracted and injected,
// the sampling decision (upstream wins, else random sampling, checked statistically), the translation of
// meshConfig / Telemetry / extension providers into the HCM `tracing` field, and the sidecar's compilation
// of it (with its NACK codes).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ROOT_CONTEXT, TraceFlags, trace } from "@opentelemetry/api";
import { checkTexts } from "../src/model/check.js";
import type { MeshSnapshot } from "../src/model/snapshot.js";
import { At } from "../src/proxy/config/fields.js";
import { applyTracingMetadata, compileHcmTracing } from "../src/proxy/config/tracing.js";
import type { HeaderRecord } from "../src/proxy/router/headers.js";
import {
  extractParent,
  injectContext,
  sampleDecision,
  upstreamDecision,
} from "../src/proxy/telemetry/tracing.js";
import { translate } from "../src/translate/index.js";
import { decode, pack } from "../src/xds/protos.js";
import { SHOP, shopSidecar, shopSnapshot } from "./translate-fixture.js";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const SPAN = "00f067aa0ba902b7";
const BOTH = ["W3C_TRACE_CONTEXT", "B3"] as const;

test("W3C traceparent, B3 multi-header and B3 single-header each give the parent and its decision", () => {
  const w3c = extractParent({ traceparent: `00-${TRACE}-${SPAN}-01` }, BOTH);
  assert.equal(w3c?.format, "W3C_TRACE_CONTEXT");
  assert.equal(w3c?.spanContext.traceId, TRACE);
  assert.equal(w3c?.spanContext.spanId, SPAN);
  assert.equal(w3c?.sampled, true);
  const multi = extractParent({ "x-b3-traceid": TRACE, "x-b3-spanid": SPAN, "x-b3-sampled": "0" }, BOTH);
  assert.equal(multi?.format, "B3");
  assert.equal(multi?.spanContext.spanId, SPAN);
  assert.equal(multi?.sampled, false);
  const single = extractParent({ b3: `${TRACE}-${SPAN}-1` }, BOTH);
  assert.equal(single?.spanContext.traceId, TRACE);
  assert.equal(single?.sampled, true);
  // B3 without a sampling state defers the decision to this proxy.
  assert.equal(extractParent({ b3: `${TRACE}-${SPAN}` }, BOTH)?.sampled, undefined);
  assert.equal(upstreamDecision({ "x-b3-flags": "1" }, "B3"), true);
  assert.equal(upstreamDecision({ b3: "d" }, "B3"), true);
});

test("only configured formats are read, in the configured order; malformed headers are no parent", () => {
  const other = "0af7651916cd43dd8448eb211c80319c";
  const h = { traceparent: `00-${TRACE}-${SPAN}-01`, b3: `${other}-${SPAN}-1` };
  assert.equal(extractParent(h, ["B3", "W3C_TRACE_CONTEXT"])?.spanContext.traceId, other);
  assert.equal(extractParent(h, ["W3C_TRACE_CONTEXT", "B3"])?.spanContext.traceId, TRACE);
  assert.equal(extractParent({ b3: `${other}-${SPAN}-1` }, ["W3C_TRACE_CONTEXT"]), undefined);
  assert.equal(extractParent({ traceparent: "00-zz-yy-01" }, BOTH), undefined);
  assert.equal(extractParent({ traceparent: `00-${"0".repeat(32)}-${SPAN}-01` }, BOTH), undefined);
});

test("injection writes every configured format; the single b3 header only when the caller used it", () => {
  const ctx = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: TRACE,
    spanId: SPAN,
    traceFlags: TraceFlags.SAMPLED,
  });
  const all: HeaderRecord = {};
  injectContext(ctx, all, BOTH, true);
  assert.equal(all.traceparent, `00-${TRACE}-${SPAN}-01`);
  assert.equal(all["x-b3-traceid"], TRACE);
  assert.equal(all["x-b3-spanid"], SPAN);
  assert.equal(all["x-b3-sampled"], "1");
  assert.equal(all.b3, `${TRACE}-${SPAN}-1`);
  const w3cOnly: HeaderRecord = {};
  injectContext(ctx, w3cOnly, ["W3C_TRACE_CONTEXT"], true);
  assert.deepEqual(Object.keys(w3cOnly), ["traceparent"]);
  const multiOnly: HeaderRecord = {};
  injectContext(ctx, multiOnly, ["B3"], false);
  assert.equal(multiOnly.b3, undefined);
  assert.equal(multiOnly["x-b3-traceid"], TRACE);
});

test("sampling: an upstream decision wins; otherwise random sampling at its percentage", () => {
  const cfg = { randomSamplingPercent: 1, clientSamplingPercent: 100, overallSamplingPercent: 100 };
  const always = () => 0;
  const never = () => 0.999;
  assert.equal(sampleDecision(cfg, false, false, always), false);
  assert.equal(sampleDecision(cfg, true, false, never), true);
  assert.equal(sampleDecision({ ...cfg, clientSamplingPercent: 0 }, undefined, true, always), false);
  assert.equal(sampleDecision({ ...cfg, clientSamplingPercent: 100 }, undefined, true, always), true);
  // n = 20000 at 1%: mean 200, sd 14.1; [140, 260] is ±4.2 sd, which 0.5% (mean 100) or 2% (400) miss.
  const n = 20_000;
  let sampled = 0;
  for (let i = 0; i < n; i++) if (sampleDecision(cfg, undefined, false, Math.random)) sampled++;
  assert.ok(sampled >= 140 && sampled <= 260, `${sampled} of ${n}`);
  let capped = 0;
  const half = { randomSamplingPercent: 100, clientSamplingPercent: 100, overallSamplingPercent: 50 };
  for (let i = 0; i < n; i++) if (sampleDecision(half, undefined, false, Math.random)) capped++;
  // Mean 10000, sd 70.7: ±500 is 7 sd.
  assert.ok(Math.abs(capped - n / 2) < 500, `${capped} of ${n} under overall sampling 50%`);
});

function snapshot(extra: string): MeshSnapshot {
  const r = checkTexts([{ file: "shop.yaml", text: extra ? `${SHOP}\n---\n${extra}` : SHOP }], {
    analyze: false,
  });
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  return { version: "t", model: r.model, workloads: shopSnapshot().workloads };
}

const SEED = `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    enableTracing: true
    defaultConfig:
      tracing:
        sampling: 100.0
        openCensusAgent:
          address: "jaeger-collector.observability:55678"
          context: [W3C_TRACE_CONTEXT, B3]
`;

type Hcm = { tracing?: Record<string, unknown> } & Record<string, unknown>;
function hcmOf(listener: Record<string, unknown>): Hcm {
  const chain = (listener.filterChains as { filters: { typedConfig: Hcm }[] }[])[0];
  return chain?.filters[0]?.typedConfig as Hcm;
}

test("translation: the seed's openCensusAgent becomes OTLP/gRPC to a collector cluster, W3C and B3 in metadata", () => {
  const r = translate(snapshot(SEED), shopSidecar("cart"));
  const cluster = r.clusters.find((c) => c.name === "tracing|55678||jaeger-collector.observability");
  assert.equal(cluster?.type, "STRICT_DNS");
  for (const l of r.listeners as unknown as Record<string, unknown>[]) {
    const hcm = hcmOf(l);
    if (!hcm?.httpFilters) continue;
    const t = hcm.tracing as {
      randomSampling: { value: number };
      provider: { typedConfig: Record<string, unknown> };
    };
    assert.equal(t.randomSampling.value, 100, String(l.name));
    assert.equal(
      t.provider.typedConfig["@type"],
      "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
    );
    assert.deepEqual((t.provider.typedConfig.grpcService as { envoyGrpc: unknown }).envoyGrpc, {
      clusterName: cluster?.name,
      authority: "jaeger-collector.observability:55678",
    });
    const md = (l.metadata as { filterMetadata: Record<string, unknown> }).filterMetadata["skein.tracing"];
    assert.deepEqual(md, {
      fields: {
        context: { listValue: { values: [{ stringValue: "W3C_TRACE_CONTEXT" }, { stringValue: "B3" }] } },
      },
    });
  }
});

test("translation: Telemetry sampling and a zipkin extension provider override the defaults; off means no field", () => {
  const telemetry = `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    enableTracing: true
    extensionProviders:
      - name: zipkin
        zipkin: { service: zipkin.istio-system.svc.cluster.local, port: 9411 }
---
apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  tracing:
    - providers: [{ name: zipkin }]
      randomSamplingPercentage: 2.5
`;
  const r = translate(snapshot(telemetry), shopSidecar("cart"));
  const hcms = (r.listeners as unknown as Record<string, unknown>[]).map(hcmOf).filter((h) => h?.httpFilters);
  assert.ok(hcms.length > 0);
  for (const h of hcms) {
    const t = h.tracing as {
      randomSampling: { value: number };
      provider: { typedConfig: Record<string, unknown> };
    };
    assert.equal(t.randomSampling.value, 2.5);
    assert.equal(t.provider.typedConfig["@type"], "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig");
    assert.equal(t.provider.typedConfig.collectorEndpoint, "/api/v2/spans");
    assert.equal(t.provider.typedConfig.traceId_128bit, true);
  }
  const off = translate(snapshot(""), shopSidecar("cart"));
  for (const l of off.listeners as unknown as Record<string, unknown>[]) {
    assert.equal(hcmOf(l)?.tracing, undefined);
    assert.equal(l.metadata, undefined);
  }
  assert.ok(!off.clusters.some((c) => c.name?.startsWith("tracing|")));
});

/** The HCM tracing field as the sidecar decodes it from the wire. */
function wireTracing(typedConfig: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const hcm = {
    statPrefix: "x",
    routeConfig: { name: "r" },
    tracing: { provider: { name: "t", typedConfig }, randomSampling: { value: 5 }, ...extra },
  };
  const type = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
  const decoded = decode(type, pack(type, hcm).value) as { tracing: never };
  return decoded.tracing;
}

test("sidecar: compiles OTLP and Zipkin providers, the metadata's formats, and NACKs what it cannot honour", () => {
  const at = new At("Listener x");
  const otlp = compileHcmTracing(
    wireTracing({
      "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
      httpService: {
        httpUri: { uri: "http://collector:4318/v1/traces", cluster: "c", timeout: { seconds: 1 } },
      },
    }),
    at,
  );
  assert.deepEqual(otlp.provider, {
    kind: "otlp-http",
    cluster: "c",
    path: "/v1/traces",
    serviceName: "unknown_service:envoy",
  });
  assert.equal(otlp.randomSamplingPercent, 5);
  assert.deepEqual(otlp.propagation, ["W3C_TRACE_CONTEXT"]);
  applyTracingMetadata(
    otlp,
    {
      filterMetadata: {
        "skein.tracing": { fields: { context: { listValue: { values: [{ stringValue: "B3" }] } } } },
      },
    } as never,
    at,
  );
  assert.deepEqual(otlp.propagation, ["B3"]);
  const zipkin = {
    "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
    collectorCluster: "z",
    collectorEndpoint: "/api/v2/spans",
    collectorEndpointVersion: "HTTP_JSON",
    sharedSpanContext: { value: false },
  };
  const z = compileHcmTracing(wireTracing(zipkin), at);
  assert.equal(z.provider.kind, "zipkin");
  assert.deepEqual(z.propagation, ["B3"]);
  assert.throws(() => compileHcmTracing(wireTracing({ ...zipkin, sharedSpanContext: { value: true } }), at), {
    code: "SKEIN_E_PROXY_CONFIG_UNSUPPORTED",
  });
  assert.throws(() => compileHcmTracing(wireTracing(zipkin, { spawnUpstreamSpan: { value: true } }), at), {
    code: "SKEIN_E_PROXY_CONFIG_UNSUPPORTED",
  });
  assert.throws(() => compileHcmTracing(wireTracing({ ...zipkin, collectorCluster: "" }), at), {
    code: "SKEIN_E_PROXY_CONFIG_INVALID",
  });
  assert.throws(
    () =>
      applyTracingMetadata(
        z,
        {
          filterMetadata: {
            "skein.tracing": {
              fields: { context: { listValue: { values: [{ stringValue: "GRPC_BIN" }] } } },
            },
          },
        } as never,
        at,
      ),
    { code: "SKEIN_E_PROXY_CONFIG_UNSUPPORTED" },
  );
});
