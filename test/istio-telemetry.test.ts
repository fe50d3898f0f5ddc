import assert from "node:assert/strict";
import { test } from "node:test";
import type { Diagnostic } from "../src/lib/diagnostics.js";
import { check, checkFiles, codes, plain } from "./helpers.js";

/** 1-based line of the first line (at or after line index `from`) containing `marker`. */
function lineOf(text: string, marker: string, from = 0): number {
  const lines = text.split("\n");
  const i = lines.findIndex((l, n) => n >= from && l.includes(marker));
  assert.ok(i >= 0, `marker ${marker} not found`);
  return i + 1;
}

function messageAt(diags: readonly Diagnostic[], line: number): string {
  return diags.find((d) => d.line === line)?.message ?? "";
}

// The seed's pattern 4, verbatim.
const PATTERN4 = `# Prometheus ServiceMonitor for Istio metrics
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: istio-mesh
  labels:
    release: istio
spec:
  selector:
    matchExpressions:
      - key: istio
        operator: In
        values: [pilot]
  namespaceSelector:
    matchNames:
      - istio-system
  endpoints:
    - port: http-monitoring
      interval: 15s
---
# Jaeger tracing configuration
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    enableTracing: true
    defaultConfig:
      tracing:
        sampling: 100.0
        openCensusAgent:
          address: "jaeger-collector.observability:55678"
          context:
            - W3C_TRACE_CONTEXT
            - B3
`;

test("seed pattern 4 lowers exactly (mesh config and service monitor)", () => {
  const r = check(PATTERN4);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(plain(r.model?.meshConfig), {
    enableTracing: true,
    accessLogEncoding: "TEXT",
    outboundTrafficPolicy: "ALLOW_ANY",
    trustDomain: "cluster.local",
    rootNamespace: "istio-system",
    tracing: {
      sampling: 100,
      tracer: { kind: "openCensusAgent", address: "jaeger-collector.observability:55678" },
      context: ["W3C_TRACE_CONTEXT", "B3"],
    },
    extensionProviders: [],
  });
  assert.deepEqual(plain(r.model?.serviceMonitors), [
    {
      name: "istio-mesh",
      namespace: "default",
      labels: { release: "istio" },
      selector: { matchLabels: {}, matchExpressions: [{ key: "istio", operator: "In", values: ["pilot"] }] },
      namespaceSelector: { any: false, matchNames: ["istio-system"] },
      endpoints: [{ port: "http-monitoring", intervalMs: 15000, relabelings: [], metricRelabelings: [] }],
      targetLabels: [],
      podTargetLabels: [],
    },
  ]);
  assert.equal(r.resources.find((x) => x.kind === "IstioOperator")?.name, "installed-state");
});

// ── Telemetry ───────────────────────────────────────────────────────────────────────────────────────

test("Telemetry: tracing with custom tags and access logging lower; mesh scope in the root namespace", () => {
  const r = check(`apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  tracing:
    - providers: [{ name: zipkin }]
      randomSamplingPercentage: 12.5
      disableSpanReporting: false
      useRequestIdForTraceSampling: true
      match: { mode: SERVER }
      customTags:
        cluster: { literal: { value: east } }
        pod: { environment: { name: POD_NAME, defaultValue: unknown } }
        user: { header: { name: x-user-id } }
  accessLogging:
    - providers: [{ name: envoy }]
      filter: { expression: "response.code >= 400" }
    - match: { mode: CLIENT }
      disabled: true
---
apiVersion: telemetry.istio.io/v1alpha1
kind: Telemetry
metadata: { name: orders, namespace: production }
spec:
  selector: { matchLabels: { app: orders } }
  tracing:
    - randomSamplingPercentage: 0
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(plain(r.model?.telemetry), [
    {
      name: "mesh-default",
      namespace: "istio-system",
      scope: "mesh",
      tracing: [
        {
          match: "SERVER",
          providers: ["zipkin"],
          randomSamplingPercentage: 12.5,
          disableSpanReporting: false,
          useRequestIdForTraceSampling: true,
          customTags: {
            cluster: { kind: "literal", value: "east" },
            pod: { kind: "environment", name: "POD_NAME", defaultValue: "unknown" },
            user: { kind: "header", name: "x-user-id" },
          },
        },
      ],
      accessLogging: [
        { providers: ["envoy"], filter: "response.code >= 400" },
        { match: "CLIENT", providers: [], disabled: true },
      ],
    },
    {
      name: "orders",
      namespace: "production",
      scope: "workload",
      selector: { app: "orders" },
      tracing: [{ providers: [], randomSamplingPercentage: 0, customTags: {} }],
      accessLogging: [],
    },
  ]);
});

test("Telemetry: percentage over 100, ambiguous custom tag, unknown field, empty provider, bad enum and duration", () => {
  const text = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: t, namespace: production }
spec:
  tracing:
    - randomSamplingPercentage: 150
      customTags:
        both:
          literal: { value: a }
          header: { name: x-a }
        none: {}
    - randomSamplingPercentge: 10
  accessLogging:
    - providers: [{ name: "" }]
      match: { mode: BOTH }
  metrics:
    - reportingInterval: 10x
      overrides:
        - tagOverrides:
            request_host: { operation: UPSERT }
            response_code: { operation: REMOVE, value: x }
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_PERCENTAGE@${lineOf(text, "150")}`,
    `SKEIN_E_ONE_OF@${lineOf(text, "literal: { value: a }")}`,
    `SKEIN_E_ONE_OF@${lineOf(text, "none: {}")}`,
    `SKEIN_E_UNKNOWN_FIELD@${lineOf(text, "randomSamplingPercentge")}`,
    `SKEIN_E_REQUIRED@${lineOf(text, 'name: ""')}`,
    `SKEIN_E_ENUM@${lineOf(text, "BOTH")}`,
    `SKEIN_E_DURATION@${lineOf(text, "10x")}`,
    `SKEIN_E_REQUIRED@${lineOf(text, "operation: UPSERT")}`,
    `SKEIN_E_INVALID@${lineOf(text, "operation: REMOVE")}`,
  ]);
  assert.match(messageAt(r.diagnostics, lineOf(text, "150")), /percentage 150 is outside 0–100/);
  assert.match(
    messageAt(r.diagnostics, lineOf(text, "randomSamplingPercentge")),
    /did you mean "randomSamplingPercentage"/,
  );
  assert.match(messageAt(r.diagnostics, lineOf(text, "BOTH")), /allowed here/);
});

test("Telemetry: metrics overrides and a second tracing entry are reported as having no effect", () => {
  const text = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: t, namespace: production }
spec:
  tracing:
    - providers: [{ name: zipkin }, { name: otel }]
    - randomSamplingPercentage: 5
  metrics:
    - providers: [{ name: prometheus }]
      overrides:
        - match: { metric: REQUEST_COUNT, mode: CLIENT }
          disabled: true
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics, "all"), [
    `SKEIN_W_NO_EFFECT@${lineOf(text, "{ name: zipkin }")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "randomSamplingPercentage: 5")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "metrics:")}`,
  ]);
  assert.ok(r.diagnostics.some((d) => /metrics overrides are not applied yet/.test(d.message)));
  // Still lowered: the tracing entries are kept.
  assert.equal(r.model?.telemetry[0]?.tracing.length, 2);
});

// ── IstioOperator ───────────────────────────────────────────────────────────────────────────────────

test("IstioOperator: full meshConfig lowers; zipkin propagates B3; unset enableTracing follows Istio (true)", () => {
  const r = check(`apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata:
  name: control-plane
  namespace: istio-system
spec:
  meshConfig:
    accessLogFile: /dev/stdout
    accessLogEncoding: JSON
    accessLogFormat: "[%START_TIME%] %REQ(:METHOD)%"
    outboundTrafficPolicy: { mode: REGISTRY_ONLY }
    trustDomain: example.org
    rootNamespace: mesh-root
    defaultConfig:
      tracing:
        sampling: 10
        max_path_tag_length: 99
        zipkin: { address: "zipkin.istio-system:9411" }
        custom_tags:
          env: { literal: { value: prod } }
    extensionProviders:
      - name: otel
        opentelemetry: { service: otel-collector.observability.svc.cluster.local, port: 4317 }
      - name: ext-authz
        envoyExtAuthzHttp:
          service: authz.security.svc.cluster.local
          port: 8000
          includeRequestHeadersInCheck: [authorization]
      - name: logs
        envoyFileAccessLog: { path: /dev/stdout }
    defaultProviders:
      tracing: [otel]
      accessLogging: [envoy]
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(plain(r.model?.meshConfig), {
    enableTracing: true,
    accessLogFile: "/dev/stdout",
    accessLogEncoding: "JSON",
    accessLogFormat: "[%START_TIME%] %REQ(:METHOD)%",
    outboundTrafficPolicy: "REGISTRY_ONLY",
    trustDomain: "example.org",
    rootNamespace: "mesh-root",
    tracing: {
      sampling: 10,
      tracer: { kind: "zipkin", address: "zipkin.istio-system:9411" },
      context: ["B3"],
      maxPathTagLength: 99,
      customTags: { env: { kind: "literal", value: "prod" } },
    },
    extensionProviders: [
      {
        name: "otel",
        kind: "opentelemetry",
        service: "otel-collector.observability.svc.cluster.local",
        port: 4317,
      },
      {
        name: "ext-authz",
        kind: "envoyExtAuthzHttp",
        service: "authz.security.svc.cluster.local",
        port: 8000,
      },
      { name: "logs", kind: "envoyFileAccessLog" },
    ],
    defaultProviders: { tracing: ["otel"], metrics: [], accessLogging: ["envoy"] },
  });
  assert.equal(r.resources[0]?.name, "control-plane");
});

test("IstioOperator: openCensusAgent without context defaults to W3C trace context", () => {
  const r = check(`apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    defaultConfig:
      tracing:
        openCensusAgent: { address: "dns:///otel-agent.observability:55678" }
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(r.model?.meshConfig.tracing?.context, ["W3C_TRACE_CONTEXT"]);
  assert.equal(r.model?.meshConfig.tracing?.sampling, undefined);
});

test("IstioOperator: installation fields and Istio-only mesh settings warn once each", () => {
  const text = `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  profile: demo
  hub: docker.io/istio
  components:
    ingressGateways: [{ name: istio-ingressgateway, enabled: true }]
  values:
    global: { proxy: { privileged: true } }
  meshConfig:
    enableAutoMtls: true
    enableTracing: false
    defaultConfig:
      holdApplicationUntilProxyStarts: true
      tracing:
        zipkin: { address: "zipkin:9411" }
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics, "all"), [
    `SKEIN_W_NO_EFFECT@${lineOf(text, "profile: demo")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "hub:")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "components:")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "values:")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "enableAutoMtls")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "holdApplicationUntilProxyStarts")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "tracing:")}`,
  ]);
  assert.match(messageAt(r.diagnostics, lineOf(text, "profile: demo")), /configures an Istio installation/);
  assert.match(messageAt(r.diagnostics, lineOf(text, "tracing:")), /enableTracing is false/);
  assert.equal(r.model?.meshConfig.enableTracing, false);
});

test("IstioOperator: sampling over 100, bad context with did-you-mean, two tracers, bad encoding, bad address", () => {
  const text = `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    accessLogEncoding: YAML
    defaultConfig:
      tracing:
        sampling: 100.5
        openCensusAgent:
          address: "collector"
          context: [W3C_TRACE_CONTXT]
---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: { name: two-tracers }
spec:
  meshConfig:
    defaultConfig:
      tracing:
        zipkin: { address: "zipkin:9411" }
        datadog: { address: "datadog:8126" }
---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: { name: providers }
spec:
  meshConfig:
    extensionProviders:
      - name: a
      - name: b
        zipkin: { service: zipkin, port: 9411 }
        datadog: { service: dd, port: 8126 }
      - name: c
        zipkin: { service: zipkin, port: 99999 }
    defaultProviders:
      tracing: [nope]
    outboundTrafficPolicy: { mode: ALLOW_ALL }
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_ENUM@${lineOf(text, "YAML")}`,
    `SKEIN_E_PERCENTAGE@${lineOf(text, "100.5")}`,
    `SKEIN_E_HOST@${lineOf(text, '"collector"')}`,
    `SKEIN_E_ENUM@${lineOf(text, "W3C_TRACE_CONTXT")}`,
    `SKEIN_E_ONE_OF@${lineOf(text, "datadog: { address")}`,
    `SKEIN_E_ONE_OF@${lineOf(text, "- name: a")}`,
    `SKEIN_E_ONE_OF@${lineOf(text, "datadog: { service")}`,
    `SKEIN_E_RANGE@${lineOf(text, "99999")}`,
    `SKEIN_E_ENUM@${lineOf(text, "ALLOW_ALL")}`,
  ]);
  assert.match(
    messageAt(r.diagnostics, lineOf(text, "W3C_TRACE_CONTXT")),
    /did you mean "W3C_TRACE_CONTEXT"/,
  );
  assert.match(messageAt(r.diagnostics, lineOf(text, "ALLOW_ALL")), /did you mean "ALLOW_ANY"/);
});

test("IstioOperator: a default provider must be defined (Istio's built-ins count)", () => {
  const text = `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    extensionProviders:
      - name: otel
        opentelemetry: { service: otel, port: 4317 }
    defaultProviders:
      tracing: [otel]
      metrics: [prometheus]
      accessLogging: [stdout]
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [`SKEIN_E_INVALID@${lineOf(text, "accessLogging: [stdout]")}`]);
  assert.match(r.diagnostics[0]?.message ?? "", /"stdout" is not one of extensionProviders/);
});

test("two IstioOperators with meshConfig: an error naming both; one without meshConfig is fine", () => {
  const r = checkFiles(
    {
      "a.yaml": `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: { name: tracing }
spec:
  meshConfig:
    enableTracing: true
`,
      "b.yaml": `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: { name: logging }
spec:
  meshConfig:
    accessLogFile: /dev/stdout
---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: { name: gateways }
spec:
  profile: minimal
`,
    },
    false,
  );
  assert.deepEqual(codes(r.diagnostics, "error"), ["SKEIN_E_MESH_CONFIG_CONFLICT@5"]);
  const d = r.diagnostics.find((x) => x.code === "SKEIN_E_MESH_CONFIG_CONFLICT");
  assert.equal(d?.file, "b.yaml");
  assert.match(
    d?.message ?? "",
    /IstioOperator logging and IstioOperator tracing \(a\.yaml:1\) both set meshConfig/,
  );
  // The first one wins.
  assert.equal(r.model?.meshConfig.accessLogFile, undefined);
  assert.equal(r.model?.meshConfig.source?.file, "a.yaml");
});

test("IstioOperator: unknown meshConfig field with did-you-mean; wrong type", () => {
  const text = `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    enableTrace: true
    trustDomain: 5
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_UNKNOWN_FIELD@${lineOf(text, "enableTrace")}`,
    `SKEIN_E_TYPE@${lineOf(text, "trustDomain")}`,
  ]);
  assert.match(messageAt(r.diagnostics, lineOf(text, "enableTrace")), /did you mean "enableTracing"/);
});
