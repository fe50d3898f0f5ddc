// AuthorizationPolicy → Envoy RBAC translation tables: the seed's pattern 2 as Istio's builder writes it,
// which policies apply to a workload (mesh, namespace, selector, root-namespace selector, Service
// targetRefs), the order of the AUDIT/DENY/ALLOW filters, empty rules and `{}` rules, the `*` forms of every field, `when`
// conditions, and the TCP forms (HTTP-only fields dropping ALLOW rules and widening DENY rules).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { MeshSnapshot, ProxyIdentity, WorkloadInstance } from "../src/model/snapshot.js";
import type { MeshModel } from "../src/model/types.js";
import { compileListener } from "../src/proxy/config/listener.js";
import type { HttpListenerConfig, TcpListenerConfig } from "../src/proxy/config/types.js";
import {
  AUTHZ_PATH_NORMALIZATION,
  authorizationPoliciesFor,
  authzHttpFilters,
  authzNetworkFilters,
  buildRbacRules,
} from "../src/translate/authz.js";
import { inboundPorts } from "../src/translate/clusters.js";
import { translate } from "../src/translate/index.js";
import { buildView } from "../src/translate/scope.js";
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
metadata: { name: order-db, namespace: production }
spec:
  selector: { app: order-service }
  ports: [{ name: tcp-db, port: 5432, protocol: TCP }]
`;

const SEED = `apiVersion: security.istio.io/v1beta1
kind: AuthorizationPolicy
metadata: { name: order-service-policy, namespace: production }
spec:
  selector: { matchLabels: { app: order-service } }
  rules:
    - from:
        - source:
            principals:
              - cluster.local/ns/production/sa/api-gateway
              - cluster.local/ns/production/sa/payment-service
      to: [{ operation: { methods: ["GET", "POST"], paths: ["/api/v1/*"] } }]
    - from: [{ source: { principals: ["cluster.local/ns/production/sa/inventory-service"] } }]
      to: [{ operation: { methods: ["GET"], paths: ["/api/v1/inventory/*"] } }]
`;

function model(yaml: string): MeshModel {
  const docs = [SERVICES, ...yaml.split(/^---\n/m)].filter((d) => d.trim() !== "");
  const r = check(docs.join("---\n"));
  assert.ok(r.model, r.diagnostics.map((d) => d.message).join("; "));
  assert.deepEqual(
    r.diagnostics.filter((d) => d.severity === "error").map((d) => d.message),
    [],
  );
  return r.model;
}

function workload(
  namespace = "production",
  labels: Record<string, string> = { app: "order-service" },
): WorkloadInstance {
  return {
    id: `Workload ${namespace}/w`,
    name: "w",
    namespace,
    labels,
    serviceAccount: "order-service",
    address: "127.0.9.1",
    ports: {},
    origin: "static",
    healthy: true,
  };
}

function view(yaml: string, w = workload()) {
  const snapshot: MeshSnapshot = { version: "1", model: model(yaml), workloads: [w] };
  const proxy: ProxyIdentity = {
    id: "sidecar~127.0.9.1~w",
    kind: "sidecar",
    namespace: w.namespace,
    workload: w,
  };
  return { v: buildView(snapshot, proxy), w, snapshot, proxy };
}

const spiffe = (sa: string) => ({
  authenticated: { principalName: { exact: `spiffe://cluster.local/ns/production/sa/${sa}` } },
});
const method = (m: string) => ({ header: { name: ":method", stringMatch: { exact: m } } });
const prefix = (p: string) => ({ urlPath: { path: { prefix: p } } });

test("seed pattern 2 → one ALLOW RBAC filter with Istio's policy names and matchers", () => {
  const { v, w } = view(SEED);
  const filters = authzHttpFilters(v, inboundPorts(v, w)[0] as never);
  assert.deepEqual(JSON.parse(JSON.stringify(filters)), [
    {
      name: "istio.authorization.allow",
      typedConfig: {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
        rules: {
          action: "ALLOW",
          policies: {
            "ns[production]-policy[order-service-policy]-rule[0]": {
              permissions: [
                {
                  andRules: {
                    rules: [
                      { orRules: { rules: [method("GET"), method("POST")] } },
                      { orRules: { rules: [prefix("/api/v1/")] } },
                    ],
                  },
                },
              ],
              principals: [
                { andIds: { ids: [{ orIds: { ids: [spiffe("api-gateway"), spiffe("payment-service")] } }] } },
              ],
            },
            "ns[production]-policy[order-service-policy]-rule[1]": {
              permissions: [
                {
                  andRules: {
                    rules: [
                      { orRules: { rules: [method("GET")] } },
                      { orRules: { rules: [prefix("/api/v1/inventory/")] } },
                    ],
                  },
                },
              ],
              principals: [{ andIds: { ids: [{ orIds: { ids: [spiffe("inventory-service")] } }] } }],
            },
          },
        },
      },
    },
  ]);
});

test("inbound listeners: RBAC before the router, paths normalised; TCP gets network RBAC", () => {
  const { snapshot, proxy } = view(SEED);
  const listeners = translate(snapshot, proxy).listeners;
  const http = listeners.find((l) => l.name === "127.0.9.1_8080");
  const hcm = http?.filterChains?.[0]?.filters?.[0]?.typedConfig as unknown as Record<string, unknown>;
  const names = (hcm.httpFilters as { name: string }[]).map((f) => f.name);
  assert.ok(names.indexOf("istio.authorization.allow") < names.indexOf("envoy.filters.http.router"));
  assert.equal(names.at(-1), "envoy.filters.http.router");
  assert.deepEqual(hcm.normalizePath, AUTHZ_PATH_NORMALIZATION.normalizePath);
  assert.equal(hcm.mergeSlashes, true);
  assert.equal(hcm.pathWithEscapedSlashesAction, "REJECT_REQUEST");
  // The seed's ALLOW rules use methods and paths: on TCP they allow nothing, so the filter denies all.
  const tcp = listeners.find((l) => l.name === "127.0.9.1_5432");
  const filters = tcp?.filterChains?.[0]?.filters ?? [];
  assert.deepEqual(
    filters.map((f) => f.name),
    ["envoy.filters.network.rbac", "envoy.filters.network.tcp_proxy"],
  );
  const rbac = filters[0]?.typedConfig as unknown as {
    statPrefix: string;
    rules: { action: string; policies: object };
  };
  assert.equal(rbac.statPrefix, "tcp.");
  assert.deepEqual(rbac.rules, { action: "ALLOW", policies: {} });
  // Both listeners compile in the sidecar, the network RBAC filter landing on the TCP proxy.
  const compiledTcp = compileListener(wire("envoy.config.listener.v3.Listener", tcp as object));
  assert.deepEqual(
    (compiledTcp.config as TcpListenerConfig).rbac?.map((r) => r.rules?.action),
    ["ALLOW"],
  );
  const compiledHttp = compileListener(wire("envoy.config.listener.v3.Listener", http as object));
  assert.deepEqual((compiledHttp.config as HttpListenerConfig).pathNormalization, {
    normalizePath: true,
    mergeSlashes: true,
    escapedSlashes: "REJECT_REQUEST",
  });
  // Without policies nothing changes: no RBAC, no normalisation settings.
  const none = view("");
  const plain = translate(none.snapshot, none.proxy).listeners.find((l) => l.name === "127.0.9.1_8080");
  const plainHcm = plain?.filterChains?.[0]?.filters?.[0]?.typedConfig as unknown as Record<string, unknown>;
  assert.equal(plainHcm.normalizePath, undefined);
  assert.ok(!(plainHcm.httpFilters as { name: string }[]).some((f) => f.name.includes("authorization")));
});

const policy = (name: string, ns: string, spec: string) =>
  `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${spec}\n---\n`;

test("scope: mesh-wide, namespace, selector (also from the root namespace) and Service targetRefs", () => {
  const yaml = [
    policy(
      "mesh",
      "istio-system",
      "  action: DENY\n  rules: [{ to: [{ operation: { paths: ['/mesh'] } }] }]",
    ),
    policy(
      "root-selector",
      "istio-system",
      "  selector: { matchLabels: { app: order-service } }\n  action: DENY\n  rules: [{}]",
    ),
    policy("ns", "production", "  action: AUDIT\n  rules: [{}]"),
    policy("other-ns", "staging", "  action: DENY\n  rules: [{}]"),
    policy("other-app", "production", "  selector: { matchLabels: { app: reviews } }\n  rules: [{}]"),
    policy(
      "svc",
      "production",
      "  targetRefs: [{ kind: Service, group: '', name: order-service }]\n  rules: [{}]",
    ),
    policy(
      "svc-other",
      "production",
      "  targetRefs: [{ kind: Service, group: '', name: nothing }]\n  rules: [{}]",
    ),
  ].join("");
  const { v, w } = view(yaml);
  assert.deepEqual(
    authorizationPoliciesFor(v, w).map((p) => `${p.namespace}/${p.name}`),
    ["istio-system/mesh", "istio-system/root-selector", "production/ns", "production/svc"],
  );
  // A workload in another namespace with the same labels gets the mesh-wide and root-selector policies only.
  const other = view(yaml, workload("staging"));
  assert.deepEqual(
    authorizationPoliciesFor(other.v, other.w).map((p) => p.name),
    ["mesh", "root-selector", "other-ns"],
  );
});

test("precedence: AUDIT (LOG), DENY (CUSTOM fails closed), then ALLOW when an ALLOW policy applies", () => {
  const yaml = [
    policy(
      "audit",
      "production",
      "  action: AUDIT\n  rules: [{ to: [{ operation: { paths: ['/audit'] } }] }]",
    ),
    policy("deny", "production", "  action: DENY\n  rules: [{ to: [{ operation: { paths: ['/admin'] } }] }]"),
    policy(
      "ext",
      "production",
      "  action: CUSTOM\n  provider: { name: ext-authz }\n  rules: [{ to: [{ operation: { paths: ['/ext'] } }] }]",
    ),
  ].join("");
  const { v, w } = view(yaml);
  const port = inboundPorts(v, w)[0] as never;
  const filters = authzHttpFilters(v, port).map((f) => ({
    name: f.name,
    action: (f.typedConfig as unknown as { rules: { action: string; policies: object } }).rules.action,
    policies: Object.keys((f.typedConfig as unknown as { rules: { policies: object } }).rules.policies),
  }));
  assert.deepEqual(filters, [
    { name: "envoy.filters.http.rbac", action: "LOG", policies: ["ns[production]-policy[audit]-rule[0]"] },
    {
      name: "istio.authorization.deny",
      action: "DENY",
      policies: ["ns[production]-policy[deny]-rule[0]", "ns[production]-policy[ext]-rule[0]"],
    },
  ]);
  const withAllow = view(`${yaml}${policy("allow", "production", "  rules: [{}]")}`);
  assert.deepEqual(
    authzHttpFilters(withAllow.v, port).map((f) => f.name),
    ["envoy.filters.http.rbac", "istio.authorization.deny", "istio.authorization.allow"],
  );
});

test("empty rules never match (ALLOW without rules denies all); a rule {} matches everything", () => {
  const { v, w } = view(
    policy("nothing", "production", "  action: ALLOW") +
      policy("all", "production", "  action: AUDIT\n  rules: [{}]"),
  );
  const [nothing, all] = authorizationPoliciesFor(v, w).sort((a, b) => (a.name < b.name ? 1 : -1));
  assert.deepEqual(buildRbacRules([nothing as never], "ALLOW", false), {
    action: "ALLOW",
    policies: {
      "ns[production]-policy[nothing]-rule[0]": {
        permissions: [{ notRule: { any: true } }],
        principals: [{ notId: { any: true } }],
      },
    },
  });
  assert.deepEqual(buildRbacRules([all as never], "LOG", true), {
    action: "LOG",
    policies: {
      "ns[production]-policy[all]-rule[0]": {
        permissions: [{ andRules: { rules: [{ any: true }] } }],
        principals: [{ andIds: { ids: [{ any: true }] } }],
      },
    },
  });
});

test("`*` forms: principals, namespaces, paths, methods and hosts (case- and port-insensitive)", () => {
  const spec = `  rules:
    - from:
        - source:
            principals: ["*", "cluster.local/ns/production/sa/*", "*/sa/api-gateway"]
            notNamespaces: ["staging", "dev-*"]
      to:
        - operation:
            paths: ["*", "/api/*", "*.html", "/exact"]
            methods: ["*"]
            hosts: ["Shop.Example.com", "*.example.org", "api.*", "*"]`;
  const { v, w } = view(policy("forms", "production", spec));
  const rules = buildRbacRules(authorizationPoliciesFor(v, w), "ALLOW", false);
  const p = rules?.policies?.["ns[production]-policy[forms]-rule[0]"];
  assert.deepEqual(p?.principals, [
    {
      andIds: {
        ids: [
          {
            orIds: {
              ids: [
                { authenticated: { principalName: { safeRegex: { regex: ".+" } } } },
                { authenticated: { principalName: { prefix: "spiffe://cluster.local/ns/production/sa/" } } },
                { authenticated: { principalName: { safeRegex: { regex: "spiffe://.*/sa/api-gateway" } } } },
              ],
            },
          },
          {
            notId: {
              orIds: {
                ids: [
                  { authenticated: { principalName: { safeRegex: { regex: ".*/ns/staging/.*" } } } },
                  { authenticated: { principalName: { safeRegex: { regex: ".*/ns/dev-.*/.*" } } } },
                ],
              },
            },
          },
        ],
      },
    },
  ]);
  assert.deepEqual(p?.permissions, [
    {
      andRules: {
        rules: [
          {
            orRules: {
              rules: [
                {
                  header: {
                    name: ":authority",
                    stringMatch: { safeRegex: { regex: "(?i)Shop\\.Example\\.com(:[0-9]+)?" } },
                  },
                },
                {
                  header: {
                    name: ":authority",
                    stringMatch: { safeRegex: { regex: "(?i).*\\.example\\.org(:[0-9]+)?" } },
                  },
                },
                { header: { name: ":authority", stringMatch: { prefix: "api.", ignoreCase: true } } },
                { header: { name: ":authority", presentMatch: true } },
              ],
            },
          },
          { orRules: { rules: [{ header: { name: ":method", presentMatch: true } }] } },
          {
            orRules: {
              rules: [
                { urlPath: { path: { safeRegex: { regex: ".+" } } } },
                { urlPath: { path: { prefix: "/api/" } } },
                { urlPath: { path: { suffix: ".html" } } },
                { urlPath: { path: { exact: "/exact" } } },
              ],
            },
          },
        ],
      },
    },
  ]);
});

test("when conditions land on the principal or permission side, as Istio splits them", () => {
  const spec = `  action: DENY
  rules:
    - when:
        - { key: "request.headers[X-Tenant]", values: ["blocked"] }
        - { key: "request.auth.claims[groups]", notValues: ["admins"] }
        - { key: source.ip, values: ["10.0.0.0/8"] }
        - { key: destination.port, values: ["8080"] }
        - { key: connection.sni, values: ["*.internal"] }`;
  const { v, w } = view(policy("when", "production", spec));
  const p = buildRbacRules(authorizationPoliciesFor(v, w), "DENY", false)?.policies?.[
    "ns[production]-policy[when]-rule[0]"
  ];
  assert.deepEqual(p?.permissions, [
    {
      andRules: {
        rules: [
          { orRules: { rules: [{ destinationPort: 8080 }] } },
          { orRules: { rules: [{ requestedServerName: { suffix: ".internal" } }] } },
        ],
      },
    },
  ]);
  const ids = (p?.principals?.[0] as { andIds: { ids: unknown[] } } | undefined)?.andIds.ids ?? [];
  assert.deepEqual(ids[0], {
    orIds: {
      ids: [
        {
          header: {
            name: "x-tenant",
            safeRegexMatch: { regex: "^blocked$|^blocked,.*|.*,blocked,.*|.*,blocked$" },
          },
        },
      ],
    },
  });
  const claim = { stringMatch: { exact: "admins" } };
  assert.deepEqual(ids[1], {
    notId: {
      orIds: {
        ids: [
          {
            metadata: {
              filter: "istio_authn",
              path: [{ key: "request.auth.claims" }, { key: "groups" }],
              value: { orMatch: { valueMatchers: [claim, { listMatch: { oneOf: claim } }] } },
            },
          },
        ],
      },
    },
  });
  assert.deepEqual(ids[2], {
    orIds: { ids: [{ directRemoteIp: { addressPrefix: "10.0.0.0", prefixLen: { value: 8 } } }] },
  });
  // On TCP the DENY rule keeps its connection-level conditions and drops the HTTP-only ones.
  const tcp = buildRbacRules(authorizationPoliciesFor(v, w), "DENY", true)?.policies?.[
    "ns[production]-policy[when]-rule[0]"
  ];
  assert.equal((tcp?.principals?.[0] as { andIds: { ids: unknown[] } } | undefined)?.andIds.ids.length, 1);
});

test("TCP: an ALLOW rule with HTTP-only fields is dropped, a DENY rule is widened to its TCP fields", () => {
  const yaml =
    policy(
      "allow",
      "production",
      "  rules:\n    - to: [{ operation: { paths: ['/x'] } }]\n    - from: [{ source: { principals: ['cluster.local/ns/production/sa/a'] } }]",
    ) +
    policy(
      "deny",
      "production",
      "  action: DENY\n  rules: [{ to: [{ operation: { methods: ['DELETE'], ports: ['5432'] } }] }]",
    );
  const { v, w } = view(yaml);
  const port = inboundPorts(v, w).find((p) => p.port === 5432) as never;
  const filters = authzNetworkFilters(v, port).map(
    (f) =>
      (f.typedConfig as unknown as { rules: { action: string; policies: Record<string, unknown> } }).rules,
  );
  assert.deepEqual(filters, [
    {
      action: "DENY",
      policies: {
        "ns[production]-policy[deny]-rule[0]": {
          permissions: [{ andRules: { rules: [{ orRules: { rules: [{ destinationPort: 5432 }] } }] } }],
          principals: [{ andIds: { ids: [{ any: true }] } }],
        },
      },
    },
    {
      action: "ALLOW",
      policies: {
        "ns[production]-policy[allow]-rule[1]": {
          permissions: [{ andRules: { rules: [{ any: true }] } }],
          principals: [{ andIds: { ids: [{ orIds: { ids: [spiffe("a")] } }] } }],
        },
      },
    },
  ]);
});
