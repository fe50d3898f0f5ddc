import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { check, checkFiles, codes, plain } from "./helpers.js";

const seed = (name: string) => readFileSync(new URL(`./fixtures/seed/${name}`, import.meta.url), "utf8");

const services = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: order-service }
spec:
  selector: { app: order-service }
  ports: [{ name: http, port: 8080 }]
`;

test("seed pattern 1 lowers to the expected routes and destination policy", () => {
  const r = check(seed("pattern1-traffic-management.yaml"));
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  const rt = plain(r.model?.routeTables[0]);
  assert.equal(rt?.origin, "istio");
  assert.deepEqual(rt?.hosts, ["order-service"]);
  assert.deepEqual(rt?.gateways, ["mesh"]);
  assert.equal(rt?.namespace, "default");
  assert.equal(rt?.http.length, 2);
  const [canary, split] = rt?.http ?? [];
  assert.deepEqual(canary?.matches[0]?.headers, [
    { name: "x-canary", match: { kind: "exact", value: "true" }, invert: false },
  ]);
  assert.deepEqual(canary?.destinations, [{ host: "order-service", subset: "canary", weight: 100 }]);
  assert.deepEqual(
    split?.destinations.map((d) => `${d.subset}:${d.weight}`),
    ["stable:90", "canary:10"],
  );
  assert.equal(split?.timeoutMs, 10_000);
  assert.deepEqual(split?.retries, {
    attempts: 3,
    perTryTimeoutMs: 2000,
    retryOn: ["5xx", "reset", "connect-failure"],
  });
  assert.equal(split?.matches.length, 0);

  const dp = plain(r.model?.destinationPolicies[0]);
  assert.equal(dp?.host, "order-service");
  assert.deepEqual(dp?.trafficPolicy?.connectionPool, {
    tcp: { maxConnections: 100 },
    http: {
      h2UpgradePolicy: "DEFAULT",
      http1MaxPendingRequests: 100,
      http2MaxRequests: 1000,
      maxRequestsPerConnection: 10,
    },
  });
  assert.deepEqual(dp?.trafficPolicy?.loadBalancer, { simple: "LEAST_REQUEST" });
  assert.deepEqual(dp?.subsets, [
    { name: "stable", labels: { version: "v1" } },
    { name: "canary", labels: { version: "v2" } },
  ]);
});

test("seed pattern 3 lowers the fault: 10% delayed 5s, 5% aborted with 503", () => {
  const r = check(seed("pattern3-fault-injection.yaml"));
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  const route = plain(r.model?.routeTables[0]?.http[0]);
  assert.deepEqual(route?.fault, {
    delay: { percentage: 10, fixedDelayMs: 5000 },
    abort: { percentage: 5, httpStatus: 503 },
  });
});

test("VirtualService: every HTTP route feature lowers", () => {
  const r = check(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: production }
spec:
  hosts: [shop]
  exportTo: ["."]
  http:
    - name: api
      match:
        - uri: { prefix: /api/v1/ }
          method: { exact: POST }
          headers: { X-User: { regex: "^u[0-9]+$" }, x-present: {} }
          withoutHeaders: { x-debug: {} }
          queryParams: { v: { exact: "2" } }
          ignoreUriCase: true
          sourceLabels: { app: api-gateway }
      rewrite: { uri: /v1/, authority: shop-internal }
      route:
        - destination: { host: shop, port: { number: 8080 } }
          headers: { request: { set: { x-a: "1" } }, response: { remove: [server] } }
      mirror: { host: shop-shadow }
      mirrorPercentage: { value: 12.5 }
      corsPolicy:
        allowOrigins: [{ exact: "https://example.com" }]
        allowMethods: [GET]
        maxAge: 24h
        allowCredentials: true
      headers: { request: { add: { x-b: "2" } } }
      timeout: 1.5s
      retries: { attempts: 2 }
    - match: [{ uri: { exact: /old } }]
      redirect: { uri: /new, redirectCode: 308 }
    - directResponse: { status: 404, body: { string: gone } }
  tcp:
    - match: [{ port: 5432 }]
      route: [{ destination: { host: db }, weight: 100 }]
  tls:
    - match: [{ sniHosts: [shop.example.com], port: 443 }]
      route: [{ destination: { host: shop.example.com } }]
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  const rt = plain(r.model?.routeTables[0]);
  assert.deepEqual(rt?.exportTo, ["."]);
  const [api, redirect, direct] = rt?.http ?? [];
  const m = api?.matches[0];
  assert.deepEqual(m?.uri, { kind: "prefix", value: "/api/v1/" });
  assert.deepEqual(m?.method, { kind: "exact", value: "POST" });
  assert.deepEqual(m?.headers, [
    { name: "x-user", match: { kind: "regex", value: "^u[0-9]+$" }, invert: false },
    { name: "x-present", invert: false },
    { name: "x-debug", invert: true },
  ]);
  assert.deepEqual(m?.queryParams, [{ name: "v", match: { kind: "exact", value: "2" } }]);
  assert.equal(m?.ignoreUriCase, true);
  assert.deepEqual(m?.sourceLabels, { app: "api-gateway" });
  assert.deepEqual(api?.rewrite, { uri: "/v1/", authority: "shop-internal" });
  assert.deepEqual(api?.destinations, [
    {
      host: "shop",
      port: 8080,
      weight: 100,
      headers: {
        request: { set: { "x-a": "1" }, add: {}, remove: [] },
        response: { set: {}, add: {}, remove: ["server"] },
      },
    },
  ]);
  assert.deepEqual(api?.mirrors, [{ host: "shop-shadow", percentage: 12.5 }]);
  assert.deepEqual(api?.cors, {
    allowOrigins: [{ kind: "exact", value: "https://example.com" }],
    allowMethods: ["GET"],
    allowHeaders: [],
    exposeHeaders: [],
    maxAgeMs: 86_400_000,
    allowCredentials: true,
  });
  assert.deepEqual(api?.headers.request.add, { "x-b": "2" });
  assert.equal(api?.timeoutMs, 1500);
  // Istio's default retryOn when retries give none.
  assert.deepEqual(api?.retries?.retryOn, [
    "connect-failure",
    "refused-stream",
    "unavailable",
    "cancelled",
    "retriable-status-codes",
  ]);
  assert.deepEqual(redirect?.redirect, { uri: "/new", redirectCode: 308 });
  assert.deepEqual(direct?.directResponse, { status: 404, body: "gone" });
  assert.deepEqual(
    rt?.tcp.map((t) => t.matches),
    [
      [{ port: 443, destinationSubnets: [], sniHosts: ["shop.example.com"] }],
      [{ port: 5432, destinationSubnets: [] }],
    ],
  );
});

test("DestinationRule: consistent hash, outlier detection, TLS, port-level and subset policies", () => {
  const r = check(`apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: { name: order, namespace: production }
spec:
  host: order-service
  trafficPolicy:
    loadBalancer:
      consistentHash: { httpCookie: { name: session, ttl: 30m }, maglev: {} }
    outlierDetection: { consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50 }
    tls: { mode: ISTIO_MUTUAL }
    connectionPool:
      tcp: { connectTimeout: 250ms, tcpKeepalive: { time: 7200s, interval: 75s } }
    portLevelSettings:
      - port: { number: 9090 }
        loadBalancer: { simple: LEAST_CONN }
  subsets:
    - name: v2
      labels: { version: v2 }
      trafficPolicy: { loadBalancer: { simple: ROUND_ROBIN } }
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  const tp = plain(r.model?.destinationPolicies[0]?.trafficPolicy);
  assert.deepEqual(tp?.loadBalancer?.consistentHash, {
    httpCookie: { name: "session", ttlMs: 1_800_000 },
    algorithm: "MAGLEV",
  });
  assert.deepEqual(tp?.outlierDetection, {
    consecutive5xxErrors: 5,
    intervalMs: 10_000,
    baseEjectionTimeMs: 30_000,
    maxEjectionPercent: 50,
  });
  assert.deepEqual(tp?.tls, { mode: "ISTIO_MUTUAL", subjectAltNames: [] });
  assert.deepEqual(tp?.connectionPool?.tcp, {
    connectTimeoutMs: 250,
    keepalive: { timeMs: 7_200_000, intervalMs: 75_000 },
  });
  // LEAST_CONN is Istio's deprecated spelling of LEAST_REQUEST.
  assert.deepEqual(tp?.portLevelSettings, [{ port: 9090, loadBalancer: { simple: "LEAST_REQUEST" } }]);
  assert.deepEqual(plain(r.model?.destinationPolicies[0]?.subsets[0]?.trafficPolicy), {
    loadBalancer: { simple: "ROUND_ROBIN" },
    portLevelSettings: [],
  });
});

test("ServiceEntry and Sidecar lower", () => {
  const r = check(`apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: payments-api, namespace: production }
spec:
  hosts: [api.payments.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: https, protocol: TLS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: legacy, namespace: production }
spec:
  hosts: [legacy.internal]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 80, name: http }]
  endpoints:
    - { address: 10.0.0.5, labels: { version: v1 }, ports: { http: 8080 } }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: production }
spec:
  egress:
    - hosts: ["./*", "istio-system/*"]
  outboundTrafficPolicy: { mode: REGISTRY_ONLY }
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  const [ext, legacy] = plain(r.model?.services ?? []);
  assert.equal(ext?.hostname, "api.payments.example.com");
  assert.equal(ext?.resolution, "DNS");
  assert.equal(ext?.location, "MESH_EXTERNAL");
  assert.deepEqual(ext?.ports, [{ number: 443, name: "https", protocol: "TLS" }]);
  assert.deepEqual(legacy?.endpoints, [
    { address: "10.0.0.5", ports: { http: 8080 }, labels: { version: "v1" } },
  ]);
  assert.deepEqual(legacy?.ports[0]?.protocol, "HTTP");
  assert.deepEqual(plain(r.model?.sidecars[0]), {
    name: "default",
    namespace: "production",
    egress: [{ hosts: ["./*", "istio-system/*"] }],
    outboundTrafficPolicy: "REGISTRY_ONLY",
  });
});

// Each broken document yields its own code at the line of the offending field.
const broken: [string, string, string[]][] = [
  [
    "bad duration",
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a }
spec:
  hosts: [a]
  http:
    - route: [{ destination: { host: a } }]
      timeout: 10x
`,
    ["SKEIN_E_DURATION@8"],
  ],
  [
    "percentage over 100",
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a }
spec:
  hosts: [a]
  http:
    - route: [{ destination: { host: a } }]
      fault:
        abort:
          httpStatus: 503
          percentage:
            value: 150
`,
    ["SKEIN_E_PERCENTAGE@12"],
  ],
  [
    "misspelt field with suggestion, wrong type",
    `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: { name: a }
spec:
  hosts: [a]
  http:
    - route:
        - destination: { host: a }
          wieght: 10
      retries:
        attempts: "three"
`,
    ["SKEIN_E_UNKNOWN_FIELD@9", "SKEIN_E_TYPE@11"],
  ],
  [
    "weight out of range and bad retryOn",
    `apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: { name: a }
spec:
  hosts: [a]
  http:
    - route:
        - destination: { host: a }
          weight: 120
      retries: { attempts: 1, retryOn: "5xx,connect-failur" }
`,
    ["SKEIN_E_RANGE@9", "SKEIN_E_ENUM@10"],
  ],
  [
    "string match with two forms; route with no action",
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a }
spec:
  hosts: [a]
  http:
    - match:
        - uri: { exact: /a, prefix: /b }
      route: [{ destination: { host: a } }]
    - timeout: 1s
`,
    ["SKEIN_E_ONE_OF@8", "SKEIN_E_REQUIRED@10"],
  ],
  [
    "missing host, bad enum with suggestion, invalid regex",
    `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: a }
spec:
  trafficPolicy:
    loadBalancer: { simple: ROUND_ROBBIN }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: b }
spec:
  hosts: [b]
  http:
    - match: [{ uri: { regex: "(unclosed" } }]
      route: [{ destination: { host: b } }]
`,
    ["SKEIN_E_REQUIRED@4", "SKEIN_E_ENUM@6", "SKEIN_E_REGEX@14"],
  ],
  [
    "unknown kind and version, bad host, bad name",
    `apiVersion: networking.istio.io/v1
kind: VirtualServce
metadata: { name: a }
---
apiVersion: networking.istio.io/v2
kind: DestinationRule
metadata: { name: a }
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: Bad_Name }
spec:
  hosts: ["-bad-.example.com"]
`,
    ["SKEIN_E_UNKNOWN_KIND@2", "SKEIN_E_UNKNOWN_API_VERSION@5", "SKEIN_E_NAME@11", "SKEIN_E_HOST@13"],
  ],
  [
    "YAML syntax error and a document that is not a resource",
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a
---
- just
- a list
`,
    ["SKEIN_E_YAML_SYNTAX@4", "SKEIN_E_NOT_A_RESOURCE@5"],
  ],
];

for (const [name, text, expected] of broken) {
  test(`broken: ${name}`, () => {
    const r = check(text);
    assert.deepEqual(codes(r.diagnostics).sort(), [...expected].sort());
    for (const d of r.diagnostics) {
      assert.equal(d.file, "test.yaml");
      assert.ok(d.message.length > 0);
    }
  });
}

test("unknown fields suggest the closest name and list the allowed ones", () => {
  const r = check(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: a }
spec:
  host: [a]
`);
  const d = r.diagnostics.find((x) => x.code === "SKEIN_E_UNKNOWN_FIELD");
  assert.match(d?.message ?? "", /unknown field "host"; did you mean "hosts"\?/);
  assert.equal(d?.path, "spec.host");
  assert.equal(d?.line, 5);
  assert.equal(d?.column, 3);
  assert.equal(d?.resource, "VirtualService default/a");
});

test("analysis: subset, host and port that do not exist; weights; unreachable rule", () => {
  const r = checkFiles({
    "svc.yaml": services,
    "vs.yaml": `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: order-service }
spec:
  hosts: [order-service]
  http:
    - route:
        - destination: { host: order-service, subset: stable }
          weight: 80
        - destination: { host: order-service, subset: canary, port: { number: 9999 } }
          weight: 10
    - match: [{ uri: { prefix: /x } }]
      route:
        - destination: { host: billing }
`,
    "dr.yaml": `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: order-service }
spec:
  host: order-service.default.svc.cluster.local
  subsets: [{ name: stable, labels: { version: v1 } }]
`,
  });
  assert.deepEqual(codes(r.diagnostics, "all").sort(), [
    "SKEIN_E_HOST_NOT_FOUND@14",
    "SKEIN_E_PORT_NOT_FOUND@10",
    "SKEIN_E_SUBSET_NOT_FOUND@10",
    "SKEIN_W_UNREACHABLE_ROUTE@12",
    "SKEIN_W_WEIGHT_SUM@7",
  ]);
  const subset = r.diagnostics.find((d) => d.code === "SKEIN_E_SUBSET_NOT_FOUND");
  assert.equal(subset?.file, "vs.yaml");
  assert.match(subset?.message ?? "", /subset "canary"/);
  assert.match(subset?.hint ?? "", /stable/);
});

test("analysis: two VirtualServices for one host conflict; exportTo that does not overlap does not", () => {
  const vs = (name: string, ns: string, exportTo = "") => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: ${name}, namespace: ${ns} }
spec:
  hosts: [order-service.default.svc.cluster.local]
${exportTo}  http: [{ route: [{ destination: { host: order-service.default.svc.cluster.local } }] }]
`;
  const conflict = checkFiles({
    "svc.yaml": services,
    "a.yaml": vs("a", "default"),
    "b.yaml": vs("b", "team"),
  });
  assert.deepEqual(codes(conflict.diagnostics).sort(), [
    "SKEIN_E_VS_HOST_CONFLICT@5",
    "SKEIN_E_VS_HOST_CONFLICT@5",
  ]);
  const scoped = checkFiles({
    "svc.yaml": services,
    "a.yaml": vs("a", "default", '  exportTo: ["."]\n'),
    "b.yaml": vs("b", "team", '  exportTo: ["."]\n'),
  });
  assert.deepEqual(codes(scoped.diagnostics, "all"), []);
});

test("analysis: the seed's canary routing is clean once the service exists", () => {
  const r = checkFiles({ "svc.yaml": services, "p1.yaml": seed("pattern1-traffic-management.yaml") });
  assert.deepEqual(codes(r.diagnostics, "all"), []);
});

test("fields accepted without effect are reported as warnings, not dropped", () => {
  const r = check(`apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: s }
spec:
  ingress: [{ port: { number: 80 } }]
  egress: [{ hosts: ["./*"] }]
`);
  assert.deepEqual(codes(r.diagnostics, "all"), ["SKEIN_W_NO_EFFECT@5"]);
});
