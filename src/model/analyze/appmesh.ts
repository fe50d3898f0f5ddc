// App Mesh references that point at nothing (SKEIN_E_APPMESH_REF_NOT_FOUND), reported at the field that
// makes them: a backend naming an undefined virtual service, a provider or route target naming a missing
// node or router, a route whose router is missing, a gateway route whose gateway or target is missing,
// and objects whose MeshName/meshRef names no mesh. Route targets must also be able to receive the
// traffic (a listener, on the port given). Fields CloudFormation could not resolve were reported when
// the template was read and are skipped here.
import {
  type AmKind,
  type AmObject,
  type AmRoute,
  AppMeshSet,
  collectAppMesh,
  parseArn,
  specPath,
} from "../../api/appmesh/objects.js";
import { type AmRef, key, type WeightedTargetSpec } from "../../api/appmesh/spec.js";
import { Codes } from "../../api/codes.js";
import type { PathSegment } from "../../api/yaml.js";
import type { Diagnostic } from "../../lib/diagnostics.js";
import { closest } from "../../lib/suggest.js";
import { diagnosticAt } from "../builder.js";
import type { AnalysisContext, Analyzer } from "./types.js";

const WORDS: Record<AmKind, string> = {
  Mesh: "mesh",
  VirtualNode: "virtual node",
  VirtualService: "virtual service",
  VirtualRouter: "virtual router",
  Route: "route",
  VirtualGateway: "virtual gateway",
  GatewayRoute: "gateway route",
};

const CFN_TYPE: Record<AmKind, string> = {
  Mesh: "AWS::AppMesh::Mesh",
  VirtualNode: "AWS::AppMesh::VirtualNode",
  VirtualService: "AWS::AppMesh::VirtualService",
  VirtualRouter: "AWS::AppMesh::VirtualRouter",
  Route: "AWS::AppMesh::Route",
  VirtualGateway: "AWS::AppMesh::VirtualGateway",
  GatewayRoute: "AWS::AppMesh::GatewayRoute",
};

class RefChecker {
  readonly out: Diagnostic[] = [];
  constructor(private readonly set: AppMeshSet) {}

  /** Checks that `ref`, written at `path` of `from`, points at an object of `kind`. */
  check<K extends AmKind>(
    kind: K,
    ref: AmRef,
    from: AmObject,
    path: PathSegment[],
  ): Extract<AmObject, { kind: K }> | undefined {
    if (AppMeshSet.unresolved(from, path)) return undefined;
    const found = this.set.find(kind, ref, from);
    if (found) return found;
    const word = WORDS[kind];
    const guess = ref.by === "arn" ? undefined : closest(ref.name, this.set.candidates(kind, ref, from));
    const mean = guess ? `; did you mean "${guess}"?` : "";
    let message: string;
    let hint: string;
    if (ref.by === "name") {
      const where = kind === "Mesh" || !from.mesh ? "" : ` in mesh "${from.mesh}"`;
      message = `${word} "${ref.name}" is not defined${where}${mean}`;
      hint = ref.name.startsWith("arn:")
        ? `this is an ARN (what !Ref or \${Name} in Fn::Sub returns for an App Mesh resource), but ${ref.field} takes a name: use !GetAtt <LogicalId>.${kind === "Mesh" ? "MeshName" : `${kind}Name`}`
        : `define an ${CFN_TYPE[kind]} named "${ref.name}"${where}, or fix the name`;
    } else if (ref.by === "k8s") {
      const ns = kind === "Mesh" ? "" : `${ref.namespace ?? from.resource.namespace}/`;
      message = `${kind} ${ns}${ref.name} is not defined${mean}`;
      hint = `create the ${kind} (apiVersion appmesh.k8s.aws/v1beta2), or fix ${ref.field}`;
    } else {
      const arn = parseArn(ref.arn);
      message =
        arn?.kind === kind
          ? `no ${word} "${arn.name}" in mesh "${arn.mesh}" is defined, as ${ref.field} ${ref.arn} requires`
          : `${ref.field} ${ref.arn} is not the ARN of a ${word}`;
      hint = `define it in this configuration, or reference a ${kind} by ${ref.field.replace(/ARN$/, "Ref")}`;
    }
    this.out.push(
      diagnosticAt(from.resource.source, path, "error", Codes.APPMESH_REF_NOT_FOUND, message, hint),
    );
    return undefined;
  }

  meshOf(o: AmObject): void {
    if (o.kind === "Mesh" || !o.meshRef) return;
    const ref: AmRef =
      o.meshRef.by === "name"
        ? { by: "name", name: o.meshRef.name, field: "MeshName" }
        : { by: "k8s", name: o.meshRef.name, field: "meshRef" };
    this.check("Mesh", ref, o, o.meshRef.path);
  }

  targets(route: AmRoute, kind: string, targets: WeightedTargetSpec[]): void {
    targets.forEach((t, i) => {
      const path = specPath(route, kind, "action", "weightedTargets", i);
      const node = this.check("VirtualNode", t.target, route, [...path, t.target.field]);
      if (!node) return;
      const ports = (node.spec.listeners ?? []).map((l) => l.portMapping.port);
      if (ports.length === 0)
        this.out.push(
          diagnosticAt(
            route.resource.source,
            [...path, t.target.field],
            "error",
            Codes.PORT_NOT_FOUND,
            `virtual node "${node.name}" has no listener, so it cannot receive this route's traffic`,
            "give the virtual node a listener (and service discovery), or route to another node",
          ),
        );
      else if (t.port !== undefined && !ports.includes(t.port))
        this.out.push(
          diagnosticAt(
            route.resource.source,
            specPath(route, kind, "action", "weightedTargets", i, "port"),
            "error",
            Codes.PORT_NOT_FOUND,
            `virtual node "${node.name}" has no listener on port ${t.port}`,
            `its listener ports: ${ports.join(", ")}`,
          ),
        );
      else if (t.port === undefined && ports.length > 1)
        this.out.push(
          diagnosticAt(
            route.resource.source,
            path,
            "error",
            Codes.PORT_NOT_FOUND,
            `virtual node "${node.name}" has several listeners (${ports.join(", ")}): say which one with ${key(route.style, "port")}`,
            "App Mesh needs the target port when the node has more than one listener",
          ),
        );
    });
  }

  route(route: AmRoute): void {
    const s = route.spec;
    if (s.httpRoute) this.targets(route, "httpRoute", s.httpRoute.action.weightedTargets);
    if (s.http2Route) this.targets(route, "http2Route", s.http2Route.action.weightedTargets);
    if (s.grpcRoute) this.targets(route, "grpcRoute", s.grpcRoute.action.weightedTargets);
    if (s.tcpRoute) this.targets(route, "tcpRoute", s.tcpRoute.action.weightedTargets);
  }
}

export const appMeshAnalyzer: Analyzer = {
  name: "appmesh",
  run(ctx: AnalysisContext): Diagnostic[] {
    const set = collectAppMesh(ctx.resources);
    const c = new RefChecker(set);
    for (const n of set.nodes) {
      c.meshOf(n);
      n.spec.backends?.forEach((bk, i) => {
        const t = bk.virtualService.target;
        c.check("VirtualService", t, n, specPath(n, "backends", i, "virtualService", t.field));
      });
    }
    for (const vs of set.services) {
      c.meshOf(vs);
      const p = vs.provider;
      if (p?.virtualNode)
        c.check(
          "VirtualNode",
          p.virtualNode.target,
          vs,
          specPath(vs, "provider", "virtualNode", p.virtualNode.target.field),
        );
      if (p?.virtualRouter)
        c.check(
          "VirtualRouter",
          p.virtualRouter.target,
          vs,
          specPath(vs, "provider", "virtualRouter", p.virtualRouter.target.field),
        );
    }
    for (const r of set.routers) {
      c.meshOf(r);
      if (r.style === "k8s") for (const route of r.routes) c.route(route);
    }
    for (const route of set.routes) {
      c.meshOf(route);
      if (route.routerRef)
        c.check("VirtualRouter", route.routerRef, route, ["Properties", "VirtualRouterName"]);
      c.route(route);
    }
    for (const g of set.gateways) c.meshOf(g);
    for (const gr of set.gatewayRoutes) {
      c.meshOf(gr);
      if (gr.gatewayRef && gr.gatewayRefPath) c.check("VirtualGateway", gr.gatewayRef, gr, gr.gatewayRefPath);
      for (const kind of ["httpRoute", "http2Route", "grpcRoute"] as const) {
        const t = gr.spec[kind]?.action.target.virtualService.target;
        if (t)
          c.check("VirtualService", t, gr, specPath(gr, kind, "action", "target", "virtualService", t.field));
      }
    }
    return c.out;
  },
};
