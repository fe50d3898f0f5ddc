// Traffic simulation tables: translate a mesh for a proxy, then walk the produced routes as Envoy (or a
// gRPC client) would, and assert where each request goes. Rows state behaviour, not proto shape.

import assert from "node:assert/strict";
import { test } from "node:test";
import type { ProxyIdentity } from "../src/model/snapshot.js";
import type { ProxyResources } from "../src/translate/index.js";
import { translate } from "../src/translate/index.js";
import {
  type SimulatedRequest,
  type SimulationResult,
  simulate,
  simulateOutbound,
  simulateTarget,
} from "../src/translate/simulate.js";
import { asTyped, FILTER } from "../src/translate/typed.js";
import { fractionalPercent, percentOf } from "../src/translate/values.js";
import type { Cluster } from "../src/xds/generated/envoy/config/cluster/v3/Cluster.js";
import {
  API_GATEWAY_SIDECAR,
  exampleSnapshot,
  PROXYLESS_CLIENT,
  shopSidecar,
  shopSnapshot,
} from "./translate-fixture.js";

const ORDER = "order-service.production.svc.cluster.local";
const cluster = (port: number, subset: string, host: string) => `outbound|${port}|${subset}|${host}`;

function routed(r: SimulationResult): Extract<SimulationResult, { kind: "cluster" }> {
  assert.equal(r.kind, "cluster", `expected a cluster, got ${JSON.stringify(r)}`);
  return r as Extract<SimulationResult, { kind: "cluster" }>;
}

interface Row {
  name: string;
  request: SimulatedRequest;
  roll?: number;
  /** A cluster name, or "404". */
  expect: string;
}

function runRows(
  resources: ProxyResources,
  rows: Row[],
  through: (req: SimulatedRequest, roll: number) => SimulationResult,
) {
  for (const row of rows) {
    const r = through(row.request, row.roll ?? 0);
    const got = r.kind === "cluster" ? r.cluster : r.kind === "not-found" ? "404" : r.kind;
    assert.equal(got, row.expect, `${row.name}: ${JSON.stringify(r.kind === "cluster" ? r.clusters : r)}`);
  }
  return resources;
}

// ── The example mesh, from the api-gateway's sidecar (explicit proxy on 15001) ─────────────────────────

test("example mesh through the api-gateway sidecar: canary header, 90/10 split, fault practice copy, 404s", async () => {
  const resources = translate(await exampleSnapshot(), API_GATEWAY_SIDECAR);
  runRows(
    resources,
    [
      {
        name: "GET /api/v1/x host order-service.production with x-canary: true ⇒ canary",
        request: {
          authority: "order-service.production",
          path: "/api/v1/x",
          headers: { "x-canary": "true" },
        },
        expect: cluster(8080, "canary", ORDER),
      },
      {
        name: "the same with the port in the Host, as HTTP_PROXY clients send it",
        request: {
          authority: "order-service.production:8080",
          path: "/api/v1/x",
          headers: { "X-Canary": "true" },
        },
        expect: cluster(8080, "canary", ORDER),
      },
      {
        name: "x-canary: false is not the canary match ⇒ the split, roll 0 ⇒ stable",
        request: { authority: "order-service:8080", path: "/api/v1/x", headers: { "x-canary": "false" } },
        expect: cluster(8080, "stable", ORDER),
      },
      {
        name: "roll 89 of 100 ⇒ stable",
        request: { authority: "order-service:8080", path: "/" },
        roll: 89,
        expect: cluster(8080, "stable", ORDER),
      },
      {
        name: "roll 90 of 100 ⇒ canary",
        request: { authority: "order-service:8080", path: "/" },
        roll: 90,
        expect: cluster(8080, "canary", ORDER),
      },
      {
        name: "roll 99 of 100 ⇒ canary",
        request: { authority: `${ORDER}:8080`, path: "/" },
        roll: 99,
        expect: cluster(8080, "canary", ORDER),
      },
      {
        name: "the practice copy in namespace default takes its own name ⇒ its stable subset",
        request: { authority: "order-service.default:8080", path: "/api/v1/orders" },
        expect: cluster(8080, "stable", "order-service.default.svc.cluster.local"),
      },
      {
        name: "a service without routing rules ⇒ its default cluster",
        request: { authority: "payment-service.production.svc:8080", path: "/pay", method: "POST" },
        expect: cluster(8080, "", "payment-service.production.svc.cluster.local"),
      },
      {
        name: "App Mesh virtual service name ⇒ the virtual node's cluster",
        request: { authority: "inventory-service.production.local:8080", path: "/stock" },
        expect: cluster(8080, "", "inventory-service.production.local"),
      },
      { name: "unknown host ⇒ 404", request: { authority: "unknown.example.com", path: "/" }, expect: "404" },
      {
        name: "known host on a port it does not have ⇒ 404",
        request: { authority: "order-service:9090", path: "/" },
        expect: "404",
      },
      {
        name: "the short name of another namespace's service is not a name here ⇒ 404",
        request: { authority: "order-service.default.svc.cluster:8080", path: "/" },
        expect: "404",
      },
    ],
    (req, roll) => simulateOutbound(resources, req, roll),
  );
});

test("example mesh: timeouts, retries and fault as configured", async () => {
  const resources = translate(await exampleSnapshot(), API_GATEWAY_SIDECAR);
  const split = routed(simulateOutbound(resources, { authority: "order-service:8080", path: "/api/v1/x" }));
  assert.deepEqual(split.clusters, [
    { name: cluster(8080, "stable", ORDER), weight: 90 },
    { name: cluster(8080, "canary", ORDER), weight: 10 },
  ]);
  assert.equal(split.timeoutMs, 10_000);
  assert.equal(split.retry?.retryOn, "5xx,reset,connect-failure");
  assert.equal(split.retry?.numRetries?.value, 3);
  assert.deepEqual(split.retry?.perTryTimeout, { seconds: 2 });
  assert.equal(split.retry?.retryHostPredicate?.[0]?.name, "envoy.retry_host_predicates.previous_hosts");
  assert.equal(split.fault, undefined);

  // No timeout written: Istio's default (none), written as 0 so Envoy's 15 s default does not apply.
  const canary = routed(
    simulateOutbound(resources, {
      authority: "order-service:8080",
      path: "/",
      headers: { "x-canary": "true" },
    }),
  );
  assert.equal(canary.timeoutMs, 0);
  // No retries written: Istio's default policy.
  assert.equal(
    canary.retry?.retryOn,
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
  );
  assert.deepEqual(canary.retry?.retriableStatusCodes, [503]);
  assert.equal(canary.retry?.numRetries?.value, 2);

  // Pattern 3: 10% of requests delayed 5 s, 5% aborted with 503.
  const chaos = routed(simulateOutbound(resources, { authority: "order-service.default:8080", path: "/" }));
  assert.deepEqual(chaos.fault?.delay?.fixedDelay, { seconds: 5 });
  assert.equal(percentOf(chaos.fault?.delay?.percentage), 10);
  assert.equal(chaos.fault?.abort?.httpStatus, 503);
  assert.equal(percentOf(chaos.fault?.abort?.percentage), 5);

  // App Mesh: a 15 s per-request timeout and 2 retries on 503 / gRPC UNAVAILABLE / connect errors.
  const am = routed(
    simulateOutbound(resources, { authority: "order-service.production.local:8080", path: "/" }),
  );
  assert.equal(am.timeoutMs, 15_000);
  assert.equal(am.retry?.retryOn, "unavailable,connect-failure,refused-stream,retriable-status-codes");
  assert.deepEqual(am.retry?.retriableStatusCodes, [503]);
});

test("example mesh through a proxyless gRPC client: targets, split and deadline", async () => {
  const resources = translate(await exampleSnapshot(), PROXYLESS_CLIENT);
  const call = (target: string, headers: Record<string, string> = {}, roll = 0) =>
    simulateTarget(resources, target, { path: "/shop.Orders/Get", method: "POST", headers }, roll);
  assert.equal(
    routed(call("order-service.production:8080", { "x-canary": "true" })).cluster,
    cluster(8080, "canary", ORDER),
  );
  assert.equal(routed(call("order-service:8080", {}, 89)).cluster, cluster(8080, "stable", ORDER));
  assert.equal(routed(call(`${ORDER}:8080`, {}, 90)).cluster, cluster(8080, "canary", ORDER));
  assert.equal(routed(call("order-service.production.svc:8080")).cluster, cluster(8080, "stable", ORDER));
  // gRPC takes the deadline from max_stream_duration.
  assert.deepEqual(routed(call("order-service:8080")).route.route?.maxStreamDuration, {
    maxStreamDuration: { seconds: 10 },
  });
  // Targets Istio does not serve for a client in production.
  for (const t of ["order-service.default.svc.cluster:8080", "order-service:9090", "payment-service"])
    assert.equal(call(t).kind, "not-found", t);
  assert.deepEqual(
    resources.listeners.filter((l) => l.name?.startsWith("order-service")).map((l) => l.name),
    [
      "order-service.default.svc.cluster.local:8080",
      "order-service.default.svc:8080",
      "order-service.default:8080",
      "order-service.production.local:8080",
      `${ORDER}:8080`,
      "order-service.production.svc:8080",
      "order-service.production:8080",
      "order-service:8080",
    ],
  );
});

test("a proxyless client in namespace default: the short name is the practice copy, fault on", async () => {
  const proxy: ProxyIdentity = { id: "grpc-client~default", kind: "proxyless", namespace: "default" };
  const resources = translate(await exampleSnapshot(), proxy);
  const r = routed(simulateTarget(resources, "order-service:8080", { path: "/x" }));
  assert.equal(r.cluster, cluster(8080, "stable", "order-service.default.svc.cluster.local"));
  assert.equal(percentOf(r.fault?.abort?.percentage), 5);
  assert.equal(
    resources.listeners.some((l) => l.name === "payment-service:8080"),
    false,
  );
  assert.equal(
    resources.listeners.some((l) => l.name === "payment-service.production:8080"),
    true,
  );
});

// ── A mesh exercising the rest of the routing surface ────────────────────────────────────────────────

const SHOP_HOST = "shop.prod.svc.cluster.local";

test("routing surface: redirects, direct responses, regex and query matches, inverted headers, weights", () => {
  const resources = translate(shopSnapshot(), shopSidecar("web"));
  const out = (req: SimulatedRequest, roll: number) => simulateOutbound(resources, req, roll);
  const shop = (path: string, headers: Record<string, string> = {}, method = "GET") => ({
    authority: "shop:8080",
    path,
    headers,
    method,
  });
  runRows(
    resources,
    [
      { name: "ignoreUriCase prefix ⇒ redirect", request: shop("/old/catalog"), expect: "redirect" },
      { name: "exact path ⇒ direct response", request: shop("/healthz"), expect: "direct-response" },
      { name: "exact path is exact", request: shop("/healthz/deep"), expect: cluster(8080, "", SHOP_HOST) },
      {
        name: "regex path + query + method ⇒ v2",
        request: shop("/search/boots?q=shoes"),
        expect: cluster(8080, "v2", SHOP_HOST),
      },
      {
        name: "regex must match the whole path",
        request: shop("/search/boots/x?q=shoes"),
        expect: cluster(8080, "", SHOP_HOST),
      },
      {
        name: "query value differs ⇒ fallback",
        request: shop("/search/boots?q=hats"),
        expect: cluster(8080, "", SHOP_HOST),
      },
      {
        name: "method differs ⇒ fallback",
        request: shop("/search/boots?q=shoes", {}, "POST"),
        expect: cluster(8080, "", SHOP_HOST),
      },
      {
        name: "x-beta present, roll 74 ⇒ v1",
        request: shop("/", { "x-beta": "" }),
        roll: 74,
        expect: cluster(8080, "v1", SHOP_HOST),
      },
      {
        name: "x-beta present, roll 75 ⇒ v2",
        request: shop("/", { "x-beta": "yes" }),
        roll: 75,
        expect: cluster(8080, "v2", SHOP_HOST),
      },
      {
        name: "withoutHeaders excludes internal callers",
        request: shop("/", { "x-beta": "1", "x-internal": "1" }),
        expect: cluster(8080, "", SHOP_HOST),
      },
      {
        name: "x-internal with another value still matches",
        request: shop("/", { "x-beta": "1", "x-internal": "2" }),
        expect: cluster(8080, "v1", SHOP_HOST),
      },
      {
        name: "the gRPC port: same rules, port 9090 clusters where the destination names no port",
        request: { authority: "shop.prod:9090", path: "/search/x?q=shoes" },
        expect: cluster(9090, "v2", SHOP_HOST),
      },
      {
        name: "destinations with an explicit port keep it on another port's virtual host",
        request: { authority: "shop.prod:9090", path: "/", headers: { "x-beta": "1" } },
        expect: cluster(8080, "v1", SHOP_HOST),
      },
      {
        name: "bare name of a service with port 80",
        request: { authority: "cart", path: "/" },
        expect: cluster(80, "", "cart.prod.svc.cluster.local"),
      },
      {
        name: "bare name of a service with two ports and no 80 ⇒ 404",
        request: { authority: "shop", path: "/" },
        expect: "404",
      },
      {
        name: "a namespace outside the Sidecar egress ⇒ 404",
        request: { authority: "secret.vault:8080", path: "/" },
        expect: "404",
      },
    ],
    out,
  );

  const beta = routed(out(shop("/", { "x-beta": "1" }), 0));
  assert.deepEqual(beta.route.route?.requestMirrorPolicies, [
    {
      cluster: cluster(8080, "v2", SHOP_HOST),
      runtimeFraction: { defaultValue: { numerator: 1250, denominator: "TEN_THOUSAND" } },
    },
  ]);
  assert.deepEqual(beta.fault?.abort, {
    grpcStatus: 14,
    percentage: { numerator: 1250, denominator: "TEN_THOUSAND" },
  });
  const cors = asTyped(
    beta.route.typedPerFilterConfig?.[FILTER.cors],
    "envoy.extensions.filters.http.cors.v3.CorsPolicy",
  );
  assert.equal(cors?.allowMethods, "GET,POST");
  assert.equal(cors?.maxAge, "86400");
  assert.deepEqual(beta.route.route?.weightedClusters?.clusters?.[0]?.requestHeadersToAdd, [
    { header: { key: "x-route", value: "v1" }, appendAction: "OVERWRITE_IF_EXISTS_OR_ADD" },
  ]);
  // Consistent hashing: the ring on the cluster, the key on the route.
  assert.deepEqual(beta.route.route?.hashPolicy, [{ header: { headerName: "x-user" } }]);

  const search = routed(out(shop("/search/boots?q=shoes"), 0));
  assert.deepEqual(search.route.route?.regexRewrite, {
    pattern: { regex: "/search/[a-z]+" },
    substitution: "/find",
  });
  const redirect = out(shop("/OLD/x"), 0);
  assert.ok(redirect.kind === "redirect");
  assert.deepEqual(redirect.route.redirect, { responseCode: "PERMANENT_REDIRECT", pathRedirect: "/new/" });

  const fallback = routed(out(shop("/other"), 0));
  assert.equal(fallback.retry, undefined, "attempts: 0 disables retries");
  assert.deepEqual(fallback.route.responseHeadersToAdd, [
    { header: { key: "x-served-by", value: "shop" }, appendAction: "APPEND_IF_EXISTS_OR_ADD" },
  ]);
  // Port 9090 overrides the load balancer with ROUND_ROBIN: nothing to hash there.
  const grpcPort = routed(out({ authority: "shop:9090", path: "/other" }, 0));
  assert.equal(grpcPort.route.route?.hashPolicy, undefined);
});

test("clusters: merged policies, protocol options, DNS and TCP", () => {
  const resources = translate(shopSnapshot(), shopSidecar("web"));
  const byName = (name: string): Cluster => {
    const c = resources.clusters.find((x) => x.name === name);
    assert.ok(c, name);
    return c;
  };
  const base = byName(cluster(8080, "", SHOP_HOST));
  assert.equal(base.lbPolicy, "RING_HASH");
  assert.deepEqual(base.outlierDetection, {
    enforcingSuccessRate: { value: 0 },
    consecutive_5xx: { value: 3 },
    enforcingConsecutive_5xx: { value: 100 },
    interval: { seconds: 10 },
    baseEjectionTime: { seconds: 30 },
    maxEjectionPercent: { value: 50 },
  });
  assert.deepEqual(base.connectTimeout, { seconds: 10 });
  assert.equal(
    base.typedExtensionProtocolOptions,
    undefined,
    "HTTP/1 without limits needs no protocol options",
  );
  // The subset's connection pool replaces the top level's; the load balancer is inherited.
  const v2 = byName(cluster(8080, "v2", SHOP_HOST));
  assert.equal(v2.lbPolicy, "RING_HASH");
  assert.deepEqual(v2.typedExtensionProtocolOptions?.[FILTER.httpProtocolOptions], {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    commonHttpProtocolOptions: { maxRequestsPerConnection: { value: 5 } },
    explicitHttpConfig: { httpProtocolOptions: {} },
  });
  // Port-level settings replace the load balancer on 9090; the gRPC port speaks HTTP/2 upstream.
  const grpc = byName(cluster(9090, "", SHOP_HOST));
  assert.equal(grpc.lbPolicy, "ROUND_ROBIN");
  assert.deepEqual(grpc.typedExtensionProtocolOptions?.[FILTER.httpProtocolOptions], {
    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    explicitHttpConfig: { http2ProtocolOptions: {} },
  });
  // A workload's port override becomes its endpoint port.
  const grpcEndpoints = resources.endpoints.find((e) => e.clusterName === cluster(9090, "", SHOP_HOST));
  assert.deepEqual(
    grpcEndpoints?.endpoints?.flatMap((l) =>
      l.lbEndpoints?.map(
        (e) =>
          `${e.endpoint?.address?.socketAddress?.address}:${e.endpoint?.address?.socketAddress?.portValue}`,
      ),
    ),
    ["127.0.2.1:9090", "127.0.2.2:19090"],
  );
  const dns = byName(cluster(443, "", "api.payments.example.com"));
  assert.equal(dns.type, "STRICT_DNS");
  assert.deepEqual(dns.loadAssignment?.endpoints?.[0]?.lbEndpoints?.[0]?.endpoint?.address, {
    socketAddress: { address: "api.payments.example.com", portValue: 443 },
  });
  assert.equal(
    resources.clusters.some((c) => c.name?.includes("secret.vault")),
    false,
    "outside the Sidecar egress",
  );
  // TCP ports: virtual listeners behind 15001's original-destination hand-off.
  const db = resources.listeners.find((l) => l.name === "0.0.0.0_5432");
  assert.deepEqual(db?.bindToPort, { value: false });
  const tcp = asTyped(
    db?.filterChains?.[0]?.filters?.[0]?.typedConfig,
    "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
  );
  assert.equal(tcp?.cluster, cluster(5432, "", "db.prod.svc.cluster.local"));
  assert.deepEqual(resources.listeners.find((l) => l.name === "virtualOutbound")?.useOriginalDst, {
    value: true,
  });
});

test("scope: a workload-selecting Sidecar narrows egress to one host and port; exportTo hides services", () => {
  const cart = translate(shopSnapshot(), shopSidecar("cart"));
  assert.deepEqual(
    cart.clusters.map((c) => c.name),
    [
      "inbound|80||",
      cluster(8080, "v1", SHOP_HOST),
      cluster(8080, "v2", SHOP_HOST),
      cluster(8080, "", SHOP_HOST),
    ],
  );
  assert.equal(simulateOutbound(cart, { authority: "shop:9090", path: "/" }).kind, "not-found");
  assert.equal(
    routed(simulateOutbound(cart, { authority: "shop:8080", path: "/" })).cluster,
    cluster(8080, "", SHOP_HOST),
  );

  // The ledger is exported to its own namespace only.
  const other = translate(shopSnapshot(), { id: "c", kind: "proxyless", namespace: "other" });
  assert.equal(
    other.clusters.some((c) => c.name?.includes("ledger")),
    false,
  );
  const vault = translate(shopSnapshot(), { id: "v", kind: "proxyless", namespace: "vault" });
  const ledger = vault.endpoints.find((e) => e.clusterName === cluster(7070, "", "ledger.vault.internal"));
  // Static endpoints, one locality group each, weighted by their endpoints.
  assert.deepEqual(
    ledger?.endpoints?.map((l) => [l.locality, l.loadBalancingWeight?.value, l.lbEndpoints?.length]),
    [
      [{ region: "eu", zone: "west-1", subZone: "a" }, 1, 1],
      [{ region: "eu", zone: "west-1", subZone: "b" }, 3, 1],
    ],
  );
  assert.equal(
    routed(simulateTarget(vault, "secret:8080", { path: "/" })).cluster,
    cluster(8080, "", "secret.vault.svc.cluster.local"),
  );
});

test("inbound: listener on the workload address and port, cluster to the application on 127.0.0.1", async () => {
  const snapshot = await exampleSnapshot();
  const v1 = snapshot.workloads.find((w) => w.name === "order-service-v1");
  const r = translate(snapshot, { id: "s", kind: "sidecar", namespace: "production", workload: v1 });
  const inbound = r.listeners.find((l) => l.name === "127.0.1.1_8080");
  assert.deepEqual(inbound?.address, { socketAddress: { address: "127.0.1.1", portValue: 8080 } });
  const hcm = asTyped(
    inbound?.filterChains?.[0]?.filters?.[0]?.typedConfig,
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  );
  assert.ok(hcm?.routeConfig);
  const result = routed(simulate(hcm.routeConfig, { authority: "anything", path: "/api/v1/orders" }));
  assert.equal(result.cluster, "inbound|8080||");
  // `app:http` names the application's private port.
  const app = r.clusters.find((c) => c.name === "inbound|8080||");
  assert.deepEqual(app?.loadAssignment?.endpoints?.[0]?.lbEndpoints?.[0]?.endpoint?.address, {
    socketAddress: { address: "127.0.0.1", portValue: 40001 },
  });
  assert.deepEqual(r.listeners.find((l) => l.name === "virtualOutbound")?.address, {
    socketAddress: { address: "127.0.1.1", portValue: 15001 },
  });
});

test("proxyless: no redirects, direct responses or CORS (gRPC NACKs them); LB policies gRPC implements", () => {
  const resources = translate(shopSnapshot(), { id: "g", kind: "proxyless", namespace: "prod" });
  // /healthz's direct response is left out: the call falls through to the next route that matches.
  const health = routed(simulateTarget(resources, "shop:8080", { path: "/healthz" }));
  assert.equal(health.cluster, cluster(8080, "", SHOP_HOST));
  const beta = routed(simulateTarget(resources, "shop.prod:8080", { path: "/", headers: { "x-beta": "1" } }));
  assert.equal(beta.route.typedPerFilterConfig?.[FILTER.cors], undefined);
  assert.ok(beta.fault);
  const lb = Object.fromEntries(resources.clusters.map((c) => [c.name, c.lbPolicy]));
  assert.equal(lb[cluster(8080, "", SHOP_HOST)], "RING_HASH");
  assert.equal(lb[cluster(80, "", "cart.prod.svc.cluster.local")], "ROUND_ROBIN");
  const dns = resources.clusters.find((c) => c.name === cluster(443, "", "api.payments.example.com"));
  assert.equal(dns?.type, "LOGICAL_DNS");
  assert.equal(
    resources.listeners.every((l) => l.apiListener),
    true,
  );
  assert.equal(
    resources.listeners.some((l) => l.name?.startsWith("db")),
    false,
    "no gRPC targets for TCP ports",
  );
});

test("fractional percentages use the smallest exact denominator", () => {
  assert.deepEqual(fractionalPercent(10), { numerator: 10, denominator: "HUNDRED" });
  assert.deepEqual(fractionalPercent(12.5), { numerator: 1250, denominator: "TEN_THOUSAND" });
  assert.deepEqual(fractionalPercent(0.1), { numerator: 10, denominator: "TEN_THOUSAND" });
  assert.deepEqual(fractionalPercent(0.0001), { numerator: 1, denominator: "MILLION" });
  assert.deepEqual(fractionalPercent(100 / 3), { numerator: 333333, denominator: "MILLION" });
  assert.deepEqual(fractionalPercent(100), { numerator: 100, denominator: "HUNDRED" });
});
