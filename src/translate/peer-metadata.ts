// The peer-metadata exchange filter in a sidecar's HTTP connection managers, as Istio configures it: an
// xds.type.v3.TypedStruct carrying io.istio.http.peer_metadata.Config (Istio's own filter has no Envoy
// API message). Outbound the sidecar sends its metadata upstream and reads the server's from the response;
// inbound it reads the caller's from the request and sends its own back. Pure: plain objects only.
import type { HttpFilter } from "../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.js";

/** The filter's name in the chain (the sidecar finds its factory by the config's type anyway). */
export const PEER_METADATA_FILTER_NAME = "istio.metadata_exchange";
const TYPED_STRUCT_URL = "type.googleapis.com/xds.type.v3.TypedStruct";
const CONFIG_URL = "type.googleapis.com/io.istio.http.peer_metadata.Config";

const ISTIO_HEADERS = { structValue: { fields: { istio_headers: { structValue: { fields: {} } } } } };
const methods = { listValue: { values: [ISTIO_HEADERS] } };

/** The filter for one side: `outbound` discovers and propagates upstream, `inbound` downstream. */
export function peerMetadataFilter(side: "inbound" | "outbound"): HttpFilter {
  const dir = side === "inbound" ? "downstream" : "upstream";
  return {
    name: PEER_METADATA_FILTER_NAME,
    // The JSON form of an Any (see typed.ts); TypedStruct's value is a google.protobuf.Struct.
    typedConfig: {
      "@type": TYPED_STRUCT_URL,
      typeUrl: CONFIG_URL,
      value: { fields: { [`${dir}_discovery`]: methods, [`${dir}_propagation`]: methods } },
    } as unknown as HttpFilter["typedConfig"],
  };
}
