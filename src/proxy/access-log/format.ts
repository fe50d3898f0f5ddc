// Renders one finished request (StreamInfo) in a compiled access log format: Envoy's text format (`-` for a
// value that is not there) or a JSON dictionary (numbers as numbers, missing values as null), and evaluates
// the access log filters. Runs only for listeners that have an access log.
import { hostname } from "node:os";
import type {
  AccessLogFilter,
  AccessLogFormat,
  FormatOperator,
  FormatPart,
  JsonFormatNode,
} from "../config/access-log.js";
import { OPERATORS } from "../config/access-log.js";
import { formatResponseFlags, type StreamInfo } from "../router/stream-info.js";

const HOSTNAME = hostname();

/** The tracing engineer's field; read without depending on whether it exists yet. */
type WithTrace = StreamInfo & { traceId?: string };

function header(
  h: Readonly<Record<string, string | string[] | undefined>> | undefined,
  name: string,
): string | undefined {
  const v = h?.[name];
  if (v === undefined) return undefined;
  return typeof v === "string" ? v : v.join(",");
}

/** A request header as %REQ% sees it: pseudo-headers from the request line, x-request-id as forwarded. */
function requestHeader(info: StreamInfo, name: string): string | undefined {
  if (info.protocol === "TCP") return undefined;
  switch (name) {
    case ":method":
      return info.method;
    case ":path":
      return info.path;
    case ":authority":
    case "host":
      return info.authority || undefined;
    case ":scheme":
      return "http";
    case "x-request-id":
      // The connection manager adds one when the client sent none; Envoy logs the one it forwarded.
      return header(info.requestHeaders, name) ?? info.requestId;
    default:
      return header(info.requestHeaders, name);
  }
}

function responseHeader(info: StreamInfo, name: string): string | undefined {
  if (name === ":status") return info.responseCode ? String(info.responseCode) : undefined;
  return header(info.responseHeaders, name);
}

function hostPart(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

function ms(offset: number): number | undefined {
  return offset >= 0 ? Math.round(offset) : undefined;
}

/** One operator's value; undefined when the request has none (`-` in text, null in JSON). */
export function operatorValue(p: FormatOperator, info: StreamInfo): string | number | undefined {
  const c = info.connection;
  switch (p.op) {
    case "START_TIME":
      return new Date(info.startTime).toISOString();
    case "PROTOCOL":
      return info.protocol === "TCP" ? undefined : info.protocol;
    case "RESPONSE_CODE":
      return info.responseCode;
    case "RESPONSE_FLAGS":
      return formatResponseFlags(info.responseFlags);
    case "RESPONSE_CODE_DETAILS":
      return info.responseCodeDetails || undefined;
    case "CONNECTION_TERMINATION_DETAILS":
    case "UPSTREAM_TRANSPORT_FAILURE_REASON":
    case "UPSTREAM_LOCAL_ADDRESS":
      // Not tracked by the sidecar: always `-`, as Envoy prints them when there is nothing to say.
      return undefined;
    case "BYTES_RECEIVED":
      return info.bytesReceived;
    case "BYTES_SENT":
      return info.bytesSent;
    case "DURATION":
      return Math.round(info.durationMs);
    case "REQUEST_DURATION":
      return ms(info.downstreamRequestEnd);
    case "RESPONSE_DURATION":
      return ms(info.upstreamResponseStart);
    case "RESPONSE_TX_DURATION":
      return info.upstreamResponseStart >= 0 && info.downstreamResponseEnd >= 0
        ? Math.round(info.downstreamResponseEnd - info.upstreamResponseStart)
        : undefined;
    case "UPSTREAM_REQUEST_ATTEMPT_COUNT":
      return info.attempts;
    case "GRPC_STATUS_NUMBER":
      return info.grpcStatus;
    case "UPSTREAM_HOST":
      return info.upstreamHost;
    case "UPSTREAM_CLUSTER":
    case "UPSTREAM_CLUSTER_RAW":
      return info.cluster;
    case "UPSTREAM_PEER_URI_SAN":
      return info.upstreamPeerPrincipal;
    case "DOWNSTREAM_LOCAL_ADDRESS":
      return c ? `${hostPart(c.localAddress)}:${c.localPort}` : undefined;
    case "DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT":
      return c ? hostPart(c.localAddress) : undefined;
    case "DOWNSTREAM_LOCAL_PORT":
      return c?.localPort;
    case "DOWNSTREAM_REMOTE_ADDRESS":
      return c ? `${hostPart(c.sourceAddress)}:${c.sourcePort}` : hostPart(info.sourceAddress) || undefined;
    case "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT":
      return hostPart(c?.sourceAddress ?? info.sourceAddress) || undefined;
    case "DOWNSTREAM_REMOTE_PORT":
      return c?.sourcePort;
    case "DOWNSTREAM_PEER_URI_SAN":
      return c?.peerPrincipal;
    case "DOWNSTREAM_LOCAL_URI_SAN":
      return c?.localPrincipal;
    case "REQUESTED_SERVER_NAME":
      return c?.sni;
    case "ROUTE_NAME":
      return info.routeName || undefined;
    case "TRACE_ID":
      return (info as WithTrace).traceId || undefined;
    case "HOSTNAME":
      return HOSTNAME;
    case "REQ":
    case "REQUEST_HEADER":
    case "RESP":
    case "RESPONSE_HEADER": {
      const read = p.op === "REQ" || p.op === "REQUEST_HEADER" ? requestHeader : responseHeader;
      const [first, alt] = p.headers as string[];
      let v = read(info, first as string);
      if (v === undefined && alt !== undefined) v = read(info, alt);
      return v;
    }
  }
}

function truncated(v: string | number | undefined, max: number | undefined): string | number | undefined {
  return max !== undefined && typeof v === "string" && v.length > max ? v.slice(0, max) : v;
}

function renderText(parts: readonly FormatPart[], info: StreamInfo): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "string") out += p;
    else {
      const v = truncated(operatorValue(p, info), p.maxLength);
      out += v === undefined || v === "" ? "-" : v;
    }
  }
  return out;
}

function renderJsonValue(node: JsonFormatNode, info: StreamInfo, omitEmpty: boolean): unknown {
  if (node.kind === "literal") return node.value;
  if (node.kind === "object") return renderJsonObject(node.fields, info, omitEmpty);
  const parts = node.parts;
  // A value that is exactly one operator keeps its type; text around operators makes a string.
  if (parts.length === 1 && typeof parts[0] !== "string") {
    const p = parts[0] as FormatOperator;
    const v = truncated(operatorValue(p, info), p.maxLength);
    if (v === undefined || v === "") return null;
    return OPERATORS[p.op] === "number" ? v : String(v);
  }
  return renderText(parts, info);
}

function renderJsonObject(
  fields: readonly [string, JsonFormatNode][],
  info: StreamInfo,
  omitEmpty: boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, node] of fields) {
    const v = renderJsonValue(node, info, omitEmpty);
    if (omitEmpty && (v === null || v === "")) continue;
    out[k] = v;
  }
  return out;
}

/** One log line (text formats carry their own newline, as in Envoy; JSON lines get one). */
export function renderAccessLog(format: AccessLogFormat, info: StreamInfo): string {
  if (format.kind === "text") return renderText(format.parts, info);
  return `${JSON.stringify(renderJsonObject(format.fields, info, format.omitEmpty))}\n`;
}

function compare(op: "EQ" | "GE" | "LE", actual: number, value: number): boolean {
  return op === "EQ" ? actual === value : op === "GE" ? actual >= value : actual <= value;
}

/** Whether a finished request passes the filter (Envoy's AccessLogFilter semantics). */
export function passesFilter(f: AccessLogFilter, info: StreamInfo): boolean {
  switch (f.kind) {
    case "status":
      return compare(f.op, info.responseCode, f.value);
    case "duration":
      return compare(f.op, Math.round(info.durationMs), f.value);
    case "flags": {
      if (info.responseFlags === 0) return false;
      if (f.flags.length === 0) return true;
      const set = formatResponseFlags(info.responseFlags).split(",");
      return f.flags.some((x) => set.includes(x));
    }
    case "and":
      return f.filters.every((x) => passesFilter(x, info));
    case "or":
      return f.filters.some((x) => passesFilter(x, info));
  }
}
