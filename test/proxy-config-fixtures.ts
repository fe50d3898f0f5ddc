// Shared by the sidecar config tests: small hand-written Envoy resources (camelCase, Anys in their "@type"
// form), and decoding exactly as the wire delivers them (pack, then unpack with proto-loader's options).
import assert from "node:assert/strict";
import { SkeinError } from "../src/lib/diagnostics.js";
import { CLUSTER, ENDPOINT, LISTENER, pack, ROUTE, TYPE_URL_PREFIX, unpack } from "../src/xds/protos.js";

export const FULL_NAME = {
  [LISTENER]: "envoy.config.listener.v3.Listener",
  [ROUTE]: "envoy.config.route.v3.RouteConfiguration",
  [CLUSTER]: "envoy.config.cluster.v3.Cluster",
  [ENDPOINT]: "envoy.config.endpoint.v3.ClusterLoadAssignment",
} as const;

/** Encodes `message` as the type, then decodes it as an xDS client receives it. */
// biome-ignore lint/suspicious/noExplicitAny: decoded resources are handed to compile functions typed by them
export function wire(typeUrlOrName: string, message: object): any {
  const name = (FULL_NAME as Record<string, string>)[typeUrlOrName] ?? typeUrlOrName;
  return unpack(pack(name, message));
}

export function typed(name: string, fields: object = {}): Record<string, unknown> {
  return { "@type": `${TYPE_URL_PREFIX}${name}`, ...fields };
}

export const ROUTER = typed("envoy.extensions.filters.http.router.v3.Router");
export const HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

export function routerFilter(): object {
  return { name: "envoy.filters.http.router", typedConfig: ROUTER };
}

export function hcm(fields: object = {}): Record<string, unknown> {
  return typed(HCM_TYPE, {
    statPrefix: "outbound",
    rds: { routeConfigName: "r1", configSource: { ads: {} } },
    httpFilters: [routerFilter()],
    ...fields,
  });
}

export function listener(name = "outbound", fields: object = {}): Record<string, unknown> {
  return {
    name,
    address: { socketAddress: { address: "127.0.0.1", portValue: 15001 } },
    filterChains: [
      { filters: [{ name: "envoy.filters.network.http_connection_manager", typedConfig: hcm() }] },
    ],
    ...fields,
  };
}

export function route(fields: object = {}): Record<string, unknown> {
  return { match: { prefix: "/" }, route: { cluster: "c1" }, ...fields };
}

export function routeConfiguration(
  name = "r1",
  routes: object[] = [route()],
  vh: object = {},
): Record<string, unknown> {
  return { name, virtualHosts: [{ name: "vh", domains: ["*"], routes, ...vh }] };
}

export function cluster(name = "c1", fields: object = {}): Record<string, unknown> {
  return { name, type: "EDS", edsClusterConfig: { edsConfig: { ads: {} } }, ...fields };
}

export function loadAssignment(
  clusterName = "c1",
  addresses: [string, number][] = [["127.0.0.1", 8080]],
): Record<string, unknown> {
  return {
    clusterName,
    endpoints: [
      {
        lbEndpoints: addresses.map(([address, portValue]) => ({
          endpoint: { address: { socketAddress: { address, portValue } } },
        })),
      },
    ],
  };
}

/** Runs `fn` and returns the SkeinError it throws (failing when it does not throw one). */
export function nack(fn: () => unknown): SkeinError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof SkeinError, `expected a SkeinError, got ${(e as Error).stack}`);
    return e;
  }
  assert.fail("expected a NACK (SkeinError), but it compiled");
}
