// The App Mesh objects of a configuration set, from either form (CloudFormation resources or
// appmesh.k8s.aws CRDs), in one shape: each object knows its App Mesh name, its mesh, the namespace its
// model objects go to, and where in its document its fields are. References stay symbolic (`AmRef`);
// `AppMeshSet.find` resolves them, so lowering and analysis agree on what a reference points at.
//
// Identity: an App Mesh object is (mesh name, kind, App Mesh name), whatever form defined it, so a
// CloudFormation name and a CRD's ARN reach the same object. CRD names follow the controller's
// defaults (`awsName` unset): Mesh `name`; VirtualService `name.namespace`; the others `name_namespace`.
// A CRD belongs to the mesh its `meshRef` names, or, without one, to the only Mesh CRD in the set
// (Skein cannot evaluate a Mesh's namespaceSelector: it has no Namespace objects).
import { formatPath } from "../../lib/diagnostics.js";
import type { Resource } from "../resource.js";
import type { PathSegment } from "../yaml.js";
import {
  CFN_TYPES,
  type GatewayRouteProperties,
  type MeshProperties,
  type RouteProperties,
  type VirtualGatewayProperties,
  type VirtualNodeProperties,
  type VirtualRouterProperties,
  type VirtualServiceProperties,
} from "./cfn-resources.js";
import { CFN_GROUP, unresolvedPaths } from "./cloudformation.js";
import {
  APPMESH_GROUP,
  type GatewayRouteCrdSpec,
  type MeshCrdSpec,
  type VirtualGatewayCrdSpec,
  type VirtualNodeCrdSpec,
  type VirtualRouterCrdSpec,
  type VirtualServiceCrdSpec,
} from "./crds.js";
import {
  type AmRef,
  type GatewayRouteSpec,
  key,
  type RouteSpec,
  type ServiceProviderSpec,
  type Style,
  type VirtualGatewaySpec,
  type VirtualNodeSpec,
} from "./spec.js";

/** Labels Skein reads on workloads of CloudFormation-defined App Mesh objects (CRDs use pod selectors). */
export const APPMESH_LABELS = {
  /** The virtual node whose sidecar configuration (backends) a workload gets (App Mesh's APPMESH_RESOURCE_ARN). */
  virtualNode: "appmesh.skein.dev/virtual-node",
  /** The DNS hostname or Cloud Map service (`service.namespace`) a workload is registered under. */
  service: "appmesh.skein.dev/service",
  /** The virtual gateway a workload (a standalone proxy) runs as. */
  virtualGateway: "appmesh.skein.dev/virtual-gateway",
} as const;

export type AmKind =
  | "Mesh"
  | "VirtualNode"
  | "VirtualService"
  | "VirtualRouter"
  | "Route"
  | "VirtualGateway"
  | "GatewayRoute";

interface AmBase {
  style: Style;
  resource: Resource;
  /** App Mesh name. */
  name: string;
  /** App Mesh name of the mesh, when known. */
  mesh?: string;
  /** How the object names its mesh, and where (undefined: the only Mesh CRD, or none). */
  meshRef?: { by: "name" | "k8s"; name: string; path: PathSegment[] };
  /** Namespace of the model objects: the mesh name (CloudFormation) or the CRD's namespace. */
  namespace: string;
  /** Name of the model objects: the App Mesh name (CloudFormation) or the CRD's name. */
  modelName: string;
  /** Path of the App Mesh spec in the resource (relative to its source.basePath); a CRD route's own item. */
  specPath: PathSegment[];
}

export interface AmMesh extends AmBase {
  kind: "Mesh";
  egressFilter?: "ALLOW_ALL" | "DROP_ALL";
  /** Present when set: the field that holds the mesh's IP preference. */
  serviceDiscoveryField?: string;
  hasNamespaceSelector: boolean;
}

export interface AmNode extends AmBase {
  kind: "VirtualNode";
  spec: VirtualNodeSpec;
  /** Workloads running as this node (CRD podSelector; CloudFormation: the virtual-node label). */
  selector?: Record<string, string>;
  selectorExpressions: boolean;
  backendGroups: boolean;
}

export interface AmVirtualService extends AmBase {
  kind: "VirtualService";
  provider?: ServiceProviderSpec;
}

export interface AmRoute extends AmBase {
  kind: "Route";
  spec: RouteSpec;
  /** CloudFormation: the router named by VirtualRouterName. CRDs: routes sit inside their router. */
  routerRef?: AmRef;
}

export interface AmRouter extends AmBase {
  kind: "VirtualRouter";
  listeners: { portMapping: { port: number; protocol: string } }[];
  routes: AmRoute[];
}

export interface AmGateway extends AmBase {
  kind: "VirtualGateway";
  spec: VirtualGatewaySpec;
  selector?: Record<string, string>;
  selectorExpressions: boolean;
  hasRouteSelectors: boolean;
}

export interface AmGatewayRoute extends AmBase {
  kind: "GatewayRoute";
  spec: GatewayRouteSpec;
  /** The gateway named (CloudFormation VirtualGatewayName, CRD virtualGatewayRef), if any. */
  gatewayRef?: AmRef;
  gatewayRefPath?: PathSegment[];
}

export type AmObject = AmMesh | AmNode | AmVirtualService | AmRouter | AmRoute | AmGateway | AmGatewayRoute;

/** Parses an App Mesh ARN into mesh, kind and name (routes: the route's own name). */
export function parseArn(arn: string): { mesh: string; kind?: AmKind; name?: string } | undefined {
  const m = /^arn:[^:]+:appmesh:[^:]*:[^:]*:mesh\/(.+)$/.exec(arn);
  if (!m) return undefined;
  const parts = (m[1] as string).split("/");
  const mesh = parts[0] as string;
  const kinds: Record<string, AmKind> = {
    virtualNode: "VirtualNode",
    virtualService: "VirtualService",
    virtualRouter: "VirtualRouter",
    virtualGateway: "VirtualGateway",
    route: "Route",
    gatewayRoute: "GatewayRoute",
  };
  if (parts.length === 1) return { mesh, kind: "Mesh", name: mesh };
  const seg = parts[parts.length - 2] as string;
  return { mesh, kind: Object.hasOwn(kinds, seg) ? kinds[seg] : undefined, name: parts[parts.length - 1] };
}

const identity = (kind: AmKind, mesh: string | undefined, name: string) =>
  `${kind}\u0000${mesh ?? ""}\u0000${name}`;
const k8sIdentity = (kind: AmKind, namespace: string, name: string) =>
  `${kind}\u0000${namespace}\u0000${name}`;

export class AppMeshSet {
  readonly meshes: AmMesh[] = [];
  readonly nodes: AmNode[] = [];
  readonly services: AmVirtualService[] = [];
  readonly routers: AmRouter[] = [];
  /** CloudFormation routes (CRD routes live in their router's `routes`). */
  readonly routes: AmRoute[] = [];
  readonly gateways: AmGateway[] = [];
  readonly gatewayRoutes: AmGatewayRoute[] = [];
  private readonly byIdentity = new Map<string, AmObject>();
  private readonly byK8s = new Map<string, AmObject>();

  add(o: AmObject): void {
    if (o.kind === "Route" && o.style === "k8s") return;
    const list = {
      Mesh: this.meshes,
      VirtualNode: this.nodes,
      VirtualService: this.services,
      VirtualRouter: this.routers,
      Route: this.routes,
      VirtualGateway: this.gateways,
      GatewayRoute: this.gatewayRoutes,
    }[o.kind] as AmObject[];
    list.push(o);
    const id = identity(o.kind, o.kind === "Mesh" ? undefined : o.mesh, o.name);
    if (!this.byIdentity.has(id)) this.byIdentity.set(id, o);
    if (o.style === "k8s") this.byK8s.set(k8sIdentity(o.kind, o.resource.namespace, o.resource.name), o);
  }

  /** The object `ref` (written in `from`) points at, if it is in the set. */
  find<K extends AmKind>(kind: K, ref: AmRef, from: AmObject): Extract<AmObject, { kind: K }> | undefined {
    let o: AmObject | undefined;
    if (ref.by === "name")
      o = this.byIdentity.get(identity(kind, kind === "Mesh" ? undefined : from.mesh, ref.name));
    else if (ref.by === "k8s")
      o = this.byK8s.get(
        k8sIdentity(kind, kind === "Mesh" ? "" : (ref.namespace ?? from.resource.namespace), ref.name),
      );
    else {
      const arn = parseArn(ref.arn);
      if (arn?.name && arn.kind === kind)
        o = this.byIdentity.get(identity(kind, kind === "Mesh" ? undefined : arn.mesh, arn.name));
    }
    return o as Extract<AmObject, { kind: K }> | undefined;
  }

  /** Objects of `kind` that `from` could have meant (same mesh for names, same namespace for CRD refs). */
  candidates(kind: AmKind, ref: AmRef, from: AmObject): string[] {
    const all = [...this.byIdentity.values()].filter((o) => o.kind === kind);
    if (ref.by === "k8s")
      return all
        .filter(
          (o) =>
            o.style === "k8s" &&
            (kind === "Mesh" || o.resource.namespace === (ref.namespace ?? from.resource.namespace)),
        )
        .map((o) => o.resource.name);
    return all.filter((o) => kind === "Mesh" || o.mesh === from.mesh).map((o) => o.name);
  }

  /** The router a CloudFormation route belongs to. */
  routerOf(r: AmRoute): AmRouter | undefined {
    return r.routerRef ? this.find("VirtualRouter", r.routerRef, r) : undefined;
  }

  /** The gateway a gateway route belongs to: the one it names, else the only gateway (CRDs). */
  gatewayOf(gr: AmGatewayRoute): AmGateway | undefined {
    if (gr.gatewayRef) return this.find("VirtualGateway", gr.gatewayRef, gr);
    if (gr.style !== "k8s") return undefined;
    const sameNamespace = this.gateways.filter(
      (g) => g.style === "k8s" && g.resource.namespace === gr.resource.namespace,
    );
    if (sameNamespace.length === 1) return sameNamespace[0];
    const k8s = this.gateways.filter((g) => g.style === "k8s");
    return k8s.length === 1 ? k8s[0] : undefined;
  }

  /** Is the field at `path` (relative to the resource) a value CloudFormation could not resolve? */
  static unresolved(o: AmBase, path: readonly PathSegment[]): boolean {
    return o.style === "cfn" && unresolvedPaths(o.resource).has(formatPath(path));
  }
}

// ── Collecting ──────────────────────────────────────────────────────────────────────────────────────

const CFN_SPEC: PathSegment[] = ["Properties", "Spec"];

/** CloudFormation objects whose identity (mesh or own names) could not be resolved are left out. */
function cfnIdentityUnresolved(r: Resource, fields: string[]): boolean {
  const bad = unresolvedPaths(r);
  return fields.some((f) => bad.has(formatPath(["Properties", f])));
}

function fromCloudFormation(r: Resource, set: AppMeshSet): void {
  const base = (mesh: string, name: string) => ({
    style: "cfn" as const,
    resource: r,
    name,
    mesh,
    meshRef: { by: "name" as const, name: mesh, path: ["Properties", "MeshName"] },
    namespace: mesh,
    modelName: name,
    specPath: CFN_SPEC,
  });
  switch (r.kind) {
    case CFN_TYPES.Mesh: {
      if (cfnIdentityUnresolved(r, ["MeshName"])) return;
      const p = r.spec as MeshProperties;
      const name = p.meshName ?? r.name;
      set.add({
        ...base(name, name),
        meshRef: undefined,
        kind: "Mesh",
        egressFilter: p.spec?.egressFilter?.type,
        serviceDiscoveryField: p.spec?.serviceDiscovery ? "ServiceDiscovery" : undefined,
        hasNamespaceSelector: false,
      });
      return;
    }
    case CFN_TYPES.VirtualNode: {
      if (cfnIdentityUnresolved(r, ["MeshName", "VirtualNodeName"])) return;
      const p = r.spec as VirtualNodeProperties;
      const name = p.virtualNodeName ?? r.name;
      set.add({
        ...base(p.meshName, name),
        kind: "VirtualNode",
        spec: p.spec,
        selector: { [APPMESH_LABELS.virtualNode]: name },
        selectorExpressions: false,
        backendGroups: false,
      });
      return;
    }
    case CFN_TYPES.VirtualService: {
      if (cfnIdentityUnresolved(r, ["MeshName", "VirtualServiceName"])) return;
      const p = r.spec as VirtualServiceProperties;
      set.add({
        ...base(p.meshName, p.virtualServiceName),
        kind: "VirtualService",
        provider: p.spec.provider,
      });
      return;
    }
    case CFN_TYPES.VirtualRouter: {
      if (cfnIdentityUnresolved(r, ["MeshName", "VirtualRouterName"])) return;
      const p = r.spec as VirtualRouterProperties;
      set.add({
        ...base(p.meshName, p.virtualRouterName ?? r.name),
        kind: "VirtualRouter",
        listeners: p.spec.listeners,
        routes: [],
      });
      return;
    }
    case CFN_TYPES.Route: {
      if (cfnIdentityUnresolved(r, ["MeshName", "RouteName"])) return;
      const p = r.spec as RouteProperties;
      const routerUnresolved = cfnIdentityUnresolved(r, ["VirtualRouterName"]);
      set.add({
        ...base(p.meshName, p.routeName ?? r.name),
        kind: "Route",
        spec: p.spec,
        routerRef: routerUnresolved
          ? undefined
          : { by: "name", name: p.virtualRouterName, field: "VirtualRouterName" },
      });
      return;
    }
    case CFN_TYPES.VirtualGateway: {
      if (cfnIdentityUnresolved(r, ["MeshName", "VirtualGatewayName"])) return;
      const p = r.spec as VirtualGatewayProperties;
      const name = p.virtualGatewayName ?? r.name;
      set.add({
        ...base(p.meshName, name),
        kind: "VirtualGateway",
        spec: p.spec,
        selector: { [APPMESH_LABELS.virtualGateway]: name },
        selectorExpressions: false,
        hasRouteSelectors: false,
      });
      return;
    }
    case CFN_TYPES.GatewayRoute: {
      if (cfnIdentityUnresolved(r, ["MeshName", "GatewayRouteName"])) return;
      const p = r.spec as GatewayRouteProperties;
      const gatewayUnresolved = cfnIdentityUnresolved(r, ["VirtualGatewayName"]);
      set.add({
        ...base(p.meshName, p.gatewayRouteName ?? r.name),
        kind: "GatewayRoute",
        spec: p.spec,
        gatewayRef: gatewayUnresolved
          ? undefined
          : { by: "name", name: p.virtualGatewayName, field: "VirtualGatewayName" },
        gatewayRefPath: ["Properties", "VirtualGatewayName"],
      });
      return;
    }
  }
}

function fromCrd(r: Resource, meshes: Map<string, AmMesh>, set: AppMeshSet): void {
  const spec = (r.spec ?? {}) as { awsName?: string; meshRef?: { name: string } };
  const ns = r.namespace;
  const onlyMesh = meshes.size === 1 ? [...meshes.values()][0] : undefined;
  const meshRef = spec.meshRef
    ? { by: "k8s" as const, name: spec.meshRef.name, path: ["spec", "meshRef", "name"] }
    : undefined;
  const mesh = spec.meshRef ? meshes.get(spec.meshRef.name)?.name : onlyMesh?.name;
  const base = (defaultName: string) => ({
    style: "k8s" as const,
    resource: r,
    name: spec.awsName ?? defaultName,
    mesh,
    meshRef,
    namespace: ns,
    modelName: r.name,
    specPath: ["spec"],
  });
  const selector = (s?: { matchLabels?: Record<string, string>; matchExpressions?: unknown[] }) => ({
    selector: s ? (s.matchLabels ?? {}) : undefined,
    selectorExpressions: (s?.matchExpressions?.length ?? 0) > 0,
  });
  switch (r.kind) {
    case "VirtualNode": {
      const s = r.spec as VirtualNodeCrdSpec;
      set.add({
        ...base(`${r.name}_${ns}`),
        kind: "VirtualNode",
        spec: s,
        ...selector(s.podSelector),
        backendGroups: s.backendGroups !== undefined,
      });
      return;
    }
    case "VirtualService": {
      const s = r.spec as VirtualServiceCrdSpec;
      set.add({ ...base(`${r.name}.${ns}`), kind: "VirtualService", provider: s.provider });
      return;
    }
    case "VirtualRouter": {
      const s = r.spec as VirtualRouterCrdSpec;
      const router: AmRouter = {
        ...base(`${r.name}_${ns}`),
        kind: "VirtualRouter",
        listeners: s.listeners,
        routes: [],
      };
      router.routes = (s.routes ?? []).map((route, i) => ({
        ...base(route.name),
        name: route.name,
        kind: "Route" as const,
        spec: route,
        specPath: ["spec", "routes", i],
      }));
      set.add(router);
      return;
    }
    case "VirtualGateway": {
      const s = r.spec as VirtualGatewayCrdSpec;
      set.add({
        ...base(`${r.name}_${ns}`),
        kind: "VirtualGateway",
        spec: s,
        ...selector(s.podSelector),
        hasRouteSelectors: s.namespaceSelector !== undefined || s.gatewayRouteSelector !== undefined,
      });
      return;
    }
    case "GatewayRoute": {
      const s = r.spec as GatewayRouteCrdSpec;
      const g = s.virtualGatewayRef;
      set.add({
        ...base(`${r.name}_${ns}`),
        kind: "GatewayRoute",
        spec: s,
        gatewayRef: g
          ? { by: "k8s", name: g.name, namespace: g.namespace, field: "virtualGatewayRef" }
          : undefined,
        gatewayRefPath: ["spec", "virtualGatewayRef"],
      });
      return;
    }
  }
}

/** All App Mesh objects of `resources`, both forms, with CloudFormation routes linked to their routers. */
export function collectAppMesh(resources: readonly Resource[]): AppMeshSet {
  const set = new AppMeshSet();
  const crdMeshes = new Map<string, AmMesh>();
  for (const r of resources) {
    if (r.group === CFN_GROUP) fromCloudFormation(r, set);
    else if (r.group === APPMESH_GROUP && r.kind === "Mesh") {
      const s = (r.spec ?? {}) as MeshCrdSpec;
      const m: AmMesh = {
        style: "k8s",
        resource: r,
        name: s.awsName ?? r.name,
        namespace: "",
        modelName: r.name,
        specPath: ["spec"],
        kind: "Mesh",
        egressFilter: s.egressFilter?.type,
        serviceDiscoveryField: s.meshServiceDiscovery ? "meshServiceDiscovery" : undefined,
        hasNamespaceSelector: s.namespaceSelector !== undefined,
      };
      m.mesh = m.name;
      crdMeshes.set(r.name, m);
      set.add(m);
    }
  }
  for (const r of resources) if (r.group === APPMESH_GROUP && r.kind !== "Mesh") fromCrd(r, crdMeshes, set);
  for (const route of set.routes) set.routerOf(route)?.routes.push(route);
  return set;
}

/** A field path in the object's own spelling, under its spec. */
export function specPath(o: AmObject, ...segments: PathSegment[]): PathSegment[] {
  return [...o.specPath, ...segments.map((s) => (typeof s === "number" ? s : key(o.style, s)))];
}
