// The AWS App Mesh controller's Kubernetes kinds (appmesh.k8s.aws/v1beta2): Mesh (cluster-scoped),
// VirtualNode, VirtualService, VirtualRouter (with its routes inline), VirtualGateway and GatewayRoute.
// Their specs are the App Mesh API objects in camelCase plus Kubernetes fields: `awsName` (the App Mesh
// name, defaulted by the controller), pod/namespace selectors, and object references (`virtualNodeRef`)
// or ARNs in place of App Mesh names. Field names follow aws-app-mesh-controller-for-k8s apis/appmesh/v1beta2.
import { z } from "zod";
import { Codes } from "../codes.js";
import { defineKind } from "../kinds.js";
import { addIssue, obj } from "../schema.js";
import {
  egressFilter,
  gatewayRouteShape,
  labelSelector,
  meshReference,
  meshServiceDiscovery,
  nodeNeedsDiscovery,
  oneGatewayRouteKind,
  oneRouteKind,
  routerListener,
  routeShape,
  serviceProvider,
  virtualGatewayShape,
  virtualNodeShape,
} from "./spec.js";

export const APPMESH_GROUP = "appmesh.k8s.aws";

const awsName = () => z.string().min(1).max(255).optional();

export const meshCrdSpec = obj({
  awsName: awsName(),
  namespaceSelector: labelSelector().optional(),
  egressFilter: egressFilter("k8s").optional(),
  meshOwner: z.string().optional(),
  meshServiceDiscovery: meshServiceDiscovery("k8s").optional(),
});

const nodeShape = virtualNodeShape("k8s");
export const virtualNodeCrdSpec = nodeNeedsDiscovery(
  "k8s",
  obj({
    ...nodeShape,
    // The controller's CRD allows one listener per virtual node.
    listeners: nodeShape.listeners.unwrap().max(1).optional(),
    awsName: awsName(),
    podSelector: labelSelector().optional(),
    backendGroups: z
      .array(obj({ name: z.string().min(1), namespace: z.string().min(1).optional() }))
      .optional(),
    meshRef: meshReference().optional(),
  }),
);

export const virtualServiceCrdSpec = obj({
  awsName: awsName(),
  provider: serviceProvider("k8s").optional(),
  meshRef: meshReference().optional(),
});

const k8sRoute = oneRouteKind("k8s", obj({ name: z.string().min(1), ...routeShape("k8s") }));

export const virtualRouterCrdSpec = obj({
  awsName: awsName(),
  listeners: z.array(routerListener("k8s")).min(1).max(1),
  routes: z
    .array(k8sRoute)
    .superRefine((routes, ctx) => {
      const seen = new Set<string>();
      routes.forEach((r, i) => {
        if (seen.has(r.name))
          addIssue(
            ctx,
            Codes.INVALID,
            `route name "${r.name}" is used twice in this router`,
            [i, "name"],
            "give each route of a router its own name",
          );
        seen.add(r.name);
      });
    })
    .optional(),
  meshRef: meshReference().optional(),
});

export const virtualGatewayCrdSpec = obj({
  ...virtualGatewayShape("k8s"),
  awsName: awsName(),
  podSelector: labelSelector().optional(),
  namespaceSelector: labelSelector().optional(),
  gatewayRouteSelector: labelSelector().optional(),
  meshRef: meshReference().optional(),
});

export const gatewayRouteCrdSpec = oneGatewayRouteKind(
  "k8s",
  obj({
    ...gatewayRouteShape("k8s"),
    awsName: awsName(),
    virtualGatewayRef: obj({
      name: z.string().min(1),
      namespace: z.string().min(1).optional(),
      uid: z.string().min(1),
    }).optional(),
    meshRef: meshReference().optional(),
  }),
);

export type MeshCrdSpec = z.output<typeof meshCrdSpec>;
export type VirtualNodeCrdSpec = z.output<typeof virtualNodeCrdSpec>;
export type VirtualServiceCrdSpec = z.output<typeof virtualServiceCrdSpec>;
export type VirtualRouterCrdSpec = z.output<typeof virtualRouterCrdSpec>;
export type VirtualGatewayCrdSpec = z.output<typeof virtualGatewayCrdSpec>;
export type GatewayRouteCrdSpec = z.output<typeof gatewayRouteCrdSpec>;

const kind = <S>(name: string, spec: z.ZodType<S>, namespaced = true, specOptional = false) =>
  defineKind({ group: APPMESH_GROUP, kind: name, versions: ["v1beta2"], namespaced, spec, specOptional });

export const appMeshKinds = [
  kind("Mesh", meshCrdSpec, false, true),
  kind("VirtualNode", virtualNodeCrdSpec),
  kind("VirtualService", virtualServiceCrdSpec),
  kind("VirtualRouter", virtualRouterCrdSpec),
  kind("VirtualGateway", virtualGatewayCrdSpec),
  kind("GatewayRoute", gatewayRouteCrdSpec),
];
