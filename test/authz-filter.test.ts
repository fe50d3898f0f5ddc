// The sidecar's RBAC filter on the seed's pattern 2, end to end through config: the example mesh translated
// for order-service, its inbound listener encoded and decoded as on the wire and compiled by the sidecar,
// then requests (with the caller's identity in the connection, as mTLS leaves it) normalised and run through
// the compiled RBAC filters. Covers the full caller × method × path matrix, every path-bypass form, forged
// identity headers, and the engine's remaining matchers (DENY/LOG/shadow, metadata, CIDRs).
import assert from "node:assert/strict";
import { test } from "node:test";
import { At } from "../src/proxy/config/fields.js";
import { compileListener } from "../src/proxy/config/listener.js";
import {
  compileHttpRbac,
  compileNetworkRbac,
  HTTP_RBAC_TYPE,
  NETWORK_RBAC_TYPE,
} from "../src/proxy/config/rbac.js";
import type { RbacFilterConfig } from "../src/proxy/config/rbac-types.js";
import type { HttpListenerConfig } from "../src/proxy/config/types.js";
import { RbacFilter } from "../src/proxy/filters/rbac/rbac.js";
import { UNKNOWN_NODE } from "../src/proxy/node.js";
import type { FilterContext } from "../src/proxy/router/chain.js";
import type { ConnectionInfo } from "../src/proxy/router/connection.js";
import type { DownstreamRequest } from "../src/proxy/router/downstream.js";
import type { LocalReply } from "../src/proxy/router/local-reply.js";
import { normalizeRequestPath } from "../src/proxy/router/normalize.js";
import { Stats } from "../src/proxy/router/stats.js";
import { createClusterManager } from "../src/proxy/upstream/cluster-manager.js";
import { translate } from "../src/translate/index.js";
import { hcm, listener, nack, typed, wire } from "./proxy-config-fixtures.js";
import { exampleSnapshot, ORDER_V1_SIDECAR } from "./translate-fixture.js";

const SPIFFE = "spiffe://cluster.local/ns/production/sa/";

function connection(principal: string | undefined): ConnectionInfo {
  return {
    tls: principal !== undefined,
    peerPrincipal: principal,
    localPrincipal: principal === undefined ? undefined : `${SPIFFE}order-service`,
    sni: undefined,
    alpn: undefined,
    sourceAddress: "127.0.1.4",
    sourcePort: 40000,
    localAddress: "127.0.1.1",
    localPort: 8080,
  };
}

/** The part of a DownstreamRequest the RBAC filter reads, with what it recorded. */
class FakeRequest {
  scheme = "http";
  state = new Map<string, unknown>();
  constructor(
    public method: string,
    public path: string,
    public headers: Record<string, string | string[] | undefined>,
    readonly connection: ConnectionInfo | undefined,
    public authority = "order-service:8080",
  ) {}
  filterState(name: string): unknown {
    return this.state.get(name);
  }
  setFilterState(name: string, v: unknown): void {
    this.state.set(name, v);
  }
}

function context(stats: Stats, statPrefix = "inbound_test"): FilterContext {
  return { clusters: createClusterManager(), stats, random: Math.random, statPrefix, node: UNKNOWN_NODE };
}

interface Pipeline {
  config: HttpListenerConfig;
  filters: RbacFilter[];
  stats: Stats;
}

/** The order-service inbound listener of the translated example mesh, compiled by the sidecar. */
async function seedPipeline(): Promise<Pipeline> {
  const resources = translate(await exampleSnapshot(), ORDER_V1_SIDECAR);
  const l = resources.listeners.find((x) => x.name === "127.0.1.1_8080");
  assert.ok(l, "order-service's inbound listener");
  const compiled = compileListener(wire("envoy.config.listener.v3.Listener", l));
  const config = compiled.config as HttpListenerConfig;
  const stats = new Stats();
  const filters = config.filters
    .filter((f) => (f.config as { kind: string }).kind === "rbac")
    .map((f) => new RbacFilter(f.config as RbacFilterConfig, f.name, context(stats, config.statPrefix)));
  return { config, filters, stats };
}

interface Outcome {
  status: number;
  details?: string;
  body?: string;
  /** The path the application would receive. */
  forwarded?: string;
}

/** What the listener does with the request: normalise the path, then the RBAC filters in order. */
function run(
  p: Pipeline,
  principal: string | undefined,
  method: string,
  path: string,
  headers: Record<string, string> = {},
): Outcome {
  const n = p.config.pathNormalization;
  assert.ok(n, "the inbound listener normalises paths");
  const normalized = normalizeRequestPath(path, n);
  if (normalized.kind === "reply")
    return { status: normalized.reply.status, details: normalized.reply.details };
  const req = new FakeRequest(method, normalized.path, headers, connection(principal));
  for (const f of p.filters) {
    const s = f.decodeHeaders(req as unknown as DownstreamRequest);
    if (s.kind === "local-reply") {
      const r = s as LocalReply;
      return { status: r.status, details: r.details, body: r.body };
    }
  }
  return { status: 200, forwarded: normalized.path };
}

const CALLERS: Record<string, string | undefined> = {
  "api-gateway": `${SPIFFE}api-gateway`,
  "payment-service": `${SPIFFE}payment-service`,
  "inventory-service": `${SPIFFE}inventory-service`,
  "another identity": `${SPIFFE}reviews`,
  "another namespace": "spiffe://cluster.local/ns/staging/sa/api-gateway",
  "no identity (plaintext)": undefined,
};

/** The seed policy in words, independently of the translation. */
function seedAllows(caller: string, method: string, path: string): boolean {
  if ((caller === "api-gateway" || caller === "payment-service") && (method === "GET" || method === "POST"))
    return path.startsWith("/api/v1/");
  if (caller === "inventory-service" && method === "GET") return path.startsWith("/api/v1/inventory/");
  return false;
}

const PATHS = [
  "/api/v1/orders",
  "/api/v1/orders/17",
  "/api/v1/inventory/42",
  "/api/v1/",
  "/api/v1",
  "/api/v1/inventory",
  "/api/v2/orders",
  "/admin",
  "/",
];

test("seed pattern 2: the full caller × method × path matrix is 200 or 403 as the policy says", async () => {
  const p = await seedPipeline();
  assert.deepEqual(
    p.filters.map((f) => f.constructor.name),
    ["RbacFilter"],
    "one ALLOW filter (no DENY or AUDIT policies)",
  );
  let allowed = 0;
  let denied = 0;
  for (const [caller, principal] of Object.entries(CALLERS))
    for (const method of ["GET", "POST", "DELETE", "PUT"])
      for (const path of PATHS) {
        const want = seedAllows(caller, method, path);
        const got = run(p, principal, method, path);
        assert.equal(got.status, want ? 200 : 403, `${caller} ${method} ${path}`);
        if (want) allowed++;
        else {
          denied++;
          assert.equal(got.body, "RBAC: access denied");
          assert.equal(got.details, "rbac_access_denied_matched_policy[none]");
        }
      }
  // 2 callers × 2 methods × 5 paths under /api/v1/, plus inventory's one GET: the matrix is not one-sided.
  assert.equal(allowed, 21);
  assert.equal(denied, 6 * 4 * PATHS.length - 21);
  const prefix = `http.${p.config.statPrefix}.rbac.`;
  const stat = (n: string) => p.stats.entries().find(([k]) => k === `${prefix}${n}`)?.[1].value;
  assert.equal(stat("allowed"), allowed);
  assert.equal(stat("denied"), denied);
});

// Each form dresses a request for something the caller may not reach so that a matcher comparing the raw
// path would let it through (or reach a different resource than the one it authorized).
const BYPASSES = [
  "/api/v1/inventory/../orders",
  "/api/v1/inventory/%2e%2e/orders",
  "/api/v1/inventory/%2E%2E/orders",
  "/api/v1/inventory/.%2e/orders",
  "/api/v1/inventory/./../orders",
  "/api/v1/inventory/..\\orders",
  "/api/v1/inventory/..%2forders",
  "/api/v1/inventory/..%2Forders",
  "/api/v1/inventory/..%5corders",
  "/API/V1/INVENTORY/42",
  "/Api/v1/inventory/42",
  "//api/v1/orders",
  "/api/v1//orders",
  "/api/v1/orders#/api/v1/inventory/1",
  "/api/v1/orders?/api/v1/inventory/1",
  "/api/v1/x#frag",
  "/api/v1/x?y",
];

test("every path-bypass form is denied for a caller that may only GET /api/v1/inventory/*", async () => {
  const p = await seedPipeline();
  for (const path of BYPASSES) {
    const got = run(p, CALLERS["inventory-service"], "GET", path);
    const escaped = /%2f|%5c/i.test(path.split(/[?#]/)[0] ?? "");
    assert.equal(got.status, escaped ? 400 : 403, path);
    if (!escaped) assert.equal(got.details, "rbac_access_denied_matched_policy[none]", path);
  }
  // The same forms from callers without any access, and the /api/v1/../admin family for api-gateway.
  for (const caller of ["another identity", "no identity (plaintext)"])
    for (const path of BYPASSES)
      assert.notEqual(run(p, CALLERS[caller], "GET", path).status, 200, `${caller} ${path}`);
  for (const path of [
    "/api/v1/../admin",
    "/api/v1/%2e%2e/admin",
    "/api/v1/%2E%2e/admin",
    "/API/V1/orders",
    "/api/v1/..%2fadmin",
  ])
    assert.notEqual(run(p, CALLERS["api-gateway"], "GET", path).status, 200, `api-gateway ${path}`);
  // A legitimate request is still served, and what is authorized is exactly what is forwarded.
  assert.deepEqual(run(p, CALLERS["inventory-service"], "GET", "/api/v1/inventory/%34%32?x=1"), {
    status: 200,
    forwarded: "/api/v1/inventory/42?x=1",
  });
  assert.deepEqual(run(p, CALLERS["api-gateway"], "GET", "//api/v1/x"), {
    status: 200,
    forwarded: "/api/v1/x",
  });
  assert.deepEqual(run(p, CALLERS["inventory-service"], "GET", "/api/v1/orders/../inventory/7#top"), {
    status: 200,
    forwarded: "/api/v1/inventory/7",
  });
});

test("forged identity headers change nothing: the principal comes only from the connection", async () => {
  const p = await seedPipeline();
  const forged: Record<string, string> = {
    "x-forwarded-client-cert": `By=${SPIFFE}order-service;URI=${SPIFFE}api-gateway`,
    "x-spiffe-id": `${SPIFFE}api-gateway`,
    "x-forwarded-for": "127.0.1.4",
    "x-envoy-peer-metadata-id": "sidecar~127.0.1.4~api-gateway.production~production.svc.cluster.local",
    authorization: "Bearer forged",
    ":authority": "api-gateway",
  };
  for (const [caller, principal] of Object.entries(CALLERS))
    for (const method of ["GET", "POST", "DELETE"])
      for (const path of PATHS)
        assert.equal(
          run(p, principal, method, path, forged).status,
          run(p, principal, method, path).status,
          `${caller} ${method} ${path}`,
        );
  assert.equal(run(p, undefined, "GET", "/api/v1/orders", forged).status, 403);
});

// ── The engine beyond the seed ───────────────────────────────────────────────────────────────────────

const at = new At("test");
const rbac = (fields: object) => compileHttpRbac(wire(HTTP_RBAC_TYPE, fields), at);
const principalIs = (name: string) => ({ authenticated: { principalName: { exact: `${SPIFFE}${name}` } } });

function decide(config: RbacFilterConfig, req: FakeRequest, stats = new Stats()) {
  const f = new RbacFilter(config, "f", context(stats, "p"));
  return { status: f.decodeHeaders(req as unknown as DownstreamRequest), req, stats };
}

test("DENY reports the first matching policy by name; LOG only marks; shadow rules only count", () => {
  const deny = rbac({
    rules: {
      action: "DENY",
      policies: {
        "b-admin": {
          permissions: [{ urlPath: { path: { prefix: "/admin" } } }],
          principals: [{ any: true }],
        },
        "a-admin-get": {
          permissions: [
            {
              andRules: {
                rules: [
                  { urlPath: { path: { prefix: "/admin" } } },
                  { header: { name: ":method", stringMatch: { exact: "GET" } } },
                ],
              },
            },
          ],
          principals: [{ any: true }],
        },
      },
    },
  });
  const get = decide(deny, new FakeRequest("GET", "/admin/x", {}, connection(undefined)));
  assert.equal((get.status as LocalReply).details, "rbac_access_denied_matched_policy[a-admin-get]");
  const post = decide(deny, new FakeRequest("POST", "/admin/x", {}, connection(undefined)));
  assert.equal((post.status as LocalReply).details, "rbac_access_denied_matched_policy[b-admin]");
  assert.equal(
    decide(deny, new FakeRequest("GET", "/other", {}, connection(undefined))).status.kind,
    "continue",
  );

  const log = rbac({
    rules: {
      action: "LOG",
      policies: { audit: { permissions: [{ any: true }], principals: [principalIs("api-gateway")] } },
    },
  });
  const logged = decide(log, new FakeRequest("GET", "/", {}, connection(`${SPIFFE}api-gateway`)));
  assert.equal(logged.status.kind, "continue");
  assert.deepEqual(logged.req.filterState("f"), { accessLogHint: true });
  assert.equal(logged.stats.entries().find(([k]) => k === "http.p.rbac.logged")?.[1].value, 1);
  assert.equal(decide(log, new FakeRequest("GET", "/", {}, connection(undefined))).status.kind, "continue");

  const shadow = rbac({
    shadowRules: {
      action: "ALLOW",
      policies: { only: { permissions: [{ any: true }], principals: [principalIs("x")] } },
    },
    shadowRulesStatPrefix: "istio_dry_run_allow_",
  });
  const s = decide(shadow, new FakeRequest("GET", "/", {}, connection(undefined)));
  assert.equal(s.status.kind, "continue");
  assert.equal(
    s.stats.entries().find(([k]) => k === "http.p.rbac.istio_dry_run_allow_shadow_denied")?.[1].value,
    1,
  );
});

test("metadata (the JWT filter's istio_authn), CIDRs, ports, and not_id", () => {
  const config = rbac({
    rules: {
      action: "ALLOW",
      policies: {
        jwt: {
          permissions: [{ destinationPortRange: { start: 8000, end: 9000 } }],
          principals: [
            {
              andIds: {
                ids: [
                  {
                    metadata: {
                      filter: "istio_authn",
                      path: [{ key: "request.auth.principal" }],
                      value: { stringMatch: { exact: "iss/alice" } },
                    },
                  },
                  {
                    metadata: {
                      filter: "istio_authn",
                      path: [{ key: "request.auth.audiences" }],
                      value: { listMatch: { oneOf: { stringMatch: { exact: "shop" } } } },
                    },
                  },
                  { directRemoteIp: { addressPrefix: "127.0.0.0", prefixLen: { value: 8 } } },
                  { notId: { directRemoteIp: { addressPrefix: "127.0.1.99", prefixLen: { value: 32 } } } },
                ],
              },
            },
          ],
        },
      },
    },
  });
  const req = (authn: unknown, c = connection(undefined)) => {
    const r = new FakeRequest("GET", "/", {}, c);
    if (authn !== undefined) r.setFilterState("istio_authn", authn);
    return r;
  };
  const good = { "request.auth.principal": "iss/alice", "request.auth.audiences": ["web", "shop"] };
  assert.equal(decide(config, req(good)).status.kind, "continue");
  assert.equal(decide(config, req(undefined)).status.kind, "local-reply", "no token");
  assert.equal(
    decide(config, req({ ...good, "request.auth.principal": "iss/bob" })).status.kind,
    "local-reply",
  );
  assert.equal(
    decide(config, req({ ...good, "request.auth.audiences": ["web"] })).status.kind,
    "local-reply",
  );
  // A header cannot stand in for the JWT filter's metadata.
  const viaHeader = new FakeRequest(
    "GET",
    "/",
    { "request.auth.principal": "iss/alice" },
    connection(undefined),
  );
  assert.equal(decide(config, viaHeader).status.kind, "local-reply");
  assert.equal(
    decide(config, req(good, { ...connection(undefined), sourceAddress: "127.0.1.99" })).status.kind,
    "local-reply",
  );
  assert.equal(
    decide(config, req(good, { ...connection(undefined), sourceAddress: "::ffff:127.0.1.7" })).status.kind,
    "continue",
  );
  assert.equal(
    decide(config, req(good, { ...connection(undefined), sourceAddress: "10.0.0.1" })).status.kind,
    "local-reply",
  );
  assert.equal(
    decide(config, req(good, { ...connection(undefined), localPort: 9000 })).status.kind,
    "local-reply",
  );
});

test("what the engine cannot evaluate is NACKed with the field's path and a stable code", () => {
  const cases: [object, RegExp][] = [
    [
      {
        rules: {
          policies: {
            p: {
              permissions: [{ any: true }],
              principals: [{ any: true }],
              condition: { constExpr: { boolValue: true } },
            },
          },
        },
      },
      /condition/,
    ],
    [
      {
        rules: {
          policies: {
            p: {
              permissions: [
                {
                  uriTemplate: {
                    name: "x",
                    typedConfig: { "@type": "type.googleapis.com/google.protobuf.Empty" },
                  },
                },
              ],
              principals: [{ any: true }],
            },
          },
        },
      },
      /uri_template/,
    ],
    [
      {
        rules: {
          policies: {
            p: {
              permissions: [{ any: true }],
              principals: [{ filterState: { key: "k", stringMatch: { exact: "v" } } }],
            },
          },
        },
      },
      /filter_state/,
    ],
    [{ trackPerRuleStats: true }, /track_per_rule_stats/],
    [
      { rules: { policies: { p: { permissions: [], principals: [{ any: true }] } } } },
      /permissions: needs at least one/,
    ],
    [
      {
        rules: {
          policies: {
            p: {
              permissions: [{ destinationIp: { addressPrefix: "10.0.0.300" } }],
              principals: [{ any: true }],
            },
          },
        },
      },
      /not an IP address/,
    ],
    [
      {
        rules: {
          policies: {
            p: {
              permissions: [{ header: { name: ":path", safeRegexMatch: { regex: "(?=x)" } } }],
              principals: [{ any: true }],
            },
          },
        },
      },
      /lookaround/,
    ],
  ];
  for (const [fields, message] of cases) {
    const e = nack(() => rbac(fields));
    assert.match(e.message, message);
    assert.match(e.code, /^SKEIN_E_PROXY_CONFIG_/);
  }
  const net = nack(() =>
    compileNetworkRbac(
      wire(NETWORK_RBAC_TYPE, {
        statPrefix: "tcp.",
        rules: {
          policies: {
            p: { permissions: [{ urlPath: { path: { prefix: "/" } } }], principals: [{ any: true }] },
          },
        },
      }),
      at,
    ),
  );
  assert.equal(net.code, "SKEIN_E_PROXY_CONFIG_UNSUPPORTED");
  assert.match(net.message, /url-path is HTTP-only/);
});

test("path normalisation: RFC 3986 steps, merge_slashes and each escaped-slash action", () => {
  const all = { normalizePath: true, mergeSlashes: true, escapedSlashes: "KEEP_UNCHANGED" } as const;
  const ok = (path: string, n: Parameters<typeof normalizeRequestPath>[1] = all) => {
    const r = normalizeRequestPath(path, n);
    return r.kind === "ok" ? r.path : `${r.reply.status} ${r.reply.headers?.location ?? r.reply.details}`;
  };
  assert.equal(ok("/a/b/../c/./d"), "/a/c/d");
  assert.equal(ok("/../../x"), "/x");
  assert.equal(ok("/a/.."), "/");
  assert.equal(ok("/a/%7euser/%41%2d%5f"), "/a/~user/A-_");
  assert.equal(ok("/a/%3f%2fb"), "/a/%3F%2Fb", "reserved escapes stay escaped, hex upper-cased");
  assert.equal(ok("/a\\b\\..\\c"), "/a/c");
  assert.equal(ok("/a//b///c"), "/a/b/c");
  assert.equal(ok("/a//b", { ...all, mergeSlashes: false }), "/a//b");
  assert.equal(ok("/a/b?x=/../y#f"), "/a/b?x=/../y");
  assert.equal(ok("/a/%zz"), "400 path_normalization_failed");
  assert.equal(ok("*"), "*");
  assert.equal(
    ok("/a/%2F..%2fb", { ...all, escapedSlashes: "REJECT_REQUEST" }),
    "400 path_normalization_failed",
  );
  assert.equal(ok("/a/b%2F..%2Fc", { ...all, escapedSlashes: "UNESCAPE_AND_FORWARD" }), "/a/c");
  assert.equal(ok("/a/b%2F..%2Fc?q", { ...all, escapedSlashes: "UNESCAPE_AND_REDIRECT" }), "307 /a/c?q");
  assert.equal(ok("/a/b%2F..%2Fc", all), "/a/b%2F..%2Fc", "KEEP_UNCHANGED: one segment");
  const none = { normalizePath: false, mergeSlashes: false, escapedSlashes: "KEEP_UNCHANGED" } as const;
  assert.equal(ok("/a/../b//c#x", none), "/a/../b//c", "without normalisation only the fragment goes");
});

test("listeners: network RBAC only before tcp_proxy; path settings compile into the HCM config", () => {
  const netRbac = {
    name: "envoy.filters.network.rbac",
    typedConfig: typed(NETWORK_RBAC_TYPE, { statPrefix: "tcp.", rules: { action: "DENY" } }),
  };
  const beforeHcm = nack(() =>
    compileListener(
      wire(
        "envoy.config.listener.v3.Listener",
        listener("l", { filterChains: [{ filters: [netRbac, { name: "hcm", typedConfig: hcm() }] }] }),
      ),
    ),
  );
  assert.equal(beforeHcm.code, "SKEIN_E_PROXY_CONFIG_UNSUPPORTED");
  assert.match(beforeHcm.message, /before tcp_proxy only/);
  const alone = nack(() =>
    compileListener(
      wire("envoy.config.listener.v3.Listener", listener("l", { filterChains: [{ filters: [netRbac] }] })),
    ),
  );
  assert.match(alone.message, /tcp_proxy must follow it/);
  const paths = compileListener(
    wire(
      "envoy.config.listener.v3.Listener",
      listener("l", {
        filterChains: [
          {
            filters: [
              {
                name: "hcm",
                typedConfig: hcm({
                  mergeSlashes: true,
                  pathWithEscapedSlashesAction: "UNESCAPE_AND_REDIRECT",
                }),
              },
            ],
          },
        ],
      }),
    ),
  );
  assert.deepEqual((paths.config as HttpListenerConfig).pathNormalization, {
    normalizePath: false,
    mergeSlashes: true,
    escapedSlashes: "UNESCAPE_AND_REDIRECT",
  });
  const plain = compileListener(wire("envoy.config.listener.v3.Listener", listener("l")));
  assert.equal((plain.config as HttpListenerConfig).pathNormalization, undefined);
});
