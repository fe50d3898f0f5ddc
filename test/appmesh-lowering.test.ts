// App Mesh lowered into the model, from CloudFormation and from the appmesh.k8s.aws CRDs alike: services
// and subsets from virtual nodes, sidecar scopes from backends, route tables from virtual services and
// gateways, App Mesh's defaults written out, and warnings for what has no effect yet.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { APPMESH_DEFAULT_RETRIES } from "../src/model/lower/appmesh.js";
import type { MeshModel } from "../src/model/types.js";
import { check, codes, plain } from "./helpers.js";

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/appmesh/${name}`, import.meta.url), "utf8");
const noOps = { request: { set: {}, add: {}, remove: [] }, response: { set: {}, add: {}, remove: [] } };
const DEFAULT_RETRIES = { attempts: 2, retryOn: ["503", "unavailable", "connect-failure", "refused-stream"] };

function model(text: string, allowed: string[] = []): MeshModel {
  const r = check(text, { analyze: true });
  assert.deepEqual(
    codes(r.diagnostics, "all").filter((c) => !c.startsWith("SKEIN_I_")),
    allowed,
  );
  assert.ok(r.model);
  return r.model;
}

test("CloudFormation: nodes sharing a Cloud Map service become one Service with subsets from attributes", () => {
  const m = model(fixture("shop-template.yaml"), ["SKEIN_W_NO_EFFECT@182"]);
  assert.deepEqual(plain(m.services), [
    {
      hostname: "order.shop.local",
      namespace: "shop",
      ports: [{ number: 8080, name: "http-8080", protocol: "HTTP" }],
      selector: { "appmesh.skein.dev/service": "order.shop.local" },
      location: "MESH_INTERNAL",
      resolution: "STATIC",
      endpoints: [],
      exportTo: ["*"],
      aliases: [],
    },
    {
      hostname: "inventory.shop.svc",
      namespace: "shop",
      ports: [{ number: 9090, name: "grpc-9090", protocol: "GRPC" }],
      selector: { "appmesh.skein.dev/service": "inventory.shop.svc" },
      location: "MESH_INTERNAL",
      resolution: "STATIC",
      endpoints: [],
      exportTo: ["*"],
      aliases: ["inventory.shop.local"],
    },
  ]);
  const [policy] = m.destinationPolicies;
  assert.equal(m.destinationPolicies.length, 1);
  assert.equal(policy?.host, "order.shop.local");
  assert.equal(policy?.name, "order.shop.local");
  assert.equal(policy?.trafficPolicy, undefined);
  assert.deepEqual(
    policy?.subsets.map((s) => [s.name, s.labels]),
    [
      ["order-v1", { version: "v1" }],
      ["order-v2", { version: "v2" }],
    ],
  );
  assert.deepEqual(policy?.subsets[0]?.trafficPolicy, {
    healthChecks: [
      {
        protocol: "HTTP",
        path: "/health",
        healthyThreshold: 2,
        unhealthyThreshold: 3,
        timeoutMs: 2000,
        intervalMs: 5000,
      },
    ],
    outlierDetection: {
      consecutive5xxErrors: 5,
      intervalMs: 10000,
      baseEjectionTimeMs: 30000,
      maxEjectionPercent: 50,
    },
    connectionPool: { tcp: { maxConnections: 100 }, http: { http1MaxPendingRequests: 10 } },
    portLevelSettings: [],
  });
  assert.equal(policy?.subsets[1]?.trafficPolicy, undefined);
});

test("CloudFormation: backends become sidecar scopes; DROP_ALL makes egress registry-only", () => {
  const m = model(fixture("shop-template.yaml"), ["SKEIN_W_NO_EFFECT@182"]);
  assert.deepEqual(plain(m.sidecars), [
    {
      name: "order-v1",
      namespace: "shop",
      selector: { "appmesh.skein.dev/virtual-node": "order-v1" },
      egress: [{ hosts: ["*/inventory.shop.local"] }],
      outboundTrafficPolicy: "REGISTRY_ONLY",
    },
    {
      name: "order-v2",
      namespace: "shop",
      selector: { "appmesh.skein.dev/virtual-node": "order-v2" },
      egress: [{ hosts: ["*/inventory.shop.local"] }],
      outboundTrafficPolicy: "REGISTRY_ONLY",
    },
    {
      name: "inventory",
      namespace: "shop",
      selector: { "appmesh.skein.dev/virtual-node": "inventory" },
      egress: [{ hosts: [] }],
      outboundTrafficPolicy: "REGISTRY_ONLY",
    },
  ]);
  assert.equal(m.meshConfig.outboundTrafficPolicy, "REGISTRY_ONLY");
});

test("CloudFormation: a router's routes in priority order, with matches, relative weights, retries and timeouts", () => {
  const m = model(fixture("shop-template.yaml"), ["SKEIN_W_NO_EFFECT@182"]);
  const order = plain(m.routeTables.find((t) => t.hosts.includes("order.shop.local")));
  assert.ok(order);
  assert.equal(order.origin, "appmesh");
  assert.deepEqual([order.name, order.namespace, order.gateways], ["order.shop.local", "shop", ["mesh"]]);
  assert.deepEqual(
    order.http.map((h) => h.name),
    ["canary", "main"],
  );
  assert.deepEqual(order.http[0], {
    name: "canary",
    matches: [
      {
        uri: { kind: "prefix", value: "/" },
        method: { kind: "exact", value: "GET" },
        headers: [
          { name: "x-canary", match: { kind: "exact", value: "true" }, invert: false },
          { name: "x-debug", match: { kind: "regex", value: ".*\\.internal" }, invert: true },
        ],
        queryParams: [{ name: "beta", match: { kind: "exact", value: "1" } }],
        ignoreUriCase: false,
      },
    ],
    destinations: [{ host: "order.shop.local", subset: "order-v2", port: 8080, weight: 1 }],
    timeoutMs: 5000,
    retries: {
      attempts: 3,
      perTryTimeoutMs: 500,
      retryOn: [
        "500",
        "501",
        "502",
        "503",
        "504",
        "505",
        "506",
        "507",
        "508",
        "510",
        "511",
        "reset",
        "retriable-4xx",
        "connect-failure",
      ],
    },
    mirrors: [],
    headers: noOps,
  });
  assert.deepEqual(order.http[1]?.destinations, [
    { host: "order.shop.local", subset: "order-v1", port: 8080, weight: 9 },
    { host: "order.shop.local", subset: "order-v2", port: 8080, weight: 1 },
  ]);
  // App Mesh's defaults, written out: 15 s per request and the default retry policy.
  assert.equal(order.http[1]?.timeoutMs, 15000);
  assert.deepEqual(order.http[1]?.retries, DEFAULT_RETRIES);
  assert.deepEqual(APPMESH_DEFAULT_RETRIES, DEFAULT_RETRIES);
});

test("CloudFormation: a node provider gets all traffic, its node's port; a gateway routes with default rewrites", () => {
  const m = model(fixture("shop-template.yaml"), ["SKEIN_W_NO_EFFECT@182"]);
  const inventory = plain(m.routeTables.find((t) => t.name === "inventory.shop.local"));
  assert.deepEqual(inventory?.http, [
    {
      matches: [],
      destinations: [{ host: "inventory.shop.svc", port: 9090, weight: 100 }],
      timeoutMs: 15000,
      retries: DEFAULT_RETRIES,
      mirrors: [],
      headers: noOps,
    },
  ]);
  assert.deepEqual(plain(m.gateways), [
    {
      name: "ingress",
      namespace: "shop",
      selector: { "appmesh.skein.dev/virtual-gateway": "ingress" },
      listeners: [{ port: 80, protocol: "HTTP", hosts: ["*"] }],
    },
  ]);
  const ingress = plain(m.routeTables.find((t) => t.gateways.includes("ingress")));
  assert.deepEqual(ingress?.hosts, ["*"]);
  assert.deepEqual(ingress?.http, [
    {
      name: "shop",
      matches: [
        {
          uri: { kind: "prefix", value: "/shop" },
          authority: { kind: "regex", value: ".*\\.example\\.com" },
          headers: [],
          queryParams: [],
          ignoreUriCase: false,
        },
      ],
      destinations: [{ host: "order.shop.local", weight: 100 }],
      rewrite: { authority: "order.shop.local", uri: "/" },
      mirrors: [],
      headers: noOps,
    },
  ]);
});

test("CRDs: the same model from appmesh.k8s.aws objects, in their namespaces, selecting their pods", () => {
  const m = model(fixture("shop-crds.yaml"));
  assert.deepEqual(
    plain(m.services).map((s) => [
      s.hostname,
      s.namespace,
      s.selector,
      s.aliases,
      s.ports.map((p) => p.protocol),
    ]),
    [
      ["order-v1.shop.svc.cluster.local", "shop", { app: "order", version: "v1" }, [], ["HTTP"]],
      ["order-v2.shop.svc.cluster.local", "shop", { app: "order", version: "v2" }, [], ["HTTP"]],
      ["inventory.shop.local", "shop", { app: "inventory" }, ["inventory.shop"], ["TCP"]],
      // The router-provided virtual service: a name with the router's ports and no workloads of its own.
      ["order.shop.svc.cluster.local", "shop", undefined, [], ["HTTP"]],
    ],
  );
  assert.deepEqual(
    m.destinationPolicies.map((p) => [p.name, p.host, p.trafficPolicy?.healthChecks?.[0]?.path]),
    [["order-v1", "order-v1.shop.svc.cluster.local", "/health"]],
  );
  assert.deepEqual(
    plain(m.sidecars).map((s) => [s.name, s.selector, s.egress, s.outboundTrafficPolicy]),
    [
      ["order-v1", { app: "order", version: "v1" }, [{ hosts: ["*/inventory.shop"] }], "ALLOW_ANY"],
      ["order-v2", { app: "order", version: "v2" }, [{ hosts: [] }], "ALLOW_ANY"],
      ["inventory", { app: "inventory" }, [{ hosts: [] }], "ALLOW_ANY"],
    ],
  );
  assert.equal(m.meshConfig.outboundTrafficPolicy, "ALLOW_ANY");
  const order = plain(m.routeTables.find((t) => t.name === "order"));
  assert.deepEqual(order?.hosts, ["order.shop.svc.cluster.local"]);
  assert.deepEqual(order?.http[0], {
    name: "api",
    matches: [
      { uri: { kind: "exact", value: "/api/v2" }, headers: [], queryParams: [], ignoreUriCase: false },
    ],
    destinations: [{ host: "order-v2.shop.svc.cluster.local", port: 8080, weight: 1 }],
    timeoutMs: 2500,
    retries: { attempts: 2, perTryTimeoutMs: 1000, retryOn: ["gateway-error", "reset", "refused-stream"] },
    mirrors: [],
    headers: noOps,
  });
  assert.deepEqual(order?.http[1]?.destinations, [
    { host: "order-v1.shop.svc.cluster.local", port: 8080, weight: 3 },
    { host: "order-v2.shop.svc.cluster.local", port: 8080, weight: 1 },
  ]);
  const inventory = plain(m.routeTables.find((t) => t.name === "inventory"));
  assert.deepEqual(inventory?.hosts, ["inventory.shop"]);
  assert.deepEqual(inventory?.tcp, [
    { matches: [], destinations: [{ host: "inventory.shop.local", port: 9000, weight: 100 }] },
  ]);
  const ingress = plain(m.routeTables.find((t) => t.gateways.includes("ingress")));
  assert.deepEqual(
    ingress?.http.map((h) => [h.name, h.destinations, h.rewrite]),
    [["to-order", [{ host: "order.shop.svc.cluster.local", weight: 100 }], { uri: "/api" }]],
  );
  assert.deepEqual(plain(m.gateways)[0]?.selector, { app: "ingress" });
});

test("DNS nodes sharing a hostname become subsets by node; TCP and gRPC routes; DROP_ALL is the default", () => {
  const m = model(`Resources:
  Mesh:
    Type: AWS::AppMesh::Mesh
    Properties: { MeshName: m }
  Blue:
    Type: AWS::AppMesh::VirtualNode
    Properties:
      MeshName: m
      VirtualNodeName: blue
      Spec:
        Listeners: [{ PortMapping: { Port: 9000, Protocol: grpc } }, { PortMapping: { Port: 5432, Protocol: tcp } }]
        ServiceDiscovery: { DNS: { Hostname: colour.m.local } }
  Green:
    Type: AWS::AppMesh::VirtualNode
    Properties:
      MeshName: m
      VirtualNodeName: green
      Spec:
        Listeners: [{ PortMapping: { Port: 9000, Protocol: grpc } }]
        ServiceDiscovery: { DNS: { Hostname: colour.m.local } }
  Router:
    Type: AWS::AppMesh::VirtualRouter
    Properties:
      MeshName: m
      VirtualRouterName: r
      Spec: { Listeners: [{ PortMapping: { Port: 90, Protocol: grpc } }] }
  Grpc:
    Type: AWS::AppMesh::Route
    Properties:
      MeshName: m
      VirtualRouterName: r
      Spec:
        GrpcRoute:
          Match:
            ServiceName: shop.Colours
            MethodName: Get
            Metadata: [{ Name: tenant, Match: { Prefix: a } }]
          Action:
            WeightedTargets: [{ VirtualNode: green, Weight: 1 }]
          RetryPolicy:
            MaxRetries: 1
            PerRetryTimeout: { Unit: s, Value: 2 }
            GrpcRetryEvents: [unavailable, deadline-exceeded]
  Tcp:
    Type: AWS::AppMesh::Route
    Properties:
      MeshName: m
      VirtualRouterName: r
      Spec:
        TcpRoute:
          Match: { Port: 90 }
          Action:
            WeightedTargets: [{ VirtualNode: blue, Weight: 1, Port: 5432 }]
  Service:
    Type: AWS::AppMesh::VirtualService
    Properties:
      MeshName: m
      VirtualServiceName: colour.api
      Spec: { Provider: { VirtualRouter: { VirtualRouterName: r } } }
`);
  const colour = plain(m.destinationPolicies.find((p) => p.host === "colour.m.local"));
  assert.deepEqual(
    colour?.subsets.map((s) => [s.name, s.labels]),
    [
      ["blue", { "appmesh.skein.dev/virtual-node": "blue" }],
      ["green", { "appmesh.skein.dev/virtual-node": "green" }],
    ],
  );
  const svc = plain(m.services.find((s) => s.hostname === "colour.m.local"));
  assert.deepEqual(
    svc?.ports.map((p) => `${p.name}:${p.protocol}`),
    ["grpc-9000:GRPC", "tcp-5432:TCP"],
  );
  assert.ok(m.services.some((s) => s.hostname === "colour.api" && s.selector === undefined));
  const rt = plain(m.routeTables.find((t) => t.hosts.includes("colour.api")));
  assert.deepEqual(rt?.http, [
    {
      name: "Grpc",
      matches: [
        {
          uri: { kind: "exact", value: "/shop.Colours/Get" },
          headers: [{ name: "tenant", match: { kind: "prefix", value: "a" }, invert: false }],
          queryParams: [],
          ignoreUriCase: false,
        },
      ],
      destinations: [{ host: "colour.m.local", subset: "green", port: 9000, weight: 1 }],
      timeoutMs: 15000,
      retries: { attempts: 1, perTryTimeoutMs: 2000, retryOn: ["unavailable", "deadline-exceeded"] },
      mirrors: [],
      headers: noOps,
    },
  ]);
  assert.deepEqual(rt?.tcp, [
    {
      matches: [{ port: 90, destinationSubnets: [] }],
      destinations: [{ host: "colour.m.local", subset: "blue", port: 5432, weight: 1 }],
    },
  ]);
  // No EgressFilter: App Mesh's default is DROP_ALL.
  assert.equal(m.meshConfig.outboundTrafficPolicy, "REGISTRY_ONLY");
  assert.deepEqual(
    m.sidecars.map((s) => s.outboundTrafficPolicy),
    ["REGISTRY_ONLY", "REGISTRY_ONLY"],
  );
});

test("fields accepted but not lowered: one SKEIN_W_NO_EFFECT each, naming the field, where it is written", () => {
  const r = check(
    `Resources:
  Node:
    Type: AWS::AppMesh::VirtualNode
    Properties:
      MeshName: m
      Spec:
        Listeners:
          - PortMapping: { Port: 80, Protocol: http }
            TLS:
              Mode: STRICT
              Certificate: { SDS: { SecretName: cert } }
            Timeout:
              HTTP: { Idle: { Unit: s, Value: 60 } }
        ServiceDiscovery:
          DNS: { Hostname: a.m.local, ResponseType: ENDPOINTS }
        BackendDefaults:
          ClientPolicy: { TLS: { Validation: { Trust: { File: { CertificateChain: /ca.pem } } } } }
        Logging:
          AccessLog: { File: { Path: /dev/stdout } }
  Route:
    Type: AWS::AppMesh::Route
    Properties:
      MeshName: m
      VirtualRouterName: r
      Spec:
        HttpRoute:
          Match:
            Prefix: /
            Headers: [{ Name: x-id, Match: { Range: { Start: 1, End: 10 } } }]
          Action: { WeightedTargets: [{ VirtualNode: a, Weight: 1 }] }
          Timeout: { Idle: { Unit: s, Value: 30 } }
`,
    { analyze: false },
  );
  const warnings = r.diagnostics.filter((d) => d.code === "SKEIN_W_NO_EFFECT");
  assert.deepEqual(
    warnings.map((w) => `${w.line}:${w.column} ${w.message.split(" is accepted")[0]}`),
    [
      "9:13 listener TLS",
      "13:23 listener idle timeout",
      "15:39 DNS responseType",
      "16:9 backendDefaults (client TLS)",
      "18:9 logging (access logs)",
      "29:46 a range match",
      "31:22 route idle timeout",
    ],
  );
  assert.equal(r.diagnostics.filter((d) => d.severity === "error").length, 0);
});

test("a virtual service name other than the node's hostname becomes an alias of the node's Service", () => {
  const m = model(fixture("pattern5-fixed.yaml"));
  assert.deepEqual(
    m.services.map((s) => [s.hostname, s.namespace, s.aliases]),
    [
      ["order-service.production.local", "production-mesh", []],
      ["inventory-service.production.local", "production-mesh", []],
    ],
  );
  const r = check(`Node:
  Type: AWS::AppMesh::VirtualNode
  Properties:
    MeshName: m
    VirtualNodeName: n
    Spec:
      Listeners: [{ PortMapping: { Port: 80, Protocol: http } }]
      ServiceDiscovery: { DNS: { Hostname: n.internal } }
---
Service:
  Type: AWS::AppMesh::VirtualService
  Properties:
    MeshName: m
    VirtualServiceName: catalog
    Spec: { Provider: { VirtualNode: { VirtualNodeName: n } } }
`);
  assert.deepEqual(r.model?.services[0]?.aliases, ["catalog"]);
  assert.deepEqual(r.model?.routeTables[0]?.hosts, ["catalog"]);
});
