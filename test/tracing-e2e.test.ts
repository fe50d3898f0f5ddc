// Tracing end to end: a control plane with the seed's IstioOperator (openCensusAgent with context
// [W3C_TRACE_CONTEXT, B3], sampling 100) pointing at an OTLP/gRPC receiver in this test; four sidecars and
// the demo shop's services (api-gateway → order-service → payment-service and inventory-service) as real
// processes that forward trace headers. A W3C caller and a B3 caller each get one trace with client and
// server spans per hop, correctly linked. Then a Telemetry resource sets 1% sampling and over n = 1000
// requests about 1% of traces arrive, each complete (the first sidecar's decision is honoured downstream).
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { Agent, request } from "node:http";
import { createServer } from "node:net";
import { test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import type { RunningSidecar } from "./resilience-harness.js";
import { sleep, startControlPlane, startSidecar, until } from "./resilience-harness.js";

// The part of OTLP's trace service (opentelemetry/proto/collector/trace/v1) a receiver needs to read spans.
const OTLP = protobuf.parse(`
syntax = "proto3";
package otlp;
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message Resource { repeated KeyValue attributes = 1; }
message ScopeSpans { repeated Span spans = 2; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  repeated KeyValue attributes = 9;
}
message KeyValue { string key = 1; AnyValue value = 2; }
message AnyValue { string string_value = 1; bool bool_value = 2; int64 int_value = 3; }
`).root;
const Request = OTLP.lookupType("otlp.ExportTraceServiceRequest");

interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentId: string;
  name: string;
  kind: "SERVER" | "CLIENT" | "OTHER";
  service: string;
  tags: Record<string, string>;
}

/** An OTLP/gRPC trace receiver on 127.0.0.1 (what an OpenTelemetry Collector or Jaeger listens with). */
async function otlpReceiver(): Promise<{ port: number; spans: ReceivedSpan[]; close(): void }> {
  const spans: ReceivedSpan[] = [];
  const hex = (b: Uint8Array | undefined) => Buffer.from(b ?? []).toString("hex");
  const attrs = (list: { key: string; value?: { stringValue?: string } }[] | undefined) =>
    Object.fromEntries((list ?? []).map((kv) => [kv.key, kv.value?.stringValue ?? ""]));
  const server = new grpc.Server();
  server.addService(
    {
      Export: {
        path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        requestStream: false,
        responseStream: false,
        requestSerialize: (b: Buffer) => b,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: () => Buffer.alloc(0),
        responseDeserialize: (b: Buffer) => b,
      },
    },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        const req = Request.toObject(Request.decode(call.request)) as {
          resourceSpans?: {
            resource?: { attributes?: { key: string; value?: { stringValue?: string } }[] };
            scopeSpans?: { spans?: Record<string, unknown>[] }[];
          }[];
        };
        for (const rs of req.resourceSpans ?? []) {
          const service = attrs(rs.resource?.attributes)["service.name"] ?? "";
          for (const ss of rs.scopeSpans ?? [])
            for (const s of ss.spans ?? [])
              spans.push({
                traceId: hex(s.traceId as Uint8Array),
                spanId: hex(s.spanId as Uint8Array),
                parentId: hex(s.parentSpanId as Uint8Array),
                name: String(s.name ?? ""),
                kind: s.kind === 2 ? "SERVER" : s.kind === 3 ? "CLIENT" : "OTHER",
                service,
                tags: attrs(s.attributes as never),
              });
        }
        done(null, Buffer.alloc(0));
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { port, spans, close: () => server.forceShutdown() };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 });

/** A caller outside the mesh, straight to a workload's inbound listener (as an ingress would). */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers, agent }, (res) => {
      let body = "";
      res.on("data", (c) => {
        body += c;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(15_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

const SERVICES = ["api-gateway", "order-service", "payment-service", "inventory-service"] as const;
const ADDRESS: Record<(typeof SERVICES)[number], string> = {
  "api-gateway": "127.0.6.1",
  "order-service": "127.0.6.2",
  "payment-service": "127.0.6.3",
  "inventory-service": "127.0.6.4",
};

const meshYaml = (collectorPort: number) =>
  `${SERVICES.map(
    (s) => `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: ${s}, namespace: production }
spec:
  selector: { app: ${s} }
  ports: [{ name: http, port: 8080 }]
`,
  ).join("---\n")}---
apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    enableTracing: true
    defaultConfig:
      tracing:
        sampling: 100.0
        openCensusAgent:
          address: "127.0.0.1:${collectorPort}"
          context: [W3C_TRACE_CONTEXT, B3]
`;

const ONE_PERCENT = `apiVersion: telemetry.istio.io/v1
kind: Telemetry
metadata: { name: mesh-default, namespace: istio-system }
spec:
  tracing:
    - randomSamplingPercentage: 1.0
`;

function startApp(service: string, port: number, sidecar: string): ChildProcess {
  return spawn(process.execPath, ["demo/shop/service.mjs"], {
    env: { ...process.env, SERVICE: service, PORT: String(port), HTTP_PROXY: `http://${sidecar}:15001` },
    stdio: "ignore",
  });
}

/** The spans of one trace once `count` of them have arrived (the batch processors flush every second). */
async function traceOf(spans: ReceivedSpan[], traceId: string, count: number): Promise<ReceivedSpan[]> {
  await until(
    `${count} spans of trace ${traceId}`,
    () => spans.filter((s) => s.traceId === traceId).length >= count,
    20_000,
  );
  await sleep(1500); // nothing more should come
  return spans.filter((s) => s.traceId === traceId);
}

/** The span whose parent is `parent`, of this kind and service. */
function child(
  trace: ReceivedSpan[],
  parent: string,
  kind: ReceivedSpan["kind"],
  service: string,
): ReceivedSpan {
  const found = trace.filter((s) => s.parentId === parent && s.kind === kind && s.service === service);
  assert.equal(
    found.length,
    1,
    `one ${kind} span of ${service} under ${parent}: ${JSON.stringify(trace, null, 1)}`,
  );
  return found[0] as ReceivedSpan;
}

/** The hops of api-gateway → order-service → payment-service (and inventory-service), linked. */
function assertChain(trace: ReceivedSpan[], callerSpan: string): void {
  assert.equal(trace.length, 7, "server span at each of 4 sidecars, client span at each of 3 calls");
  const gwServer = child(trace, callerSpan, "SERVER", "api-gateway.production");
  const gwClient = child(trace, gwServer.spanId, "CLIENT", "api-gateway.production");
  const orderServer = child(trace, gwClient.spanId, "SERVER", "order-service.production");
  const orderClients = trace.filter((s) => s.parentId === orderServer.spanId && s.kind === "CLIENT");
  assert.equal(orderClients.length, 2);
  const toPayment = orderClients.find((s) => s.name.startsWith("payment-service.production"));
  assert.ok(toPayment, `a client span named for payment-service: ${orderClients.map((s) => s.name)}`);
  const payServer = child(trace, toPayment.spanId, "SERVER", "payment-service.production");
  // Envoy/Istio's names and tags.
  assert.equal(gwClient.name, "order-service.production.svc.cluster.local:8080/*");
  assert.equal(gwClient.tags.upstream_cluster, "outbound|8080||order-service.production.svc.cluster.local");
  assert.equal(payServer.tags["http.status_code"], "200");
  assert.equal(payServer.tags["http.method"], "GET");
  assert.equal(payServer.tags.component, "proxy");
  assert.equal(payServer.tags["istio.canonical_service"], "payment-service");
  assert.equal(payServer.tags["istio.namespace"], "production");
  assert.match(payServer.tags["http.url"] ?? "", /\/api\/v1\/payments\/\d+$/);
  assert.match(payServer.tags.node_id ?? "", /^sidecar~127\.0\.6\.3~/);
  // One x-request-id along the whole request.
  const ids = new Set(trace.map((s) => s.tags["guid:x-request-id"]));
  assert.equal(ids.size, 1, `one x-request-id: ${[...ids]}`);
}

test("W3C and B3 callers each get one trace across api-gateway → order-service → payment-service; 1% sampling", async (t) => {
  const receiver = await otlpReceiver();
  const { cp, xds, write } = await startControlPlane({ "mesh.yaml": meshYaml(receiver.port) });
  const sidecars: RunningSidecar[] = [];
  const apps: ChildProcess[] = [];
  t.after(async () => {
    for (const a of apps) a.kill();
    await Promise.all(sidecars.map((s) => s.stop()));
    await cp.stop();
    receiver.close();
  });
  for (const s of SERVICES) {
    const appPort = await freePort();
    apps.push(startApp(s, appPort, ADDRESS[s]));
    sidecars.push(await startSidecar(xds, ADDRESS[s], s, "production", { "app:http": appPort }));
  }
  const gateway = ADDRESS["api-gateway"];
  const call = (headers: Record<string, string>) =>
    get(`http://${gateway}:8080/api/v1/orders/${1 + Math.floor(Math.random() * 1000)}`, headers);
  // Every app is up and every sidecar has its config when a request goes through the whole chain.
  await until(
    "the chain answers",
    async () => (await call({}).catch(() => ({ status: 0 }))).status === 200,
    20_000,
  );

  await t.test("a W3C caller (traceparent, sampled)", async () => {
    const traceId = randomBytes(16).toString("hex");
    const callerSpan = randomBytes(8).toString("hex");
    const r = await call({ traceparent: `00-${traceId}-${callerSpan}-01` });
    assert.equal(r.status, 200, r.body);
    assertChain(await traceOf(receiver.spans, traceId, 7), callerSpan);
  });

  await t.test("a B3 multi-header caller", async () => {
    const traceId = randomBytes(16).toString("hex");
    const callerSpan = randomBytes(8).toString("hex");
    const r = await call({ "x-b3-traceid": traceId, "x-b3-spanid": callerSpan, "x-b3-sampled": "1" });
    assert.equal(r.status, 200, r.body);
    assertChain(await traceOf(receiver.spans, traceId, 7), callerSpan);
  });

  await t.test("a B3 single-header caller that decided not to sample: nothing is reported", async () => {
    const traceId = randomBytes(16).toString("hex");
    const r = await call({ b3: `${traceId}-${randomBytes(8).toString("hex")}-0` });
    assert.equal(r.status, 200, r.body);
    await sleep(2500);
    assert.equal(receiver.spans.filter((s) => s.traceId === traceId).length, 0);
  });

  await t.test(
    "randomSamplingPercentage 1 over n = 1000 requests: about 1% of traces, each complete",
    async () => {
      write("telemetry.yaml", ONE_PERCENT);
      await until(
        "every sidecar samples 1%",
        () =>
          sidecars.every((s) =>
            [...s.sidecar.store.config.listeners.values()].every(
              (l) => l.config.kind !== "http" || l.config.tracing?.randomSamplingPercent === 1,
            ),
          ),
        20_000,
      );
      const before = new Set(receiver.spans.map((s) => s.traceId));
      const n = 1000;
      const replies: { status: number }[] = [];
      let next = 0;
      const worker = async () => {
        while (next++ < n) replies.push(await call({}));
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      assert.equal(replies.filter((r) => r.status === 200).length, n);
      await sleep(3000);
      const traces = new Map<string, ReceivedSpan[]>();
      for (const s of receiver.spans)
        if (!before.has(s.traceId)) traces.set(s.traceId, [...(traces.get(s.traceId) ?? []), s]);
      // Binomial(1000, 0.01): mean 10, sd 3.1. [1, 25] holds with probability > 0.9999; 0% or 5% fail it.
      assert.ok(traces.size >= 1 && traces.size <= 25, `${traces.size} sampled traces of ${n}`);
      // The first sidecar decides; every later hop follows: complete traces only.
      for (const [id, spans] of traces)
        assert.equal(spans.length, 7, `trace ${id} has ${spans.length} spans`);
    },
  );
});
