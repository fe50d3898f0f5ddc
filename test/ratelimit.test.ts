// The RateLimit kind (skein.dev/v1alpha1) through its layers without a network: schema diagnostics with their
// codes, lowering into the model, translation onto the selected workload's inbound listener, and the
// sidecar's compilation of Envoy's LocalRateLimit (what it takes, what it NACKs, with which code).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ProxyConfigCodes } from "../src/proxy/config/codes.js";
import { compileListener } from "../src/proxy/config/listener.js";
import { compileRouteConfiguration } from "../src/proxy/config/route.js";
import type { HttpListenerConfig, LocalRateLimitConfig } from "../src/proxy/config/types.js";
import { TokenBucket } from "../src/proxy/filters/local-ratelimit/local-ratelimit.js";
import { translate } from "../src/translate/index.js";
import { LISTENER, ROUTE } from "../src/xds/protos.js";
import { check, codes, plain } from "./helpers.js";
import { hcm, listener, nack, route, routeConfiguration, typed, wire } from "./proxy-config-fixtures.js";

const LRL = "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

const service = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: order-service, namespace: production }
spec:
  selector: { app: order-service }
  ports: [{ name: http, port: 8080 }, { name: grpc, port: 9090 }]
---
`;

test("RateLimit: lowered into the model with its match, bucket (fill interval in ms) and defaults", () => {
  const r = check(`${service}apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: writes, namespace: production }
spec:
  service: order-service
  port: 8080
  match:
    uri: { prefix: /orders }
    method: { exact: POST }
    headers: { X-Tenant: { exact: free } }
  tokenBucket: { maxTokens: 10, fillInterval: 500ms }
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(plain(r.model?.rateLimits), [
    {
      name: "writes",
      namespace: "production",
      service: "order-service",
      port: 8080,
      match: {
        uri: { kind: "prefix", value: "/orders" },
        method: { kind: "exact", value: "POST" },
        headers: [{ name: "x-tenant", match: { kind: "exact", value: "free" }, invert: false }],
        queryParams: [],
        ignoreUriCase: false,
      },
      tokenBucket: { maxTokens: 10, tokensPerFill: 1, fillIntervalMs: 500 },
    },
  ]);
});

test("RateLimit schema: selector or service (exactly one), positive tokens, fill interval ≥ 50ms, known fields", () => {
  const r = check(`apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: neither, namespace: production }
spec:
  tokenBucket: { maxTokens: 1, fillInterval: 1s }
---
apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: both, namespace: production }
spec:
  selector: { app: a }
  service: a
  tokenBucket: { maxTokens: 1, fillInterval: 1s }
---
apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: bucket, namespace: production }
spec:
  selector: { app: a }
  tokenBucket: { maxTokens: 0, tokensPerFill: 1, fillInterval: 10ms, burst: 3 }
`);
  assert.deepEqual(
    codes(r.diagnostics).sort(),
    [
      "SKEIN_E_DURATION@20",
      "SKEIN_E_ONE_OF@5",
      "SKEIN_E_ONE_OF@11",
      "SKEIN_E_RANGE@20",
      "SKEIN_E_UNKNOWN_FIELD@20",
    ].sort(),
  );
  const oneOf = r.diagnostics.filter((d) => d.code === "SKEIN_E_ONE_OF").map((d) => d.message);
  assert.deepEqual(oneOf, [
    "a RateLimit needs selector (workload labels) or service",
    "use selector or service, not both",
  ]);
});

function inboundOf(yaml: string, labels: Record<string, string>, ports: Record<string, number> = {}) {
  const built = check(yaml);
  assert.ok(built.model);
  const self = {
    id: "server",
    name: "order-1",
    namespace: "production",
    labels,
    serviceAccount: "order-service",
    address: "127.0.1.9",
    ports,
    origin: "static" as const,
    healthy: true,
  };
  const out = translate(
    { version: "1", model: built.model, workloads: [self] },
    { id: "server", kind: "sidecar", namespace: "production", workload: self },
  );
  return (port: number) => {
    const l = out.listeners.find((x) => x.name === `127.0.1.9_${port}`);
    return l?.filterChains?.[0]?.filters?.[0]?.typedConfig as unknown as {
      httpFilters: { name: string }[];
      routeConfig: {
        virtualHosts: { routes: { name: string; match: unknown; typedPerFilterConfig?: object }[] }[];
      };
    };
  };
}

test("translation: the selected workload's inbound HTTP listeners get local_ratelimit and one route per RateLimit, narrow ones first", () => {
  const inbound = inboundOf(
    `${service}apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: a-everything, namespace: production }
spec:
  selector: { app: order-service }
  tokenBucket: { maxTokens: 100, fillInterval: 1s }
---
apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: z-writes, namespace: production }
spec:
  service: order-service
  port: 8080
  match: { method: { exact: POST } }
  tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: 1s }
---
apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: other, namespace: production }
spec:
  selector: { app: payment-service }
  tokenBucket: { maxTokens: 1, fillInterval: 1s }
`,
    { app: "order-service" },
  );
  const http = inbound(8080);
  assert.deepEqual(
    http.httpFilters.map((f) => f.name),
    ["istio.metadata_exchange", "envoy.filters.http.local_ratelimit", "envoy.filters.http.router"],
  );
  const routes = http.routeConfig.virtualHosts[0]?.routes ?? [];
  assert.deepEqual(
    routes.map((r) => r.name),
    ["ratelimit/z-writes", "ratelimit/a-everything", "default"],
  );
  assert.deepEqual(routes[0]?.match, {
    prefix: "/",
    headers: [{ name: ":method", stringMatch: { exact: "POST" } }],
  });
  assert.deepEqual(routes[0]?.typedPerFilterConfig, {
    "envoy.filters.http.local_ratelimit": {
      "@type": `type.googleapis.com/${LRL}`,
      statPrefix: "ratelimit.production.z-writes",
      tokenBucket: { maxTokens: 5, tokensPerFill: { value: 5 }, fillInterval: { seconds: 1 } },
      filterEnabled: {
        defaultValue: { numerator: 100, denominator: "HUNDRED" },
        runtimeKey: "local_rate_limit_enabled",
      },
      filterEnforced: {
        defaultValue: { numerator: 100, denominator: "HUNDRED" },
        runtimeKey: "local_rate_limit_enforced",
      },
      enableXRatelimitHeaders: "DRAFT_VERSION_03",
    },
  });
  // The gRPC port: the port-8080-only RateLimit is left out.
  assert.deepEqual(
    (inbound(9090).routeConfig.virtualHosts[0]?.routes ?? []).map((r) => r.name),
    ["ratelimit/a-everything", "default"],
  );
  // A workload no RateLimit selects keeps the plain inbound chain.
  const plainInbound = inboundOf(
    `${service}apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: other, namespace: production }
spec:
  selector: { app: payment-service }
  tokenBucket: { maxTokens: 1, fillInterval: 1s }
`,
    { app: "order-service" },
  )(8080);
  assert.deepEqual(
    plainInbound.httpFilters.map((f) => f.name),
    ["istio.metadata_exchange", "envoy.filters.http.router"],
  );
});

test("the sidecar compiles LocalRateLimit as filter and per-route config; Envoy's defaults (off unless enabled) written out", () => {
  const l = compileListener(
    wire(
      LISTENER,
      listener("in", {
        filterChains: [
          {
            filters: [
              {
                name: "envoy.filters.network.http_connection_manager",
                typedConfig: hcm({
                  httpFilters: [
                    {
                      name: "envoy.filters.http.local_ratelimit",
                      typedConfig: typed(LRL, { statPrefix: "rl" }),
                    },
                    {
                      name: "envoy.filters.http.router",
                      typedConfig: typed("envoy.extensions.filters.http.router.v3.Router"),
                    },
                  ],
                }),
              },
            ],
          },
        ],
      }),
    ),
  );
  const filters = (l.config as HttpListenerConfig).filters;
  assert.deepEqual(filters[0]?.config, {
    kind: "local-ratelimit",
    statPrefix: "rl",
    enabled: 0,
    enforced: 0,
    status: 429,
    xRateLimitHeaders: false,
    grpcResourceExhausted: false,
  });
  const perRoute = (fields: object) =>
    compileRouteConfiguration(
      wire(
        ROUTE,
        routeConfiguration("r", [
          route({ typedPerFilterConfig: { "envoy.filters.http.local_ratelimit": typed(LRL, fields) } }),
        ]),
      ),
    ).catchAll?.routes[0]?.filterConfig.get("envoy.filters.http.local_ratelimit") as LocalRateLimitConfig;
  assert.deepEqual(
    perRoute({
      statPrefix: "r1",
      status: { code: "ServiceUnavailable" },
      tokenBucket: { maxTokens: 3, fillInterval: { nanos: 250_000_000 } },
      filterEnabled: { defaultValue: { numerator: 100 } },
      filterEnforced: { defaultValue: { numerator: 50 } },
      enableXRatelimitHeaders: "DRAFT_VERSION_03",
      rateLimitedAsResourceExhausted: true,
    }),
    {
      kind: "local-ratelimit",
      statPrefix: "r1",
      enabled: 1,
      enforced: 0.5,
      status: 503,
      xRateLimitHeaders: true,
      grpcResourceExhausted: true,
      tokenBucket: { maxTokens: 3, tokensPerFill: 1, fillIntervalMs: 250 },
    },
  );
  const descriptors = nack(() =>
    perRoute({
      statPrefix: "r",
      descriptors: [
        { entries: [{ key: "k", value: "v" }], tokenBucket: { maxTokens: 1, fillInterval: { seconds: 1 } } },
      ],
    }),
  );
  assert.equal(descriptors.code, ProxyConfigCodes.UNSUPPORTED);
  assert.match(descriptors.message, /descriptors/);
  const fast = nack(() =>
    perRoute({ statPrefix: "r", tokenBucket: { maxTokens: 1, fillInterval: { nanos: 10_000_000 } } }),
  );
  assert.equal(fast.code, ProxyConfigCodes.INVALID);
  assert.match(fast.message, /fill_interval: must be at least 50ms/);
});

test("token bucket: starts full, refills whole fills per interval up to the maximum, reports the next fill", () => {
  const b = new TokenBucket({ maxTokens: 3, tokensPerFill: 2, fillIntervalMs: 1000 }, 0);
  assert.deepEqual([b.take(0), b.take(10), b.take(20), b.take(30)], [true, true, true, false]);
  assert.equal(b.resetSeconds(400), 1);
  assert.equal(b.remaining(999), 0);
  assert.equal(b.remaining(1000), 2);
  assert.equal(b.remaining(5000), 3, "never above max_tokens");
});
