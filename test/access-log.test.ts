// Access logs: translation (meshConfig.accessLogFile, Telemetry accessLogging) into Envoy access_log entries,
// the sidecar compiling them (formats parsed once; unknown operators and loggers NACKed by name), rendering
// Istio's text format and its JSON dictionary from a finished request, filters, and the buffered writer.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { ProxyIdentity } from "../src/model/snapshot.js";
import type { MeshConfig, TelemetryPolicy } from "../src/model/types.js";
import { passesFilter, renderAccessLog } from "../src/proxy/access-log/format.js";
import { flushAccessLogs, logAccess } from "../src/proxy/access-log/writer.js";
import { ProxyConfigCodes } from "../src/proxy/config/codes.js";
import { compileListener } from "../src/proxy/config/listener.js";
import type { HttpListenerConfig, TcpListenerConfig } from "../src/proxy/config/types.js";
import { ResponseFlag, StreamInfo } from "../src/proxy/router/stream-info.js";
import { ISTIO_TEXT_FORMAT, statusFilterOf } from "../src/translate/access-log.js";
import { translate } from "../src/translate/index.js";
import { LISTENER } from "../src/xds/protos.js";
import { hcm, listener, nack, typed, wire } from "./proxy-config-fixtures.js";
import { API_GATEWAY_SIDECAR, exampleSnapshot, ORDER_V1_SIDECAR } from "./translate-fixture.js";

const FILE = "envoy.extensions.access_loggers.file.v3.FileAccessLog";

function withLogs(accessLog: object[]) {
  return wire(
    LISTENER,
    listener("x", {
      filterChains: [
        {
          filters: [
            { name: "envoy.filters.network.http_connection_manager", typedConfig: hcm({ accessLog }) },
          ],
        },
      ],
    }),
  );
}

function compiledLogs(accessLog: object[]) {
  const config = compileListener(withLogs(accessLog)).config as HttpListenerConfig;
  assert.ok(config.accessLog, "the listener has access logs");
  return config.accessLog;
}

function fileLog(logFormat: object, extra: object = {}) {
  return {
    name: "envoy.access_loggers.file",
    typedConfig: typed(FILE, { path: "/dev/stdout", logFormat }),
    ...extra,
  };
}

/** A finished GET that went through the outbound listener to order-service. */
function finished(): StreamInfo {
  const info = new StreamInfo(
    "virtualOutbound",
    "HTTP/1.1",
    "GET",
    "order-service:8080",
    "/api/v1/orders/7?x=1",
    "127.0.9.2",
  );
  info.requestHeaders = { "user-agent": "curl/8.0", "x-forwarded-for": "10.0.0.1" };
  info.requestId = "rid-1";
  info.responseHeaders = { "x-envoy-upstream-service-time": "12" };
  info.responseCode = 503;
  info.responseCodeDetails = "upstream_reset_before_response_started{connection_failure}";
  info.setFlag(ResponseFlag.UpstreamConnectionFailure);
  info.setFlag(ResponseFlag.UpstreamRetryLimitExceeded);
  info.cluster = "outbound|8080|v1|order-service.production.svc.cluster.local";
  info.upstreamHost = "127.0.9.3:8080";
  info.routeName = "default";
  info.bytesReceived = 0;
  info.bytesSent = 91;
  info.attempts = 3;
  info.downstreamResponseEnd = 41.6;
  info.connection = {
    tls: false,
    peerPrincipal: undefined,
    localPrincipal: undefined,
    sni: undefined,
    alpn: undefined,
    sourceAddress: "127.0.9.2",
    sourcePort: 40000,
    localAddress: "127.0.9.2",
    localPort: 15001,
  };
  return info;
}

test("Istio's text format renders every field of a finished request, - for what is not there", () => {
  const [log] = compiledLogs([fileLog({ textFormatSource: { inlineString: ISTIO_TEXT_FORMAT } })]);
  assert.ok(log);
  assert.deepEqual(log.sink, { kind: "file", path: "/dev/stdout" });
  const info = finished();
  const start = new Date(info.startTime).toISOString();
  assert.equal(
    renderAccessLog(log.format, info),
    `[${start}] "GET /api/v1/orders/7?x=1 HTTP/1.1" 503 UF,URX ` +
      'upstream_reset_before_response_started{connection_failure} - "-" 0 91 42 12 "10.0.0.1" "curl/8.0" ' +
      '"rid-1" "order-service:8080" "127.0.9.3:8080" outbound|8080|v1|order-service.production.svc.cluster.local ' +
      "- 127.0.9.2:15001 127.0.9.2:40000 - default\n",
  );
});

test("a JSON dictionary keeps numbers as numbers, renders missing values as null, and nests", () => {
  const [log] = compiledLogs([
    fileLog({
      jsonFormat: {
        fields: {
          code: { stringValue: "%RESPONSE_CODE%" },
          flags: { stringValue: "%RESPONSE_FLAGS%" },
          ua: { stringValue: "%REQ(USER-AGENT):4%" },
          sni: { stringValue: "%REQUESTED_SERVER_NAME%" },
          line: { stringValue: "%REQ(:METHOD)% %REQ(:PATH)%" },
          up: {
            structValue: {
              fields: {
                cluster: { stringValue: "%UPSTREAM_CLUSTER%" },
                tries: { stringValue: "%UPSTREAM_REQUEST_ATTEMPT_COUNT%" },
              },
            },
          },
          fixed: { numberValue: 7 },
        },
      },
    }),
  ]);
  assert.ok(log);
  const line = renderAccessLog(log.format, finished());
  assert.ok(line.endsWith("\n"));
  assert.deepEqual(JSON.parse(line), {
    code: 503,
    flags: "UF,URX",
    ua: "curl",
    sni: null,
    line: "GET /api/v1/orders/7?x=1",
    up: { cluster: "outbound|8080|v1|order-service.production.svc.cluster.local", tries: 3 },
    fixed: 7,
  });
});

test("x-request-id is the one the sidecar generated when the client sent none; TCP has no headers", () => {
  const [log] = compiledLogs([fileLog({ textFormat: "%REQ(X-REQUEST-ID)% %PROTOCOL% %REQ(:AUTHORITY)%\n" })]);
  assert.ok(log);
  assert.equal(renderAccessLog(log.format, finished()), "rid-1 HTTP/1.1 order-service:8080\n");
  const tcp = new StreamInfo("inbound", "TCP", "", "", "", "127.0.0.1");
  assert.equal(renderAccessLog(log.format, tcp), "- - -\n");
});

test("an unknown command operator is NACKed naming the operator and the field", () => {
  const e = nack(() => compiledLogs([fileLog({ textFormat: "%START_TIME% %NOT_AN_OPERATOR% x\n" })]));
  assert.equal(e.code, ProxyConfigCodes.UNSUPPORTED);
  assert.match(e.message, /%NOT_AN_OPERATOR%/);
  assert.match(e.message, /access_log\[0\]\.typed_config\.log_format\.text_format/);
});

test("malformed formats, operators with arguments they do not take and unknown loggers are NACKed", () => {
  const malformed = nack(() => compiledLogs([fileLog({ textFormat: "50% done %REQ(:PATH\n" })]));
  assert.equal(malformed.code, ProxyConfigCodes.INVALID);
  assert.match(malformed.message, /malformed command operator at offset 2/);
  const arg = nack(() => compiledLogs([fileLog({ textFormat: "%START_TIME(%s)%\n" })]));
  assert.equal(arg.code, ProxyConfigCodes.UNSUPPORTED);
  assert.match(arg.message, /%START_TIME\(%s\)%: arguments to START_TIME are not supported/);
  const noHeader = nack(() => compiledLogs([fileLog({ textFormat: "%REQ()%\n" })]));
  assert.equal(noHeader.code, ProxyConfigCodes.INVALID);
  const logger = nack(() =>
    compiledLogs([
      { name: "als", typedConfig: typed("envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig") },
    ]),
  );
  assert.equal(logger.code, ProxyConfigCodes.UNSUPPORTED);
  assert.match(logger.message, /HttpGrpcAccessLogConfig is not supported/);
  const filter = nack(() =>
    compiledLogs([fileLog({ textFormat: "x\n" }, { filter: { traceableFilter: {} } })]),
  );
  assert.equal(filter.code, ProxyConfigCodes.UNSUPPORTED);
  assert.match(filter.message, /filter\.traceable_filter/);
});

test("a CEL response.code filter becomes a status_code filter that the sidecar evaluates as Envoy does", () => {
  const info = finished();
  for (const [expr, passes] of [
    ["response.code >= 500", true],
    ["response.code > 503", false],
    ["response.code == 503", true],
    ["response.code != 503", false],
    ["response.code < 400", false],
    ["response.code <= 503", true],
  ] as const) {
    const f = statusFilterOf(expr);
    assert.ok(f, expr);
    const [log] = compiledLogs([fileLog({ textFormat: "x\n" }, { filter: f })]);
    assert.ok(log?.filter);
    assert.equal(passesFilter(log.filter, info), passes, expr);
  }
  assert.equal(statusFilterOf("request.headers['x'] == 'y'"), undefined);
  const [flags] = compiledLogs([
    fileLog({ textFormat: "x\n" }, { filter: { responseFlagFilter: { flags: ["UO"] } } }),
  ]);
  assert.ok(flags?.filter);
  assert.equal(passesFilter(flags.filter, info), false, "UF,URX is not UO");
});

test("TCP proxies compile their access logs too; listeners without any have none (nothing per request)", () => {
  const tcp = wire(
    LISTENER,
    listener("t", {
      filterChains: [
        {
          filters: [
            {
              name: "envoy.filters.network.tcp_proxy",
              typedConfig: typed("envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", {
                statPrefix: "t",
                cluster: "c1",
                accessLog: [fileLog({ textFormat: "%UPSTREAM_CLUSTER% %BYTES_SENT%\n" })],
              }),
            },
          ],
        },
      ],
    }),
  );
  const config = compileListener(tcp).config as TcpListenerConfig;
  assert.equal(config.accessLog?.length, 1);
  const plain = compileListener(wire(LISTENER, listener("p"))).config as HttpListenerConfig;
  assert.equal(plain.accessLog, undefined);
});

test("the writer buffers: nothing is written during the request, all of it on flush, in order", async () => {
  const dir = mkdtempSync(join(tmpdir(), "skein-access-log-"));
  const path = join(dir, "access.log");
  const logs = compiledLogs([
    {
      name: "f",
      typedConfig: typed(FILE, { path, logFormat: { textFormat: "%REQ(:PATH)% %RESPONSE_CODE%\n" } }),
    },
  ]);
  for (let i = 0; i < 50; i++) {
    const info = finished();
    info.responseCode = 200 + i;
    logAccess(logs, info);
  }
  await new Promise((r) => setImmediate(r));
  assert.equal(existsSync(path) ? readFileSync(path, "utf8") : "", "", "no line is written before the flush");
  flushAccessLogs();
  const deadline = Date.now() + 5000;
  let text = "";
  while (Date.now() < deadline) {
    text = existsSync(path) ? readFileSync(path, "utf8") : "";
    if (text.split("\n").length > 50) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const lines = text.trimEnd().split("\n");
  assert.equal(lines.length, 50);
  assert.equal(lines[0], "/api/v1/orders/7?x=1 200");
  assert.equal(lines[49], "/api/v1/orders/7?x=1 249");
});

// ── Translation ─────────────────────────────────────────────────────────────────────────────────────

type Snapshot = Awaited<ReturnType<typeof exampleSnapshot>>;

function withTelemetry(
  snap: Snapshot,
  mesh: Partial<MeshConfig>,
  telemetry: TelemetryPolicy[] = [],
): Snapshot {
  const model = snap.model;
  return { ...snap, model: { ...model, meshConfig: { ...model.meshConfig, ...mesh }, telemetry } };
}

/** The compiled access logs of each of a proxy's listeners, through the wire as the sidecar receives them. */
function logsByListener(snap: Snapshot, proxy: ProxyIdentity): Map<string, HttpListenerConfig["accessLog"]> {
  const out = new Map<string, HttpListenerConfig["accessLog"]>();
  for (const l of translate(snap, proxy).listeners) {
    const compiled = compileListener(wire(LISTENER, l));
    out.set(compiled.name, compiled.config.accessLog);
  }
  return out;
}

function telemetry(fields: Partial<TelemetryPolicy>): TelemetryPolicy {
  return {
    name: "logs",
    namespace: "production",
    scope: "namespace",
    tracing: [],
    accessLogging: [],
    source: { file: "t.yaml", line: 1 },
    ...fields,
  } as TelemetryPolicy;
}

test("translation: no accessLogFile and no Telemetry means no access_log at all", async () => {
  const snap = withTelemetry(await exampleSnapshot(), { accessLogFile: undefined });
  for (const logs of logsByListener(snap, ORDER_V1_SIDECAR).values()) assert.equal(logs, undefined);
});

test("translation: accessLogFile logs every listener in Istio's text format; JSON encoding uses the dictionary", async () => {
  const base = await exampleSnapshot();
  const text = logsByListener(
    withTelemetry(base, { accessLogFile: "/dev/stdout", accessLogEncoding: "TEXT" }),
    ORDER_V1_SIDECAR,
  );
  assert.ok(text.size >= 2);
  for (const [name, logs] of text) {
    assert.equal(logs?.length, 1, name);
    const [log] = logs ?? [];
    assert.deepEqual(log?.sink, { kind: "file", path: "/dev/stdout" });
    assert.equal(log?.format.kind, "text");
  }
  const json = logsByListener(
    withTelemetry(base, { accessLogFile: "/var/log/skein.log", accessLogEncoding: "JSON" }),
    API_GATEWAY_SIDECAR,
  );
  const [log] = json.get("virtualOutbound") ?? [];
  assert.ok(log && log.format.kind === "json");
  const line = JSON.parse(renderAccessLog(log.format, finished())) as Record<string, unknown>;
  assert.equal(line.response_code, 503);
  assert.equal(line.upstream_cluster, "outbound|8080|v1|order-service.production.svc.cluster.local");
  assert.equal(line.request_id, "rid-1");
  assert.equal(line.trace_id, null);
});

test("translation: a workload's Telemetry overrides the namespace's per direction; disabled turns logs off", async () => {
  const snap = withTelemetry(await exampleSnapshot(), { accessLogFile: "/dev/stdout" }, [
    telemetry({ name: "ns", accessLogging: [{ providers: ["envoy"], disabled: true }] }),
    telemetry({
      name: "order",
      scope: "workload",
      selector: { app: "order-service" },
      accessLogging: [{ match: "SERVER", providers: ["envoy"], filter: "response.code >= 500" }],
    }),
  ]);
  const order = logsByListener(snap, ORDER_V1_SIDECAR);
  const inbound = [...order].find(([n]) => n.startsWith("127.0.1.1_"));
  assert.ok(inbound, "order-service has an inbound listener");
  assert.deepEqual(inbound[1]?.[0]?.filter, { kind: "status", op: "GE", value: 500 });
  assert.equal(order.get("virtualOutbound"), undefined, "outbound: the namespace's rule (disabled) applies");
  const gateway = logsByListener(snap, API_GATEWAY_SIDECAR);
  for (const logs of gateway.values())
    assert.equal(logs, undefined, "the gateway has only the namespace's rule");
});
