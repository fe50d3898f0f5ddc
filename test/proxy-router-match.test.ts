// Route selection and the router's pure decisions, without sockets: virtual host search, route matching,
// weighted clusters, rewrites, redirects, retry conditions, back-off, gRPC helpers, request targets.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { http1Target } from "../src/proxy/listeners/http-listener.js";
import {
  applyMutation,
  downstreamResponseHeaders,
  upstreamRequestHeaders,
} from "../src/proxy/router/headers.js";
import {
  encodeGrpcMessage,
  httpToGrpcStatus,
  parseGrpcTimeout,
  Replies,
} from "../src/proxy/router/local-reply.js";
import {
  type MatchableRequest,
  selectRoute,
  selectVirtualHost,
  selectWeightedCluster,
} from "../src/proxy/router/match.js";
import { backoffMs, retriableError, retriableResponse } from "../src/proxy/router/retry.js";
import { redirectLocation, rewritePath } from "../src/proxy/router/router.js";
import { formatResponseFlags, ResponseFlag } from "../src/proxy/router/stream-info.js";
import { UpstreamError } from "../src/proxy/upstream/types.js";
import {
  prefixMatch,
  retryPolicy,
  route,
  routeAction,
  routeTable,
  virtualHost,
} from "./proxy-router-fixtures.js";

function req(
  path: string,
  headers: Record<string, string | string[]> = {},
  extra: Partial<MatchableRequest> = {},
): MatchableRequest {
  return { method: "GET", authority: "svc", path, scheme: "http", headers, ...extra };
}

describe("virtual host selection", () => {
  const exactPort = virtualHost("exact-port", ["reviews:9080"], []);
  const exactBare = virtualHost("exact-bare", ["ratings"], []);
  const suffixLong = virtualHost("suffix-long", ["*.prod.example.com"], []);
  const suffixShort = virtualHost("suffix-short", ["*.example.com"], []);
  const prefix = virtualHost("prefix", ["api.*"], []);
  const any = virtualHost("any", ["*"], []);
  const table = routeTable("t", [exactPort, exactBare, suffixShort, suffixLong, prefix, any]);

  const cases: [string, string][] = [
    ["reviews:9080", "exact-port"],
    ["REVIEWS:9080", "exact-port"],
    // A domain without a port serves the host on any port, as in Envoy.
    ["ratings:9080", "exact-bare"],
    ["ratings", "exact-bare"],
    // The longest suffix wins, and suffixes beat prefixes.
    ["a.prod.example.com", "suffix-long"],
    ["a.dev.example.com", "suffix-short"],
    ["api.prod.example.com", "suffix-long"],
    ["api.internal", "prefix"],
    ["api.internal:8080", "prefix"],
    ["a.example.com:443", "suffix-short"],
    // Wildcards need at least one character.
    [".example.com", "any"],
    ["reviews:9081", "any"],
    ["unknown", "any"],
  ];
  for (const [authority, expected] of cases) {
    it(`${authority} → ${expected}`, () => {
      assert.equal(selectVirtualHost(table, authority)?.name, expected);
    });
  }

  it("no match and no catch-all: undefined (404 NR)", () => {
    const t = routeTable("t", [exactPort]);
    assert.equal(selectVirtualHost(t, "other:1"), undefined);
  });

  it("IPv6 literals keep their colons", () => {
    const t = routeTable("t", [virtualHost("v6", ["[::1]"], [])]);
    assert.equal(selectVirtualHost(t, "[::1]:8080")?.name, "v6");
    assert.equal(selectVirtualHost(t, "::1"), undefined);
  });
});

describe("route matching", () => {
  const a = routeAction("c");
  const vh = virtualHost(
    "vh",
    ["*"],
    [
      route("exact", { ...prefixMatch(), path: { kind: "path", value: "/exact", caseSensitive: true } }, a),
      route(
        "exact-ci",
        { ...prefixMatch(), path: { kind: "path", value: "/upper", caseSensitive: false } },
        a,
      ),
      route("regex", { ...prefixMatch(), path: { kind: "regex", regex: /^\/items\/[0-9]+$/ } }, a),
      route(
        "header-exact",
        prefixMatch("/h", {
          headers: [
            { name: "x-version", match: { kind: "exact", value: "v2", ignoreCase: false }, invert: false },
          ],
        }),
        a,
      ),
      route(
        "header-absent",
        prefixMatch("/h", { headers: [{ name: "x-debug", present: false, invert: false }] }),
        a,
      ),
      route(
        "header-inverted",
        prefixMatch("/h", {
          headers: [
            { name: "x-env", match: { kind: "prefix", value: "prod", ignoreCase: false }, invert: true },
          ],
        }),
        a,
      ),
      route(
        "query",
        prefixMatch("/q", {
          queryParameters: [{ name: "tier", match: { kind: "exact", value: "gold", ignoreCase: false } }],
        }),
        a,
      ),
      route("query-present", prefixMatch("/q", { queryParameters: [{ name: "debug" }] }), a),
      route(
        "method",
        prefixMatch("/m", {
          headers: [
            { name: ":method", match: { kind: "exact", value: "POST", ignoreCase: false }, invert: false },
          ],
        }),
        a,
      ),
      route("fraction", prefixMatch("/f", { fraction: 0.25 }), a),
      route(
        "ci-prefix",
        { ...prefixMatch(), path: { kind: "prefix", value: "/ci/", caseSensitive: false } },
        a,
      ),
      route("fallback", prefixMatch("/"), a),
    ],
  );
  const name = (r: MatchableRequest, random?: () => number) => selectRoute(vh, r, random)?.name;

  it("path: exact (with and without case), regex against the path without its query, prefix", () => {
    assert.equal(name(req("/exact")), "exact");
    assert.equal(name(req("/exact?x=1")), "exact");
    assert.equal(name(req("/EXACT")), "fallback");
    assert.equal(name(req("/UpPeR")), "exact-ci");
    assert.equal(name(req("/items/42?a=b")), "regex");
    assert.equal(name(req("/items/4x")), "fallback");
    assert.equal(name(req("/CI/thing")), "ci-prefix");
  });

  it("headers: exact value, must be absent, inverted", () => {
    assert.equal(name(req("/h", { "x-version": "v2" })), "header-exact");
    assert.equal(name(req("/h", { "x-version": "v1" })), "header-absent");
    assert.equal(name(req("/h", { "x-debug": "1", "x-env": "staging" })), "header-inverted");
    assert.equal(name(req("/h", { "x-debug": "1", "x-env": "production" })), "fallback");
    assert.equal(name(req("/h", { "x-debug": "1" })), "header-inverted");
  });

  it("repeated headers are matched joined by commas", () => {
    const v = virtualHost(
      "v",
      ["*"],
      [
        route(
          "joined",
          prefixMatch("/", {
            headers: [
              { name: "x-a", match: { kind: "exact", value: "1,2", ignoreCase: false }, invert: false },
            ],
          }),
          a,
        ),
      ],
    );
    assert.equal(selectRoute(v, req("/", { "x-a": ["1", "2"] }))?.name, "joined");
  });

  it("query parameters: value and presence", () => {
    assert.equal(name(req("/q?tier=gold")), "query");
    assert.equal(name(req("/q?tier=silver&debug")), "query-present");
    assert.equal(name(req("/q?tier=silver")), "fallback");
  });

  it("pseudo-headers: :method", () => {
    assert.equal(name(req("/m", {}, { method: "POST" })), "method");
    assert.equal(name(req("/m")), "fallback");
  });

  it("runtime fraction uses the roll", () => {
    assert.equal(
      name(req("/f"), () => 0.1),
      "fraction",
    );
    assert.equal(
      name(req("/f"), () => 0.25),
      "fallback",
    );
    assert.equal(
      name(req("/f"), () => 0.9),
      "fallback",
    );
  });
});

describe("weighted clusters", () => {
  const action = routeAction([
    { name: "v1", weight: 90 },
    { name: "zero", weight: 0 },
    { name: "v2", weight: 10 },
  ]);
  it("the roll picks by cumulative weight; zero weights never", () => {
    assert.equal(selectWeightedCluster(action, 0)?.name, "v1");
    assert.equal(selectWeightedCluster(action, 0.8999)?.name, "v1");
    assert.equal(selectWeightedCluster(action, 0.9)?.name, "v2");
    assert.equal(selectWeightedCluster(action, 0.99999)?.name, "v2");
    for (let i = 0; i < 1000; i++) assert.notEqual(selectWeightedCluster(action, i / 1000)?.name, "zero");
  });
});

describe("rewrites and redirects", () => {
  it("prefix rewrite replaces the matched prefix; regex rewrite leaves the query alone", () => {
    const r = route("r", prefixMatch("/api/v1/"), routeAction("c"));
    assert.equal(
      rewritePath(r, routeAction("c", { prefixRewrite: "/v1/" }), "/api/v1/users?x=1"),
      "/v1/users?x=1",
    );
    const rr = route("rr", prefixMatch("/"), routeAction("c"));
    const regexRewrite = { regex: /^\/users\/([0-9]+)$/g, substitution: "/u/$1" };
    assert.equal(
      rewritePath(rr, routeAction("c", { regexRewrite }), "/users/42?x=/users/1"),
      "/u/42?x=/users/1",
    );
    assert.equal(rewritePath(rr, routeAction("c"), "/same"), "/same");
  });

  it("redirects swap scheme, host, port, path or prefix and keep the query unless stripped", () => {
    const r = route("r", prefixMatch("/old/"), routeAction("c"));
    const base = { scheme: "http", authority: "shop:8080", path: "/old/cart?id=3" };
    assert.equal(
      redirectLocation(base, r, { kind: "redirect", status: 301, stripQuery: false }),
      "http://shop:8080/old/cart?id=3",
    );
    assert.equal(
      redirectLocation(base, r, {
        kind: "redirect",
        status: 302,
        stripQuery: false,
        scheme: "https",
        port: 8443,
      }),
      "https://shop:8443/old/cart?id=3",
    );
    assert.equal(
      redirectLocation(base, r, {
        kind: "redirect",
        status: 301,
        stripQuery: true,
        prefixRewrite: "/new/",
        host: "store",
      }),
      "http://store/new/cart",
    );
    assert.equal(
      redirectLocation(base, r, { kind: "redirect", status: 308, stripQuery: false, path: "/elsewhere?q=1" }),
      "http://shop:8080/elsewhere?q=1",
    );
  });
});

describe("retry conditions", () => {
  const err = (flag: "UF" | "UR" | "UO" | "UT", before = false) =>
    new UpstreamError(
      flag === "UF"
        ? "SKEIN_E_UPSTREAM_CONNECT"
        : flag === "UR"
          ? "SKEIN_E_UPSTREAM_RESET"
          : flag === "UO"
            ? "SKEIN_E_UPSTREAM_OVERFLOW"
            : "SKEIN_E_UPSTREAM_TIMEOUT",
      flag,
      flag,
      before,
    );

  it("errors: overflow never; connect failure under connect-failure/reset/5xx; refused stream; timeouts", () => {
    assert.equal(retriableError(retryPolicy(["5xx", "reset", "connect-failure"], 3), err("UO", true)), false);
    assert.equal(retriableError(retryPolicy(["connect-failure"], 3), err("UF", true)), true);
    assert.equal(retriableError(retryPolicy(["retriable-4xx"], 3), err("UF", true)), false);
    assert.equal(retriableError(retryPolicy(["connect-failure"], 3), err("UR")), false);
    assert.equal(retriableError(retryPolicy(["reset"], 3), err("UR")), true);
    assert.equal(retriableError(retryPolicy(["refused-stream"], 3), err("UR", true)), true);
    assert.equal(retriableError(retryPolicy(["refused-stream"], 3), err("UR", false)), false);
    assert.equal(retriableError(retryPolicy(["reset-before-request"], 3), err("UR", true)), true);
    assert.equal(retriableError(retryPolicy(["gateway-error"], 3), err("UT")), true);
    assert.equal(retriableError(retryPolicy(["connect-failure"], 3), err("UT")), false);
  });

  it("responses: 5xx, gateway-error, retriable-4xx, retriable status codes, gRPC statuses", () => {
    assert.equal(retriableResponse(retryPolicy(["5xx"], 1), 500, undefined), true);
    assert.equal(retriableResponse(retryPolicy(["gateway-error"], 1), 500, undefined), false);
    assert.equal(retriableResponse(retryPolicy(["gateway-error"], 1), 504, undefined), true);
    assert.equal(retriableResponse(retryPolicy(["retriable-4xx"], 1), 409, undefined), true);
    assert.equal(retriableResponse(retryPolicy(["retriable-4xx"], 1), 404, undefined), false);
    const codes = retryPolicy(["retriable-status-codes"], 1, { retriableStatusCodes: new Set([418]) });
    assert.equal(retriableResponse(codes, 418, undefined), true);
    assert.equal(retriableResponse(codes, 503, undefined), false);
    const grpc = retryPolicy(
      ["cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"],
      1,
    );
    for (const s of [1, 4, 8, 13, 14])
      assert.equal(retriableResponse(grpc, 200, s), true, `grpc-status ${s}`);
    for (const s of [0, 2, 3, 5, 12])
      assert.equal(retriableResponse(grpc, 200, s), false, `grpc-status ${s}`);
    assert.equal(retriableResponse(retryPolicy(["unavailable"], 1), 200, 1), false);
  });

  it("back-off is jittered exponential, capped", () => {
    const p = retryPolicy([], 5, { backoffBaseMs: 25, backoffMaxMs: 250 });
    const at = (retry: number, roll: number) => backoffMs(p, retry, () => roll);
    assert.equal(at(1, 0), 0);
    assert.equal(at(1, 0.999), 24);
    assert.equal(at(2, 0.999), 74);
    assert.equal(at(3, 0.999), 174);
    assert.equal(at(4, 0.999), 250);
    assert.equal(at(30, 0.5), 250);
  });
});

describe("gRPC helpers and local replies", () => {
  it("grpc-timeout units", () => {
    assert.equal(parseGrpcTimeout("2S"), 2000);
    assert.equal(parseGrpcTimeout("150m"), 150);
    assert.equal(parseGrpcTimeout("1H"), 3_600_000);
    assert.equal(parseGrpcTimeout("1M"), 60_000);
    assert.equal(parseGrpcTimeout("1500u"), 2);
    assert.equal(parseGrpcTimeout("999999n"), 1);
    assert.equal(parseGrpcTimeout("5x"), undefined);
    assert.equal(parseGrpcTimeout("S"), undefined);
    assert.equal(parseGrpcTimeout("123456789S"), undefined);
  });

  it("HTTP status → gRPC status", () => {
    assert.equal(httpToGrpcStatus(503), 14);
    assert.equal(httpToGrpcStatus(504), 4);
    assert.equal(httpToGrpcStatus(404), 12);
    assert.equal(httpToGrpcStatus(429), 14);
    assert.equal(httpToGrpcStatus(403), 7);
    assert.equal(httpToGrpcStatus(500), 2);
  });

  it("grpc-message percent-encoding", () => {
    assert.equal(encodeGrpcMessage("no healthy upstream"), "no healthy upstream");
    assert.equal(encodeGrpcMessage("100% é"), "100%25 %C3%A9");
  });

  it("Envoy's bodies and flags", () => {
    assert.equal(Replies.noHealthy.body, "no healthy upstream");
    assert.equal(
      Replies.connectFailure.body,
      "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
    );
    assert.equal(Replies.timeout.body, "upstream request timeout");
    assert.equal(formatResponseFlags(Replies.noRoute.flag), "NR");
    assert.equal(
      formatResponseFlags(ResponseFlag.UpstreamConnectionFailure | ResponseFlag.UpstreamRetryLimitExceeded),
      "UF,URX",
    );
    assert.equal(formatResponseFlags(0), "-");
  });
});

describe("request targets and headers", () => {
  it("origin, absolute and asterisk forms", () => {
    assert.deepEqual(http1Target("/x?y", "svc:80", false), { authority: "svc:80", path: "/x?y" });
    assert.deepEqual(http1Target("http://order-service.production:8080/x", "ignored", true), {
      authority: "order-service.production:8080",
      path: "/x",
    });
    assert.deepEqual(http1Target("http://user:pw@a:1?q=1", undefined, true), {
      authority: "a:1",
      path: "/?q=1",
    });
    assert.deepEqual(http1Target("http://a", undefined, true), { authority: "a", path: "/" });
    assert.equal(http1Target("http://a/x", "a", false), Replies.absoluteUrlNotAllowed);
    assert.equal(http1Target("/x", undefined, true), Replies.missingHost);
    assert.deepEqual(http1Target("*", "a", false), { authority: "a", path: "*" });
  });

  it("hop-by-hop headers stay on their hop; te: trailers and Connection-named headers handled", () => {
    const up = upstreamRequestHeaders({
      ":path": "/",
      host: "a",
      connection: "keep-alive, x-private",
      "keep-alive": "timeout=5",
      "x-private": "1",
      "transfer-encoding": "chunked",
      te: "trailers",
      upgrade: "websocket",
      "proxy-connection": "keep-alive",
      expect: "100-continue",
      "x-keep": "yes",
      "set-cookie": ["a", "b"],
    });
    assert.deepEqual(up, { te: "trailers", "x-keep": "yes", "set-cookie": ["a", "b"] });
    assert.deepEqual(
      downstreamResponseHeaders({ ":status": "200", connection: "close", "content-type": "text/plain" }),
      {
        "content-type": "text/plain",
      },
    );
  });

  it("mutations remove first, then set or append", () => {
    const h: Record<string, string | string[]> = { a: "1", b: "2", c: "3" };
    applyMutation(h, {
      remove: ["b"],
      add: [
        { name: "a", value: "x", append: true },
        { name: "c", value: "y", append: false },
        { name: "d", value: "z", append: true },
      ],
    });
    assert.deepEqual(h, { a: ["1", "x"], c: "y", d: "z" });
  });
});
