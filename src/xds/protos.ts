// Envoy v3 protobuf machinery shared by both planes: the .proto files bundled in @grpc/grpc-js-xds, type URLs,
// checked packing of plain objects into google.protobuf.Any, decoding, and the ADS gRPC service definition.
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";
import { type Diagnostic, formatPath, SkeinError } from "../lib/diagnostics.js";
import { closest } from "../lib/suggest.js";
import { XdsCodes } from "./codes.js";
import type {
  AggregatedDiscoveryServiceClient,
  AggregatedDiscoveryServiceDefinition,
} from "./generated/envoy/service/discovery/v3/AggregatedDiscoveryService.js";
import type { Struct } from "./generated/google/protobuf/Struct.js";
import type { Value } from "./generated/google/protobuf/Value.js";

const require = createRequire(import.meta.url);
const xdsPackageDir = dirname(require.resolve("@grpc/grpc-js-xds/package.json"));

/** Where the Envoy, xDS, googleapis and validate .proto files live (the same set the type generator uses). */
export const PROTO_INCLUDE_DIRS: readonly string[] = [
  "envoy-api",
  "xds",
  "googleapis",
  "protoc-gen-validate",
].map((d) => join(xdsPackageDir, "deps", d));

export const TYPE_URL_PREFIX = "type.googleapis.com/";
export const LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener";
export const ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
export const CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
export const ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
export const SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";
/** The message type nested in listeners (api_listener or a network filter's typed_config) that names RDS routes. */
export const HTTP_CONNECTION_MANAGER =
  "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

/**
 * A google.protobuf.Any as protobufjs and proto-loader use it at runtime: `type_url` stays snake_case even with
 * camelCase field names (protobufjs bundles Any's definition as JSON, which is never camel-cased), and the
 * generated interfaces spell it so too. `typeUrl` is a non-enumerable alias for readers who expect camelCase;
 * being non-enumerable, it does not disturb deep equality with what decoding returns.
 */
export interface PackedAny {
  type_url: string;
  value: Buffer;
  readonly typeUrl: string;
}

/** Options for decoding; the defaults are proto-loader's (longs and enums as strings, defaults and oneofs on). */
export interface DecodeOptions {
  /** Fill unset fields with their defaults (proto-loader's `defaults`). Default true. */
  defaults?: boolean;
  /** Add the virtual oneof property naming the member that is set (proto-loader's `oneofs`). Default true. */
  oneofs?: boolean;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

// Loaded up front: every resource type Skein serves and the extensions it packs into them. Other packages
// are loaded on first use by their directory (see lookupMessage), so any bundled Envoy type can be packed.
const EAGER_PROTOS = [
  "envoy/service/discovery/v3/discovery.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/filters/http/fault/v3/fault.proto",
  "envoy/extensions/filters/http/rbac/v3/rbac.proto",
  "envoy/extensions/filters/network/rbac/v3/rbac.proto",
  "envoy/extensions/filters/http/cors/v3/cors.proto",
  "envoy/extensions/filters/http/local_ratelimit/v3/local_rate_limit.proto",
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
  "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto",
  "envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto",
  "envoy/extensions/transport_sockets/tls/v3/secret.proto",
  "envoy/extensions/clusters/aggregate/v3/cluster.proto",
  "envoy/extensions/load_balancing_policies/round_robin/v3/round_robin.proto",
  "envoy/extensions/load_balancing_policies/least_request/v3/least_request.proto",
  "envoy/extensions/load_balancing_policies/ring_hash/v3/ring_hash.proto",
  "envoy/extensions/load_balancing_policies/maglev/v3/maglev.proto",
  "envoy/extensions/load_balancing_policies/random/v3/random.proto",
  "envoy/extensions/load_balancing_policies/wrr_locality/v3/wrr_locality.proto",
  "envoy/config/trace/v3/opentelemetry.proto",
  "envoy/config/trace/v3/zipkin.proto",
  // Istio's own filter configs (peer metadata exchange) travel as TypedStructs.
  "xds/type/v3/typed_struct.proto",
];

let root: protobuf.Root | undefined;
const attemptedPackageDirs = new Set<string>();

function ensureCommonProtos(): void {
  // descriptor.proto (imported by the validate/udpa annotations) is not bundled by protobufjs by default;
  // proto-loader registers it too, but do not depend on import order.
  const common = protobuf.common as unknown as Record<string, unknown>;
  for (const name of ["descriptor", "api", "source_context", "type"]) {
    if (`google/protobuf/${name}.proto` in common) continue;
    const json = require(`protobufjs/google/protobuf/${name}.json`) as {
      nested: { google: { nested: { protobuf: { nested: Record<string, unknown> } } } };
    };
    protobuf.common(name, json.nested.google.nested.protobuf.nested);
  }
}

function resolveInclude(_origin: string, target: string): string {
  if (isAbsolute(target)) return target;
  for (const dir of PROTO_INCLUDE_DIRS) {
    const full = join(dir, target);
    if (existsSync(full)) return full;
  }
  return target; // protobufjs then reports the missing file by name
}

function getRoot(): protobuf.Root {
  if (root) return root;
  ensureCommonProtos();
  const r = new protobuf.Root();
  r.resolvePath = resolveInclude;
  r.loadSync(EAGER_PROTOS, { keepCase: false });
  r.resolveAll();
  root = r;
  return r;
}

function stripTypeName(name: string): string {
  const slash = name.lastIndexOf("/");
  const bare = slash >= 0 ? name.slice(slash + 1) : name;
  return bare.startsWith(".") ? bare.slice(1) : bare;
}

// Loads every .proto file in the directory of a message's package (envoy.extensions.filters.http.jwt_authn.v3.X
// lives in envoy/extensions/filters/http/jwt_authn/v3/), trying shorter prefixes for nested messages.
function loadPackageOf(name: string): boolean {
  const r = getRoot();
  const parts = name.split(".");
  for (let i = parts.length - 1; i >= 1; i--) {
    const rel = parts.slice(0, i).join("/");
    if (attemptedPackageDirs.has(rel)) continue;
    for (const inc of PROTO_INCLUDE_DIRS) {
      const dir = join(inc, rel);
      if (!existsSync(dir) || !statSync(dir).isDirectory()) continue;
      const files = readdirSync(dir)
        .filter((f) => f.endsWith(".proto"))
        .map((f) => `${rel}/${f}`);
      if (files.length === 0) continue;
      attemptedPackageDirs.add(rel);
      r.loadSync(files, { keepCase: false });
      r.resolveAll();
      return true;
    }
    attemptedPackageDirs.add(rel);
  }
  return false;
}

/** The reflected message type for a full name (`envoy.config.listener.v3.Listener`) or a type URL. */
export function messageType(nameOrTypeUrl: string): protobuf.Type {
  const name = stripTypeName(nameOrTypeUrl);
  const r = getRoot();
  let found = name ? r.lookup(name, [protobuf.Type]) : null;
  if (!found && name) {
    try {
      if (loadPackageOf(name)) found = r.lookup(name, [protobuf.Type]);
    } catch (e) {
      throw new SkeinError(
        XdsCodes.UNKNOWN_TYPE,
        `could not load the .proto files for ${name}: ${(e as Error).message}`,
      );
    }
  }
  if (!found) {
    throw new SkeinError(
      XdsCodes.UNKNOWN_TYPE,
      `unknown protobuf message type "${name || nameOrTypeUrl}": it is not defined by the Envoy/xDS .proto files bundled in @grpc/grpc-js-xds; check the spelling of the full name (package.Message)`,
    );
  }
  return found as protobuf.Type;
}

/** `type.googleapis.com/<fullName>`, after checking that the message type exists. */
export function typeUrlOf(fullName: string): string {
  return TYPE_URL_PREFIX + messageType(fullName).fullName.slice(1);
}

/** The message full name a type URL names (`type.googleapis.com/a.b.C` → `a.b.C`). */
export function fullNameOf(typeUrl: string): string {
  return stripTypeName(typeUrl);
}

function makeAny(typeUrl: string, value: Buffer): PackedAny {
  const any = { type_url: typeUrl, value } as PackedAny;
  Object.defineProperty(any, "typeUrl", { get: () => any.type_url, enumerable: false });
  return any;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

// ---- the checked encoder ------------------------------------------------------------------------------

type Path = (string | number)[];

function shortName(type: protobuf.Type): string {
  return type.fullName.slice(1);
}

function where(root: string, path: Path): string {
  return formatPath([root, ...path]);
}

function fail(code: string, rootName: string, path: Path, message: string, hint?: string): never {
  const at = where(rootName, path);
  const diag: Diagnostic = { code, severity: "error", message: `${at}: ${message}`, path: at };
  if (hint) diag.hint = hint;
  throw new SkeinError(code, `${at}: ${message}${hint ? ` (${hint})` : ""}`, [diag]);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v) || Buffer.isBuffer(v)) return false;
  if (v instanceof Uint8Array) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Uint8Array) return "bytes";
  if (typeof v === "string") return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
  return `${typeof v === "object" ? "an object" : typeof v} ${typeof v === "object" ? "" : String(v)}`.trim();
}

const INT32_TYPES = new Set(["int32", "sint32", "sfixed32"]);
const UINT32_TYPES = new Set(["uint32", "fixed32"]);
const INT64_TYPES = new Set(["int64", "sint64", "sfixed64", "uint64", "fixed64"]);

// Walks `obj` against `type`, rejecting unknown keys and mistyped values, and returns a copy that protobufjs
// fromObject encodes faithfully (nested Anys packed, map keys sorted so equal content encodes to equal bytes).
class Normalizer {
  constructor(private readonly rootName: string) {}

  message(type: protobuf.Type, obj: unknown, path: Path): Record<string, unknown> {
    if (!isPlainObject(obj)) {
      fail(
        XdsCodes.BAD_VALUE,
        this.rootName,
        path,
        `expected an object (${shortName(type)}), got ${describe(obj)}`,
      );
    }
    if (type.fullName === ".google.protobuf.Any") return this.any(obj, path);
    const out: Record<string, unknown> = {};
    const discriminators: [protobuf.OneOf, string][] = [];
    for (const key of Object.keys(obj)) {
      const value = obj[key];
      const field = type.fields[key];
      if (!field) {
        const oneof = type.oneofs?.[key];
        if (oneof) {
          if (value === undefined || value === null) continue;
          if (typeof value !== "string" || !oneof.oneof.includes(value)) {
            fail(
              XdsCodes.BAD_VALUE,
              this.rootName,
              [...path, key],
              `oneof ${key} must name one of its fields (${oneof.oneof.join(", ")}), got ${describe(value)}`,
            );
          }
          discriminators.push([oneof, value]);
          continue;
        }
        const candidates = [...Object.keys(type.fields), ...Object.keys(type.oneofs ?? {})];
        const guess = closest(key, candidates);
        fail(
          XdsCodes.UNKNOWN_FIELD,
          this.rootName,
          [...path, key],
          `${shortName(type)} has no field "${key}"`,
          guess ? `did you mean "${guess}"?` : `its fields are: ${candidates.join(", ")}`,
        );
      }
      if (value === undefined || value === null) continue;
      out[key] = this.field(field, value, [...path, key]);
    }
    for (const oneof of type.oneofsArray) {
      const set = oneof.oneof.filter((f) => out[f] !== undefined);
      if (set.length > 1) {
        fail(
          XdsCodes.BAD_VALUE,
          this.rootName,
          [...path, set[1] as string],
          `fields ${set.join(" and ")} are members of oneof ${oneof.name}: set only one`,
        );
      }
    }
    for (const [oneof, member] of discriminators) {
      const set = oneof.oneof.find((f) => out[f] !== undefined);
      if (set !== undefined && set !== member) {
        fail(
          XdsCodes.BAD_VALUE,
          this.rootName,
          [...path, oneof.name],
          `oneof ${oneof.name} says "${member}" but field ${set} is the one set`,
        );
      }
    }
    return out;
  }

  private field(field: protobuf.Field, value: unknown, path: Path): unknown {
    field.resolve();
    if (field.map) {
      if (!isPlainObject(value)) {
        fail(
          XdsCodes.BAD_VALUE,
          this.rootName,
          path,
          `expected a map (plain object), got ${describe(value)}`,
        );
      }
      const keyType = (field as unknown as protobuf.MapField).keyType;
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(value).sort()) {
        if (keyType !== "string" && keyType !== "bool" && !/^-?\d+$/.test(k)) {
          fail(XdsCodes.BAD_VALUE, this.rootName, [...path, k], `map key must be an integer (${keyType})`);
        }
        const v = value[k];
        if (v === undefined || v === null) {
          fail(XdsCodes.BAD_VALUE, this.rootName, [...path, k], "map values cannot be null");
        }
        out[k] = this.value(field, v, [...path, k]);
      }
      return out;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) {
        fail(
          XdsCodes.BAD_VALUE,
          this.rootName,
          path,
          `expected an array (repeated field), got ${describe(value)}`,
        );
      }
      return value.map((v, i) => {
        if (v === undefined || v === null) {
          fail(XdsCodes.BAD_VALUE, this.rootName, [...path, i], "repeated elements cannot be null");
        }
        return this.value(field, v, [...path, i]);
      });
    }
    return this.value(field, value, path);
  }

  private value(field: protobuf.Field, value: unknown, path: Path): unknown {
    const rt = field.resolvedType;
    if (rt instanceof protobuf.Type) return this.message(rt, value, path);
    if (rt instanceof protobuf.Enum) {
      if (typeof value === "string" && Object.hasOwn(rt.values, value)) return value;
      if (typeof value === "number" && Number.isInteger(value)) return value;
      const guess = typeof value === "string" ? closest(value, Object.keys(rt.values)) : undefined;
      return fail(
        XdsCodes.BAD_VALUE,
        this.rootName,
        path,
        `${describe(value)} is not a value of enum ${rt.fullName.slice(1)}`,
        guess ? `did you mean "${guess}"?` : `expected one of ${Object.keys(rt.values).join(", ")}`,
      );
    }
    const t = field.type;
    const bad = (expected: string): never =>
      fail(XdsCodes.BAD_VALUE, this.rootName, path, `expected ${expected} (${t}), got ${describe(value)}`);
    if (t === "string") return typeof value === "string" ? value : bad("a string");
    if (t === "bool") return typeof value === "boolean" ? value : bad("a boolean");
    if (t === "double" || t === "float") return typeof value === "number" ? value : bad("a number");
    if (INT32_TYPES.has(t) || UINT32_TYPES.has(t)) {
      if (typeof value !== "number" || !Number.isInteger(value)) return bad("an integer");
      if (UINT32_TYPES.has(t) && (value < 0 || value > 0xffffffff)) return bad("an unsigned 32-bit integer");
      if (INT32_TYPES.has(t) && (value < -0x80000000 || value > 0x7fffffff)) return bad("a 32-bit integer");
      return value;
    }
    if (INT64_TYPES.has(t)) {
      const unsigned = t.startsWith("u") || t === "fixed64";
      if (typeof value === "number" && Number.isSafeInteger(value) && (!unsigned || value >= 0)) return value;
      if (typeof value === "string" && (unsigned ? /^\d+$/ : /^-?\d+$/).test(value)) return value;
      if (isPlainObject(value) && typeof value.low === "number" && typeof value.high === "number")
        return value;
      return bad(unsigned ? "a non-negative integer or decimal string" : "an integer or decimal string");
    }
    if (t === "bytes") {
      if (value instanceof Uint8Array) return value;
      if (typeof value === "string") return value; // base64, as protobufjs accepts
      return bad("bytes (Buffer, Uint8Array or base64 string)");
    }
    return value;
  }

  // Any is given as {type_url, value} (what pack() returns and the generated interfaces describe), as
  // {typeUrl, value}, or as {"@type": url, ...fields} (proto3 JSON form, packed here with the same checks).
  // protobufjs itself would drop a camelCase typeUrl silently and mis-pack the "@type" form.
  private any(obj: Record<string, unknown>, path: Path): Record<string, unknown> {
    if (Object.hasOwn(obj, "@type")) {
      const { "@type": url, ...fields } = obj;
      if (typeof url !== "string") {
        fail(
          XdsCodes.BAD_VALUE,
          this.rootName,
          [...path, "@type"],
          `expected a type URL, got ${describe(url)}`,
        );
      }
      let inner: protobuf.Type;
      try {
        inner = messageType(url);
      } catch (e) {
        return fail(XdsCodes.UNKNOWN_TYPE, this.rootName, [...path, "@type"], (e as Error).message);
      }
      const normalized = this.message(inner, fields, path);
      return { type_url: TYPE_URL_PREFIX + shortName(inner), value: encodeNormalized(inner, normalized) };
    }
    for (const key of Object.keys(obj)) {
      if (key !== "typeUrl" && key !== "type_url" && key !== "value") {
        fail(
          XdsCodes.UNKNOWN_FIELD,
          this.rootName,
          [...path, key],
          `google.protobuf.Any has no field "${key}"`,
          "an Any is {type_url, value} as pack() returns it, or {'@type': typeUrl, ...fields}",
        );
      }
    }
    const typeUrl = obj.typeUrl ?? obj.type_url;
    if (obj.typeUrl !== undefined && obj.type_url !== undefined && obj.typeUrl !== obj.type_url) {
      fail(XdsCodes.BAD_VALUE, this.rootName, [...path, "typeUrl"], "typeUrl and type_url disagree");
    }
    if (typeof typeUrl !== "string" || typeUrl === "") {
      fail(
        XdsCodes.BAD_VALUE,
        this.rootName,
        [...path, "typeUrl"],
        `expected a type URL, got ${describe(typeUrl)}`,
      );
    }
    const value = obj.value ?? Buffer.alloc(0);
    if (!(value instanceof Uint8Array)) {
      fail(
        XdsCodes.BAD_VALUE,
        this.rootName,
        [...path, "value"],
        `expected encoded bytes, got ${describe(value)}`,
      );
    }
    return { type_url: typeUrl, value: toBuffer(value) };
  }
}

function encodeNormalized(type: protobuf.Type, normalized: Record<string, unknown>): Buffer {
  return toBuffer(type.encode(type.fromObject(normalized)).finish());
}

/**
 * Encodes a plain object (camelCase fields, as the generated interfaces describe) as the named message.
 * Every key must be a field or oneof of its message, recursively; otherwise SKEIN_E_XDS_UNKNOWN_FIELD with
 * the path (protobufjs alone would drop it silently).
 */
export function encode(fullName: string, message: object): Buffer {
  const type = messageType(fullName);
  const normalized = new Normalizer(type.name).message(type, message, []);
  return encodeNormalized(type, normalized);
}

/** Checks and encodes `message` as `fullName` into a google.protobuf.Any. */
export function pack(fullName: string, message: object): PackedAny {
  const type = messageType(fullName);
  const normalized = new Normalizer(type.name).message(type, message, []);
  return makeAny(TYPE_URL_PREFIX + shortName(type), encodeNormalized(type, normalized));
}

/** Decodes bytes as the named message into a plain object, with proto-loader's conversion options. */
export function decode<T = Record<string, unknown>>(
  fullName: string,
  bytes: Uint8Array,
  options: DecodeOptions = {},
): T {
  const type = messageType(fullName);
  let message: protobuf.Message;
  try {
    message = type.decode(bytes);
  } catch (e) {
    throw new SkeinError(
      XdsCodes.DECODE,
      `bytes do not decode as ${shortName(type)}: ${(e as Error).message}`,
    );
  }
  return type.toObject(message, {
    longs: String,
    enums: String,
    defaults: options.defaults ?? true,
    oneofs: options.oneofs ?? true,
  }) as T;
}

/** Decodes a google.protobuf.Any (`{type_url, value}` as decoded, or `{typeUrl, value}`) by its type URL. */
export function unpack<T = Record<string, unknown>>(
  any: { typeUrl?: string; type_url?: string; value?: Uint8Array | null },
  options: DecodeOptions = {},
): T {
  const typeUrl = any.typeUrl ?? any.type_url;
  if (!typeUrl) throw new SkeinError(XdsCodes.DECODE, "cannot unpack an Any without a type URL");
  return decode<T>(typeUrl, any.value ?? Buffer.alloc(0), options);
}

// ---- google.protobuf.Struct <-> JSON ----------------------------------------------------------------------

type ValueLike = Value & { kind?: string };

function valueToJson(v: ValueLike): JsonValue {
  const kind =
    v.kind ??
    (["structValue", "listValue", "stringValue", "numberValue", "boolValue", "nullValue"] as const).find(
      (k) => v[k] !== undefined && v[k] !== null,
    );
  switch (kind) {
    case "structValue":
      return structToJson(v.structValue ?? {});
    case "listValue":
      return (v.listValue?.values ?? []).map((x) => valueToJson(x as ValueLike));
    case "stringValue":
      return v.stringValue ?? "";
    case "numberValue":
      return Number(v.numberValue ?? 0);
    case "boolValue":
      return v.boolValue ?? false;
    default:
      return null;
  }
}

/** A decoded google.protobuf.Struct (`{fields: {k: {stringValue: ...}}}`) as plain JSON. */
export function structToJson(struct: Struct | null | undefined): JsonObject {
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(struct?.fields ?? {})) out[k] = valueToJson(v as ValueLike);
  return out;
}

function jsonToValue(v: JsonValue): Value {
  if (v === null) return { nullValue: "NULL_VALUE" };
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "number") return { numberValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  return { structValue: jsonToStruct(v) };
}

/** Plain JSON as a google.protobuf.Struct, for metadata fields. */
export function jsonToStruct(json: JsonObject): Struct {
  const fields: Record<string, Value> = {};
  for (const [k, v] of Object.entries(json)) fields[k] = jsonToValue(v);
  return { fields };
}

// ---- the ADS gRPC service ----------------------------------------------------------------------------------

let ads: { service: AggregatedDiscoveryServiceDefinition; client: grpc.ServiceClientConstructor } | undefined;

function loadAds(): NonNullable<typeof ads> {
  if (ads) return ads;
  const definition = protoLoader.loadSync("envoy/service/discovery/v3/ads.proto", {
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [...PROTO_INCLUDE_DIRS],
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    envoy: { service: { discovery: { v3: { AggregatedDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const client = pkg.envoy.service.discovery.v3.AggregatedDiscoveryService;
  ads = { service: client.service as unknown as AggregatedDiscoveryServiceDefinition, client };
  return ads;
}

/** envoy.service.discovery.v3.AggregatedDiscoveryService, for grpc.Server.addService. */
export function adsServiceDefinition(): AggregatedDiscoveryServiceDefinition {
  return loadAds().service;
}

/** The generated client class for the ADS service. */
export function adsClientConstructor(): grpc.ServiceClientConstructor {
  return loadAds().client;
}

/** An ADS client to `host:port` (plaintext unless credentials are given): for tests and the proxy's xDS stream. */
export function createAdsClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options?: grpc.ChannelOptions,
): AggregatedDiscoveryServiceClient {
  const Client = adsClientConstructor();
  return new Client(address, credentials, options) as unknown as AggregatedDiscoveryServiceClient;
}
