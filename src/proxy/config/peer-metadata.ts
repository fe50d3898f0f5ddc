// Istio's peer-metadata filter config as it travels in an http_filters entry: an xds.type.v3.TypedStruct
// whose type_url is `type.googleapis.com/io.istio.http.peer_metadata.Config` (Istio ships its own filters'
// configs so, because Envoy's API has no message for them) and whose value is the Config as a Struct.
// Compiled into PeerMetadataConfig. Only the istio_headers methods do anything in the Skein sidecar;
// workload_discovery (metadata from the control plane's workload index) is accepted and has no effect.
import type { JsonObject, JsonValue } from "../../xds/protos.js";
import { structToJson, unpack } from "../../xds/protos.js";
import type { At } from "./fields.js";
import type { PeerMetadataConfig } from "./types.js";

export const TYPED_STRUCT_TYPES: ReadonlySet<string> = new Set([
  "xds.type.v3.TypedStruct",
  "udpa.type.v1.TypedStruct",
]);
export const PEER_METADATA_CONFIG_TYPE = "io.istio.http.peer_metadata.Config";
export const PEER_METADATA_TYPE_URL = `type.googleapis.com/${PEER_METADATA_CONFIG_TYPE}`;

const LISTS = [
  "downstream_discovery",
  "upstream_discovery",
  "downstream_propagation",
  "upstream_propagation",
];
const ALLOWED = new Set([...LISTS, "shared_with_upstream"]);
const DISCOVERY_METHODS = new Set(["istio_headers", "workload_discovery"]);
const PROPAGATION_METHODS = new Set(["istio_headers"]);

/** The type URL inside a decoded TypedStruct, "" when there is none. */
export function typedStructTypeUrl(message: Record<string, unknown>): string {
  const url = message.typeUrl ?? message.type_url;
  return typeof url === "string" ? url : "";
}

/** Whether any of a list's methods is istio_headers; other methods must be known ones. */
function usesHeaders(list: JsonValue | undefined, methods: ReadonlySet<string>, at: At): boolean {
  if (list === undefined || list === null) return false;
  if (!Array.isArray(list)) return at.invalid("must be a list of methods");
  let headers = false;
  for (const [i, m] of list.entries()) {
    const mat = at.index(i);
    if (m === null || typeof m !== "object" || Array.isArray(m)) return mat.invalid("must be an object");
    const keys = Object.keys(m);
    if (keys.length !== 1)
      mat.invalid(`must set exactly one method (${[...methods].join(" or ")}), got ${keys.length}`);
    const method = keys[0] as string;
    if (!methods.has(method))
      mat.unsupported(`unsupported method ${method}; the Skein sidecar supports ${[...methods].join(", ")}`);
    if (method === "istio_headers") headers = true;
  }
  return headers;
}

/** A decoded TypedStruct carrying io.istio.http.peer_metadata.Config → PeerMetadataConfig. */
export function compilePeerMetadata(message: Record<string, unknown>, at: At): PeerMetadataConfig {
  const url = typedStructTypeUrl(message);
  if (url !== PEER_METADATA_TYPE_URL)
    at.field("typeUrl").unsupported(
      `unsupported TypedStruct type ${url || "(none)"}; the Skein sidecar knows ${PEER_METADATA_TYPE_URL}`,
    );
  const json: JsonObject = structToJson(message.value as Parameters<typeof structToJson>[0]);
  const vat = at.field("value");
  for (const k of Object.keys(json))
    if (!ALLOWED.has(k)) vat.key(k).unsupported(`unknown field ${k} of ${PEER_METADATA_CONFIG_TYPE}`);
  return {
    kind: "peer-metadata",
    downstreamDiscovery: usesHeaders(
      json.downstream_discovery,
      DISCOVERY_METHODS,
      vat.key("downstream_discovery"),
    ),
    upstreamDiscovery: usesHeaders(json.upstream_discovery, DISCOVERY_METHODS, vat.key("upstream_discovery")),
    downstreamPropagation: usesHeaders(
      json.downstream_propagation,
      PROPAGATION_METHODS,
      vat.key("downstream_propagation"),
    ),
    upstreamPropagation: usesHeaders(
      json.upstream_propagation,
      PROPAGATION_METHODS,
      vat.key("upstream_propagation"),
    ),
  };
}

/**
 * For compileHttpFilters: the compiler of a TypedStruct filter config when it carries a config the sidecar
 * knows, else undefined (so that is_optional still lets an unknown one be skipped). Decoding twice only
 * happens when config arrives.
 */
export function typedStructCompiler(
  typeName: string,
  any: { type_url?: string; typeUrl?: string; value?: Uint8Array | null } | null | undefined,
): ((message: Record<string, unknown>, at: At) => PeerMetadataConfig) | undefined {
  if (!TYPED_STRUCT_TYPES.has(typeName) || !any) return undefined;
  try {
    return typedStructTypeUrl(unpack(any as { type_url: string })) === PEER_METADATA_TYPE_URL
      ? compilePeerMetadata
      : undefined;
  } catch {
    return undefined;
  }
}
