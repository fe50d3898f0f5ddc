// src/xds/protos.ts: checked packing into google.protobuf.Any, encode→decode round trips, type URLs, Struct.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SkeinError } from "../src/lib/diagnostics.js";
import { XdsCodes } from "../src/xds/codes.js";
import type { Listener } from "../src/xds/generated/envoy/config/listener/v3/Listener.js";
import type { RouteConfiguration } from "../src/xds/generated/envoy/config/route/v3/RouteConfiguration.js";
import type { HttpConnectionManager } from "../src/xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.js";
import {
  adsServiceDefinition,
  CLUSTER,
  decode,
  ENDPOINT,
  encode,
  HTTP_CONNECTION_MANAGER,
  jsonToStruct,
  LISTENER,
  pack,
  ROUTE,
  SECRET,
  structToJson,
  typeUrlOf,
  unpack,
} from "../src/xds/protos.js";
import { ROUTER } from "./xds-helpers.js";

const FAULT = "envoy.extensions.filters.http.fault.v3.HTTPFault";

// Round trips compare without defaults and oneof markers, so what comes back is exactly what went in.
const exact = { defaults: false, oneofs: false };

function rejects(fn: () => unknown, code: string, pathPart: string): SkeinError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SkeinError, `expected SkeinError, got ${e}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.includes(pathPart), `"${e.message}" should name ${pathPart}`);
    return e;
  }
  assert.fail("expected a SkeinError");
}

describe("type URLs", () => {
  it("names the well-known resource types", () => {
    assert.equal(LISTENER, "type.googleapis.com/envoy.config.listener.v3.Listener");
    assert.equal(ROUTE, "type.googleapis.com/envoy.config.route.v3.RouteConfiguration");
    assert.equal(CLUSTER, "type.googleapis.com/envoy.config.cluster.v3.Cluster");
    assert.equal(ENDPOINT, "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment");
    assert.equal(SECRET, "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret");
    assert.equal(typeUrlOf("envoy.config.listener.v3.Listener"), LISTENER);
  });

  it("loads other bundled packages on demand", () => {
    assert.equal(
      typeUrlOf("envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication"),
      "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
    );
  });

  it("rejects an unknown message name", () => {
    rejects(() => typeUrlOf("envoy.config.listener.v3.Listner"), XdsCodes.UNKNOWN_TYPE, "Listner");
    rejects(() => pack("envoy.nothing.v3.Thing", {}), XdsCodes.UNKNOWN_TYPE, "envoy.nothing.v3.Thing");
  });
});

describe("pack/unpack round trips", () => {
  it("a Listener with an HttpConnectionManager packed in typed_config", () => {
    const router = pack(ROUTER, { suppressEnvoyHeaders: true });
    const hcmIn: HttpConnectionManager = {
      statPrefix: "outbound_0.0.0.0_15001",
      codecType: "AUTO",
      rds: { routeConfigName: "outbound|80", configSource: { ads: {}, resourceApiVersion: "V3" } },
      httpFilters: [{ name: "envoy.filters.http.router", typedConfig: router }],
      streamIdleTimeout: { seconds: "300", nanos: 5 },
      useRemoteAddress: { value: true },
      commonHttpProtocolOptions: { maxRequestsPerConnection: { value: 100 } },
    };
    const hcm = pack(HTTP_CONNECTION_MANAGER, hcmIn);
    assert.equal(hcm.type_url, `type.googleapis.com/${HTTP_CONNECTION_MANAGER}`);
    assert.equal(hcm.typeUrl, hcm.type_url, "typeUrl is an alias of type_url");
    const listenerIn: Listener = {
      name: "outbound_0.0.0.0_15001",
      address: { socketAddress: { address: "127.0.0.1", portValue: 15001, protocol: "TCP" } },
      filterChains: [
        {
          name: "http",
          filterChainMatch: { destinationPort: { value: 15001 }, applicationProtocols: ["http/1.1", "h2c"] },
          filters: [{ name: "envoy.filters.network.http_connection_manager", typedConfig: hcm }],
        },
      ],
      trafficDirection: "OUTBOUND",
      metadata: { filterMetadata: { skein: jsonToStruct({ proxy: "sidecar", ports: [15001, 15006] }) } },
    };
    const any = pack("envoy.config.listener.v3.Listener", listenerIn);
    assert.equal(any.type_url, LISTENER);

    const listenerOut = unpack<Listener>(any, exact);
    assert.deepEqual(listenerOut, listenerIn);
    const nested = listenerOut.filterChains?.[0]?.filters?.[0]?.typedConfig as {
      type_url: string;
      value: Buffer;
    };
    const hcmOut = unpack(nested, exact);
    assert.deepEqual(hcmOut, hcmIn);
    const routerOut = unpack(
      (hcmOut as HttpConnectionManager).httpFilters?.[0]?.typedConfig as typeof router,
      exact,
    );
    assert.deepEqual(routerOut, { suppressEnvoyHeaders: true });
  });

  it("a RouteConfiguration with typed_per_filter_config", () => {
    const faultOverride = pack(FAULT, {
      abort: { httpStatus: 503, percentage: { numerator: 10, denominator: "HUNDRED" } },
      delay: { fixedDelay: { seconds: "1" }, percentage: { numerator: 5, denominator: "HUNDRED" } },
    });
    const routeIn: RouteConfiguration = {
      name: "outbound|8080",
      validateClusters: { value: false },
      virtualHosts: [
        {
          name: "orders.default.svc:8080",
          domains: ["orders", "orders:8080"],
          routes: [
            {
              name: "canary",
              match: {
                prefix: "/api",
                headers: [{ name: "x-canary", stringMatch: { exact: "yes" } }],
              },
              route: {
                weightedClusters: {
                  clusters: [
                    { name: "outbound|8080|v1|orders", weight: { value: 90 } },
                    { name: "outbound|8080|v2|orders", weight: { value: 10 } },
                  ],
                },
                timeout: { seconds: "2", nanos: 500000000 },
                retryPolicy: { retryOn: "5xx", numRetries: { value: 3 } },
              },
              typedPerFilterConfig: { "envoy.filters.http.fault": faultOverride },
            },
          ],
        },
      ],
    };
    const any = pack("envoy.config.route.v3.RouteConfiguration", routeIn);
    const out = unpack<RouteConfiguration>(any, exact);
    assert.deepEqual(out, routeIn);
    const perFilter = out.virtualHosts?.[0]?.routes?.[0]?.typedPerFilterConfig?.["envoy.filters.http.fault"];
    assert.deepEqual(unpack(perFilter as typeof faultOverride, exact), unpack(faultOverride, exact));
  });

  it("decodes with proto-loader's defaults: longs and enums as strings, defaults filled, oneof markers", () => {
    const out = unpack<Record<string, unknown>>(
      pack("envoy.config.cluster.v3.Cluster", { name: "c", type: "EDS", connectTimeout: { seconds: 5 } }),
    );
    assert.equal(out.type, "EDS");
    assert.equal(out.clusterDiscoveryType, "type");
    assert.deepEqual(out.connectTimeout, { seconds: "5", nanos: 0 });
    assert.equal(out.lbPolicy, "ROUND_ROBIN"); // a default
  });

  it("accepts Any as {typeUrl, value} and as {'@type', ...fields}", () => {
    const viaJson = pack("envoy.config.listener.v3.Filter", {
      name: "hcm",
      typedConfig: { "@type": `type.googleapis.com/${HTTP_CONNECTION_MANAGER}`, statPrefix: "x" },
    });
    const viaCamel = pack("envoy.config.listener.v3.Filter", {
      name: "hcm",
      typedConfig: {
        typeUrl: `type.googleapis.com/${HTTP_CONNECTION_MANAGER}`,
        value: encode(HTTP_CONNECTION_MANAGER, { statPrefix: "x" }),
      },
    });
    assert.deepEqual(viaJson.value, viaCamel.value);
    rejects(
      () =>
        pack("envoy.config.listener.v3.Filter", {
          name: "hcm",
          typedConfig: { "@type": `type.googleapis.com/${HTTP_CONNECTION_MANAGER}`, statPrefx: "x" },
        }),
      XdsCodes.UNKNOWN_FIELD,
      "typedConfig.statPrefx",
    );
  });

  it("encodes equal maps to equal bytes whatever the key order", () => {
    const a = encode("envoy.config.core.v3.Metadata", {
      filterMetadata: { x: jsonToStruct({ a: 1 }), y: {} },
    });
    const b = encode("envoy.config.core.v3.Metadata", {
      filterMetadata: { y: {}, x: jsonToStruct({ a: 1 }) },
    });
    assert.deepEqual(a, b);
  });
});

describe("pack() checks every key", () => {
  it("rejects a misspelled field with its path", () => {
    const e = rejects(
      () =>
        pack("envoy.config.listener.v3.Listener", {
          name: "l",
          filterChains: [{ filters: [{ name: "f", typedConfg: {} }] }],
        }),
      XdsCodes.UNKNOWN_FIELD,
      "Listener.filterChains[0].filters[0].typedConfg",
    );
    assert.match(e.message, /did you mean "typedConfig"/);
    assert.equal(e.diagnostics[0]?.path, "Listener.filterChains[0].filters[0].typedConfg");
  });

  it("rejects misspellings inside wrappers, durations, maps and Structs", () => {
    rejects(
      () => pack(ROUTE.slice(20), { name: "r", validateClusters: { val: true } }),
      XdsCodes.UNKNOWN_FIELD,
      "RouteConfiguration.validateClusters.val",
    );
    rejects(
      () => pack(CLUSTER.slice(20), { name: "c", connectTimeout: { second: 1 } }),
      XdsCodes.UNKNOWN_FIELD,
      "Cluster.connectTimeout.second",
    );
    rejects(
      () =>
        pack(CLUSTER.slice(20), {
          name: "c",
          metadata: { filterMetadata: { skein: { fields: { a: { stringVal: "x" } } } } },
        }),
      XdsCodes.UNKNOWN_FIELD,
      "Cluster.metadata.filterMetadata.skein.fields.a.stringVal",
    );
    rejects(
      () =>
        pack(ROUTE.slice(20), {
          name: "r",
          typedPerFilterConfig: { f: { typeUrl: "x", value: Buffer.alloc(0), extra: 1 } },
        }),
      XdsCodes.UNKNOWN_FIELD,
      "RouteConfiguration.typedPerFilterConfig.f.extra",
    );
  });

  it("rejects values of the wrong type", () => {
    rejects(() => pack(CLUSTER.slice(20), { name: "c", type: "EDZ" }), XdsCodes.BAD_VALUE, "Cluster.type");
    rejects(() => pack(CLUSTER.slice(20), { name: 5 }), XdsCodes.BAD_VALUE, "Cluster.name");
    rejects(
      () => pack(LISTENER.slice(20), { name: "l", filterChains: {} }),
      XdsCodes.BAD_VALUE,
      "Listener.filterChains",
    );
    rejects(
      () => pack(LISTENER.slice(20), { name: "l", address: "127.0.0.1" }),
      XdsCodes.BAD_VALUE,
      "Listener.address",
    );
    rejects(
      () => pack(HTTP_CONNECTION_MANAGER, { rds: { routeConfigName: "a" }, routeConfig: { name: "b" } }),
      XdsCodes.BAD_VALUE,
      "routeConfig",
    );
  });

  it("accepts oneof markers that agree with the member set", () => {
    pack(HTTP_CONNECTION_MANAGER, { routeSpecifier: "rds", rds: { routeConfigName: "a" } });
    rejects(
      () => pack(HTTP_CONNECTION_MANAGER, { routeSpecifier: "routeConfig", rds: { routeConfigName: "a" } }),
      XdsCodes.BAD_VALUE,
      "routeSpecifier",
    );
  });
});

describe("Struct and decoding helpers", () => {
  it("converts JSON to Struct and back", () => {
    const json = { a: 1, b: [true, null, "x"], c: { d: "e" } };
    const struct = jsonToStruct(json);
    const decoded = decode<{ metadata: Parameters<typeof structToJson>[0] }>(
      "envoy.config.core.v3.Node",
      encode("envoy.config.core.v3.Node", { id: "n", metadata: struct }),
    );
    assert.deepEqual(structToJson(decoded.metadata), json);
  });

  it("reports bytes that do not decode", () => {
    rejects(() => decode(LISTENER, Buffer.from([0xff, 0xff, 0xff])), XdsCodes.DECODE, "Listener");
  });

  it("loads the ADS service definition", () => {
    const def = adsServiceDefinition();
    assert.equal(
      def.StreamAggregatedResources.path,
      "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
    );
    assert.equal(
      def.DeltaAggregatedResources.path,
      "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources",
    );
  });
});
