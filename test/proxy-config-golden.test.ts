// Everything our own control plane produces must compile in the sidecar without a NACK: the golden
// translations (test/golden/translate-sidecar-*.json) re-encoded and decoded as the wire delivers them, and
// the shop mesh, which exercises the rest of the routing surface (regexes, redirects, mirrors, CORS, faults,
// hashing, DNS and TCP). Spot checks make sure the compiled values mean what the resources say.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { compileCluster } from "../src/proxy/config/cluster.js";
import { compileClusterLoadAssignment } from "../src/proxy/config/endpoint.js";
import { compileListener } from "../src/proxy/config/listener.js";
import { compileRouteConfiguration } from "../src/proxy/config/route.js";
import { ConfigStore } from "../src/proxy/config/store.js";
import type { FaultConfig, HttpListenerConfig, RouteAction } from "../src/proxy/config/types.js";
import { translate } from "../src/translate/index.js";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from "../src/xds/protos.js";
import { wire } from "./proxy-config-fixtures.js";
import { shopSidecar, shopSnapshot } from "./translate-fixture.js";

interface Golden {
  listeners: object[];
  routes: object[];
  clusters: object[];
  endpoints: object[];
}

const golden = (name: string): Golden =>
  JSON.parse(readFileSync(new URL(`./golden/${name}.json`, import.meta.url), "utf8")) as Golden;

const SIDECARS = ["translate-sidecar-api-gateway", "translate-sidecar-order-service-v1"];

/** Applies a whole translation to a store, as the xDS stream would (CDS, EDS, LDS, RDS), asserting ACKs. */
function applyAll(store: ConfigStore, r: Golden, label: string): void {
  const steps: [string, object[]][] = [
    [CLUSTER, r.clusters],
    [ENDPOINT, r.endpoints],
    [LISTENER, r.listeners],
    [ROUTE, r.routes],
  ];
  for (const [typeUrl, list] of steps) {
    const result = store.update(
      typeUrl,
      list.map((x) => wire(typeUrl, x)),
      `${label}-1`,
    );
    assert.deepEqual(result, { ok: true }, `${label}: ${typeUrl}`);
  }
}

for (const name of SIDECARS) {
  test(`golden ${name}: every resource compiles (each kind, one by one)`, () => {
    const g = golden(name);
    for (const l of g.listeners) compileListener(wire(LISTENER, l));
    for (const r of g.routes) compileRouteConfiguration(wire(ROUTE, r));
    for (const c of g.clusters) compileCluster(wire(CLUSTER, c));
    for (const e of g.endpoints) compileClusterLoadAssignment(wire(ENDPOINT, e));
  });

  test(`golden ${name}: the whole translation is ACKed by a ConfigStore and every reference resolves`, () => {
    const g = golden(name);
    const store = new ConfigStore();
    applyAll(store, g, name);
    const c = store.config;
    assert.equal(c.listeners.size, g.listeners.length);
    assert.equal(c.clusters.size, g.clusters.length);
    assert.deepEqual(store.resourceNames(ROUTE), ["http_proxy"]);
    assert.deepEqual(
      store.resourceNames(ENDPOINT),
      g.endpoints.map((e) => (e as { clusterName: string }).clusterName).sort(),
    );
    assert.equal(c.routes.size, 1);
    assert.equal(c.endpoints.size, g.endpoints.length);
  });
}

test("golden api-gateway: compiled values match the resources", () => {
  const store = new ConfigStore();
  applyAll(store, golden("translate-sidecar-api-gateway"), "gw");
  const { listeners, routes, clusters, endpoints } = store.config;

  const outbound = listeners.get("virtualOutbound");
  assert.ok(outbound);
  assert.equal(outbound.address, "127.0.1.4");
  assert.equal(outbound.port, 15001);
  assert.equal(outbound.direction, "outbound");
  assert.equal(outbound.bind, true);
  const http = outbound.config as HttpListenerConfig;
  assert.equal(http.kind, "http");
  assert.equal(http.routeConfigName, "http_proxy");
  assert.equal(http.acceptAbsoluteUrls, true);
  assert.equal(http.generateRequestId, true);
  assert.equal(http.idleTimeoutMs, 3_600_000);
  // Order kept, router last; what each filter is comes from config.kind.
  assert.deepEqual(
    http.filters.map((f) => [f.name, (f.config as { kind: string }).kind]),
    [
      // The seed's tracing (IstioOperator openCensusAgent) puts the tracing filter first.
      ["skein.filters.http.tracing", "tracing"],
      // Istio's peer-metadata exchange (a TypedStruct) before the traffic filters.
      ["istio.metadata_exchange", "peer-metadata"],
      ["envoy.filters.http.cors", "cors-filter"],
      ["envoy.filters.http.fault", "fault"],
      ["envoy.filters.http.router", "router"],
    ],
  );

  const inbound = listeners.get("127.0.1.4_8080");
  assert.ok(inbound);
  assert.equal(inbound.direction, "inbound");
  const inboundHttp = inbound.config as HttpListenerConfig;
  assert.equal(inboundHttp.routeConfigName, undefined);
  const inline = inboundHttp.routes;
  assert.ok(inline);
  assert.equal(inline.catchAll?.name, "inbound|http|8080");
  const inboundRoute = inline.catchAll?.routes[0]?.action as RouteAction;
  // timeout: 0 written out means "no timeout".
  assert.equal(inboundRoute.timeoutMs, 0);
  assert.deepEqual(
    inboundRoute.clusters.map((c) => c.name),
    ["inbound|8080||"],
  );

  const table = routes.get("http_proxy");
  assert.ok(table);
  assert.equal(table.catchAll, undefined);
  const order = table.exact.get("order-service:8080");
  assert.equal(order?.name, "order-service.production.svc.cluster.local:8080");
  assert.equal(table.exact.get("order-service"), order, "bare names are indexed too");
  const [canary, split] = order?.routes ?? [];
  assert.deepEqual(canary?.match.headers, [
    { name: "x-canary", match: { kind: "exact", value: "true", ignoreCase: false }, invert: false },
  ]);
  const splitAction = split?.action as RouteAction;
  assert.deepEqual(
    splitAction.clusters.map((c) => [c.name, c.weight]),
    [
      ["outbound|8080|stable|order-service.production.svc.cluster.local", 90],
      ["outbound|8080|canary|order-service.production.svc.cluster.local", 10],
    ],
  );
  assert.equal(splitAction.totalWeight, 100);
  assert.equal(splitAction.timeoutMs, 10_000);
  assert.deepEqual(splitAction.retry && [...splitAction.retry.retryOn], ["5xx", "reset", "connect-failure"]);
  assert.equal(splitAction.retry?.numRetries, 3);
  assert.equal(splitAction.retry?.perTryTimeoutMs, 2000);
  assert.equal(splitAction.retry?.avoidPreviousHosts, true);
  assert.equal(splitAction.retry?.hostSelectionRetryMaxAttempts, 5);
  // Envoy's defaults where the resource says nothing.
  assert.equal(splitAction.retry?.backoffBaseMs, 25);
  assert.equal(splitAction.retry?.backoffMaxMs, 250);

  const inventoryLocal = table.exact.get("inventory-service.production.local")?.routes[0]
    ?.action as RouteAction;
  assert.equal(inventoryLocal.timeoutMs, 15_000);
  assert.deepEqual([...(inventoryLocal.retry?.retriableStatusCodes ?? [])], [503]);

  // The per-route fault override, compiled (5 s delay for 10%, 503 for 5%).
  const faulted = table.exact.get("order-service.default:8080")?.routes[0];
  const fault = faulted?.filterConfig.get("envoy.filters.http.fault") as FaultConfig;
  assert.deepEqual(fault, {
    kind: "fault",
    headers: [],
    downstreamNodes: [],
    delay: { fixedDelayMs: 5000, fromHeader: false, percentage: 10 },
    abort: { httpStatus: 503, fromHeader: false, percentage: 5 },
  });

  const stable = clusters.get("outbound|8080|stable|order-service.production.svc.cluster.local");
  assert.ok(stable);
  assert.equal(stable.type, "EDS");
  assert.equal(stable.lbPolicy, "LEAST_REQUEST");
  assert.equal(stable.connectTimeoutMs, 10_000);
  assert.deepEqual(stable.circuitBreakers, {
    maxConnections: 100,
    maxPendingRequests: 100,
    maxRequests: 1000,
    maxRetries: 4294967295,
  });
  assert.equal(stable.maxRequestsPerConnection, 10);
  assert.equal(stable.http2, false);
  assert.equal(stable.panicThreshold, 50);

  const inventory = clusters.get("outbound|8080||inventory-service.production.local");
  assert.deepEqual(inventory?.healthChecks, [
    {
      kind: "http",
      timeoutMs: 5000,
      intervalMs: 15_000,
      healthyThreshold: 2,
      unhealthyThreshold: 3,
      path: "/health",
      http2: false,
      expectedStatuses: [[200, 300]],
    },
  ]);

  const app = clusters.get("inbound|8080||");
  assert.equal(app?.type, "STATIC");
  assert.deepEqual(app?.loadAssignment?.endpoints, [
    { address: "127.0.0.1", port: 8080, weight: 1, healthy: true, locality: "", priority: 0 },
  ]);

  const payment = endpoints.get("outbound|8080||payment-service.production.svc.cluster.local");
  assert.deepEqual(
    payment?.endpoints.map((e) => [e.address, e.healthy]),
    [
      ["127.0.1.3", true],
      ["127.0.1.6", false],
    ],
  );
  const orders = endpoints.get("outbound|8080||order-service.production.svc.cluster.local");
  assert.deepEqual(
    orders?.endpoints.map((e) => e.locality),
    ["local/a/", "local/b/"],
  );
});

test("proxyless golden: clusters, routes and endpoints compile; api_listeners are refused with a clear reason", () => {
  const g = golden("translate-proxyless-production");
  for (const c of g.clusters) compileCluster(wire(CLUSTER, c));
  for (const r of g.routes) compileRouteConfiguration(wire(ROUTE, r));
  for (const e of g.endpoints) compileClusterLoadAssignment(wire(ENDPOINT, e));
  const store = new ConfigStore();
  const result = store.update(
    LISTENER,
    g.listeners.map((l) => wire(LISTENER, l)),
    "1",
  );
  assert.equal(result.ok, false);
  assert.match(
    (result as { message: string }).message,
    /^Listener ".+": api_listener: API listeners are for proxyless gRPC clients/,
  );
});

test("shop mesh: every sidecar's translation compiles (regex, redirect, direct response, mirrors, CORS, hashing, DNS, TCP)", () => {
  const snapshot = shopSnapshot();
  for (const name of ["shop-v1", "shop-v2", "cart", "web", "db"]) {
    const r = JSON.parse(JSON.stringify(translate(snapshot, shopSidecar(name)))) as Golden;
    applyAll(new ConfigStore(), r, name);
  }
});

test("shop mesh: the compiled routing surface means what the resources say", () => {
  const r = JSON.parse(JSON.stringify(translate(shopSnapshot(), shopSidecar("web")))) as Golden;
  const store = new ConfigStore();
  applyAll(store, r, "web");
  const { listeners, routes, clusters } = store.config;

  // The TCP service gets a hand-off listener with a TCP proxy; 15001 hands redirected connections over.
  const db = listeners.get("0.0.0.0_5432");
  assert.equal(db?.bind, false);
  assert.deepEqual(db?.config, {
    kind: "tcp",
    statPrefix: "outbound|5432||db.prod.svc.cluster.local",
    clusters: [{ name: "outbound|5432||db.prod.svc.cluster.local", weight: 1 }],
    idleTimeoutMs: 3_600_000,
  });
  assert.equal(listeners.get("virtualOutbound")?.useOriginalDst, true);

  const shop = routes.get("http_proxy")?.exact.get("shop:8080");
  assert.ok(shop);
  const byName = new Map(shop.routes.map((x) => [x.name, x]));

  const legacy = byName.get("legacy");
  assert.deepEqual(legacy?.match.path, { kind: "prefix", value: "/old/", caseSensitive: false });
  assert.deepEqual(legacy?.action, { kind: "redirect", status: 308, stripQuery: false, path: "/new/" });

  assert.deepEqual(byName.get("health")?.action, { kind: "direct", status: 200, body: "ok" });

  const search = byName.get("search");
  assert.ok(search?.match.path.kind === "regex");
  const regex = search.match.path.regex;
  assert.equal(regex.test("/search/shoes"), true);
  assert.equal(regex.test("/search/shoes/more"), false, "RE2 FullMatch: anchored");
  assert.equal(regex.test("/x/search/shoes"), false);
  const rewrite = (search.action as RouteAction).regexRewrite;
  assert.ok(rewrite);
  assert.equal("/search/shoes".replace(rewrite.regex, rewrite.substitution), "/find");
  assert.deepEqual(search.match.queryParameters, [
    { name: "q", match: { kind: "exact", value: "shoes", ignoreCase: false } },
  ]);

  const beta = byName.get("beta");
  const betaAction = beta?.action as RouteAction;
  assert.deepEqual(betaAction.mirrors, [
    { cluster: "outbound|8080|v2|shop.prod.svc.cluster.local", fraction: 0.125 },
  ]);
  assert.deepEqual(betaAction.hashPolicies, [{ kind: "header", name: "x-user", terminal: false }]);
  assert.deepEqual(betaAction.clusters[0]?.requestHeaders.add, [
    { name: "x-route", value: "v1", append: false },
  ]);
  assert.deepEqual(beta?.filterConfig.get("envoy.filters.http.cors"), {
    kind: "cors",
    allowOrigins: [{ kind: "exact", value: "https://shop.example.com", ignoreCase: false }],
    allowMethods: "GET,POST",
    maxAge: "86400",
    allowCredentials: false,
    allowPrivateNetworkAccess: false,
    forwardNotMatchingPreflights: true,
    enabled: 1,
  });
  const fault = beta?.filterConfig.get("envoy.filters.http.fault") as FaultConfig;
  assert.deepEqual(fault.abort, { grpcStatus: 14, fromHeader: false, percentage: 12.5 });
  assert.deepEqual(
    beta?.match.headers.map((h) => [h.name, h.invert, h.present, h.match?.kind]),
    [
      ["x-beta", false, true, undefined],
      ["x-internal", true, undefined, "exact"],
    ],
  );

  const fallback = byName.get("fallback");
  assert.equal(fallback?.action.kind, "route");
  assert.equal((fallback.action as RouteAction).retry, undefined, "attempts: 0 means no retry policy");
  assert.deepEqual(fallback?.responseHeaders.add, [{ name: "x-served-by", value: "shop", append: true }]);

  const v1 = clusters.get("outbound|8080|v1|shop.prod.svc.cluster.local");
  assert.equal(v1?.lbPolicy, "RING_HASH");
  assert.equal(v1?.ringSize, 1024);
  assert.deepEqual(v1?.outlierDetection, {
    consecutive5xx: 3,
    consecutiveGatewayFailure: 5,
    intervalMs: 10_000,
    baseEjectionTimeMs: 30_000,
    maxEjectionPercent: 50,
    enforcingConsecutive5xx: 100,
    enforcingConsecutiveGatewayFailure: 0,
    maxEjectionTimeMs: 300_000,
  });
  const payments = clusters.get("outbound|443||api.payments.example.com");
  assert.equal(payments?.type, "STRICT_DNS");
  assert.equal(payments?.dnsLookupFamily, "V4_ONLY");
  assert.equal(payments?.dnsRefreshRateMs, 5000);
  assert.deepEqual(
    payments?.loadAssignment?.endpoints.map((e) => `${e.address}:${e.port}`),
    ["api.payments.example.com:443"],
  );
});
