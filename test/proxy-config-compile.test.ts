// Compilation semantics: Envoy's defaults written out (route timeout, retries, cluster limits), filter configs
// (fault percentages, CORS), domain indexing, header mutations, and RE2 patterns translated to RegExps that
// match what RE2 would.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compileCluster } from "../src/proxy/config/cluster.js";
import { ProxyConfigCodes } from "../src/proxy/config/codes.js";
import { compileListener } from "../src/proxy/config/listener.js";
import { compileRouteConfiguration } from "../src/proxy/config/route.js";
import type { FaultConfig, HttpListenerConfig, RouteAction, RouteTable } from "../src/proxy/config/types.js";
import { CLUSTER, LISTENER, ROUTE } from "../src/xds/protos.js";
import {
  cluster,
  hcm,
  listener,
  nack,
  route,
  routeConfiguration,
  typed,
  wire,
} from "./proxy-config-fixtures.js";

function table(rc: object): RouteTable {
  return compileRouteConfiguration(wire(ROUTE, rc));
}

function actionOf(routeFields: object, vh: object = {}): RouteAction {
  const t = table(routeConfiguration("r", [route(routeFields)], vh));
  return t.catchAll?.routes[0]?.action as RouteAction;
}

function regexRoute(pattern: string): RegExp {
  const t = table(routeConfiguration("r", [route({ match: { safeRegex: { regex: pattern } } })]));
  const path = t.catchAll?.routes[0]?.match.path;
  assert.ok(path?.kind === "regex");
  return path.regex;
}

test("route timeout: Envoy's 15 s when unset, 0 disables, else as given", () => {
  assert.equal(actionOf({}).timeoutMs, 15_000);
  assert.equal(actionOf({ route: { cluster: "c1", timeout: { seconds: 0 } } }).timeoutMs, 0);
  assert.equal(
    actionOf({ route: { cluster: "c1", timeout: { seconds: 2, nanos: 500_000_000 } } }).timeoutMs,
    2500,
  );
  const grpc = actionOf({
    route: {
      cluster: "c1",
      maxStreamDuration: { maxStreamDuration: { seconds: 3 }, grpcTimeoutHeaderMax: { seconds: 0 } },
    },
  });
  assert.equal(grpc.maxStreamDurationMs, 3000);
  assert.equal(grpc.grpcTimeoutHeaderMaxMs, 0);
});

test("retry policy: Envoy's defaults (1 retry, 25 ms base, 10 × base cap, 1 host selection attempt)", () => {
  const r = actionOf({ route: { cluster: "c1", retryPolicy: { retryOn: "5xx, connect-failure" } } }).retry;
  assert.deepEqual(r, {
    retryOn: new Set(["5xx", "connect-failure"]),
    numRetries: 1,
    perTryTimeoutMs: 0,
    retriableStatusCodes: new Set(),
    backoffBaseMs: 25,
    backoffMaxMs: 250,
    avoidPreviousHosts: false,
    hostSelectionRetryMaxAttempts: 1,
  });
  const custom = actionOf({
    route: {
      cluster: "c1",
      retryPolicy: { retryOn: "reset", retryBackOff: { baseInterval: { nanos: 100_000_000 } } },
    },
  }).retry;
  assert.equal(custom?.backoffBaseMs, 100);
  assert.equal(custom?.backoffMaxMs, 1000);
  const bad = nack(() =>
    actionOf({
      route: {
        cluster: "c1",
        retryPolicy: {
          retryOn: "reset",
          retryBackOff: { baseInterval: { seconds: 1 }, maxInterval: { nanos: 1_000_000 } },
        },
      },
    }),
  );
  assert.equal(bad.code, ProxyConfigCodes.INVALID);
  assert.match(bad.message, /retry_back_off\.max_interval: must be greater than or equal to base_interval/);
  // Without a condition nothing would retry.
  assert.equal(
    actionOf({ route: { cluster: "c1", retryPolicy: { numRetries: { value: 3 } } } }).retry,
    undefined,
  );
});

test("a virtual host's retry and mirror policies apply to routes that have none of their own", () => {
  const vh = {
    retryPolicy: { retryOn: "gateway-error", numRetries: { value: 4 } },
    requestMirrorPolicies: [{ cluster: "shadow" }],
  };
  const inherited = actionOf({}, vh);
  assert.equal(inherited.retry?.numRetries, 4);
  assert.deepEqual(inherited.mirrors, [{ cluster: "shadow", fraction: 1 }]);
  const own = actionOf(
    {
      route: {
        cluster: "c1",
        retryPolicy: { retryOn: "5xx" },
        requestMirrorPolicies: [{ cluster: "m", runtimeFraction: { defaultValue: { numerator: 25 } } }],
      },
    },
    vh,
  );
  assert.equal(own.retry?.numRetries, 1);
  assert.deepEqual(own.mirrors, [{ cluster: "m", fraction: 0.25 }]);
});

test("cluster defaults as in Envoy: 5 s connect timeout, breakers 1024/1024/1024/3, 50% panic, 1 h idle", () => {
  const c = compileCluster(wire(CLUSTER, cluster("c1")));
  assert.deepEqual(c, {
    name: "c1",
    type: "EDS",
    edsServiceName: "c1",
    lbPolicy: "ROUND_ROBIN",
    connectTimeoutMs: 5000,
    http2: false,
    useDownstreamProtocol: false,
    maxRequestsPerConnection: 0,
    idleTimeoutMs: 3_600_000,
    circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
    panicThreshold: 50,
  });
  const partial = compileCluster(
    wire(
      CLUSTER,
      cluster("c1", {
        edsClusterConfig: { edsConfig: { ads: {} }, serviceName: "eds-c1" },
        circuitBreakers: {
          thresholds: [{ priority: "HIGH", maxRequests: { value: 1 } }, { maxRetries: { value: 9 } }],
        },
        commonLbConfig: { healthyPanicThreshold: { value: 0 } },
      }),
    ),
  );
  assert.equal(partial.edsServiceName, "eds-c1");
  assert.deepEqual(partial.circuitBreakers, {
    maxConnections: 1024,
    maxPendingRequests: 1024,
    maxRequests: 1024,
    maxRetries: 9,
  });
  assert.equal(partial.panicThreshold, 0);
});

test("upstream protocol: explicit HTTP/2, downstream protocol, the deprecated fields, limits", () => {
  const options = (o: object) =>
    compileCluster(
      wire(
        CLUSTER,
        cluster("c1", {
          typedExtensionProtocolOptions: {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed(
              "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
              o,
            ),
          },
        }),
      ),
    );
  const h2 = options({
    explicitHttpConfig: { http2ProtocolOptions: { maxConcurrentStreams: { value: 50 } } },
    commonHttpProtocolOptions: { idleTimeout: { seconds: 30 }, maxConnectionDuration: { seconds: 600 } },
  });
  assert.equal(h2.http2, true);
  assert.equal(h2.http2MaxConcurrentStreams, 50);
  assert.equal(h2.idleTimeoutMs, 30_000);
  assert.equal(h2.maxConnectionDurationMs, 600_000);
  const downstream = options({
    useDownstreamProtocolConfig: { httpProtocolOptions: {}, http2ProtocolOptions: {} },
  });
  assert.equal(downstream.useDownstreamProtocol, true);
  assert.equal(downstream.http2, false);
  const legacy = compileCluster(
    wire(CLUSTER, cluster("c1", { http2ProtocolOptions: {}, maxRequestsPerConnection: { value: 7 } })),
  );
  assert.equal(legacy.http2, true);
  assert.equal(legacy.maxRequestsPerConnection, 7);
  const auto = nack(() => options({ autoConfig: {} }));
  assert.equal(auto.code, ProxyConfigCodes.UNSUPPORTED);
});

test("the fault filter compiles: fixed delay and fractional percentages to %, aborts, header-controlled faults", () => {
  const fault = (f: object) => {
    const t = table(
      routeConfiguration("r", [
        route({ typedPerFilterConfig: { f: typed("envoy.extensions.filters.http.fault.v3.HTTPFault", f) } }),
      ]),
    );
    return t.catchAll?.routes[0]?.filterConfig.get("f") as FaultConfig;
  };
  assert.deepEqual(
    fault({
      delay: {
        fixedDelay: { nanos: 250_000_000 },
        percentage: { numerator: 1250, denominator: "TEN_THOUSAND" },
      },
      abort: { grpcStatus: 14, percentage: { numerator: 5, denominator: "MILLION" } },
      headers: [{ name: "X-Fault", presentMatch: true }],
      downstreamNodes: ["web"],
      upstreamCluster: "c1",
      maxActiveFaults: { value: 3 },
    }),
    {
      kind: "fault",
      delay: { fixedDelayMs: 250, fromHeader: false, percentage: 12.5 },
      abort: { grpcStatus: 14, fromHeader: false, percentage: 0.0005 },
      headers: [{ name: "x-fault", present: true, invert: false }],
      downstreamNodes: ["web"],
      upstreamCluster: "c1",
      maxActiveFaults: 3,
    },
  );
  const header = fault({
    delay: { headerDelay: {} },
    abort: { headerAbort: {}, percentage: { numerator: 200 } },
  });
  assert.deepEqual(
    header.delay,
    { fromHeader: true, percentage: 0, denominator: 100 },
    "an unset percentage is 0, as in Envoy",
  );
  assert.deepEqual(
    header.abort,
    { fromHeader: true, percentage: 100, denominator: 100 },
    "numerators are capped at the denominator",
  );
  const zero = nack(() => fault({ delay: { fixedDelay: { seconds: 0 } } }));
  assert.match(zero.message, /delay\.fixed_delay: must be greater than 0/);
  const noError = nack(() => fault({ abort: { percentage: { numerator: 1 } } }));
  assert.match(noError.message, /abort: http_status, grpc_status or header_abort is required/);
});

test("listener-level filters keep their order; an HTTP listener's defaults are Envoy's", () => {
  const l = compileListener(
    wire(
      LISTENER,
      listener("x", {
        filterChains: [
          {
            filters: [
              {
                name: "hcm",
                typedConfig: hcm({
                  httpFilters: [
                    {
                      name: "my-fault",
                      typedConfig: typed("envoy.extensions.filters.http.fault.v3.HTTPFault", {
                        abort: { httpStatus: 503 },
                      }),
                    },
                    {
                      name: "envoy.filters.http.cors",
                      typedConfig: typed("envoy.extensions.filters.http.cors.v3.Cors"),
                    },
                    {
                      name: "router",
                      typedConfig: typed("envoy.extensions.filters.http.router.v3.Router", {
                        suppressEnvoyHeaders: true,
                      }),
                    },
                  ],
                  upgradeConfigs: [
                    { upgradeType: "WebSocket" },
                    { upgradeType: "CONNECT", enabled: { value: false } },
                  ],
                  commonHttpProtocolOptions: { idleTimeout: { seconds: 0 } },
                }),
              },
            ],
          },
        ],
      }),
    ),
  );
  const http = l.config as HttpListenerConfig;
  assert.deepEqual(
    http.filters.map((f) => [f.name, (f.config as { kind: string }).kind]),
    [
      ["my-fault", "fault"],
      ["envoy.filters.http.cors", "cors-filter"],
      ["router", "router"],
    ],
  );
  assert.deepEqual(http.filters[2]?.config, { kind: "router", suppressEnvoyHeaders: true });
  assert.deepEqual([...http.upgrades], ["websocket"]);
  assert.equal(http.idleTimeoutMs, 0);
  assert.equal(l.bind, true);
  assert.equal(l.direction, "unspecified");
});

test("domains are indexed the way Envoy searches them: exact, longest suffix, longest prefix, then *", () => {
  const t = table({
    name: "r",
    virtualHosts: [
      { name: "exact", domains: ["Shop.Example.com", "shop.example.com:8080"], routes: [route()] },
      { name: "short-suffix", domains: ["*.com"], routes: [route()] },
      { name: "long-suffix", domains: ["*.example.com"], routes: [route()] },
      { name: "prefix", domains: ["api.*", "api.example.*"], routes: [route()] },
      { name: "any", domains: ["*"], routes: [route()] },
    ],
  });
  assert.equal(t.exact.get("shop.example.com")?.name, "exact");
  assert.equal(t.exact.get("shop.example.com:8080")?.name, "exact");
  assert.deepEqual(
    t.suffixes.map((s) => [s.suffix, s.host.name]),
    [
      [".example.com", "long-suffix"],
      [".com", "short-suffix"],
    ],
  );
  assert.deepEqual(
    t.prefixes.map((p) => p.prefix),
    ["api.example.", "api."],
  );
  assert.equal(t.catchAll?.name, "any");
});

test("header mutations: append vs overwrite, %% literals, empty values dropped, names lower-cased", () => {
  const t = table(
    routeConfiguration("r", [
      route({
        requestHeadersToAdd: [
          { header: { key: "X-A", value: "1" } },
          { header: { key: "x-b", value: "50%%" }, appendAction: "OVERWRITE_IF_EXISTS_OR_ADD" },
          { header: { key: "x-c", value: "3" }, append: { value: false } },
          { header: { key: "x-empty", value: "" } },
          { header: { key: "x-kept", value: "" }, keepEmptyValue: true },
        ],
        requestHeadersToRemove: ["X-Secret"],
      }),
    ]),
  );
  assert.deepEqual(t.catchAll?.routes[0]?.requestHeaders, {
    add: [
      { name: "x-a", value: "1", append: true },
      { name: "x-b", value: "50%", append: false },
      { name: "x-c", value: "3", append: false },
      { name: "x-kept", value: "", append: true },
    ],
    remove: ["x-secret"],
  });
});

test("matchers: header range matches are refused; ignore_case values are lower-cased once; regexes match the whole value", () => {
  const e = nack(() =>
    table(
      routeConfiguration("r", [
        route({ match: { prefix: "/", headers: [{ name: "x", rangeMatch: { start: "1", end: "2" } }] } }),
      ]),
    ),
  );
  assert.equal(e.code, ProxyConfigCodes.UNSUPPORTED);
  assert.match(e.message, /match\.headers\[0\]\.range_match: not supported by the Skein sidecar/);
  const m = table(
    routeConfiguration("r", [
      route({
        match: {
          path: "/Exact",
          caseSensitive: { value: false },
          headers: [
            { name: "x-a", stringMatch: { prefix: "AbC", ignoreCase: true } },
            { name: "x-b", safeRegexMatch: { regex: "v[0-9]" } },
          ],
          runtimeFraction: { defaultValue: { numerator: 30 } },
        },
      }),
    ]),
  ).catchAll?.routes[0]?.match;
  assert.deepEqual(m?.path, { kind: "path", value: "/exact", caseSensitive: false });
  assert.deepEqual(m?.headers[0], {
    name: "x-a",
    match: { kind: "prefix", value: "abc", ignoreCase: true },
    invert: false,
  });
  const re = m?.headers[1]?.match;
  assert.ok(re?.kind === "regex");
  assert.equal(re.regex.test("v1"), true);
  assert.equal(re.regex.test("v12"), false);
  assert.equal(m?.fraction, 0.3);
});

test("RE2 syntax is translated: named groups, \\A \\z, POSIX classes, \\Q..\\E, leading flags, literal braces", () => {
  const cases: [string, string[], string[]][] = [
    ["/users/(?P<id>[0-9]+)", ["/users/42"], ["/users/", "/users/4a"]],
    ["\\A/api\\z", ["/api"], ["/api/", "/x/api"]],
    ["[[:alpha:]]+-[[:digit:]]{2}", ["ab-12"], ["ab-1", "1b-12"]],
    ["[^[:space:]]+", ["abc"], ["a c"]],
    ["\\Q/a.b*\\E", ["/a.b*"], ["/axbb"]],
    ["(?i)/admin", ["/ADMIN", "/Admin"], ["/admins"]],
    ["a.c", ["abc", "a\rc"], ["a\nc"]],
    ["(?s)a.c", ["a\nc"], []],
    ["a{,2}", ["a{,2}"], ["a", "aa"]],
    ["\\x{41}\\x42\\101", ["ABA"], ["abA"]],
    ["\\pL+\\p{Greek}", ["abα"], ["ab1"]],
    ["[\\d\\-]+", ["1-2"], ["1_2"]],
    ["a\\sb", ["a b", "a\tb"], ["a\u00a0b", "a\vb"]],
  ];
  for (const [pattern, yes, no] of cases) {
    const re = regexRoute(pattern);
    for (const s of yes) assert.equal(re.test(s), true, `${pattern} should match ${JSON.stringify(s)}`);
    for (const s of no) assert.equal(re.test(s), false, `${pattern} should not match ${JSON.stringify(s)}`);
  }
});

test("regex_rewrite: global replacement with RE2's \\N groups turned into JavaScript's $N", () => {
  const a = actionOf({
    route: {
      cluster: "c1",
      regexRewrite: { pattern: { regex: "^/service/([^/]+)(/.*)$" }, substitution: "\\2/instance/\\1" },
    },
  });
  const rw = a.regexRewrite;
  assert.ok(rw);
  assert.equal("/service/foo/v1/api".replace(rw.regex, rw.substitution), "/v1/api/instance/foo");
  const all = actionOf({
    route: { cluster: "c1", regexRewrite: { pattern: { regex: "o" }, substitution: "0$\\0" } },
  }).regexRewrite;
  assert.ok(all);
  assert.equal(
    "/foo".replace(all.regex, all.substitution),
    "/f0$o0$o",
    "every match replaced; $ stays literal; \\0 is the match",
  );
});
