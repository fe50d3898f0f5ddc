// The peer-metadata exchange: the wire form (base64 of a serialized google.protobuf.Struct, as Istio's
// sidecars send it), the filter config as Istio ships it (a TypedStruct) through the sidecar's config
// layer, and the filter's trust rule — a peer's metadata counts only over mutual TLS and only when it
// matches the certificate's identity; over plaintext a forged header is stripped and not counted. The
// last test runs the real data path (listener manager, router, upstream) with the filter translated for
// the inbound side.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Registry } from "prom-client";
import { ProxyConfigCodes } from "../src/proxy/config/codes.js";
import { compileListener } from "../src/proxy/config/listener.js";
import type { HttpListenerConfig, PeerMetadataConfig } from "../src/proxy/config/types.js";
import { PeerMetadataFilter } from "../src/proxy/filters/metadata-exchange/metadata-exchange.js";
import { localNodeFrom } from "../src/proxy/node.js";
import type { ConnectionInfo } from "../src/proxy/router/connection.js";
import type { DownstreamRequest } from "../src/proxy/router/downstream.js";
import type { HeaderRecord } from "../src/proxy/router/headers.js";
import { StreamInfo } from "../src/proxy/router/stream-info.js";
import { IstioMetrics } from "../src/proxy/telemetry/istio-metrics.js";
import {
  decodePeerMetadata,
  encodePeerMetadata,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
} from "../src/proxy/telemetry/peer-metadata.js";
import { peerMetadataFilter } from "../src/translate/peer-metadata.js";
import { LISTENER, messageType } from "../src/xds/protos.js";
import { hcm, listener, nack, routerFilter, typed, wire } from "./proxy-config-fixtures.js";
import {
  cluster,
  echoServer,
  endpoint,
  freePort,
  httpListener,
  prefixMatch,
  request,
  route,
  routeAction,
  routeTable,
  runtimeConfig,
  Sidecar,
  virtualHost,
} from "./proxy-router-fixtures.js";

const gatewayNode = localNodeFrom({
  id: "sidecar~127.0.1.5~api-gateway-v1.production~production.svc.cluster.local",
  metadata: {
    NAMESPACE: "production",
    WORKLOAD_NAME: "api-gateway-v1",
    SERVICE_ACCOUNT: "api-gateway",
    LABELS: { app: "api-gateway", version: "v1" },
  },
});
const orderNode = localNodeFrom({
  id: "sidecar~127.0.1.4~order-service-v2.production~production.svc.cluster.local",
  metadata: {
    NAMESPACE: "production",
    WORKLOAD_NAME: "order-service-v2",
    SERVICE_ACCOUNT: "order-service",
    LABELS: { app: "order-service", version: "v2" },
  },
});
const GATEWAY_SPIFFE = "spiffe://cluster.local/ns/production/sa/api-gateway";

const INBOUND: PeerMetadataConfig = {
  kind: "peer-metadata",
  downstreamDiscovery: true,
  downstreamPropagation: true,
  upstreamDiscovery: false,
  upstreamPropagation: false,
};
const OUTBOUND: PeerMetadataConfig = {
  kind: "peer-metadata",
  downstreamDiscovery: false,
  downstreamPropagation: false,
  upstreamDiscovery: true,
  upstreamPropagation: true,
};

function conn(peerPrincipal?: string): ConnectionInfo {
  return {
    tls: peerPrincipal !== undefined,
    peerPrincipal,
    localPrincipal: undefined,
    sni: undefined,
    alpn: undefined,
    sourceAddress: "127.0.1.5",
    sourcePort: 1,
    localAddress: "127.0.1.4",
    localPort: 8080,
  };
}

/** The parts of a downstream request the filter reads. */
function fakeRequest(headers: Record<string, string>, connection?: ConnectionInfo): DownstreamRequest {
  const info = new StreamInfo("in", "HTTP/1.1", "GET", "order-service:8080", "/", "127.0.1.5");
  info.connection = connection;
  return { headers: { ...headers }, info, connection } as unknown as DownstreamRequest;
}

test("the header is base64 of a binary google.protobuf.Struct with Istio's keys, and decodes back", () => {
  const value = encodePeerMetadata(gatewayNode);
  const type = messageType("google.protobuf.Struct");
  const struct = type.toObject(type.decode(Buffer.from(value, "base64"))) as {
    fields: Record<
      string,
      { stringValue?: string; structValue?: { fields: Record<string, { stringValue: string }> } }
    >;
  };
  assert.equal(struct.fields.NAME?.stringValue, "api-gateway-v1");
  assert.equal(struct.fields.WORKLOAD_NAME?.stringValue, "api-gateway-v1");
  assert.equal(struct.fields.NAMESPACE?.stringValue, "production");
  assert.equal(struct.fields.SERVICE_ACCOUNT?.stringValue, "api-gateway");
  assert.equal(struct.fields.LABELS?.structValue?.fields.version?.stringValue, "v1");
  assert.deepEqual(decodePeerMetadata(value, gatewayNode.id), {
    id: gatewayNode.id,
    workloadName: "api-gateway-v1",
    namespace: "production",
    app: "api-gateway",
    version: "v1",
    serviceAccount: "api-gateway",
    clusterId: gatewayNode.clusterId,
  });
  assert.equal(decodePeerMetadata("%%%not base64 struct", undefined), undefined);
  assert.equal(decodePeerMetadata("A".repeat(9000), undefined), undefined, "oversized values are ignored");
});

test("inbound over plaintext: a forged peer header is stripped and not believed; ours goes back", () => {
  const filter = new PeerMetadataFilter(INBOUND, orderNode);
  const forged = encodePeerMetadata(gatewayNode);
  const req = fakeRequest({ [PEER_METADATA_HEADER]: forged, [PEER_METADATA_ID_HEADER]: "x" }, conn());
  filter.decodeHeaders(req);
  assert.equal(req.headers[PEER_METADATA_HEADER], undefined, "the application never sees it");
  assert.equal(req.headers[PEER_METADATA_ID_HEADER], undefined);
  assert.equal(req.info.peer, undefined);
  const response: HeaderRecord = {};
  filter.encodeHeaders(req, 200, response);
  assert.equal(response[PEER_METADATA_ID_HEADER], orderNode.id);
  assert.equal(
    decodePeerMetadata(response[PEER_METADATA_HEADER] as string, undefined)?.workloadName,
    "order-service-v2",
  );
});

test("inbound over mutual TLS: believed when it matches the certificate's namespace and service account", () => {
  const filter = new PeerMetadataFilter(INBOUND, orderNode);
  const value = encodePeerMetadata(gatewayNode);
  const ok = fakeRequest(
    { [PEER_METADATA_HEADER]: value, [PEER_METADATA_ID_HEADER]: gatewayNode.id },
    conn(GATEWAY_SPIFFE),
  );
  filter.decodeHeaders(ok);
  assert.equal(ok.info.peer?.workloadName, "api-gateway-v1");
  assert.equal(ok.headers[PEER_METADATA_HEADER], undefined);
  // A workload with a valid certificate of its own claiming to be the gateway.
  const other = fakeRequest(
    { [PEER_METADATA_HEADER]: value },
    conn("spiffe://cluster.local/ns/production/sa/payment-service"),
  );
  filter.decodeHeaders(other);
  assert.equal(other.info.peer, undefined);
});

test("outbound: ours goes on the request; the server's is stripped and believed only over upstream mTLS", () => {
  const filter = new PeerMetadataFilter(OUTBOUND, gatewayNode);
  // The application tried to send its own: replaced by the sidecar's.
  const req = fakeRequest({ [PEER_METADATA_HEADER]: "Zm9yZ2Vk", [PEER_METADATA_ID_HEADER]: "forged" });
  filter.decodeHeaders(req);
  assert.equal(req.headers[PEER_METADATA_ID_HEADER], gatewayNode.id);
  assert.equal(
    decodePeerMetadata(req.headers[PEER_METADATA_HEADER] as string, undefined)?.workloadName,
    "api-gateway-v1",
  );
  const server = encodePeerMetadata(orderNode);
  const plain: HeaderRecord = { [PEER_METADATA_HEADER]: server, [PEER_METADATA_ID_HEADER]: orderNode.id };
  filter.encodeHeaders(req, 200, plain);
  assert.deepEqual(plain, {}, "stripped before the application sees the response");
  assert.equal(req.info.peer, undefined);
  req.info.upstreamPeerPrincipal = "spiffe://cluster.local/ns/production/sa/order-service";
  filter.encodeHeaders(req, 200, { [PEER_METADATA_HEADER]: server, [PEER_METADATA_ID_HEADER]: orderNode.id });
  // A fresh reference: the assertion above narrowed req.info.peer to undefined for the type checker.
  const info: StreamInfo = req.info;
  assert.equal(info.peer?.workloadName, "order-service-v2");
  assert.equal(info.peer?.version, "v2");
});

test("config: the translated TypedStruct compiles; unknown methods and types are refused with stable codes", () => {
  const compile = (filters: object[]) =>
    compileListener(
      wire(
        LISTENER,
        listener("x", {
          filterChains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typedConfig: hcm({ httpFilters: filters }),
                },
              ],
            },
          ],
        }),
      ),
    );
  for (const side of ["inbound", "outbound"] as const) {
    const l = compile([peerMetadataFilter(side), routerFilter()]);
    const filters = (l.config as HttpListenerConfig).filters;
    assert.equal(filters[0]?.name, "istio.metadata_exchange");
    assert.deepEqual(filters[0]?.config, side === "inbound" ? INBOUND : OUTBOUND);
  }
  const struct = (fields: object) =>
    typed("xds.type.v3.TypedStruct", {
      typeUrl: "type.googleapis.com/io.istio.http.peer_metadata.Config",
      value: { fields },
    });
  const bad = nack(() =>
    compile([
      {
        name: "pm",
        typedConfig: struct({
          upstream_propagation: {
            listValue: { values: [{ structValue: { fields: { baggage: { structValue: {} } } } }] },
          },
        }),
      },
      routerFilter(),
    ]),
  );
  assert.equal(bad.code, ProxyConfigCodes.UNSUPPORTED);
  assert.match(bad.message, /unsupported method baggage/);
  const unknownField = nack(() =>
    compile([{ name: "pm", typedConfig: struct({ colour: { stringValue: "x" } }) }, routerFilter()]),
  );
  assert.equal(unknownField.code, ProxyConfigCodes.UNSUPPORTED);
  const other = typed("xds.type.v3.TypedStruct", {
    typeUrl: "type.googleapis.com/io.istio.other.Config",
    value: {},
  });
  assert.equal(
    nack(() => compile([{ name: "o", typedConfig: other }, routerFilter()])).code,
    ProxyConfigCodes.UNSUPPORTED,
  );
  const skipped = compile([{ name: "o", typedConfig: other, isOptional: true }, routerFilter()]);
  assert.deepEqual(
    (skipped.config as HttpListenerConfig).filters.map((f) => f.name),
    ["envoy.filters.http.router"],
  );
});

const closers: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of closers.reverse()) await c();
});

test("real data path, inbound over plaintext: the app never sees a forged header and it is not counted", async () => {
  const app = await echoServer("order-service");
  closers.push(app.close);
  const registry = new Registry();
  const metrics = new IstioMetrics(registry, orderNode);
  const sidecar = new Sidecar({
    node: orderNode,
    onRequestComplete: (info) => metrics.record(info, "inbound"),
  });
  closers.push(() => sidecar.close());
  const filters = [
    { name: "istio.metadata_exchange", config: INBOUND },
    { name: "envoy.filters.http.router", config: { kind: "router", suppressEnvoyHeaders: false } },
  ];
  const port = await freePort();
  const l = {
    ...httpListener(
      `127.0.0.1_${port}`,
      "127.0.0.1",
      port,
      routeTable("inbound|8080||", [
        virtualHost("vh", ["*"], [route("default", prefixMatch("/"), routeAction("inbound|8080||"))]),
      ]),
      {},
      filters,
    ),
    direction: "inbound" as const,
  };
  await sidecar.apply(
    runtimeConfig({
      listeners: [l],
      clusters: [cluster("inbound|8080||")],
      endpoints: { "inbound|8080||": [endpoint(app.port)] },
    }),
  );
  const reply = await request("127.0.0.1", port, {
    headers: {
      [PEER_METADATA_HEADER]: encodePeerMetadata(gatewayNode),
      [PEER_METADATA_ID_HEADER]: gatewayNode.id,
    },
  });
  assert.equal(reply.status, 200);
  assert.equal(app.seen[0]?.headers[PEER_METADATA_HEADER], undefined);
  assert.equal(app.seen[0]?.headers[PEER_METADATA_ID_HEADER], undefined);
  assert.equal(reply.headers[PEER_METADATA_ID_HEADER], orderNode.id, "the sidecar answers with its own");
  const text = await registry.metrics();
  assert.match(
    text,
    /^istio_requests_total\{reporter="destination",source_workload="unknown",[^}]*connection_security_policy="none"[^}]*\} 1$/m,
  );
  assert.doesNotMatch(text, /api-gateway/);
});
