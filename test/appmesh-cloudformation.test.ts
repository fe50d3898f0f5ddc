// AWS App Mesh CloudFormation: which documents are templates, intrinsic functions, and the schema of
// every AWS::AppMesh::* type, each broken input with its code at the right line and column.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { cloudFormationDecoder, UNRESOLVED_ANNOTATION } from "../src/api/appmesh/cloudformation.js";
import type { Diagnostic } from "../src/lib/diagnostics.js";
import { check, codes } from "./helpers.js";

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/appmesh/${name}`, import.meta.url), "utf8");

function one(diags: readonly Diagnostic[], code: string): Diagnostic {
  const found = diags.filter((d) => d.code === code);
  assert.equal(found.length, 1, `expected one ${code}, got ${JSON.stringify(diags, null, 1)}`);
  return found[0] as Diagnostic;
}

const NODE = (spec: string, extra = "") => `Mesh:
  Type: AWS::AppMesh::Mesh
  Properties:
    MeshName: shop
---
Node:
  Type: AWS::AppMesh::VirtualNode
  Properties:
    MeshName: !GetAtt Mesh.MeshName
    VirtualNodeName: order
${extra}    Spec:
${spec}`;

test("a full template decodes into typed resources; parameters, GetAtt and Sub resolve", () => {
  const r = check(fixture("shop-template.yaml"), { file: "shop.yaml" });
  assert.deepEqual(codes(r.diagnostics, "all"), ["SKEIN_W_NO_EFFECT@182"]);
  const ignored = one(r.diagnostics, "SKEIN_W_NO_EFFECT");
  assert.match(ignored.message, /AWS::ECS::Cluster is accepted and ignored/);
  assert.equal(ignored.column, 11);
  assert.deepEqual(
    r.resources.map((x) => `${x.kind} ${x.name}`),
    [
      "AWS::AppMesh::Mesh Mesh",
      "AWS::AppMesh::VirtualNode OrderV1",
      "AWS::AppMesh::VirtualNode OrderV2",
      "AWS::AppMesh::VirtualNode InventoryNode",
      "AWS::AppMesh::VirtualRouter OrderRouter",
      "AWS::AppMesh::Route MainRoute",
      "AWS::AppMesh::Route CanaryRoute",
      "AWS::AppMesh::VirtualService OrderService",
      "AWS::AppMesh::VirtualService InventoryService",
      "AWS::AppMesh::VirtualGateway Gateway",
      "AWS::AppMesh::GatewayRoute ShopRoute",
    ],
  );
  const node = r.resources.find((x) => x.name === "OrderV1");
  assert.ok(node);
  assert.equal(node.group, "cloudformation");
  assert.equal(node.apiVersion, "cloudformation");
  assert.equal(node.namespace, "");
  assert.deepEqual(node.source.basePath, ["Resources", "OrderV1"]);
  assert.deepEqual([node.source.line, node.source.column], [18, 3]);
  const spec = node.spec as {
    meshName: string;
    virtualNodeName: string;
    spec: { listeners: { portMapping: { port: number; protocol: string } }[] };
  };
  assert.equal(spec.meshName, "shop"); // !GetAtt Mesh.MeshName ← !Ref MeshNameParam ← Default
  assert.equal(spec.virtualNodeName, "order-v1");
  assert.deepEqual(spec.spec.listeners[0]?.portMapping, { port: 8080, protocol: "http" }); // a Number parameter
  const vs = r.resources.find((x) => x.name === "OrderService")?.spec as { virtualServiceName: string };
  assert.equal(vs.virtualServiceName, "order.shop.local"); // !Sub "order.${MeshNameParam}.local"
});

test("Ref returns ARNs; GetAtt attributes, Sub (both forms), Join, pseudo parameters and AWS::NoValue", () => {
  const r = check(`Resources:
  Mesh:
    Type: AWS::AppMesh::Mesh
    Properties:
      MeshName: m
  Router:
    Type: AWS::AppMesh::VirtualRouter
    Properties:
      MeshName: !GetAtt Mesh.MeshName
      VirtualRouterName: r
      Spec:
        Listeners: [{ PortMapping: { Port: 80, Protocol: http } }]
  Route:
    Type: AWS::AppMesh::Route
    Properties:
      MeshName: !GetAtt Mesh.MeshName
      VirtualRouterName: { "Fn::GetAtt": [Router, VirtualRouterName] }
      RouteName: rt
      Spec:
        TcpRoute:
          Action:
            WeightedTargets: [{ VirtualNode: !GetAtt Node.VirtualNodeName, Weight: 1 }]
  Node:
    Type: AWS::AppMesh::VirtualNode
    Properties:
      MeshName: !GetAtt Mesh.MeshName
      Spec:
        Logging: !Ref AWS::NoValue
      Tags:
        - { Key: arn, Value: !Ref Node }
        - { Key: route, Value: !GetAtt Route.Arn }
        - { Key: uid, Value: !GetAtt Node.Uid }
        - { Key: owner, Value: !GetAtt Node.MeshOwner }
        - Key: sub
          Value: !Sub ["\${Name}-\${AWS::Region}-\${!Literal}", { Name: !GetAtt Node.VirtualNodeName }]
        - { Key: join, Value: !Join ["/", [a, !Ref "AWS::AccountId", !GetAtt Mesh.MeshName]] }
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  const node = r.resources.find((x) => x.name === "Node")?.spec as {
    virtualNodeName?: string;
    spec: Record<string, unknown>;
    tags: { key: string; value: string }[];
  };
  assert.equal(node.virtualNodeName, undefined); // CloudFormation would generate one: Skein uses "Node"
  assert.deepEqual(node.spec, {}); // Logging removed by AWS::NoValue
  const tag = (k: string) => node.tags.find((t) => t.key === k)?.value;
  assert.equal(tag("arn"), "arn:aws:appmesh:us-east-1:123456789012:mesh/m/virtualNode/Node");
  assert.equal(tag("route"), "arn:aws:appmesh:us-east-1:123456789012:mesh/m/virtualRouter/r/route/rt");
  assert.match(tag("uid") ?? "", /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-8[0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(tag("owner"), "123456789012");
  // biome-ignore lint/suspicious/noTemplateCurlyInString: ${!Literal} in Fn::Sub stands for the text ${Literal}.
  assert.equal(tag("sub"), "Node-us-east-1-${Literal}");
  assert.equal(tag("join"), "a/123456789012/m");
  const route = r.resources.find((x) => x.name === "Route")?.spec as { virtualRouterName: string };
  assert.equal(route.virtualRouterName, "r");
});

test("!Ref of an App Mesh resource where its name belongs: the name is used, with an info at the tag", () => {
  const r = check(`Mesh:
  Type: AWS::AppMesh::Mesh
  Properties:
    MeshName: shop
---
Service:
  Type: AWS::AppMesh::VirtualService
  Properties:
    MeshName: !Ref Mesh
    VirtualServiceName: a.shop.local
    Spec: {}
`);
  assert.deepEqual(codes(r.diagnostics, "all"), ["SKEIN_I_CFN_REF_ARN@9"]);
  const d = one(r.diagnostics, "SKEIN_I_CFN_REF_ARN");
  assert.equal(d.severity, "info");
  assert.equal(d.column, 15);
  assert.match(d.message, /returns the Mesh's ARN/);
  assert.match(d.hint ?? "", /!GetAtt Mesh\.MeshName/);
  assert.equal((r.resources[1]?.spec as { meshName?: string } | undefined)?.meshName, "shop");
});

test("claims: templates and logical-ID documents, not Kubernetes resources; one template per file", () => {
  const doc = (value: unknown) => ({
    file: "f",
    index: 0,
    value,
    positions: undefined as never,
    start: undefined as never,
  });
  assert.equal(cloudFormationDecoder.claims(doc({ Resources: {} })), true);
  assert.equal(cloudFormationDecoder.claims(doc({ AWSTemplateFormatVersion: "2010-09-09" })), true);
  assert.equal(cloudFormationDecoder.claims(doc({ Mesh: { Type: "AWS::AppMesh::Mesh" } })), true);
  assert.equal(
    cloudFormationDecoder.claims(doc({ apiVersion: "v1", kind: "Service", Resources: {} })),
    false,
  );
  assert.equal(cloudFormationDecoder.claims(doc({ a: 1 })), false);
  assert.equal(cloudFormationDecoder.claims(doc([1])), false);
  assert.deepEqual(cloudFormationDecoder.types.length, 7);
  // A reference in one document resolves to a resource defined in another document of the same file.
  const r = check(`Resources:
  Mesh:
    Type: AWS::AppMesh::Mesh
---
Service:
  Type: AWS::AppMesh::VirtualService
  Properties:
    MeshName: !GetAtt Mesh.MeshName
    VirtualServiceName: a.local
    Spec: {}
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.equal((r.resources[1]?.spec as { meshName?: string } | undefined)?.meshName, "Mesh");
});

test("unknown property: SKEIN_E_UNKNOWN_FIELD at its key, with did-you-mean", () => {
  const r = check(NODE("      Listners: []\n"));
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_UNKNOWN_FIELD@12"]);
  const d = one(r.diagnostics, "SKEIN_E_UNKNOWN_FIELD");
  assert.match(d.message, /unknown field "Listners"; did you mean "Listeners"\?/);
  assert.equal(d.path, "Node.Properties.Spec.Listners");
  assert.equal(d.column, 7);
  assert.equal(d.resource, "AWS::AppMesh::VirtualNode Node");
});

test("wrong type and bad enum value, each at its value", () => {
  const r = check(
    NODE(`      Listeners:
        - PortMapping:
            Port: "8080"
            Protocol: htp
      ServiceDiscovery:
        DNS:
          Hostname: order.shop.local
`),
  );
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_TYPE@14", "SKEIN_E_ENUM@15"]);
  assert.match(one(r.diagnostics, "SKEIN_E_TYPE").message, /expected number, got the string "8080"/);
  const e = one(r.diagnostics, "SKEIN_E_ENUM");
  assert.match(e.message, /"htp" is not allowed here; did you mean "http"\?/);
  assert.equal(e.hint, "allowed values: http, http2, grpc, tcp");
  assert.equal(e.column, 23);
});

test("unresolved !Ref: SKEIN_E_CFN_REF_UNRESOLVED at the tag, naming it and the closest logical ID", () => {
  const r = check(`Mesh:
  Type: AWS::AppMesh::Mesh
---
Service:
  Type: AWS::AppMesh::VirtualService
  Properties:
    MeshName: !Ref Mesj
    VirtualServiceName: a.local
    Spec: {}
`);
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_CFN_REF_UNRESOLVED@7"]);
  const d = one(r.diagnostics, "SKEIN_E_CFN_REF_UNRESOLVED");
  assert.equal(d.column, 15);
  assert.equal(d.message, '!Ref Mesj: "Mesj" is not defined in the template; did you mean "Mesh"?');
  assert.ok(d.hint);
});

test("long-form Fn::GetAtt of a missing resource points at its Fn::GetAtt key", () => {
  const r = check(`Resources:
  Service:
    Type: AWS::AppMesh::VirtualService
    Properties:
      MeshName: shop
      VirtualServiceName:
        Fn::GetAtt: [Missing, VirtualServiceName]
      Spec: {}
`);
  const d = one(r.diagnostics, "SKEIN_E_CFN_REF_UNRESOLVED");
  assert.deepEqual([d.line, d.column], [7, 9]);
  assert.match(d.message, /"Missing" is not defined in the template/);
  // The field could not be resolved, so the resource is kept without it and not reported twice.
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_CFN_REF_UNRESOLVED@7"]);
  assert.deepEqual(JSON.parse(r.resources[0]?.annotations[UNRESOLVED_ANNOTATION] ?? "[]"), [
    "Properties.VirtualServiceName",
  ]);
});

test("unknown GetAtt attribute: SKEIN_E_CFN_GETATT with did-you-mean and the type's attributes", () => {
  const r = check(`Mesh:
  Type: AWS::AppMesh::Mesh
---
Service:
  Type: AWS::AppMesh::VirtualService
  Properties:
    MeshName: !GetAtt Mesh.MeshNme
    VirtualServiceName: a.local
    Spec: {}
`);
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_CFN_GETATT@7"]);
  const d = one(r.diagnostics, "SKEIN_E_CFN_GETATT");
  assert.equal(d.column, 15);
  assert.match(d.message, /AWS::AppMesh::Mesh has no attribute "MeshNme"; did you mean "MeshName"\?/);
  assert.equal(d.hint, "attributes of AWS::AppMesh::Mesh: Arn, MeshName, MeshOwner, ResourceOwner, Uid");
});

test("unsupported intrinsics: SKEIN_E_CFN_INTRINSIC saying they are not supported", () => {
  const r = check(`Conditions:
  Prod: !Equals [a, a]
Resources:
  Service:
    Type: AWS::AppMesh::VirtualService
    Properties:
      MeshName: !ImportValue shared-mesh
      VirtualServiceName: !If [Prod, a.local, b.local]
      Spec: {}
`);
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_CFN_INTRINSIC@7", "SKEIN_E_CFN_INTRINSIC@8"]);
  const [imp, cond] = r.diagnostics;
  assert.match(imp?.message ?? "", /Fn::ImportValue is not supported/);
  assert.match(imp?.hint ?? "", /exports are not visible/);
  assert.equal(imp?.column, 17);
  assert.match(cond?.message ?? "", /Fn::If is not supported/);
  assert.equal(cond?.column, 27);
});

test("Fn::Sub naming something undefined is reported at the Sub", () => {
  const r = check(`Mesh:
  Type: AWS::AppMesh::Mesh
  Properties:
    MeshName: !Sub "\${Envirnment}-mesh"
`);
  const d = one(r.diagnostics, "SKEIN_E_CFN_REF_UNRESOLVED");
  assert.deepEqual([d.line, d.column], [4, 15]);
  assert.match(d.message, /"Envirnment" is not defined in the template/);
});

test("parameters: a Ref needs a Default; pseudo parameters resolve or are suggested", () => {
  const r = check(`Parameters:
  Name:
    Type: String
  Kind:
    Type: Strin
    Default: x
Resources:
  Mesh:
    Type: AWS::AppMesh::Mesh
    Properties:
      MeshName: !Ref Name
  Mesh2:
    Type: AWS::AppMesh::Mesh
    Properties:
      MeshName: !Sub "\${AWS::Regoin}"
`);
  assert.deepEqual(codes(r.diagnostics), [
    "SKEIN_E_INVALID@5",
    "SKEIN_E_CFN_REF_UNRESOLVED@11",
    "SKEIN_E_CFN_REF_UNRESOLVED@15",
  ]);
  assert.match(r.diagnostics[0]?.message ?? "", /"Strin" is not a parameter type; did you mean "String"\?/);
  assert.match(r.diagnostics[1]?.message ?? "", /parameter "Name" has no Default/);
  assert.match(
    r.diagnostics[2]?.message ?? "",
    /"AWS::Regoin" is not a pseudo parameter; did you mean "AWS::Region"\?/,
  );
});

test("a circular reference is reported where it is written", () => {
  const r = check(`Resources:
  A:
    Type: AWS::AppMesh::VirtualNode
    Properties:
      MeshName: !GetAtt B.MeshName
      Spec: {}
  B:
    Type: AWS::AppMesh::VirtualNode
    Properties:
      MeshName: !GetAtt A.MeshName
      Spec: {}
`);
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_CFN_REF_UNRESOLVED@5", "SKEIN_E_CFN_REF_UNRESOLVED@10"]);
  assert.ok(r.diagnostics.every((d) => /circular reference/.test(d.message)));
});

test("weights outside 0–100: SKEIN_E_RANGE at the weight", () => {
  const r = check(`Route:
  Type: AWS::AppMesh::Route
  Properties:
    MeshName: shop
    VirtualRouterName: router
    Spec:
      HttpRoute:
        Match: { Prefix: / }
        Action:
          WeightedTargets:
            - VirtualNode: a
              Weight: 150
`);
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_RANGE@12"]);
  assert.match(r.diagnostics[0]?.message ?? "", /weight 150 is outside 0–100/);
  assert.equal(r.diagnostics[0]?.path, "Route.Properties.Spec.HttpRoute.Action.WeightedTargets[0].Weight");
});

test("App Mesh rules beyond types: exactly one of, required together, listener protocol, prefix, gRPC method", () => {
  const r = check(
    NODE(`      Listeners:
        - PortMapping: { Port: 8080, Protocol: grpc }
          ConnectionPool:
            HTTP: { MaxConnections: 10 }
      ServiceDiscovery:
        DNS: { Hostname: a.local }
        AWSCloudMap: { NamespaceName: shop.local, ServiceName: a }
`),
  );
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_INVALID@15", "SKEIN_E_ONE_OF@18"]);
  assert.match(r.diagnostics[0]?.message ?? "", /ConnectionPool\.HTTP does not apply to a grpc listener/);
  assert.match(r.diagnostics[1]?.message ?? "", /takes only one of DNS, AWSCloudMap/);

  const r2 = check(NODE("      Listeners:\n        - PortMapping: { Port: 8080, Protocol: http }\n"));
  assert.deepEqual(codes(r2.diagnostics), ["SKEIN_E_REQUIRED@12"]);
  assert.match(r2.diagnostics[0]?.message ?? "", /a virtual node with listeners needs ServiceDiscovery/);

  const r3 = check(`Route:
  Type: AWS::AppMesh::Route
  Properties:
    MeshName: shop
    VirtualRouterName: router
    Spec:
      Priority: 1001
      GrpcRoute:
        Match: { MethodName: Get }
        Action:
          WeightedTargets: [{ VirtualNode: a, Weight: 1 }]
        RetryPolicy: { MaxRetries: 1, PerRetryTimeout: { Unit: sec, Value: 1 } }
      HttpRoute:
        Match: { Prefix: api }
        Action:
          WeightedTargets: [{ VirtualNode: a, Weight: 1 }]
`);
  assert.deepEqual(codes(r3.diagnostics), [
    "SKEIN_E_RANGE@7",
    "SKEIN_E_REQUIRED@9",
    "SKEIN_E_ENUM@12",
    "SKEIN_E_INVALID@14",
  ]);
  const [priority, method, unit, prefix] = r3.diagnostics;
  assert.match(priority?.message ?? "", /priority 1001 is outside 0–1000/);
  assert.match(method?.message ?? "", /MethodName needs ServiceName/);
  assert.match(unit?.message ?? "", /"sec" is not allowed here/);
  assert.equal(unit?.hint, "allowed values: s, ms");
  assert.match(prefix?.message ?? "", /prefix "api" must start with "\/"/);

  const r4 = check(`Route:
  Type: AWS::AppMesh::Route
  Properties:
    MeshName: shop
    VirtualRouterName: router
    Spec:
      GrpcRoute:
        Match: { ServiceName: shop.Orders }
        Action:
          WeightedTargets: [{ VirtualNode: a, Weight: 1 }]
        RetryPolicy: { MaxRetries: 1, PerRetryTimeout: { Unit: s, Value: 1 } }
      TcpRoute:
        Action:
          WeightedTargets: [{ VirtualNode: a, Weight: 1 }]
`);
  assert.deepEqual(codes(r4.diagnostics), ["SKEIN_E_REQUIRED@11"]);
  assert.match(
    r4.diagnostics[0]?.message ?? "",
    /a retry policy needs at least one of HttpRetryEvents, TcpRetryEvents, GrpcRetryEvents/,
  );
  const r5 = check(`Route:
  Type: AWS::AppMesh::Route
  Properties:
    MeshName: shop
    VirtualRouterName: router
    Spec:
      GrpcRoute:
        Match: {}
        Action:
          WeightedTargets: [{ VirtualNode: a, Weight: 1 }]
      TcpRoute:
        Action:
          WeightedTargets: [{ VirtualNode: a, Weight: 1 }]
`);
  assert.deepEqual(codes(r5.diagnostics), ["SKEIN_E_ONE_OF@12"]);
  assert.match(
    r5.diagnostics[0]?.message ?? "",
    /a route takes only one of HttpRoute, Http2Route, GrpcRoute, TcpRoute/,
  );
});

test("types: unknown App Mesh types are errors with did-you-mean; other AWS types are ignored with a warning", () => {
  const r = check(`Resources:
  Node:
    Type: AWS::AppMesh::VirtualNod
    Properties: {}
  Task:
    Type: AWS::ECS::TaskDefinition
    Properties:
      Family: !Ref Famly
  Bad:
    Type: appmesh
`);
  assert.deepEqual(codes(r.diagnostics, "all"), [
    "SKEIN_E_CFN_TYPE@3",
    "SKEIN_W_NO_EFFECT@6",
    "SKEIN_E_CFN_REF_UNRESOLVED@8",
    "SKEIN_E_CFN_TYPE@10",
  ]);
  assert.match(r.diagnostics[0]?.message ?? "", /did you mean "AWS::AppMesh::VirtualNode"\?/);
  assert.match(r.diagnostics[2]?.message ?? "", /"Famly" is not defined in the template/);
  assert.deepEqual(r.resources, []);
});

test("a reference to a resource Skein does not model cannot be resolved, and says so", () => {
  const r = check(`Resources:
  Namespace:
    Type: AWS::ServiceDiscovery::PrivateDnsNamespace
    Properties: { Name: shop.local, Vpc: vpc-1 }
  Discovery:
    Type: AWS::ServiceDiscovery::Service
    Properties: { Name: order }
  Node:
    Type: AWS::AppMesh::VirtualNode
    Properties:
      MeshName: shop
      Spec:
        ServiceDiscovery:
          AWSCloudMap:
            NamespaceName: !GetAtt Namespace.Arn
            ServiceName: !GetAtt Discovery.Name
`);
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_CFN_REF_UNRESOLVED@15"]);
  assert.match(
    r.diagnostics.find((d) => d.severity === "error")?.message ?? "",
    /which Skein does not model/,
  );
});

test("template structure: sections, logical IDs, duplicates, resource attributes, DependsOn and Outputs", () => {
  const r = check(`AWSTemplateFormatVersion: "2010-09-09"
Resource: {}
Resources:
  order-node:
    Type: AWS::AppMesh::Mesh
  Mesh:
    Type: AWS::AppMesh::Mesh
    Propertes: { MeshName: a }
    DependsOn: [Mesh2]
Outputs:
  Arn:
    Value: !GetAtt Msh.Arn
---
Mesh:
  Type: AWS::AppMesh::Mesh
`);
  assert.deepEqual(codes(r.diagnostics), [
    "SKEIN_E_UNKNOWN_FIELD@2",
    "SKEIN_E_NAME@4",
    "SKEIN_E_UNKNOWN_FIELD@8",
    "SKEIN_E_CFN_REF_UNRESOLVED@9",
    "SKEIN_E_CFN_REF_UNRESOLVED@12",
    "SKEIN_E_DUPLICATE_RESOURCE@14",
  ]);
  assert.match(
    r.diagnostics[0]?.message ?? "",
    /unknown template section "Resource"; did you mean "Resources"\?/,
  );
  assert.match(r.diagnostics[2]?.message ?? "", /did you mean "Properties"\?/);
  assert.match(
    r.diagnostics[3]?.message ?? "",
    /DependsOn names "Mesh2", which is not defined in the template; did you mean "Mesh"\?/,
  );
  assert.match(
    r.diagnostics[4]?.message ?? "",
    /"Msh" is not defined in the template; did you mean "Mesh"\?/,
  );
  assert.match(
    r.diagnostics[5]?.message ?? "",
    /logical ID "Mesh" is defined twice \(first at test\.yaml:6\)/,
  );
});

test("one broken resource does not stop the others from loading", () => {
  const r = check(`Mesh:
  Type: AWS::AppMesh::Mesh
---
Broken:
  Type: AWS::AppMesh::VirtualRouter
  Properties:
    MeshName: shop
    Spec: { Listeners: [] }
---
Service:
  Type: AWS::AppMesh::VirtualService
  Properties:
    MeshName: !GetAtt Mesh.MeshName
    VirtualServiceName: a.local
    Spec: {}
`);
  assert.deepEqual(codes(r.diagnostics), ["SKEIN_E_RANGE@8"]);
  assert.deepEqual(
    r.resources.map((x) => x.name),
    ["Mesh", "Service"],
  );
});
