import assert from "node:assert/strict";
import { test } from "node:test";
import type { Diagnostic } from "../src/lib/diagnostics.js";
import { check, checkFiles, codes, plain } from "./helpers.js";

/** 1-based line of the first line containing `marker`. */
function lineOf(text: string, marker: string, from = 0): number {
  const lines = text.split("\n");
  const i = lines.findIndex((l, n) => n >= from && l.includes(marker));
  assert.ok(i >= 0, `marker ${marker} not found`);
  return i + 1;
}

function only(diags: readonly Diagnostic[], code: string): Diagnostic {
  const found = diags.filter((d) => d.code === code);
  assert.equal(found.length, 1, `expected one ${code}, got ${JSON.stringify(diags, null, 1)}`);
  return found[0] as Diagnostic;
}

const emptySource = {
  principals: [],
  notPrincipals: [],
  requestPrincipals: [],
  notRequestPrincipals: [],
  namespaces: [],
  notNamespaces: [],
  ipBlocks: [],
  notIpBlocks: [],
  remoteIpBlocks: [],
  notRemoteIpBlocks: [],
};
const emptyOperation = {
  hosts: [],
  notHosts: [],
  ports: [],
  notPorts: [],
  methods: [],
  notMethods: [],
  paths: [],
  notPaths: [],
};

// The seed's pattern 2, verbatim.
const PATTERN2 = `# PeerAuthentication - enforce mTLS
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata:
  name: default
  namespace: production
spec:
  mtls:
    mode: STRICT
---
# AuthorizationPolicy - service-to-service access control
apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata:
  name: order-service-policy
  namespace: production
spec:
  selector:
    matchLabels:
      app: order-service
  rules:
    - from:
        - source:
            principals:
              - "cluster.local/ns/production/sa/api-gateway"
              - "cluster.local/ns/production/sa/payment-service"
      to:
        - operation:
            methods: ["GET", "POST"]
            paths: ["/api/v1/*"]
    - from:
        - source:
            principals:
              - "cluster.local/ns/production/sa/inventory-service"
      to:
        - operation:
            methods: ["GET"]
            paths: ["/api/v1/inventory/*"]
`;

test("seed pattern 2 lowers exactly", () => {
  const r = check(PATTERN2);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(plain(r.model?.peerAuthentications), [
    { name: "default", namespace: "production", scope: "namespace", mode: "STRICT", portLevel: {} },
  ]);
  assert.deepEqual(plain(r.model?.authorizationPolicies), [
    {
      name: "order-service-policy",
      namespace: "production",
      scope: "workload",
      selector: { app: "order-service" },
      action: "ALLOW",
      rules: [
        {
          from: [
            {
              ...emptySource,
              principals: [
                "cluster.local/ns/production/sa/api-gateway",
                "cluster.local/ns/production/sa/payment-service",
              ],
            },
          ],
          to: [{ ...emptyOperation, methods: ["GET", "POST"], paths: ["/api/v1/*"] }],
          when: [],
        },
        {
          from: [{ ...emptySource, principals: ["cluster.local/ns/production/sa/inventory-service"] }],
          to: [{ ...emptyOperation, methods: ["GET"], paths: ["/api/v1/inventory/*"] }],
          when: [],
        },
      ],
    },
  ]);
});

test("seed pattern 2 with its services and workloads analyzes clean", () => {
  const services = ["order-service", "api-gateway", "payment-service", "inventory-service"]
    .map(
      (n) => `---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: ${n}, namespace: production }
spec:
  selector: { app: ${n} }
  ports: [{ name: http, port: 8080 }]
`,
    )
    .join("");
  const r = check(PATTERN2 + services, { analyze: true });
  assert.deepEqual(codes(r.diagnostics, "all"), []);
});

// ── PeerAuthentication ──────────────────────────────────────────────────────────────────────────────

test("PeerAuthentication: workload policy with port-level mTLS; scopes by namespace and selector", () => {
  const r = check(`apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: payments, namespace: production }
spec:
  selector:
    matchLabels: { app: payments }
  mtls: { mode: STRICT }
  portLevelMtls:
    8080: { mode: PERMISSIVE }
    9090: { mode: DISABLE }
    9091: {}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec:
  mtls: { mode: PERMISSIVE }
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: { name: nothing, namespace: staging }
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(plain(r.model?.peerAuthentications), [
    {
      name: "payments",
      namespace: "production",
      scope: "workload",
      selector: { app: "payments" },
      mode: "STRICT",
      portLevel: { 8080: "PERMISSIVE", 9090: "DISABLE", 9091: "UNSET" },
    },
    { name: "default", namespace: "istio-system", scope: "mesh", mode: "PERMISSIVE", portLevel: {} },
    { name: "nothing", namespace: "staging", scope: "namespace", mode: "UNSET", portLevel: {} },
  ]);
});

test("scope uses the root namespace from an IstioOperator in another file, whatever the file order", () => {
  const r = checkFiles(
    {
      "a-policies.yaml": `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: mesh-root }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-all, namespace: mesh-root }
spec: { rules: [{}] }
`,
      "b-operator.yaml": `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
spec:
  meshConfig:
    rootNamespace: mesh-root
`,
    },
    false,
  );
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(
    r.model?.peerAuthentications.map((p) => `${p.namespace}:${p.scope}`),
    ["mesh-root:mesh", "istio-system:namespace"],
  );
  assert.equal(r.model?.authorizationPolicies[0]?.scope, "mesh");
});

test("PeerAuthentication: portLevelMtls without selector, bad mode, bad ports, unknown field", () => {
  const text = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ns-wide, namespace: production }
spec:
  mtls: { mode: STRICT }
  portLevelMtls:
    8080: { mode: DISABLE }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: typo, namespace: production }
spec:
  selector: { matchLabels: { app: a } }
  mtls: { mode: STRIKT }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ports, namespace: production }
spec:
  selector: { matchLabels: { app: a } }
  portLevelMtls:
    70000: { mode: DISABLE }
    http: { mode: DISABLE }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: unknown, namespace: production }
spec:
  mtl: { mode: STRICT }
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_REQUIRED@${lineOf(text, "8080: { mode: DISABLE }")}`,
    `SKEIN_E_ENUM@${lineOf(text, "STRIKT")}`,
    `SKEIN_E_RANGE@${lineOf(text, "70000")}`,
    `SKEIN_E_TYPE@${lineOf(text, "http: { mode")}`,
    `SKEIN_E_UNKNOWN_FIELD@${lineOf(text, "mtl:")}`,
  ]);
  assert.match(only(r.diagnostics, "SKEIN_E_REQUIRED").message, /portLevelMtls needs a selector/);
  assert.match(only(r.diagnostics, "SKEIN_E_ENUM").message, /did you mean "STRICT"/);
  assert.match(only(r.diagnostics, "SKEIN_E_UNKNOWN_FIELD").message, /did you mean "mtls"/);
});

test("PeerAuthentication with a selector in the root namespace is reported as having no effect", () => {
  const text = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: gw, namespace: istio-system }
spec:
  selector:
    matchLabels: { app: istio-ingressgateway }
  mtls: { mode: STRICT }
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics, "all"), [`SKEIN_W_NO_EFFECT@${lineOf(text, "selector:")}`]);
});

// ── AuthorizationPolicy: a full valid document ──────────────────────────────────────────────────────

test("AuthorizationPolicy: every source, operation and condition field lowers; ports become numbers", () => {
  const r = check(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: full, namespace: production }
spec:
  selector:
    matchLabels: { app: orders, version: v1 }
  action: DENY
  rules:
    - from:
        - source:
            principals: ["cluster.local/ns/production/sa/*"]
            notPrincipals: ["*/sa/batch"]
            requestPrincipals: ["https://accounts.example.com/*"]
            notRequestPrincipals: ["https://accounts.example.com/banned"]
            namespaces: ["prod-*"]
            notNamespaces: ["*-test"]
            ipBlocks: ["10.0.0.0/8", "192.168.1.7"]
            notIpBlocks: ["10.0.0.1"]
            remoteIpBlocks: ["2001:db8::/32"]
            notRemoteIpBlocks: ["::1"]
      to:
        - operation:
            hosts: ["orders.example.com", "*.example.com"]
            notHosts: ["admin.example.com"]
            ports: ["8080", "9090"]
            notPorts: ["15020"]
            methods: ["POST", "DELETE"]
            notMethods: ["GET"]
            paths: ["/admin/*", "/api/{*}/orders", "/static/{**}"]
            notPaths: ["*.json"]
      when:
        - key: request.headers[X-Tenant]
          values: ["acme"]
        - key: source.ip
          notValues: ["10.1.0.0/16"]
        - key: request.auth.claims[groups]
          values: ["admins"]
        - key: destination.port
          values: ["8080"]
        - key: experimental.envoy.filters.network.mysql_proxy[db.table]
          values: ["[update]"]
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(plain(r.model?.authorizationPolicies[0]), {
    name: "full",
    namespace: "production",
    scope: "workload",
    selector: { app: "orders", version: "v1" },
    action: "DENY",
    rules: [
      {
        from: [
          {
            principals: ["cluster.local/ns/production/sa/*"],
            notPrincipals: ["*/sa/batch"],
            requestPrincipals: ["https://accounts.example.com/*"],
            notRequestPrincipals: ["https://accounts.example.com/banned"],
            namespaces: ["prod-*"],
            notNamespaces: ["*-test"],
            ipBlocks: ["10.0.0.0/8", "192.168.1.7"],
            notIpBlocks: ["10.0.0.1"],
            remoteIpBlocks: ["2001:db8::/32"],
            notRemoteIpBlocks: ["::1"],
          },
        ],
        to: [
          {
            hosts: ["orders.example.com", "*.example.com"],
            notHosts: ["admin.example.com"],
            ports: [8080, 9090],
            notPorts: [15020],
            methods: ["POST", "DELETE"],
            notMethods: ["GET"],
            paths: ["/admin/*", "/api/{*}/orders", "/static/{**}"],
            notPaths: ["*.json"],
          },
        ],
        when: [
          { key: "request.headers[X-Tenant]", values: ["acme"], notValues: [] },
          { key: "source.ip", values: [], notValues: ["10.1.0.0/16"] },
          { key: "request.auth.claims[groups]", values: ["admins"], notValues: [] },
          { key: "destination.port", values: ["8080"], notValues: [] },
          {
            key: "experimental.envoy.filters.network.mysql_proxy[db.table]",
            values: ["[update]"],
            notValues: [],
          },
        ],
      },
    ],
  });
});

test("AuthorizationPolicy: CUSTOM with provider and targetRefs lowers", () => {
  const r = check(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: ext, namespace: production }
spec:
  targetRefs:
    - kind: Gateway
      group: gateway.networking.k8s.io
      name: edge
  action: CUSTOM
  provider: { name: my-ext-authz }
  rules:
    - to: [{ operation: { paths: ["/admin/*"] } }]
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  const p = plain(r.model?.authorizationPolicies[0]);
  assert.equal(p?.scope, "workload");
  assert.equal(p?.provider, "my-ext-authz");
  assert.deepEqual(p?.targetRefs, [{ group: "gateway.networking.k8s.io", kind: "Gateway", name: "edge" }]);
});

// ── AuthorizationPolicy: broken documents ───────────────────────────────────────────────────────────

function policyWith(sourceYaml: string): string {
  return `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: production }
spec:
  rules:
    - from:
        - source:
${sourceYaml}`;
}

test("malformed principals: spiffe:// prefix, missing segments, * in the middle, a bare name", () => {
  const text = policyWith(`            principals:
              - "spiffe://cluster.local/ns/production/sa/api-gateway"
              - "production/api-gateway"
              - "cluster.local/ns/production/api-gateway"
              - "cluster.local/ns/*/sa/api-gateway"
              - "admin"
              - "system:serviceaccount:production:api-gateway"
              - "*"
              - "cluster.local/ns/production/*"
              - "*/sa/api-gateway"
              - "cluster.local/ns/production/sa/*"
`);
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_PRINCIPAL@${lineOf(text, "spiffe://")}`,
    `SKEIN_E_PRINCIPAL@${lineOf(text, '"production/api-gateway"')}`,
    `SKEIN_E_PRINCIPAL@${lineOf(text, 'production/api-gateway"', lineOf(text, '"production/api-gateway"'))}`,
    `SKEIN_E_PRINCIPAL@${lineOf(text, "ns/*/sa")}`,
    `SKEIN_E_PRINCIPAL@${lineOf(text, '"admin"')}`,
    `SKEIN_E_PRINCIPAL@${lineOf(text, "system:serviceaccount")}`,
  ]);
  const byLine = (marker: string) => r.diagnostics.find((d) => d.line === lineOf(text, marker));
  const fix = '"cluster.local/ns/production/sa/api-gateway"';
  assert.match(byLine("spiffe://")?.message ?? "", /spiffe:\/\/, which Istio adds itself/);
  assert.ok(byLine("spiffe://")?.hint?.includes(fix));
  assert.ok(byLine('"production/api-gateway"')?.hint?.includes(fix));
  assert.ok(byLine("cluster.local/ns/production/api-gateway")?.hint?.includes(fix));
  assert.ok(byLine("system:serviceaccount")?.hint?.includes(fix));
  assert.match(byLine("ns/*/sa")?.message ?? "", /"\*" in the middle/);
  assert.match(byLine('"admin"')?.message ?? "", /<trust-domain>\/ns\/<namespace>\/sa\/<service-account>/);
  assert.equal(byLine("spiffe://")?.path, "spec.rules[0].from[0].source.principals[0]");
  assert.equal(byLine("spiffe://")?.column, 17);
});

test("notPrincipals, request principals and source.principal conditions follow the same rules", () => {
  const text = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: production }
spec:
  action: DENY
  rules:
    - from:
        - source:
            notPrincipals: ["cluster.local/ns/x/sa/a*b"]
            requestPrincipals: ["subject-only", "iss/*/sub"]
      when:
        - key: source.principal
          values: ["spiffe://cluster.local/ns/a/sa/b"]
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_PRINCIPAL@${lineOf(text, "notPrincipals")}`,
    `SKEIN_E_PRINCIPAL@${lineOf(text, "requestPrincipals")}`,
    `SKEIN_E_PRINCIPAL@${lineOf(text, "requestPrincipals")}`,
    `SKEIN_E_PRINCIPAL@${lineOf(text, "spiffe://")}`,
  ]);
});

test("paths: * only as prefix/suffix/whole; {*} and {**} templates checked; must start with /", () => {
  const text = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: production }
spec:
  rules:
    - to:
        - operation:
            paths:
              - "/api/*/orders"
              - "/api/v1/**"
              - "api/v1"
              - "/orders/{id}"
              - "/{**}/foo/{*}"
              - "/foo/{*}.txt"
              - "/*/baz/{*}"
              - ""
              - "/api/{*}/orders"
              - "/static/{**}"
              - "/foo/{**}/"
              - "*.json"
              - "*"
              - "/exact"
`;
  const r = check(text);
  const bad = [
    "/api/*/orders",
    "/api/v1/**",
    '"api/v1"',
    "/orders/{id}",
    "/{**}/foo",
    "/foo/{*}.txt",
    "/*/baz",
    '- ""',
  ];
  assert.deepEqual(
    codes(r.diagnostics),
    bad.map((m) => `${m === '- ""' ? "SKEIN_E_PATH_PATTERN" : "SKEIN_E_PATH_PATTERN"}@${lineOf(text, m)}`),
  );
  const msg = (m: string) => r.diagnostics.find((d) => d.line === lineOf(text, m))?.message ?? "";
  assert.match(msg("/{**}/foo"), /\{\*\*\} must be the last operator/);
  assert.match(msg("/orders/{id}"), /not a supported template/);
  assert.match(msg('"api/v1"'), /does not start with "\/"/);
  assert.match(
    r.diagnostics.find((d) => d.line === lineOf(text, "/api/*/orders"))?.hint ?? "",
    /\/api\/\{\*\}\/orders/,
  );
});

test("ipBlocks must be IPs or CIDRs", () => {
  const text =
    policyWith(`            ipBlocks: ["10.0.0.0/33", "10.0.0", "not-an-ip", "::1/129", "10.0.0.0/8/1"]
            notIpBlocks: ["10.1.2.3", "10.0.0.0/8", "2001:db8::/32", "fe80::1"]
            remoteIpBlocks: ["1.2.3.4/abc"]
`);
  const r = check(text);
  const ipLine = lineOf(text, "ipBlocks: [");
  assert.deepEqual(codes(r.diagnostics), [
    ...Array(5).fill(`SKEIN_E_IP_BLOCK@${ipLine}`),
    `SKEIN_E_IP_BLOCK@${lineOf(text, "remoteIpBlocks")}`,
  ]);
  assert.deepEqual(
    r.diagnostics.map((d) => d.path),
    [0, 1, 2, 3, 4]
      .map((i) => `spec.rules[0].from[0].source.ipBlocks[${i}]`)
      .concat(["spec.rules[0].from[0].source.remoteIpBlocks[0]"]),
  );
  assert.match(r.diagnostics[0]?.message ?? "", /prefix length must be 0–32/);
});

test("ports are strings of 1–65535; a YAML number gets a hint to quote it", () => {
  const text = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: production }
spec:
  rules:
    - to:
        - operation:
            ports:
              - 8080
              - "70000"
              - "http"
              - "0"
            notPorts: ["443"]
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_TYPE@${lineOf(text, "- 8080")}`,
    `SKEIN_E_RANGE@${lineOf(text, '"70000"')}`,
    `SKEIN_E_TYPE@${lineOf(text, '"http"')}`,
    `SKEIN_E_RANGE@${lineOf(text, '"0"')}`,
  ]);
  assert.match(r.diagnostics[0]?.hint ?? "", /write "8080"/);
});

test("condition keys: unknown with did-you-mean, missing brackets, retired keys; values checked by key", () => {
  const text = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: production }
spec:
  rules:
    - when:
        - key: source.principle
          values: ["cluster.local/ns/a/sa/b"]
        - key: request.header[x-user]
          values: ["alice"]
        - key: request.headers
          values: ["x"]
        - key: destination.labels[app]
          values: ["orders"]
        - key: source.ip
          values: ["10.0.0.300"]
        - key: destination.port
          values: ["99999"]
        - key: request.auth.claims[iss]
        - key: connection.sni
          values: ["api.example.com"]
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_CONDITION_KEY@${lineOf(text, "source.principle")}`,
    `SKEIN_E_CONDITION_KEY@${lineOf(text, "request.header[x-user]")}`,
    `SKEIN_E_CONDITION_KEY@${lineOf(text, "key: request.headers")}`,
    `SKEIN_E_CONDITION_KEY@${lineOf(text, "destination.labels")}`,
    `SKEIN_E_IP_BLOCK@${lineOf(text, "10.0.0.300")}`,
    `SKEIN_E_RANGE@${lineOf(text, "99999")}`,
    `SKEIN_E_REQUIRED@${lineOf(text, "request.auth.claims[iss]")}`,
  ]);
  const msg = (m: string) => r.diagnostics.find((d) => d.line === lineOf(text, m))?.message ?? "";
  assert.match(msg("source.principle"), /did you mean "source.principal"/);
  assert.match(msg("request.header[x-user]"), /did you mean "request.headers\[x-user\]"/);
  assert.match(msg("key: request.headers"), /needs a name in brackets/);
  assert.match(msg("destination.labels"), /workload selector/);
});

test("rule structure: empty source, from: [], CUSTOM/DENY rules and provider, selector with targetRef", () => {
  const text = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: empty-source, namespace: production }
spec:
  rules:
    - from:
        - source: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: empty-from, namespace: production }
spec:
  rules:
    - from: []
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: custom-no-provider, namespace: production }
spec:
  action: CUSTOM
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-no-rules, namespace: production }
spec:
  action: DENY
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-with-provider, namespace: production }
spec:
  provider: { name: ext }
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: both, namespace: production }
spec:
  selector: { matchLabels: { app: a } }
  targetRef: { kind: Service, name: orders }
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: bad-target, namespace: production }
spec:
  targetRefs: [{ kind: Deployment, name: orders }]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: custom-principals, namespace: production }
spec:
  action: CUSTOM
  provider: { name: ext }
  rules:
    - from: [{ source: { principals: ["cluster.local/ns/a/sa/b"] } }]
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_REQUIRED@${lineOf(text, "source: {}")}`,
    `SKEIN_E_REQUIRED@${lineOf(text, "from: []")}`,
    `SKEIN_E_REQUIRED@${lineOf(text, "action: CUSTOM")}`,
    `SKEIN_E_REQUIRED@${lineOf(text, "action: DENY")}`,
    `SKEIN_E_INVALID@${lineOf(text, "provider: { name: ext }")}`,
    `SKEIN_E_ONE_OF@${lineOf(text, "targetRef: { kind: Service")}`,
    `SKEIN_E_ENUM@${lineOf(text, "kind: Deployment")}`,
    `SKEIN_E_INVALID@${lineOf(text, "principals: [", lineOf(text, "custom-principals"))}`,
  ]);
  assert.match(
    r.diagnostics.find((d) => d.line === lineOf(text, "action: DENY"))?.hint ?? "",
    /rules: \[\{\}\]/,
  );
});

test("wrong types and unknown fields in an AuthorizationPolicy", () => {
  const text = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: production }
spec:
  action: ALOW
  rules:
    - from:
        - source:
            principal: ["cluster.local/ns/a/sa/b"]
      to:
        - operation:
            methods: GET
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_ENUM@${lineOf(text, "ALOW")}`,
    `SKEIN_E_UNKNOWN_FIELD@${lineOf(text, "principal:")}`,
    `SKEIN_E_TYPE@${lineOf(text, "methods: GET")}`,
  ]);
  assert.match(only(r.diagnostics, "SKEIN_E_ENUM").message, /did you mean "ALLOW"/);
  assert.match(only(r.diagnostics, "SKEIN_E_UNKNOWN_FIELD").message, /did you mean "principals"/);
});

test("unsupported security API version", () => {
  const r = check(`apiVersion: security.istio.io/v1alpha1
kind: AuthorizationPolicy
metadata: { name: p }
spec: {}
`);
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_UNKNOWN_API_VERSION@1"]);
});

test("lowering warnings: lower-case method; DENY with only HTTP attributes (and not with ports)", () => {
  const text = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: production }
spec:
  action: DENY
  rules:
    - to:
        - operation:
            methods: ["get"]
            paths: ["/admin/*"]
    - to:
        - operation:
            ports: ["8080"]
            paths: ["/admin/*"]
    - from:
        - source:
            requestPrincipals: ["*"]
    - from:
        - source:
            namespaces: ["dev"]
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics, "all"), [
    `SKEIN_W_AUTHZ_HTTP_ONLY_DENY@${lineOf(text, "- to:")}`,
    `SKEIN_W_METHOD_CASE@${lineOf(text, '"get"')}`,
    `SKEIN_W_AUTHZ_HTTP_ONLY_DENY@${lineOf(text, "- from:")}`,
  ]);
  assert.match(only(r.diagnostics, "SKEIN_W_METHOD_CASE").hint ?? "", /write "GET"/);
});

test("a selector without labels warns and lowers as namespace-wide", () => {
  const text = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: production }
spec:
  selector: {}
  rules: [{}]
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics, "all"), [`SKEIN_W_NO_EFFECT@${lineOf(text, "selector")}`]);
  assert.equal(r.model?.authorizationPolicies[0]?.scope, "namespace");
  assert.equal(r.model?.authorizationPolicies[0]?.selector, undefined);
});

test("the allow-nothing baseline (no spec, spec: {}) lowers with no rules", () => {
  const r = check(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all, namespace: production }
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all-2, namespace: staging }
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(
    r.model?.authorizationPolicies.map((p) => `${p.name}:${p.action}:${p.rules.length}:${p.scope}`),
    ["deny-all:ALLOW:0:namespace", "deny-all-2:ALLOW:0:namespace"],
  );
});

// ── RequestAuthentication ───────────────────────────────────────────────────────────────────────────

test("RequestAuthentication lowers every JWT rule field", () => {
  const r = check(`apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: istio-system }
spec:
  selector:
    matchLabels: { istio: ingressgateway }
  jwtRules:
    - issuer: https://accounts.example.com
      audiences: [orders, payments]
      jwksUri: https://accounts.example.com/.well-known/jwks.json
      fromHeaders:
        - name: Authorization
          prefix: "Bearer "
        - name: x-jwt
      fromParams: [access_token]
      fromCookies: [session]
      outputPayloadToHeader: x-jwt-payload
      outputClaimToHeaders:
        - header: x-user
          claim: sub
      forwardOriginalToken: true
      timeout: 5s
    - issuer: issuer-2
      jwks: '{"keys": [{"kty": "RSA", "e": "AQAB", "n": "abc"}]}'
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(plain(r.model?.requestAuthentications), [
    {
      name: "jwt",
      namespace: "istio-system",
      scope: "workload",
      selector: { istio: "ingressgateway" },
      jwtRules: [
        {
          issuer: "https://accounts.example.com",
          audiences: ["orders", "payments"],
          jwksUri: "https://accounts.example.com/.well-known/jwks.json",
          fromHeaders: [{ name: "Authorization", prefix: "Bearer " }, { name: "x-jwt" }],
          fromParams: ["access_token"],
          fromCookies: ["session"],
          outputPayloadToHeader: "x-jwt-payload",
          outputClaimToHeaders: [{ header: "x-user", claim: "sub" }],
          forwardOriginalToken: true,
          timeoutMs: 5000,
        },
        {
          issuer: "issuer-2",
          audiences: [],
          jwks: '{"keys": [{"kty": "RSA", "e": "AQAB", "n": "abc"}]}',
          fromHeaders: [],
          fromParams: [],
          fromCookies: [],
          outputClaimToHeaders: [],
          forwardOriginalToken: false,
        },
      ],
    },
  ]);
});

test("RequestAuthentication: missing issuer, bad jwksUri, jwks with jwksUri, bad duration, bad header", () => {
  const text = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: production }
spec:
  jwtRules:
    - audiences: [orders]
    - issuer: a
      jwksUri: ftp://keys.example.com/jwks
    - issuer: b
      jwksUri: https://keys.example.com/jwks
      jwks: '{"keys": [{"kty": "RSA"}]}'
    - issuer: c
      timeout: 10x
    - issuer: d
      outputClaimToHeaders: [{ header: "x user", claim: sub }]
    - issuer: e
      jwks: "not json"
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_REQUIRED@${lineOf(text, "- audiences")}`,
    `SKEIN_E_INVALID@${lineOf(text, "ftp://")}`,
    `SKEIN_E_ONE_OF@${lineOf(text, `jwks: '{"keys"`)}`,
    `SKEIN_E_DURATION@${lineOf(text, "10x")}`,
    `SKEIN_E_INVALID@${lineOf(text, "x user")}`,
    `SKEIN_E_INVALID@${lineOf(text, "not json")}`,
  ]);
});

// ── Analysis ────────────────────────────────────────────────────────────────────────────────────────

const WORKLOADS = `apiVersion: skein.dev/v1alpha1
kind: Workload
metadata:
  name: orders-1
  namespace: production
  labels: { app: orders, version: v1 }
spec:
  serviceAccount: orders
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: payments, namespace: production }
spec:
  selector: { app: payments }
  ports: [{ name: http, port: 8080 }]
`;

test("analysis: a selector matching no workload and no service warns; matches are quiet", () => {
  const text = `${WORKLOADS}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: matches-workload, namespace: production }
spec:
  selector: { matchLabels: { app: orders } }
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: matches-service, namespace: production }
spec:
  selector: { matchLabels: { app: payments, version: v2 } }
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: root-selector, namespace: istio-system }
spec:
  selector: { matchLabels: { app: orders } }
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: typo, namespace: production }
spec:
  selector: { matchLabels: { app: order } }
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: other-namespace, namespace: staging }
spec:
  selector: { matchLabels: { app: orders } }
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: jwt, namespace: production }
spec:
  selector: { matchLabels: { app: gateway } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: pa, namespace: production }
spec:
  selector: { matchLabels: { app: orders, version: v1 } }
  mtls: { mode: STRICT }
`;
  const r = check(text, { analyze: true });
  assert.deepEqual(codes(r.diagnostics, "all"), [
    `SKEIN_W_SELECTOR_MATCHES_NOTHING@${lineOf(text, "app: order }")}`,
    `SKEIN_W_SELECTOR_MATCHES_NOTHING@${lineOf(text, "app: orders", lineOf(text, "other-namespace"))}`,
    `SKEIN_W_SELECTOR_MATCHES_NOTHING@${lineOf(text, "app: gateway")}`,
  ]);
  assert.match(r.diagnostics[0]?.message ?? "", /selects app=order, but no workload in namespace production/);
});

test("analysis: conflicting PeerAuthentications (mesh, namespace, shared workload); distinct ones are fine", () => {
  const text = `${WORKLOADS}---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: mesh-a, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: mesh-b, namespace: istio-system }
spec: { mtls: { mode: PERMISSIVE } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ns-a, namespace: production }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ns-b, namespace: production }
spec: { mtls: { mode: DISABLE } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ns-c, namespace: staging }
spec: { mtls: { mode: DISABLE } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: wl-app, namespace: production }
spec:
  selector: { matchLabels: { app: orders } }
  mtls: { mode: STRICT }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: wl-version, namespace: production }
spec:
  selector: { matchLabels: { version: v1 } }
  mtls: { mode: DISABLE }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: wl-payments, namespace: production }
spec:
  selector: { matchLabels: { app: payments } }
  mtls: { mode: STRICT }
`;
  const r = check(text, { analyze: true });
  assert.deepEqual(codes(r.diagnostics, "error"), [
    `SKEIN_E_PEER_AUTHN_CONFLICT@${lineOf(text, "name: mesh-b") - 2}`,
    `SKEIN_E_PEER_AUTHN_CONFLICT@${lineOf(text, "name: ns-b") - 2}`,
    `SKEIN_E_PEER_AUTHN_CONFLICT@${lineOf(text, "matchLabels: { version: v1 }")}`,
  ]);
  const [mesh, ns, wl] = r.diagnostics.filter((d) => d.severity === "error");
  assert.match(
    mesh?.message ?? "",
    /istio-system\/mesh-b and istio-system\/mesh-a \(test.yaml:\d+\) are both mesh-wide/,
  );
  assert.match(
    ns?.message ?? "",
    /production\/ns-b and production\/ns-a .* both namespace-wide in production/,
  );
  assert.match(wl?.message ?? "", /both select workload production\/orders-1/);
});

test("analysis: one PeerAuthentication per scope is not a conflict", () => {
  const r = check(
    `${WORKLOADS}---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: istio-system }
spec: { mtls: { mode: STRICT } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: default, namespace: production }
spec: { mtls: { mode: PERMISSIVE } }
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: orders, namespace: production }
spec:
  selector: { matchLabels: { app: orders } }
  mtls: { mode: STRICT }
`,
    { analyze: true },
  );
  assert.deepEqual(codes(r.diagnostics, "all"), []);
});

test("analysis: principals and namespaces naming a namespace without services or workloads warn", () => {
  const text = `${WORKLOADS}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: p, namespace: production }
spec:
  selector: { matchLabels: { app: orders } }
  rules:
    - from:
        - source:
            principals:
              - cluster.local/ns/production/sa/payments
              - cluster.local/ns/billing/sa/invoices
              - cluster.local/ns/billing/sa/reports
              - cluster.local/ns/prod*
            namespaces: ["prod*", "qa"]
      when:
        - key: source.namespace
          values: ["legacy"]
`;
  const r = check(text, { analyze: true });
  assert.deepEqual(codes(r.diagnostics, "all"), [
    `SKEIN_W_NAMESPACE_NOT_FOUND@${lineOf(text, "ns/billing/sa/invoices")}`,
    `SKEIN_W_NAMESPACE_NOT_FOUND@${lineOf(text, 'namespaces: ["prod*"')}`,
    `SKEIN_W_NAMESPACE_NOT_FOUND@${lineOf(text, '"legacy"')}`,
  ]);
  assert.match(r.diagnostics[0]?.message ?? "", /names namespace "billing"/);
  assert.equal(r.diagnostics[1]?.path, "spec.rules[0].from[0].source.namespaces[1]");
});

test("analysis: an ALLOW policy without rules is explained as allow-nothing; rules: [{}] is not", () => {
  const text = `${WORKLOADS}---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-all, namespace: production }
spec: {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: allow-all, namespace: production }
spec:
  rules: [{}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: deny-orders, namespace: production }
spec:
  selector: { matchLabels: { app: orders } }
  rules: []
`;
  const r = check(text, { analyze: true });
  assert.deepEqual(codes(r.diagnostics, "all"), [
    `SKEIN_I_AUTHZ_ALLOW_NOTHING@${lineOf(text, "spec: {}")}`,
    `SKEIN_I_AUTHZ_ALLOW_NOTHING@${lineOf(text, "rules: []")}`,
  ]);
  const [ns, wl] = r.diagnostics;
  assert.equal(ns?.severity, "info");
  assert.match(
    ns?.message ?? "",
    /every workload in namespace production are denied unless another ALLOW policy/,
  );
  assert.match(wl?.message ?? "", /workloads with app=orders in production/);
});
