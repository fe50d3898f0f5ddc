// Access logs: the `access_log` entries of a sidecar's HTTP connection managers and TCP proxies, as Istio
// builds them. meshConfig.accessLogFile turns on Envoy's file logger everywhere, in Istio's text format or
// its JSON dictionary (accessLogEncoding) unless accessLogFormat gives one. A Telemetry resource's
// accessLogging, the most specific that applies to the workload (workload selector, then its namespace,
// then the root namespace), overrides that per direction: `disabled` turns logs off, the built-in `envoy`
// provider logs to /dev/stdout, and a `response.code <op> N` filter becomes Envoy's status_code filter.
// Not translated: other providers (OpenTelemetry, gRPC ALS: the sidecar has no such sink), CEL filters
// other than response.code comparisons (the log is then written unfiltered), and targetRefs.

import type { MeshConfig, TelemetryPolicy } from "../model/types.js";
import type { AccessLog } from "../xds/generated/envoy/config/accesslog/v3/AccessLog.js";
import type { AccessLogFilter } from "../xds/generated/envoy/config/accesslog/v3/AccessLogFilter.js";
import type { Struct } from "../xds/generated/google/protobuf/Struct.js";
import type { Value } from "../xds/generated/google/protobuf/Value.js";
import { telemetryLevel, telemetryModeMatches } from "./policy-applies.js";
import type { ProxyView } from "./scope.js";

/** Istio's EnvoyTextLogFormat (pilot/pkg/model/telemetry_logging.go). */
export const ISTIO_TEXT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% ' +
  '%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% "%UPSTREAM_TRANSPORT_FAILURE_REASON%" ' +
  '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" ' +
  '"%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%" %UPSTREAM_CLUSTER_RAW% ' +
  "%UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% " +
  "%ROUTE_NAME%\n";

/** Istio's EnvoyJSONLogFormatIstio keys, plus the trace id the issue asks for. */
export const ISTIO_JSON_FORMAT: Readonly<Record<string, string>> = {
  start_time: "%START_TIME%",
  route_name: "%ROUTE_NAME%",
  method: "%REQ(:METHOD)%",
  path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
  protocol: "%PROTOCOL%",
  response_code: "%RESPONSE_CODE%",
  response_flags: "%RESPONSE_FLAGS%",
  response_code_details: "%RESPONSE_CODE_DETAILS%",
  connection_termination_details: "%CONNECTION_TERMINATION_DETAILS%",
  bytes_received: "%BYTES_RECEIVED%",
  bytes_sent: "%BYTES_SENT%",
  duration: "%DURATION%",
  upstream_service_time: "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
  x_forwarded_for: "%REQ(X-FORWARDED-FOR)%",
  user_agent: "%REQ(USER-AGENT)%",
  request_id: "%REQ(X-REQUEST-ID)%",
  authority: "%REQ(:AUTHORITY)%",
  upstream_host: "%UPSTREAM_HOST%",
  upstream_cluster: "%UPSTREAM_CLUSTER_RAW%",
  upstream_local_address: "%UPSTREAM_LOCAL_ADDRESS%",
  downstream_local_address: "%DOWNSTREAM_LOCAL_ADDRESS%",
  downstream_remote_address: "%DOWNSTREAM_REMOTE_ADDRESS%",
  requested_server_name: "%REQUESTED_SERVER_NAME%",
  upstream_transport_failure_reason: "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
  trace_id: "%TRACE_ID%",
};

const FILE_LOGGER = "envoy.access_loggers.file";
const FILE_TYPE = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";
/** Istio's built-in provider: Envoy's file logger on /dev/stdout. */
const BUILTIN_PROVIDER = "envoy";

type Direction = "inbound" | "outbound";

function jsonValue(v: unknown): Value {
  if (v === null || v === undefined) return { nullValue: "NULL_VALUE" };
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "number") return { numberValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonValue) } };
  return { structValue: struct(v as Record<string, unknown>) };
}

function struct(o: Record<string, unknown>): Struct {
  const fields: Record<string, Value> = {};
  for (const [k, v] of Object.entries(o)) fields[k] = jsonValue(v);
  return { fields };
}

/**
 * The log format the mesh asks for: accessLogFormat (a format string, or for JSON a dictionary written as
 * JSON text), else Istio's default for the encoding. A JSON format that does not parse falls back to the
 * default dictionary, as Istio does.
 */
function logFormat(mc: MeshConfig): object {
  if (mc.accessLogEncoding === "JSON") {
    let dict: Record<string, unknown> = ISTIO_JSON_FORMAT;
    if (mc.accessLogFormat) {
      try {
        const parsed: unknown = JSON.parse(mc.accessLogFormat);
        if (parsed && typeof parsed === "object" && !Array.isArray(parsed))
          dict = parsed as Record<string, unknown>;
      } catch {
        // Istio logs the error and keeps its default dictionary.
      }
    }
    return { jsonFormat: struct(dict) };
  }
  const text = mc.accessLogFormat
    ? mc.accessLogFormat.endsWith("\n")
      ? mc.accessLogFormat
      : `${mc.accessLogFormat}\n`
    : ISTIO_TEXT_FORMAT;
  return { textFormatSource: { inlineString: text } };
}

function fileLog(path: string, mc: MeshConfig, filter?: AccessLogFilter): AccessLog {
  return {
    name: FILE_LOGGER,
    ...(filter && { filter }),
    // The Any in the JSON form protobufjs packs (see typed.ts): the logger's type URL beside its fields.
    typedConfig: {
      "@type": FILE_TYPE,
      path,
      logFormat: logFormat(mc),
    } as unknown as AccessLog["typedConfig"],
  };
}

const CEL_STATUS = /^\s*response\.code\s*(>=|<=|==|!=|>|<)\s*(\d{3})\s*$/;

/** A `response.code <op> N` CEL expression as Envoy's status_code filter; undefined for anything else. */
export function statusFilterOf(expression: string | undefined): AccessLogFilter | undefined {
  const m = expression ? CEL_STATUS.exec(expression) : null;
  if (!m) return undefined;
  const n = Number(m[2]);
  const cmp = (op: "EQ" | "GE" | "LE", value: number): AccessLogFilter => ({
    statusCodeFilter: { comparison: { op, value: { defaultValue: value, runtimeKey: "" } } },
  });
  switch (m[1]) {
    case ">=":
      return cmp("GE", n);
    case ">":
      return cmp("GE", n + 1);
    case "<=":
      return cmp("LE", n);
    case "<":
      return cmp("LE", n - 1);
    case "==":
      return cmp("EQ", n);
    default:
      return { orFilter: { filters: [cmp("LE", n - 1), cmp("GE", n + 1)] } };
  }
}

/** The access_log entries for a sidecar's listeners of one direction (HTTP and TCP alike). */
export function accessLogs(view: ProxyView, direction: Direction): AccessLog[] {
  if (view.proxy.kind !== "sidecar") return [];
  const mc = view.model.meshConfig;
  // The most specific Telemetry with an accessLogging rule for this direction wins; ties go by name.
  let best: { rank: number; name: string; rules: TelemetryPolicy["accessLogging"] } | undefined;
  for (const t of view.model.telemetry) {
    const rules = t.accessLogging.filter((r) => telemetryModeMatches(r.match, direction));
    if (rules.length === 0) continue;
    const rank = telemetryLevel(view, t);
    if (rank < 0) continue;
    if (!best || rank > best.rank || (rank === best.rank && t.name < best.name))
      best = { rank, name: t.name, rules };
  }
  if (!best) {
    if (mc.accessLogFile) return [fileLog(mc.accessLogFile, mc)];
    if (mc.defaultProviders?.accessLogging.includes(BUILTIN_PROVIDER)) return [fileLog("/dev/stdout", mc)];
    return [];
  }
  const out: AccessLog[] = [];
  for (const rule of best.rules) {
    if (rule.disabled) return [];
    const providers =
      rule.providers.length > 0
        ? rule.providers
        : (mc.defaultProviders?.accessLogging ?? (mc.accessLogFile ? [BUILTIN_PROVIDER] : []));
    if (!providers.includes(BUILTIN_PROVIDER)) continue;
    out.push(fileLog(mc.accessLogFile ?? "/dev/stdout", mc, statusFilterOf(rule.filter)));
  }
  return out;
}

/** `{ accessLog }` for spreading into an HttpConnectionManager or TcpProxy; nothing when there are none. */
export function withAccessLog(view: ProxyView, direction: Direction): { accessLog?: AccessLog[] } {
  const logs = accessLogs(view, direction);
  return logs.length > 0 ? { accessLog: logs } : {};
}
