// AccessLog (HttpConnectionManager.access_log, TcpProxy.access_log) → AccessLogConfig: the file and stdout
// loggers, their format (Envoy's format string or a JSON dictionary, parsed into parts once here) and the
// filters the sidecar can evaluate. Anything else NACKs with the field and, for formats, the operator named.
import type { AccessLog__Output } from "../../xds/generated/envoy/config/accesslog/v3/AccessLog.js";
import type { AccessLogFilter__Output } from "../../xds/generated/envoy/config/accesslog/v3/AccessLogFilter.js";
import type { SubstitutionFormatString__Output } from "../../xds/generated/envoy/config/core/v3/SubstitutionFormatString.js";
import type { FileAccessLog__Output } from "../../xds/generated/envoy/extensions/access_loggers/file/v3/FileAccessLog.js";
import type { StdoutAccessLog__Output } from "../../xds/generated/envoy/extensions/access_loggers/stream/v3/StdoutAccessLog.js";
import type { Struct__Output } from "../../xds/generated/google/protobuf/Struct.js";
import { type JsonValue, structToJson } from "../../xds/protos.js";
import { type At, anyTypeName, decodeAny, headerName, names, onlyFields } from "./fields.js";

export const FILE_ACCESS_LOG = "envoy.extensions.access_loggers.file.v3.FileAccessLog";
export const STDOUT_ACCESS_LOG = "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog";
export const STDERR_ACCESS_LOG = "envoy.extensions.access_loggers.stream.v3.StderrAccessLog";

/** Envoy's default format string, used when a logger names none. */
export const ENVOY_DEFAULT_FORMAT =
  '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% ' +
  "%RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% " +
  '"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"\n';

/**
 * The command operators the sidecar evaluates. `header` operators take `(NAME?ALT)`; the others take no
 * argument. `number` ones are rendered as JSON numbers in a JSON format.
 */
export const OPERATORS = {
  START_TIME: "plain",
  PROTOCOL: "plain",
  RESPONSE_CODE: "number",
  RESPONSE_FLAGS: "plain",
  RESPONSE_CODE_DETAILS: "plain",
  CONNECTION_TERMINATION_DETAILS: "plain",
  UPSTREAM_TRANSPORT_FAILURE_REASON: "plain",
  BYTES_RECEIVED: "number",
  BYTES_SENT: "number",
  DURATION: "number",
  REQUEST_DURATION: "number",
  RESPONSE_DURATION: "number",
  RESPONSE_TX_DURATION: "number",
  UPSTREAM_REQUEST_ATTEMPT_COUNT: "number",
  GRPC_STATUS_NUMBER: "number",
  UPSTREAM_HOST: "plain",
  UPSTREAM_CLUSTER: "plain",
  UPSTREAM_CLUSTER_RAW: "plain",
  UPSTREAM_LOCAL_ADDRESS: "plain",
  UPSTREAM_PEER_URI_SAN: "plain",
  DOWNSTREAM_LOCAL_ADDRESS: "plain",
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT: "plain",
  DOWNSTREAM_LOCAL_PORT: "number",
  DOWNSTREAM_REMOTE_ADDRESS: "plain",
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT: "plain",
  DOWNSTREAM_REMOTE_PORT: "number",
  DOWNSTREAM_PEER_URI_SAN: "plain",
  DOWNSTREAM_LOCAL_URI_SAN: "plain",
  REQUESTED_SERVER_NAME: "plain",
  ROUTE_NAME: "plain",
  TRACE_ID: "plain",
  HOSTNAME: "plain",
  REQ: "header",
  REQUEST_HEADER: "header",
  RESP: "header",
  RESPONSE_HEADER: "header",
} as const;

export type OperatorName = keyof typeof OPERATORS;

/** One command operator of a format; `headers` (lower-case, the fallback second) for REQ/RESP. */
export interface FormatOperator {
  op: OperatorName;
  headers?: string[];
  /** `%REQ(USER-AGENT):10%`: at most this many characters. */
  maxLength?: number;
}

/** A format string as literal text and operators, in order. */
export type FormatPart = string | FormatOperator;

/** A JSON format's value: a string with operators, a nested dictionary, or a literal (number, bool, null). */
export type JsonFormatNode =
  | { kind: "parts"; parts: FormatPart[] }
  | { kind: "object"; fields: [string, JsonFormatNode][] }
  | { kind: "literal"; value: JsonValue };

export type AccessLogFormat =
  | { kind: "text"; parts: FormatPart[] }
  | { kind: "json"; fields: [string, JsonFormatNode][]; omitEmpty: boolean };

/** Envoy's AccessLogFilter, for the filter kinds the sidecar evaluates. */
export type AccessLogFilter =
  | { kind: "status"; op: "EQ" | "GE" | "LE"; value: number }
  | { kind: "duration"; op: "EQ" | "GE" | "LE"; value: number }
  | { kind: "flags"; flags: string[] }
  | { kind: "and" | "or"; filters: AccessLogFilter[] };

/** One access log of a listener's connection manager or TCP proxy. */
export interface AccessLogConfig {
  name: string;
  /** Where lines go: a file path (`/dev/stdout` included) or the process's stdout/stderr. */
  sink: { kind: "file"; path: string } | { kind: "stdout" } | { kind: "stderr" };
  format: AccessLogFormat;
  filter?: AccessLogFilter;
}

const OPERATOR = /%([A-Z_0-9]+)(?:\(([^)]*)\))?(?::(\d+))?%/y;

/**
 * Parses an Envoy format string into literal text and operators. An unknown operator, an argument to one
 * that takes none, or a stray `%` is refused naming it.
 */
export function parseFormat(text: string, at: At): FormatPart[] {
  const parts: FormatPart[] = [];
  let literal = "";
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (c !== "%") {
      literal += c;
      i++;
      continue;
    }
    OPERATOR.lastIndex = i;
    const m = OPERATOR.exec(text);
    if (!m) {
      const near = text.slice(i, i + 24);
      return at.invalid(
        `malformed command operator at offset ${i} (${JSON.stringify(near)}): write %NAME%, %NAME(ARG)% or %NAME(ARG):LEN%`,
      );
    }
    const [whole, name = "", arg, len] = m;
    const kind = (OPERATORS as Record<string, string>)[name];
    if (kind === undefined)
      return at.unsupported(`command operator %${name}% is not supported by the Skein sidecar`);
    const op: FormatOperator = { op: name as OperatorName };
    if (kind === "header") {
      if (arg === undefined || arg === "")
        return at.invalid(`%${name}% needs a header name: %${name}(NAME)%`);
      const alts = arg.split("?");
      if (alts.length > 2) return at.invalid(`%${name}(${arg})%: at most one alternative header (A?B)`);
      op.headers = alts.map((h) => headerName(h, at));
    } else if (arg !== undefined) {
      return at.unsupported(`command operator %${name}(${arg})%: arguments to ${name} are not supported`);
    }
    if (len !== undefined) op.maxLength = Number(len);
    if (literal) parts.push(literal);
    literal = "";
    parts.push(op);
    i += whole.length;
  }
  if (literal) parts.push(literal);
  return parts;
}

function jsonNode(v: JsonValue, at: At): JsonFormatNode {
  if (typeof v === "string") return { kind: "parts", parts: parseFormat(v, at) };
  if (v !== null && typeof v === "object" && !Array.isArray(v))
    return { kind: "object", fields: Object.entries(v).map(([k, x]) => [k, jsonNode(x, at.key(k))]) };
  if (Array.isArray(v)) return at.unsupported("lists in a JSON access log format are not supported");
  return { kind: "literal", value: v };
}

function jsonFormat(s: Struct__Output | null | undefined, at: At, omitEmpty: boolean): AccessLogFormat {
  const json = structToJson(s);
  const fields = Object.entries(json).map(
    ([k, v]) => [k, jsonNode(v, at.key(k))] as [string, JsonFormatNode],
  );
  if (fields.length === 0) at.invalid("a JSON format needs at least one key");
  return { kind: "json", fields, omitEmpty };
}

/** SubstitutionFormatString: text_format, text_format_source (inline), json_format. Absent: Envoy's default. */
function substitutionFormat(f: SubstitutionFormatString__Output | null, at: At): AccessLogFormat {
  if (!f) return { kind: "text", parts: parseFormat(ENVOY_DEFAULT_FORMAT, at) };
  // content_type only matters to local replies; formatters (extensions) are not supported.
  onlyFields(
    "envoy.config.core.v3.SubstitutionFormatString",
    f,
    names(
      "textFormat",
      "jsonFormat",
      "textFormatSource",
      "omitEmptyValues",
      "contentType",
      "jsonFormatOptions",
    ),
    at,
  );
  if (f.format === "jsonFormat") return jsonFormat(f.jsonFormat, at.field("jsonFormat"), f.omitEmptyValues);
  if (f.format === "textFormat")
    return { kind: "text", parts: parseFormat(f.textFormat ?? "", at.field("textFormat")) };
  if (f.format === "textFormatSource") {
    const sat = at.field("textFormatSource");
    const src = f.textFormatSource;
    if (src?.specifier === "inlineString")
      return { kind: "text", parts: parseFormat(src.inlineString ?? "", sat.field("inlineString")) };
    if (src?.specifier === "inlineBytes")
      return { kind: "text", parts: parseFormat(Buffer.from(src.inlineBytes ?? []).toString("utf8"), sat) };
    return sat.unsupported("only inline_string and inline_bytes format sources are supported");
  }
  return at.invalid("format is required (text_format_source, text_format or json_format)");
}

const COMPARISON_OPS = new Set(["EQ", "GE", "LE"]);

function comparison(
  c: { op: string; value: { defaultValue: number; runtimeKey: string } | null } | null,
  at: At,
): { op: "EQ" | "GE" | "LE"; value: number } {
  const cat = at.field("comparison");
  if (!c) return cat.invalid("is required");
  if (!COMPARISON_OPS.has(c.op)) return cat.field("op").invalid(`unknown op ${c.op}`);
  if (!c.value) return cat.field("value").invalid("is required");
  return { op: c.op as "EQ" | "GE" | "LE", value: c.value.defaultValue };
}

/** AccessLogFilter → AccessLogFilter; runtime keys are read as their defaults (the sidecar has no runtime). */
export function compileAccessLogFilter(f: AccessLogFilter__Output, at: At): AccessLogFilter {
  switch (f.filterSpecifier) {
    case "statusCodeFilter":
      return {
        kind: "status",
        ...comparison(f.statusCodeFilter?.comparison ?? null, at.field("statusCodeFilter")),
      };
    case "durationFilter":
      return {
        kind: "duration",
        ...comparison(f.durationFilter?.comparison ?? null, at.field("durationFilter")),
      };
    case "responseFlagFilter":
      return { kind: "flags", flags: [...(f.responseFlagFilter?.flags ?? [])] };
    case "andFilter":
    case "orFilter": {
      const list = (f.filterSpecifier === "andFilter" ? f.andFilter : f.orFilter)?.filters ?? [];
      const fat = at.field(f.filterSpecifier).field("filters");
      if (list.length < 2) fat.invalid("needs at least two filters");
      return {
        kind: f.filterSpecifier === "andFilter" ? "and" : "or",
        filters: list.map((x, i) => compileAccessLogFilter(x, fat.index(i))),
      };
    }
    case undefined:
      return at.invalid("a filter needs one filter kind");
    default:
      return at
        .field(f.filterSpecifier)
        .unsupported(
          "not supported by the Skein sidecar (status_code, duration, response_flag, and, or are)",
        );
  }
}

/** One AccessLog entry of an HCM or TCP proxy. */
export function compileAccessLog(a: AccessLog__Output, at: At): AccessLogConfig {
  onlyFields("envoy.config.accesslog.v3.AccessLog", a, names("name", "filter", "typedConfig"), at);
  const typeName = anyTypeName(a.typedConfig);
  const tat = at.field("typedConfig");
  if (!typeName) return at.invalid("typed_config is required (a file or stdout access logger)");
  const filter = a.filter ? compileAccessLogFilter(a.filter, at.field("filter")) : undefined;
  const name = a.name || typeName;
  if (typeName === FILE_ACCESS_LOG) {
    const m = decodeAny(a.typedConfig, tat).message as unknown as FileAccessLog__Output;
    if (!m.path) tat.field("path").invalid("must not be empty");
    let format: AccessLogFormat;
    if (m.accessLogFormat === "logFormat")
      format = substitutionFormat(m.logFormat ?? null, tat.field("logFormat"));
    else if (m.accessLogFormat === "format")
      format = { kind: "text", parts: parseFormat(m.format ?? "", tat.field("format")) };
    else if (m.accessLogFormat === "jsonFormat")
      format = jsonFormat(m.jsonFormat, tat.field("jsonFormat"), false);
    else if (m.accessLogFormat === "typedJsonFormat")
      format = jsonFormat(m.typedJsonFormat, tat.field("typedJsonFormat"), false);
    else format = substitutionFormat(null, tat);
    return { name, sink: { kind: "file", path: m.path }, format, ...(filter && { filter }) };
  }
  if (typeName === STDOUT_ACCESS_LOG || typeName === STDERR_ACCESS_LOG) {
    const m = decodeAny(a.typedConfig, tat).message as unknown as StdoutAccessLog__Output;
    const format = substitutionFormat(m.logFormat ?? null, tat.field("logFormat"));
    const sink = typeName === STDOUT_ACCESS_LOG ? { kind: "stdout" as const } : { kind: "stderr" as const };
    return { name, sink, format, ...(filter && { filter }) };
  }
  return tat.unsupported(`access logger ${typeName} is not supported (file, stdout and stderr are)`);
}

/** The access_log list of an HCM or TCP proxy; undefined when empty, so completion checks one field. */
export function compileAccessLogs(list: readonly AccessLog__Output[], at: At): AccessLogConfig[] | undefined {
  if (list.length === 0) return undefined;
  return list.map((a, i) => compileAccessLog(a, at.index(i)));
}

/** `{ accessLog }` when there are access logs, else nothing (for spreading into a listener config). */
export function accessLogOf(logs: AccessLogConfig[] | undefined): { accessLog?: AccessLogConfig[] } {
  return logs ? { accessLog: logs } : {};
}
