// RequestAuthentication → Envoy jwt_authn on inbound listeners: which policies apply to which workload (mesh,
// namespace, selector, root-namespace selector, targetRefs), Istio's provider layout (origins-<i> by issuer,
// requires_any + allow_missing, payload_in_metadata = issuer, bypass_cors_preflight), the JWKS forms (inline,
// remote with Istio's cluster name, timeout and cache), the filter's place before the limiter and router,
// and the translated filter surviving the wire into the sidecar's config compiler.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { MeshSnapshot, ProxyIdentity, WorkloadInstance } from "../src/model/snapshot.js";
import { compileListener } from "../src/proxy/config/listener.js";
import type { HttpListenerConfig } from "../src/proxy/config/types.js";
import { translate } from "../src/translate/index.js";
import { LISTENER } from "../src/xds/protos.js";
import { check } from "./helpers.js";
import { wire } from "./proxy-config-fixtures.js";

const SERVICES = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: order-service, namespace: production }
spec:
  selector: { app: order-service }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: payment-service, namespace: production }
spec:
  selector: { app: payment-service }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: auth-service, namespace: production }
spec:
  selector: { app: auth }
  ports: [{ name: http, port: 9000 }]
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: ledger, namespace: finance }
spec:
  selector: { app: ledger }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: db, namespace: production }
spec:
  selector: { app: db }
  ports: [{ name: tcp, port: 5432, protocol: TCP }]
`;

const JWKS = '{"keys":[{"kty":"EC","crv":"P-256","x":"AAAA","y":"BBBB"}]}';

function ra(name: string, namespace: string, issuer: string, extra = ""): string {
  return `---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: ${name}, namespace: ${namespace} }
spec:
${extra}  jwtRules:
    - issuer: ${issuer}
      jwks: '${JWKS}'
`;
}

// One policy per scope; the issuer says which one it is.
const SCOPES =
  SERVICES +
  ra("mesh", "istio-system", "mesh") +
  ra("ns", "production", "ns") +
  ra("other-ns", "finance", "other-ns") +
  ra("sel", "production", "sel", "  selector: { matchLabels: { app: order-service } }\n") +
  ra("pay", "production", "pay", "  selector: { matchLabels: { app: payment-service } }\n") +
  ra("root-sel", "istio-system", "root-sel", "  selector: { matchLabels: { app: order-service } }\n") +
  ra("ref", "production", "ref", "  targetRefs: [{ kind: Service, group: '', name: order-service }]\n") +
  ra(
    "gw",
    "production",
    "gw",
    "  targetRefs: [{ kind: Gateway, group: gateway.networking.k8s.io, name: ingress }]\n",
  ) +
  ra("db", "production", "db-only", "  selector: { matchLabels: { app: db } }\n");

function workload(name: string, namespace: string, app: string, address: string): WorkloadInstance {
  return {
    id: `Workload ${namespace}/${name}`,
    name,
    namespace,
    labels: { app },
    serviceAccount: app,
    address,
    ports: {},
    origin: "static",
    healthy: true,
  };
}

const WORKLOADS = [
  workload("order-1", "production", "order-service", "127.0.9.1"),
  workload("payment-1", "production", "payment-service", "127.0.9.2"),
  workload("ledger-1", "finance", "ledger", "127.0.9.3"),
  workload("db-1", "production", "db", "127.0.9.4"),
];

function snapshot(yaml: string): MeshSnapshot {
  const r = check(yaml);
  if (!r.model) throw new Error(r.diagnostics.map((d) => d.message).join("; "));
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  assert.deepEqual(errors, []);
  return { version: "1", model: r.model, workloads: WORKLOADS };
}

function sidecar(name: string): ProxyIdentity {
  const w = WORKLOADS.find((x) => x.name === name) as WorkloadInstance;
  return {
    id: `sidecar~${w.address}~${name}.${w.namespace}`,
    kind: "sidecar",
    namespace: w.namespace,
    workload: w,
  };
}

// biome-ignore lint/suspicious/noExplicitAny: translated resources are inspected as plain JSON
type Json = any;

/** The inbound listener of the workload's only port, as JSON. */
function inbound(snap: MeshSnapshot, name: string): Json {
  const proxy = sidecar(name);
  const listeners = translate(snap, proxy).listeners;
  const l = listeners.find((x) => x.trafficDirection === "INBOUND");
  assert.ok(l, `no inbound listener for ${name}`);
  return JSON.parse(JSON.stringify(l));
}

function httpFilters(l: Json): Json[] {
  return l.filterChains[0].filters[0].typedConfig.httpFilters;
}

function jwtConfig(l: Json): Json | undefined {
  return httpFilters(l).find((f: Json) => f.name === "envoy.filters.http.jwt_authn")?.typedConfig;
}

function issuers(l: Json): string[] {
  const c = jwtConfig(l);
  if (!c) return [];
  return Object.keys(c.providers)
    .sort((a, b) => Number(a.slice(8)) - Number(b.slice(8)))
    .map((k) => c.providers[k].issuer);
}

test("scopes: mesh, namespace, selector, root-namespace selector and Service targetRefs merge, sorted by issuer", () => {
  const snap = snapshot(SCOPES);
  const cases: [string, string[]][] = [
    // Every applicable policy contributes (Istio merges them; it does not pick the narrowest).
    ["order-1", ["mesh", "ns", "ref", "root-sel", "sel"]],
    ["payment-1", ["mesh", "ns", "pay"]],
    // Another namespace sees the mesh-wide policy and its own only.
    ["ledger-1", ["mesh", "other-ns"]],
  ];
  for (const [name, want] of cases) assert.deepEqual(issuers(inbound(snap, name)), want, name);
});

test("a TCP port gets no jwt_authn: only HTTP connection managers run HTTP filters", () => {
  const l = inbound(snapshot(SCOPES), "db-1");
  assert.equal(l.filterChains[0].filters[0].name, "envoy.filters.network.tcp_proxy");
});

test("no RequestAuthentication: no jwt_authn filter", () => {
  const l = inbound(snapshot(SERVICES), "order-1");
  const names = httpFilters(l).map((f: Json) => f.name);
  assert.equal(names.includes("envoy.filters.http.jwt_authn"), false);
  assert.equal(names.at(-1), "envoy.filters.http.router");
});

test("Istio's layout: origins-<i>, requires_any of every provider plus allow_missing, bypass_cors_preflight", () => {
  const c = jwtConfig(inbound(snapshot(SCOPES), "payment-1"));
  assert.equal(
    c["@type"],
    "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
  );
  assert.deepEqual(Object.keys(c.providers).sort(), ["origins-0", "origins-1", "origins-2"]);
  assert.deepEqual(c.rules, [
    {
      match: { prefix: "/" },
      requires: {
        requiresAny: {
          requirements: [
            { providerName: "origins-0" },
            { providerName: "origins-1" },
            { providerName: "origins-2" },
            { allowMissing: {} },
          ],
        },
      },
    },
  ]);
  assert.equal(c.bypassCorsPreflight, true);
  assert.deepEqual(c.providers["origins-2"], {
    issuer: "pay",
    localJwks: { inlineString: JWKS },
    payloadInMetadata: "pay",
  });
});

// Seed style: the order-service policy of pattern 2 (production namespace, selector app: order-service),
// here authenticating end users with an external identity provider and a mesh-internal one.
const SEED_POLICY = `${SERVICES}---
apiVersion: security.istio.io/v1beta1
kind: RequestAuthentication
metadata:
  name: order-service-jwt
  namespace: production
spec:
  selector:
    matchLabels:
      app: order-service
  jwtRules:
    - issuer: "https://auth.example.com"
      jwksUri: "https://auth.example.com/.well-known/jwks.json"
      audiences: ["order-service"]
      fromHeaders:
        - name: x-jwt-assertion
          prefix: "Bearer "
      fromParams: ["token"]
      outputPayloadToHeader: x-jwt-payload
      outputClaimToHeaders:
        - header: x-user
          claim: sub
      forwardOriginalToken: true
    - issuer: "cluster.local/auth"
      jwksUri: "http://auth-service.production:9000/keys"
      timeout: 2s
      fromCookies: ["session"]
`;

test("seed-style policy: remote JWKS with Istio's cluster names, timeouts and cache; every rule field carried", () => {
  const l = inbound(snapshot(SEED_POLICY), "order-1");
  const c = jwtConfig(l);
  // Sorted by issuer: "cluster.local/auth" < "https://auth.example.com".
  assert.deepEqual(c.providers["origins-0"], {
    issuer: "cluster.local/auth",
    remoteJwks: {
      httpUri: {
        uri: "http://auth-service.production:9000/keys",
        // A mesh service: its outbound cluster, by its full hostname.
        cluster: "outbound|9000||auth-service.production.svc.cluster.local",
        timeout: { seconds: 2 },
      },
      cacheDuration: { seconds: 300 },
    },
    fromCookies: ["session"],
    payloadInMetadata: "cluster.local/auth",
  });
  assert.deepEqual(c.providers["origins-1"], {
    issuer: "https://auth.example.com",
    audiences: ["order-service"],
    remoteJwks: {
      httpUri: {
        uri: "https://auth.example.com/.well-known/jwks.json",
        // Outside the mesh: Istio's name built from the URI (https → 443), and its 5 s default timeout.
        cluster: "outbound|443||auth.example.com",
        timeout: { seconds: 5 },
      },
      cacheDuration: { seconds: 300 },
    },
    forward: true,
    fromHeaders: [{ name: "x-jwt-assertion", valuePrefix: "Bearer " }],
    fromParams: ["token"],
    forwardPayloadHeader: "x-jwt-payload",
    claimToHeaders: [{ headerName: "x-user", claimName: "sub" }],
    payloadInMetadata: "https://auth.example.com",
  });
  // The payment service is not selected.
  assert.equal(jwtConfig(inbound(snapshot(SEED_POLICY), "payment-1")), undefined);
});

test("jwt_authn runs first: before the local rate limiter and the router", () => {
  const yaml = `${SEED_POLICY}---
apiVersion: skein.dev/v1alpha1
kind: RateLimit
metadata: { name: all, namespace: production }
spec:
  selector: { app: order-service }
  tokenBucket: { maxTokens: 10, fillInterval: 1s }
`;
  const names = httpFilters(inbound(snapshot(yaml), "order-1")).map((f: Json) => f.name);
  // Other filters (peer metadata exchange, tracing) may come first; these three keep this order.
  const at = (n: string) => names.indexOf(n);
  assert.ok(at("envoy.filters.http.jwt_authn") >= 0, names.join(", "));
  assert.ok(at("envoy.filters.http.jwt_authn") < at("envoy.filters.http.local_ratelimit"), names.join(", "));
  assert.equal(names.at(-1), "envoy.filters.http.router");
});

test("a rule without jwks or jwksUri verifies against an empty key set (Istio's failed-discovery behaviour)", () => {
  const yaml = `${SERVICES}---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: discover, namespace: production }
spec:
  jwtRules: [{ issuer: "https://issuer.example" }]
`;
  const c = jwtConfig(inbound(snapshot(yaml), "order-1"));
  assert.deepEqual(c.providers["origins-0"].localJwks, { inlineString: '{"keys":[]}' });
});

test("the translated listener crosses the wire and compiles in the sidecar", () => {
  const proxy = sidecar("order-1");
  const listener = translate(snapshot(SEED_POLICY), proxy).listeners.find(
    (x) => x.trafficDirection === "INBOUND",
  );
  const compiled = compileListener(wire(LISTENER, listener as object));
  const http = compiled.config as HttpListenerConfig;
  const jwt = http.filters.find((f) => f.name === "envoy.filters.http.jwt_authn")?.config as Json;
  assert.equal(jwt.kind, "jwt-authn");
  assert.deepEqual(
    jwt.providers.map((p: Json) => [p.name, p.issuer, p.jwks]),
    [
      [
        "origins-0",
        "cluster.local/auth",
        {
          kind: "remote",
          uri: "http://auth-service.production:9000/keys",
          cluster: "outbound|9000||auth-service.production.svc.cluster.local",
          timeoutMs: 2000,
          cacheMs: 300_000,
        },
      ],
      [
        "origins-1",
        "https://auth.example.com",
        {
          kind: "remote",
          uri: "https://auth.example.com/.well-known/jwks.json",
          cluster: "outbound|443||auth.example.com",
          timeoutMs: 5000,
          cacheMs: 300_000,
        },
      ],
    ],
  );
  assert.deepEqual(jwt.requirement, {
    kind: "any",
    requirements: [
      { kind: "provider", provider: "origins-0" },
      { kind: "provider", provider: "origins-1" },
      { kind: "allow-missing" },
    ],
  });
  assert.deepEqual(jwt.providers[1].fromHeaders, [{ name: "x-jwt-assertion", prefix: "Bearer " }]);
  assert.equal(jwt.providers[1].forward, true);
  assert.equal(jwt.bypassCorsPreflight, true);
});
