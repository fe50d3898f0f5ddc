// Istio's HTTP peer-metadata exchange, the wire half: `x-envoy-peer-metadata-id` carries the node id and
// `x-envoy-peer-metadata` the base64 of a serialized google.protobuf.Struct (NAME, NAMESPACE, LABELS,
// WORKLOAD_NAME, SERVICE_ACCOUNT, CLUSTER_ID, ...). This is how the server side learns which workload
// called it (source_* labels) and the client side which one answered (destination_* labels). Whether a
// peer's header may be believed (only over mutual TLS) is the filter's decision, not this file's.
import { jsonToStruct, messageType, structToJson } from "../../xds/protos.js";
import type { LocalNode } from "../node.js";

export const PEER_METADATA_HEADER = "x-envoy-peer-metadata";
export const PEER_METADATA_ID_HEADER = "x-envoy-peer-metadata-id";

/** What one end of a request says about its workload; every field has a value ("unknown" when absent). */
export interface PeerMetadata {
  readonly id: string;
  readonly workloadName: string;
  readonly namespace: string;
  readonly app: string;
  readonly version: string;
  readonly serviceAccount: string;
  readonly clusterId: string;
}

/** The peer of a plaintext connection, or of one whose metadata did not arrive. */
export const UNKNOWN_PEER: PeerMetadata = {
  id: "unknown",
  workloadName: "unknown",
  namespace: "unknown",
  app: "unknown",
  version: "unknown",
  serviceAccount: "unknown",
  clusterId: "unknown",
};

/** Larger headers are ignored rather than decoded (Istio's are a few hundred bytes). */
const MAX_HEADER_BYTES = 8192;
/** Label values longer than this are cut: a peer cannot blow up a time series' size. */
const MAX_VALUE_LENGTH = 253;

const STRUCT = "google.protobuf.Struct";

/** This sidecar's metadata as Istio's sidecars send it: base64 of the binary Struct. */
export function encodePeerMetadata(node: LocalNode): string {
  const labels: Record<string, string> = { ...node.labels };
  const json = {
    NAME: node.workloadName,
    NAMESPACE: node.namespace,
    LABELS: labels,
    WORKLOAD_NAME: node.workloadName,
    SERVICE_ACCOUNT: node.serviceAccount,
    CLUSTER_ID: node.clusterId,
    ...(node.address ? { INSTANCE_IPS: node.address } : {}),
  };
  const type = messageType(STRUCT);
  const bytes = type.encode(type.fromObject(jsonToStruct(json))).finish();
  return Buffer.from(bytes).toString("base64");
}

function text(v: unknown, fallback = "unknown"): string {
  if (typeof v !== "string" || v === "") return fallback;
  return v.length > MAX_VALUE_LENGTH ? v.slice(0, MAX_VALUE_LENGTH) : v;
}

/**
 * Reads a peer's `x-envoy-peer-metadata` value; undefined when it is missing, too large or not a Struct.
 * `app` and `version` come from the LABELS the way Istio's telemetry reads them.
 */
export function decodePeerMetadata(
  value: string | undefined,
  id: string | undefined,
): PeerMetadata | undefined {
  if (!value || value.length > MAX_HEADER_BYTES) return undefined;
  let json: Record<string, unknown>;
  try {
    const type = messageType(STRUCT);
    const decoded = type.toObject(type.decode(Buffer.from(value, "base64")), { defaults: false });
    json = structToJson(decoded as Parameters<typeof structToJson>[0]);
  } catch {
    return undefined;
  }
  const labels = (json.LABELS && typeof json.LABELS === "object" ? json.LABELS : {}) as Record<
    string,
    unknown
  >;
  const name = json.WORKLOAD_NAME ?? json.NAME;
  if (typeof name !== "string" || name === "") return undefined;
  return {
    id: text(id),
    workloadName: text(name),
    namespace: text(json.NAMESPACE),
    app: text(labels.app, text(labels["app.kubernetes.io/name"])),
    version: text(labels.version, text(labels["app.kubernetes.io/version"])),
    serviceAccount: text(json.SERVICE_ACCOUNT),
    clusterId: text(json.CLUSTER_ID),
  };
}

/**
 * Decoding costs a protobuf parse; peers send the same value on every request, so the last few decoded
 * values are kept (bounded, oldest out first).
 */
export class PeerMetadataCache {
  private readonly byValue = new Map<string, PeerMetadata | null>();

  constructor(private readonly max = 128) {}

  get(value: string | undefined, id: string | undefined): PeerMetadata | undefined {
    if (!value) return undefined;
    const key = `${id ?? ""}\u0000${value}`;
    const hit = this.byValue.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const peer = decodePeerMetadata(value, id);
    if (this.byValue.size >= this.max) {
      const oldest = this.byValue.keys().next().value;
      if (oldest !== undefined) this.byValue.delete(oldest);
    }
    this.byValue.set(key, peer ?? null);
    return peer;
  }
}
