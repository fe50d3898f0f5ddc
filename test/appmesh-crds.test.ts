// The appmesh.k8s.aws/v1beta2 kinds: valid objects load cleanly; broken ones get their code at the line.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { check, codes } from "./helpers.js";

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/appmesh/${name}`, import.meta.url), "utf8");

const node = (spec: string) => `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualNode
metadata:
  name: order
  namespace: shop
spec:
${spec}`;

const router = (routes: string) => `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata:
  name: order-router
  namespace: shop
spec:
  listeners:
    - portMapping: { port: 8080, protocol: http }
  routes:
${routes}`;

test("every kind loads from a valid set, clean under analysis", () => {
  const r = check(fixture("shop-crds.yaml"), { analyze: true });
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(
    r.resources.map((x) => `${x.kind} ${x.namespace}/${x.name}`),
    [
      "Mesh /shop",
      "VirtualNode shop/order-v1",
      "VirtualNode shop/order-v2",
      "VirtualNode shop/inventory",
      "VirtualRouter shop/order-router",
      "VirtualService shop/order",
      "VirtualService shop/inventory",
      "VirtualGateway shop/ingress",
      "GatewayRoute shop/to-order",
    ],
  );
  const mesh = r.resources[0];
  assert.equal(mesh?.group, "appmesh.k8s.aws");
  assert.equal(mesh?.namespace, ""); // cluster-scoped
});

test("unknown field with did-you-mean, bad enum, wrong type", () => {
  const r = check(
    node(`  listeners:
    - portMaping:
        port: 8080
  serviceDiscovery:
    dns:
      hostname: order.shop.svc.cluster.local
      responseType: ENDPOINT
  podSelector:
    matchLabels: { app: 7 }
`),
  );
  assert.deepEqual(codes(r.diagnostics), [
    "SKEIN_E_REQUIRED@8",
    "SKEIN_E_UNKNOWN_FIELD@8",
    "SKEIN_E_ENUM@13",
    "SKEIN_E_TYPE@15",
  ]);
  assert.match(r.diagnostics[0]?.message ?? "", /required field "portMapping" is missing/);
  assert.match(r.diagnostics[1]?.message ?? "", /unknown field "portMaping"; did you mean "portMapping"\?/);
  assert.match(r.diagnostics[2]?.message ?? "", /"ENDPOINT" is not allowed here; did you mean "ENDPOINTS"\?/);
  assert.equal(r.diagnostics[3]?.path, "spec.podSelector.matchLabels.app");
});

test("references: exactly one of a Kubernetes ref or an ARN; weights 0–100; one listener; unique route names", () => {
  const r = check(
    router(`    - name: main
      httpRoute:
        match: { prefix: / }
        action:
          weightedTargets:
            - virtualNodeRef: { name: order-v1 }
              virtualNodeARN: arn:aws:appmesh:us-east-1:123456789012:mesh/shop/virtualNode/order-v1
              weight: 1
            - virtualNodeRef: { name: order-v2 }
              weight: 101
    - name: main
      tcpRoute:
        action:
          weightedTargets: [{ virtualNodeARN: not-an-arn, weight: 1 }]
`),
  );
  assert.deepEqual(codes(r.diagnostics), [
    "SKEIN_E_ONE_OF@16",
    "SKEIN_E_RANGE@19",
    "SKEIN_E_INVALID@20",
    "SKEIN_E_INVALID@23",
  ]);
  assert.match(r.diagnostics[0]?.message ?? "", /needs exactly one of virtualNodeRef or virtualNodeARN/);
  assert.match(r.diagnostics[1]?.message ?? "", /weight 101 is outside 0–100/);
  assert.match(r.diagnostics[2]?.message ?? "", /route name "main" is used twice/);
  assert.match(r.diagnostics[3]?.message ?? "", /"not-an-arn" is not an App Mesh ARN/);

  const dup = check(
    router(`    - name: main
      tcpRoute: { action: { weightedTargets: [{ virtualNodeRef: { name: a }, weight: 1 }] } }
    - name: main
      tcpRoute: { action: { weightedTargets: [{ virtualNodeRef: { name: a }, weight: 1 }] } }
`),
  );
  assert.deepEqual(codes(dup.diagnostics), ["SKEIN_E_INVALID@12"]);
  assert.match(dup.diagnostics[0]?.message ?? "", /route name "main" is used twice/);

  const two = check(
    node(`  listeners:
    - portMapping: { port: 80, protocol: http }
    - portMapping: { port: 81, protocol: http }
  serviceDiscovery:
    dns: { hostname: a.shop.svc }
`),
  );
  assert.deepEqual(codes(two.diagnostics), ["SKEIN_E_RANGE@8"]);
});

test("App Mesh rules: a provider is one of node or router; a gateway route one kind; a route one kind", () => {
  const r = check(`apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: { name: order, namespace: shop }
spec:
  provider:
    virtualNode: { virtualNodeRef: { name: a } }
    virtualRouter: { virtualRouterRef: { name: b } }
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: { name: r, namespace: shop }
spec:
  httpRoute:
    match: { prefix: / }
    action: { target: { virtualService: { virtualServiceRef: { name: order } } } }
  grpcRoute:
    match: { serviceName: shop.Orders }
    action: { target: { virtualService: { virtualServiceRef: { name: order } } } }
---
apiVersion: appmesh.k8s.aws/v1beta1
kind: Mesh
metadata: { name: old }
`);
  assert.deepEqual(codes(r.diagnostics), [
    "SKEIN_E_ONE_OF@7",
    "SKEIN_E_ONE_OF@17",
    "SKEIN_E_UNKNOWN_API_VERSION@20",
  ]);
  assert.match(
    r.diagnostics[0]?.message ?? "",
    /a virtual service provider takes only one of virtualNode, virtualRouter/,
  );
  assert.match(
    r.diagnostics[1]?.message ?? "",
    /a gateway route takes only one of httpRoute, http2Route, grpcRoute/,
  );
});

test("a VirtualNode with listeners needs serviceDiscovery; outlier detection needs all its fields", () => {
  const r = check(
    node(`  listeners:
    - portMapping: { port: 80, protocol: http }
      outlierDetection:
        maxServerErrors: 0
        interval: { unit: s, value: 10 }
        maxEjectionPercent: 10
`),
  );
  assert.deepEqual(
    codes(r.diagnostics),
    ["SKEIN_E_RANGE@10", "SKEIN_E_REQUIRED@9"].sort(
      (a, b) => Number(a.split("@")[1]) - Number(b.split("@")[1]),
    ),
  );
  assert.match(
    r.diagnostics.find((d) => d.code === "SKEIN_E_REQUIRED")?.message ?? "",
    /"baseEjectionDuration" is missing/,
  );
  const r2 = check(node("  listeners:\n    - portMapping: { port: 80, protocol: http }\n"));
  assert.deepEqual(codes(r2.diagnostics), ["SKEIN_E_REQUIRED@7"]);
  assert.match(r2.diagnostics[0]?.message ?? "", /a virtual node with listeners needs serviceDiscovery/);
});
