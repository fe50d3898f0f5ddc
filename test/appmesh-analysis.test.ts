// App Mesh references across resources (skein analyze), and the seed's pattern 5: its one real problem,
// `!GetAtt InventoryService.VirtualServiceName` naming a logical ID the template never defines, reported
// precisely while everything else loads; and clean once the two missing resources are added.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { check, codes } from "./helpers.js";

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/appmesh/${name}`, import.meta.url), "utf8");

test("seed pattern 5: the undefined InventoryService, at the !GetAtt tag, and nothing else", () => {
  const r = check(fixture("pattern5-app-mesh.yaml"), { analyze: true, file: "pattern5-app-mesh.yaml" });
  const errors = r.diagnostics.filter((d) => d.severity !== "info");
  assert.deepEqual(codes(errors, "all"), ["SKEIN_E_CFN_REF_UNRESOLVED@30"]);
  const d = errors[0];
  assert.equal(d?.file, "pattern5-app-mesh.yaml");
  assert.equal(d?.column, 33); // `VirtualServiceName: !GetAtt InventoryService.VirtualServiceName` — the tag
  assert.equal(
    d?.message,
    '!GetAtt InventoryService.VirtualServiceName: "InventoryService" is not defined in the template',
  );
  assert.equal(d?.path, "VirtualNode.Properties.Spec.Backends[0].VirtualService.VirtualServiceName");
  assert.equal(d?.resource, "AWS::AppMesh::VirtualNode VirtualNode");
  assert.match(d?.hint ?? "", /define a resource named InventoryService/);
  // Everything else still loads and lowers: the mesh, the node (its Cloud Map service and health check),
  // and the virtual service routing to it.
  assert.deepEqual(
    r.resources.map((x) => x.name),
    ["Mesh", "VirtualNode", "VirtualService"],
  );
  assert.deepEqual(
    r.model?.services.map((s) => s.hostname),
    ["order-service.production.local"],
  );
  assert.equal(r.model?.destinationPolicies[0]?.trafficPolicy?.healthChecks?.[0]?.path, "/health");
  assert.deepEqual(r.model?.sidecars[0]?.egress, [{ hosts: [] }]);
  assert.deepEqual(
    r.model?.routeTables.map((t) => t.hosts),
    [["order-service.production.local"]],
  );
  // `!Ref Mesh` in MeshName is the ARN in AWS: works in Skein, noted as info.
  assert.deepEqual(
    codes(
      r.diagnostics.filter((x) => x.severity === "info"),
      "all",
    ),
    ["SKEIN_I_CFN_REF_ARN@14", "SKEIN_I_CFN_REF_ARN@40", "SKEIN_I_CFN_REF_ARN@45"],
  );
});

test("seed pattern 5 fixed (InventoryService and its node added): clean under analysis", () => {
  const r = check(fixture("pattern5-fixed.yaml"), { analyze: true });
  assert.deepEqual(
    r.diagnostics.filter((d) => d.severity !== "info"),
    [],
  );
  assert.ok(r.diagnostics.every((d) => d.code === "SKEIN_I_CFN_REF_ARN"));
  assert.deepEqual(r.model?.sidecars[0]?.egress, [{ hosts: ["*/inventory-service.production.local"] }]);
});

test("CloudFormation references that point at nothing: SKEIN_E_APPMESH_REF_NOT_FOUND at each field", () => {
  const r = check(
    `Resources:
  Mesh:
    Type: AWS::AppMesh::Mesh
    Properties: { MeshName: shop }
  Node:
    Type: AWS::AppMesh::VirtualNode
    Properties:
      MeshName: shpp
      VirtualNodeName: order
      Spec:
        Backends:
          - VirtualService: { VirtualServiceName: inventry.shop.local }
  Inventory:
    Type: AWS::AppMesh::VirtualService
    Properties:
      MeshName: shop
      VirtualServiceName: inventory.shop.local
      Spec:
        Provider:
          VirtualNode: { VirtualNodeName: inventory }
  Orders:
    Type: AWS::AppMesh::VirtualService
    Properties:
      MeshName: shop
      VirtualServiceName: order.shop.local
      Spec:
        Provider:
          VirtualRouter: { VirtualRouterName: order-router }
  Route:
    Type: AWS::AppMesh::Route
    Properties:
      MeshName: shop
      VirtualRouterName: order-routr
      Spec:
        HttpRoute:
          Match: { Prefix: / }
          Action:
            WeightedTargets: [{ VirtualNode: order-v9, Weight: 1 }]
  GatewayRoute:
    Type: AWS::AppMesh::GatewayRoute
    Properties:
      MeshName: shop
      VirtualGatewayName: ingress
      Spec:
        HttpRoute:
          Match: { Prefix: / }
          Action:
            Target:
              VirtualService: { VirtualServiceName: inventory.shop.locl }
`,
    { analyze: true },
  );
  assert.deepEqual(codes(r.diagnostics), [
    "SKEIN_E_APPMESH_REF_NOT_FOUND@8",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@12",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@20",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@28",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@33",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@38",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@43",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@49",
  ]);
  const m = r.diagnostics.map((d) => d.message);
  assert.equal(m[0], 'mesh "shpp" is not defined; did you mean "shop"?');
  assert.equal(m[1], 'virtual service "inventry.shop.local" is not defined in mesh "shpp"');
  assert.equal(m[2], 'virtual node "inventory" is not defined in mesh "shop"');
  assert.equal(m[3], 'virtual router "order-router" is not defined in mesh "shop"');
  assert.equal(m[4], 'virtual router "order-routr" is not defined in mesh "shop"');
  assert.equal(m[5], 'virtual node "order-v9" is not defined in mesh "shop"');
  assert.equal(m[6], 'virtual gateway "ingress" is not defined in mesh "shop"');
  assert.equal(
    m[7],
    'virtual service "inventory.shop.locl" is not defined in mesh "shop"; did you mean "inventory.shop.local"?',
  );
  assert.equal(r.diagnostics[1]?.column, 31);
  assert.match(
    r.diagnostics[3]?.hint ?? "",
    /define an AWS::AppMesh::VirtualRouter named "order-router" in mesh "shop"/,
  );
});

test("an ARN where a name belongs (from Fn::Sub) gets a hint that says so", () => {
  const r = check(
    `Mesh:
  Type: AWS::AppMesh::Mesh
  Properties: { MeshName: shop }
---
Service:
  Type: AWS::AppMesh::VirtualService
  Properties:
    MeshName: !Sub "\${Mesh}"
    VirtualServiceName: a.local
    Spec: {}
`,
    { analyze: true },
  );
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_APPMESH_REF_NOT_FOUND@8"]);
  assert.match(
    r.diagnostics[0]?.message ?? "",
    /mesh "arn:aws:appmesh:us-east-1:123456789012:mesh\/shop" is not defined/,
  );
  assert.match(r.diagnostics[0]?.hint ?? "", /this is an ARN .* use !GetAtt <LogicalId>\.MeshName/);
});

test("route targets must be able to take the traffic: a listener, on the port given", () => {
  const r = check(
    `Mesh:
  Type: AWS::AppMesh::Mesh
  Properties: { MeshName: m }
---
Node:
  Type: AWS::AppMesh::VirtualNode
  Properties:
    MeshName: m
    VirtualNodeName: a
    Spec:
      Listeners: [{ PortMapping: { Port: 80, Protocol: http } }]
      ServiceDiscovery: { DNS: { Hostname: a.m } }
---
Client:
  Type: AWS::AppMesh::VirtualNode
  Properties:
    MeshName: m
    VirtualNodeName: client
    Spec: {}
---
Route:
  Type: AWS::AppMesh::Route
  Properties:
    MeshName: m
    VirtualRouterName: r
    Spec:
      HttpRoute:
        Match: { Prefix: / }
        Action:
          WeightedTargets:
            - { VirtualNode: a, Weight: 1, Port: 8080 }
            - { VirtualNode: client, Weight: 1 }
---
Router:
  Type: AWS::AppMesh::VirtualRouter
  Properties:
    MeshName: m
    VirtualRouterName: r
    Spec: { Listeners: [{ PortMapping: { Port: 80, Protocol: http } }] }
`,
    { analyze: true },
  );
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_PORT_NOT_FOUND@31", "SKEIN_E_PORT_NOT_FOUND@32"]);
  assert.match(r.diagnostics[0]?.message ?? "", /virtual node "a" has no listener on port 8080/);
  assert.match(r.diagnostics[1]?.message ?? "", /virtual node "client" has no listener/);
});

test("CRD references that point at nothing, with did-you-mean; meshRef to a missing Mesh", () => {
  const r = check(
    `apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualService
metadata: { name: order, namespace: shop }
spec:
  provider:
    virtualRouter:
      virtualRouterRef: { name: order-routr }
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: VirtualRouter
metadata: { name: order-router, namespace: shop }
spec:
  listeners: [{ portMapping: { port: 80, protocol: http } }]
  meshRef: { name: shopp, uid: "1" }
  routes:
    - name: main
      httpRoute:
        match: { prefix: / }
        action:
          weightedTargets:
            - virtualNodeARN: arn:aws:appmesh:us-east-1:123456789012:mesh/shop/virtualNode/gone
              weight: 1
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: Mesh
metadata: { name: shop }
---
apiVersion: appmesh.k8s.aws/v1beta2
kind: GatewayRoute
metadata: { name: r, namespace: shop }
spec:
  virtualGatewayRef: { name: ingres, uid: "2" }
  httpRoute:
    match: { prefix: / }
    action: { target: { virtualService: { virtualServiceRef: { name: order, namespace: other } } } }
`,
    { analyze: true },
  );
  assert.deepEqual(codes(r.diagnostics), [
    "SKEIN_E_APPMESH_REF_NOT_FOUND@7",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@14",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@21",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@32",
    "SKEIN_E_APPMESH_REF_NOT_FOUND@35",
  ]);
  const m = r.diagnostics.map((d) => d.message);
  assert.equal(m[0], 'VirtualRouter shop/order-routr is not defined; did you mean "order-router"?');
  assert.equal(m[1], 'Mesh shopp is not defined; did you mean "shop"?');
  assert.equal(
    m[2],
    'no virtual node "gone" in mesh "shop" is defined, as virtualNodeARN arn:aws:appmesh:us-east-1:123456789012:mesh/shop/virtualNode/gone requires',
  );
  assert.equal(m[3], "VirtualGateway shop/ingres is not defined");
  assert.equal(m[4], "VirtualService other/order is not defined");
});
