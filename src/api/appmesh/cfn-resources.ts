// The AWS::AppMesh::* CloudFormation resource types: the Properties schema of each (validated after
// intrinsic functions are resolved; output keys are camelCase like the App Mesh API) and what `Ref`
// and `Fn::GetAtt` return for it (AWS CloudFormation template reference, "Return values").
import { z } from "zod";
import { Codes } from "../codes.js";
import { addIssue } from "../schema.js";
import {
  egressFilter,
  gatewayRouteShape,
  meshServiceDiscovery,
  nodeNeedsDiscovery,
  o,
  oneGatewayRouteKind,
  oneRouteKind,
  resourceName,
  routerListener,
  routeShape,
  serviceProvider,
  virtualGatewayShape,
  virtualNodeShape,
} from "./spec.js";

const tags = () => z.array(o("cfn", { key: z.string().min(1).max(128), value: z.string().max(256) })).max(50);

const accountId = () =>
  z.string().superRefine((s, ctx) => {
    if (!/^\d{12}$/.test(s))
      addIssue(ctx, Codes.INVALID, `"${s}" is not an AWS account ID`, [], "an account ID is 12 digits");
  });

export const meshProperties = o("cfn", {
  meshName: resourceName().optional(),
  spec: o("cfn", {
    egressFilter: egressFilter("cfn").optional(),
    serviceDiscovery: meshServiceDiscovery("cfn").optional(),
  }).optional(),
  tags: tags().optional(),
});

export const virtualNodeProperties = o("cfn", {
  meshName: resourceName(),
  meshOwner: accountId().optional(),
  virtualNodeName: resourceName().optional(),
  spec: nodeNeedsDiscovery("cfn", o("cfn", virtualNodeShape("cfn"))),
  tags: tags().optional(),
});

export const virtualServiceProperties = o("cfn", {
  meshName: resourceName(),
  meshOwner: accountId().optional(),
  virtualServiceName: resourceName(),
  spec: o("cfn", { provider: serviceProvider("cfn").optional() }),
  tags: tags().optional(),
});

export const virtualRouterProperties = o("cfn", {
  meshName: resourceName(),
  meshOwner: accountId().optional(),
  virtualRouterName: resourceName().optional(),
  spec: o("cfn", { listeners: z.array(routerListener("cfn")).min(1) }),
  tags: tags().optional(),
});

export const routeProperties = o("cfn", {
  meshName: resourceName(),
  meshOwner: accountId().optional(),
  virtualRouterName: resourceName(),
  routeName: resourceName().optional(),
  spec: oneRouteKind("cfn", o("cfn", routeShape("cfn"))),
  tags: tags().optional(),
});

export const virtualGatewayProperties = o("cfn", {
  meshName: resourceName(),
  meshOwner: accountId().optional(),
  virtualGatewayName: resourceName().optional(),
  spec: o("cfn", virtualGatewayShape("cfn")),
  tags: tags().optional(),
});

export const gatewayRouteProperties = o("cfn", {
  meshName: resourceName(),
  meshOwner: accountId().optional(),
  virtualGatewayName: resourceName(),
  gatewayRouteName: resourceName().optional(),
  spec: oneGatewayRouteKind("cfn", o("cfn", gatewayRouteShape("cfn"))),
  tags: tags().optional(),
});

export type MeshProperties = z.output<typeof meshProperties>;
export type VirtualNodeProperties = z.output<typeof virtualNodeProperties>;
export type VirtualServiceProperties = z.output<typeof virtualServiceProperties>;
export type VirtualRouterProperties = z.output<typeof virtualRouterProperties>;
export type RouteProperties = z.output<typeof routeProperties>;
export type VirtualGatewayProperties = z.output<typeof virtualGatewayProperties>;
export type GatewayRouteProperties = z.output<typeof gatewayRouteProperties>;

export const CFN_TYPES = {
  Mesh: "AWS::AppMesh::Mesh",
  VirtualNode: "AWS::AppMesh::VirtualNode",
  VirtualService: "AWS::AppMesh::VirtualService",
  VirtualRouter: "AWS::AppMesh::VirtualRouter",
  Route: "AWS::AppMesh::Route",
  VirtualGateway: "AWS::AppMesh::VirtualGateway",
  GatewayRoute: "AWS::AppMesh::GatewayRoute",
} as const;

export type AppMeshKind = keyof typeof CFN_TYPES;

/** How one AWS::AppMesh type is validated and what its return values are built from. */
export interface CfnTypeInfo {
  kind: AppMeshKind;
  properties: z.ZodType<unknown>;
  /** The property holding the object's App Mesh name (optional ones default to the logical ID). */
  nameProperty: string;
  /** The parent the object lives under besides the mesh (Route: its router; GatewayRoute: its gateway). */
  parentProperty?: "VirtualRouterName" | "VirtualGatewayName";
  /** ARN path segment after `mesh/<mesh>/` (and the parent's segment, for routes). */
  arnSegment?: string;
  parentArnSegment?: string;
  /** Fn::GetAtt attributes, as documented for the type. */
  attributes: readonly string[];
}

const COMMON = ["Arn", "MeshName", "MeshOwner", "ResourceOwner", "Uid"] as const;

export const CFN_TYPE_INFO: Record<string, CfnTypeInfo> = {
  [CFN_TYPES.Mesh]: {
    kind: "Mesh",
    properties: meshProperties,
    nameProperty: "MeshName",
    attributes: COMMON,
  },
  [CFN_TYPES.VirtualNode]: {
    kind: "VirtualNode",
    properties: virtualNodeProperties,
    nameProperty: "VirtualNodeName",
    arnSegment: "virtualNode",
    attributes: [...COMMON, "VirtualNodeName"],
  },
  [CFN_TYPES.VirtualService]: {
    kind: "VirtualService",
    properties: virtualServiceProperties,
    nameProperty: "VirtualServiceName",
    arnSegment: "virtualService",
    attributes: [...COMMON, "VirtualServiceName"],
  },
  [CFN_TYPES.VirtualRouter]: {
    kind: "VirtualRouter",
    properties: virtualRouterProperties,
    nameProperty: "VirtualRouterName",
    arnSegment: "virtualRouter",
    attributes: [...COMMON, "VirtualRouterName"],
  },
  [CFN_TYPES.Route]: {
    kind: "Route",
    properties: routeProperties,
    nameProperty: "RouteName",
    parentProperty: "VirtualRouterName",
    parentArnSegment: "virtualRouter",
    arnSegment: "route",
    attributes: [...COMMON, "RouteName", "VirtualRouterName"],
  },
  [CFN_TYPES.VirtualGateway]: {
    kind: "VirtualGateway",
    properties: virtualGatewayProperties,
    nameProperty: "VirtualGatewayName",
    arnSegment: "virtualGateway",
    attributes: [...COMMON, "VirtualGatewayName"],
  },
  [CFN_TYPES.GatewayRoute]: {
    kind: "GatewayRoute",
    properties: gatewayRouteProperties,
    nameProperty: "GatewayRouteName",
    parentProperty: "VirtualGatewayName",
    parentArnSegment: "virtualGateway",
    arnSegment: "gatewayRoute",
    attributes: [...COMMON, "GatewayRouteName", "VirtualGatewayName"],
  },
};

/**
 * Fields that name another App Mesh object, and the type they name. CloudFormation's `Ref` returns an
 * App Mesh resource's ARN, never its name, so AWS rejects `MeshName: !Ref Mesh` at deploy time; Skein
 * reads the intent (the name) and notes the difference (SKEIN_I_CFN_REF_ARN).
 */
export const NAME_FIELDS: Record<string, AppMeshKind> = {
  MeshName: "Mesh",
  VirtualNodeName: "VirtualNode",
  VirtualNode: "VirtualNode",
  VirtualRouterName: "VirtualRouter",
  VirtualServiceName: "VirtualService",
  VirtualGatewayName: "VirtualGateway",
};
