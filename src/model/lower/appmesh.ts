// Lowers AWS App Mesh (CloudFormation AWS::AppMesh::* and appmesh.k8s.aws CRDs alike) into the model,
// as a set because App Mesh objects reference each other.
//
// Namespaces: objects lowered from CloudFormation go to a namespace named after their mesh (the mesh is
// App Mesh's unit of isolation, and a template has no Kubernetes namespace); CRD objects keep their own.
// Workloads join CloudFormation-defined objects by label (APPMESH_LABELS): `appmesh.skein.dev/service`
// = the DNS hostname or `<service>.<namespace>` of the Cloud Map service they are registered under
// (plus the Cloud Map attributes as labels), and `appmesh.skein.dev/virtual-node` = the node whose
// sidecar configuration they get. CRD objects use their pod selectors.
//
// - A virtual node with listeners and service discovery becomes (part of) the Service named by its DNS
//   hostname or Cloud Map `service.namespace`. Nodes sharing one become subsets of that Service: their
//   Cloud Map attributes (or, for DNS, the node's own selector) are the subset labels. Health checks,
//   outlier detection and connection pools of the listeners go into a DestinationPolicy.
// - Its backends become a SidecarScope selecting the node's workloads, with egress to the backend
//   virtual services only, and the mesh's egress filter (DROP_ALL → REGISTRY_ONLY; App Mesh's default
//   is DROP_ALL). A mesh with DROP_ALL also makes the mesh-wide default REGISTRY_ONLY, unless a mesh
//   configuration (IstioOperator) already set it.
// - A virtual service becomes a RouteTable for its name. A node provider gets all the traffic, and the
//   name becomes an alias of the node's Service; a router provider gets its routes, matched by priority
//   (0 first; routes without one after, longest path first, as App Mesh orders them), and a Service
//   for the name with the router's listener ports.
// - App Mesh defaults are written out: a 15 s per-request timeout, and the default retry policy (2
//   retries on HTTP 503, gRPC UNAVAILABLE, connect-failure and refused-stream) where none is given.
//   A node listener's per-request timeout applies to traffic routed straight to the node (a virtual
//   service whose provider is the node); behind a router, the route's timeout applies.
// - Weights stay relative, as App Mesh defines them (RouteTable.origin "appmesh").
// - A virtual gateway becomes a Gateway; its gateway routes become one RouteTable bound to it, in
//   priority order, with App Mesh's default rewrites (the host to the target virtual service's name,
//   a matched prefix to "/").
// - Fields accepted but not lowered (TLS, logging, IP preferences, listener idle timeouts, header range
//   matches, …) are reported once each, where they are written, as SKEIN_W_NO_EFFECT.

import {
  type AmGateway,
  type AmGatewayRoute,
  type AmMesh,
  type AmNode,
  type AmObject,
  type AmRoute,
  type AmRouter,
  type AmVirtualService,
  APPMESH_LABELS,
  AppMeshSet,
  collectAppMesh,
  specPath,
} from "../../api/appmesh/objects.js";
import type {
  GrpcGatewayRouteSpec,
  GrpcRouteSpec,
  HeaderMatchSpec,
  HttpGatewayRouteSpec,
  HttpRouteSpec,
  NodeListener,
  TcpRouteSpec,
  WeightedTargetSpec,
} from "../../api/appmesh/spec.js";
import { Codes } from "../../api/codes.js";
import type { Resource } from "../../api/resource.js";
import type { PathSegment } from "../../api/yaml.js";
import type { ModelBuilder } from "../builder.js";
import type {
  DestinationPolicy,
  HeaderMatch,
  HeaderOperations,
  HttpRoute,
  Protocol,
  RequestMatch,
  RetryPolicy,
  RouteDestination,
  RouteTable,
  Service,
  StringMatch,
  Subset,
  TcpRoute,
  TrafficPolicy,
} from "../types.js";
import type { SetLowering } from "./types.js";

const PROTOCOL: Record<string, Protocol> = { http: "HTTP", http2: "HTTP2", grpc: "GRPC", tcp: "TCP" };

/** App Mesh's per-request timeout when a route does not set one (HttpTimeout.perRequest, GrpcTimeout). */
export const APPMESH_DEFAULT_TIMEOUT_MS = 15_000;

/** App Mesh's default route retry policy ("Envoy defaults set by App Mesh"). */
export const APPMESH_DEFAULT_RETRIES: RetryPolicy = {
  attempts: 2,
  retryOn: ["503", "unavailable", "connect-failure", "refused-stream"],
};

/**
 * App Mesh retry events → Envoy retry_on. App Mesh documents what each event covers, and that
 * server-error and gateway-error include Envoy's `reset`:
 * - server-error: HTTP 500–508, 510, 511 (listed as status codes: Envoy's `5xx` would add 509 and
 *   connect failures) and reset;
 * - gateway-error: Envoy's gateway-error (502, 503, 504) and reset;
 * - client-error: HTTP 409 only, which is exactly Envoy's `retriable-4xx`;
 * - stream-error: refused-stream;
 * - connection-error (TCP): connect-failure;
 * - gRPC events have the same names as Envoy's gRPC retry_on conditions.
 */
export const RETRY_ON: Record<string, string[]> = {
  "server-error": ["500", "501", "502", "503", "504", "505", "506", "507", "508", "510", "511", "reset"],
  "gateway-error": ["gateway-error", "reset"],
  "client-error": ["retriable-4xx"],
  "stream-error": ["refused-stream"],
  "connection-error": ["connect-failure"],
  cancelled: ["cancelled"],
  "deadline-exceeded": ["deadline-exceeded"],
  internal: ["internal"],
  "resource-exhausted": ["resource-exhausted"],
  unavailable: ["unavailable"],
};

const noHeaderOps = (): { request: HeaderOperations; response: HeaderOperations } => ({
  request: { set: {}, add: {}, remove: [] },
  response: { set: {}, add: {}, remove: [] },
});

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The hostname a virtual node is discovered under. */
export function nodeHostname(n: AmNode): string | undefined {
  const sd = n.spec.serviceDiscovery;
  if (sd?.dns) return sd.dns.hostname;
  if (sd?.awsCloudMap) return `${sd.awsCloudMap.serviceName}.${sd.awsCloudMap.namespaceName}`;
  return undefined;
}

function cloudMapLabels(n: AmNode): Record<string, string> | undefined {
  const cm = n.spec.serviceDiscovery?.awsCloudMap;
  return cm ? Object.fromEntries((cm.attributes ?? []).map((a) => [a.key, a.value])) : undefined;
}

function intersect(selectors: Record<string, string>[]): Record<string, string> {
  const [first, ...rest] = selectors;
  return Object.fromEntries(Object.entries(first ?? {}).filter(([k, v]) => rest.every((s) => s[k] === v)));
}

/** Routes with a priority first (lowest first), then the others, longest match first (App Mesh's order). */
function byPriority<T>(
  items: readonly T[],
  priority: (t: T) => number | undefined,
  length: (t: T) => number,
): T[] {
  return items
    .map((t, i) => ({ t, i, p: priority(t), l: length(t) }))
    .sort((a, b) => {
      if (a.p !== undefined && b.p !== undefined) return a.p - b.p || a.i - b.i;
      if (a.p !== undefined) return -1;
      if (b.p !== undefined) return 1;
      return b.l - a.l || a.i - b.i;
    })
    .map((x) => x.t);
}

function matchLength(m: { prefix?: string; path?: { exact?: string; regex?: string } } | undefined): number {
  return (m?.prefix ?? m?.path?.exact ?? m?.path?.regex ?? "").length;
}

interface NodeService {
  service: Service;
  subset?: string;
}

class AppMeshLowering {
  private readonly nodeServices = new Map<AmNode, NodeService>();

  constructor(
    private readonly set: AppMeshSet,
    private readonly b: ModelBuilder,
  ) {}

  run(): void {
    this.meshes();
    this.nodeServicesAndPolicies();
    this.sidecars();
    for (const vs of this.set.services) this.virtualService(vs);
    for (const g of this.set.gateways) this.gateway(g);
    this.gatewayRoutes();
    this.routeFieldWarnings();
  }

  // ── Meshes ────────────────────────────────────────────────────────────────────────────────────

  private meshOf(o: AmObject): AmMesh | undefined {
    return this.set.meshes.find((m) => m.name === o.mesh);
  }

  private meshes(): void {
    const crdMeshes = this.set.meshes.filter((m) => m.style === "k8s");
    for (const m of this.set.meshes) {
      if (m.serviceDiscoveryField)
        this.noEffect(m, [...m.specPath, m.serviceDiscoveryField], `${m.serviceDiscoveryField}.ipPreference`);
      if (m.hasNamespaceSelector && crdMeshes.length > 1)
        this.noEffect(
          m,
          ["spec", "namespaceSelector"],
          "namespaceSelector",
          "Skein has no Namespace objects to match it: give each App Mesh object a spec.meshRef to say its mesh",
        );
    }
    const dropAll = this.set.meshes.find((m) => (m.egressFilter ?? "DROP_ALL") === "DROP_ALL");
    if (!dropAll) return;
    if (this.b.meshConfigSource) {
      if (this.b.model.meshConfig.outboundTrafficPolicy !== "REGISTRY_ONLY")
        this.noEffect(
          dropAll,
          specPath(dropAll, "egressFilter"),
          "the mesh-wide part of egress filter DROP_ALL",
          "the mesh configuration sets outboundTrafficPolicy; DROP_ALL still applies to this mesh's virtual nodes",
        );
      return;
    }
    this.b.model.meshConfig.outboundTrafficPolicy = "REGISTRY_ONLY";
  }

  // ── Virtual nodes: services, subsets, destination policies ───────────────────────────────────

  private nodeServicesAndPolicies(): void {
    const groups = new Map<string, AmNode[]>();
    for (const n of this.set.nodes) {
      this.nodeFieldWarnings(n);
      const host = nodeHostname(n);
      if (!host || !n.spec.listeners?.length) continue;
      groups.set(host, [...(groups.get(host) ?? []), n]);
    }
    for (const [host, nodes] of groups) {
      const first = nodes[0] as AmNode;
      const ports = new Map<number, NodeListener["portMapping"]>();
      for (const n of nodes)
        for (const l of n.spec.listeners ?? [])
          if (!ports.has(l.portMapping.port)) ports.set(l.portMapping.port, l.portMapping);
      const selectors = nodes
        .map((n) => (n.style === "cfn" ? { [APPMESH_LABELS.service]: host } : n.selector))
        .filter((s): s is Record<string, string> => s !== undefined);
      let service = this.b.model.services.find((s) => s.hostname === host);
      if (!service) {
        service = {
          hostname: host,
          namespace: first.namespace,
          ports: [...ports.values()].map((p) => ({
            number: p.port,
            name: `${p.protocol}-${p.port}`,
            protocol: PROTOCOL[p.protocol] as Protocol,
          })),
          selector: selectors.length ? intersect(selectors) : undefined,
          location: "MESH_INTERNAL",
          resolution: "STATIC",
          endpoints: [],
          exportTo: ["*"],
          aliases: [],
          source: first.resource.source,
        };
        this.b.model.services.push(service);
      }
      const subsets = nodes.length > 1 || nodes.some((n) => Object.keys(cloudMapLabels(n) ?? {}).length > 0);
      for (const n of nodes) this.nodeServices.set(n, { service, subset: subsets ? n.name : undefined });
      const policies = nodes.map((n) => this.nodePolicy(n));
      if (!subsets && !policies[0]) continue;
      const policy: DestinationPolicy = {
        name: nodes.length === 1 ? first.modelName : host,
        namespace: service.namespace,
        host,
        trafficPolicy: subsets ? undefined : policies[0],
        subsets: subsets
          ? nodes.map(
              (n, i): Subset => ({
                name: n.name,
                labels:
                  cloudMapLabels(n) ??
                  (n.style === "cfn" ? { [APPMESH_LABELS.virtualNode]: n.name } : (n.selector ?? {})),
                trafficPolicy: policies[i],
              }),
            )
          : [],
        exportTo: ["*"],
        source: first.resource.source,
      };
      this.b.model.destinationPolicies.push(policy);
    }
  }

  /** A node's listener settings as a traffic policy: at the top for one listener, else per port. */
  private nodePolicy(n: AmNode): TrafficPolicy | undefined {
    const listeners = n.spec.listeners ?? [];
    const per = listeners
      .map((l) => ({ port: l.portMapping.port, policy: listenerPolicy(l) }))
      .filter((x) => x.policy !== undefined);
    if (per.length === 0) return undefined;
    if (listeners.length === 1) return { ...per[0]?.policy, portLevelSettings: [] };
    return { portLevelSettings: per.map((x) => ({ port: x.port, ...x.policy })) };
  }

  private nodeFieldWarnings(n: AmNode): void {
    n.spec.listeners?.forEach((l, i) => {
      if (l.tls) this.noEffect(n, specPath(n, "listeners", i, "tls"), "listener TLS");
      for (const [p, t] of Object.entries(l.timeout ?? {}))
        if (t && "idle" in t && t.idle !== undefined)
          this.noEffect(n, specPath(n, "listeners", i, "timeout", p, "idle"), "listener idle timeout");
    });
    n.spec.backends?.forEach((bk, i) => {
      if (bk.virtualService.clientPolicy)
        this.noEffect(
          n,
          specPath(n, "backends", i, "virtualService", "clientPolicy"),
          "backend clientPolicy (TLS)",
        );
    });
    if (n.spec.backendDefaults)
      this.noEffect(n, specPath(n, "backendDefaults"), "backendDefaults (client TLS)");
    if (n.spec.logging) this.noEffect(n, specPath(n, "logging"), "logging (access logs)");
    const dns = n.spec.serviceDiscovery?.dns;
    if (dns?.responseType)
      this.noEffect(n, specPath(n, "serviceDiscovery", "dns", "responseType"), "DNS responseType");
    if (dns?.ipPreference)
      this.noEffect(n, specPath(n, "serviceDiscovery", "dns", "ipPreference"), "DNS ipPreference");
    if (n.spec.serviceDiscovery?.awsCloudMap?.ipPreference)
      this.noEffect(
        n,
        specPath(n, "serviceDiscovery", "awsCloudMap", "ipPreference"),
        "Cloud Map ipPreference",
      );
    if (n.selectorExpressions)
      this.noEffect(
        n,
        ["spec", "podSelector", "matchExpressions"],
        "podSelector.matchExpressions",
        "use matchLabels",
      );
    if (n.backendGroups)
      this.noEffect(n, ["spec", "backendGroups"], "backendGroups", "list the backends instead");
  }

  // ── Virtual nodes: sidecars ──────────────────────────────────────────────────────────────────

  private sidecars(): void {
    for (const n of this.set.nodes) {
      if (!n.selector) continue; // a CRD node without podSelector has no pods
      const hosts: string[] = [];
      n.spec.backends?.forEach((bk, i) => {
        const target = bk.virtualService.target;
        if (AppMeshSet.unresolved(n, specPath(n, "backends", i, "virtualService", target.field))) return;
        const vs = this.set.find("VirtualService", target, n);
        const name = vs?.name ?? (target.by === "name" ? target.name : undefined);
        if (name && !hosts.includes(`*/${name}`)) hosts.push(`*/${name}`);
      });
      const mesh = this.meshOf(n);
      this.b.model.sidecars.push({
        name: n.modelName,
        namespace: n.namespace,
        selector: n.selector,
        egress: [{ hosts }],
        outboundTrafficPolicy: mesh
          ? (mesh.egressFilter ?? "DROP_ALL") === "DROP_ALL"
            ? "REGISTRY_ONLY"
            : "ALLOW_ANY"
          : undefined,
        source: n.resource.source,
      });
    }
  }

  // ── Virtual services ─────────────────────────────────────────────────────────────────────────

  private virtualService(vs: AmVirtualService): void {
    const rt: RouteTable = {
      origin: "appmesh",
      name: vs.modelName,
      namespace: vs.namespace,
      hosts: [vs.name],
      gateways: ["mesh"],
      exportTo: ["*"],
      http: [],
      tcp: [],
      source: vs.resource.source,
    };
    const provider = vs.provider;
    if (provider?.virtualNode) {
      const path = specPath(vs, "provider", "virtualNode", provider.virtualNode.target.field);
      const node = AppMeshSet.unresolved(vs, path)
        ? undefined
        : this.set.find("VirtualNode", provider.virtualNode.target, vs);
      if (node) this.routeToNode(rt, vs, node, path);
    } else if (provider?.virtualRouter) {
      const path = specPath(vs, "provider", "virtualRouter", provider.virtualRouter.target.field);
      const router = AppMeshSet.unresolved(vs, path)
        ? undefined
        : this.set.find("VirtualRouter", provider.virtualRouter.target, vs);
      if (router) this.routeThroughRouter(rt, vs, router);
    }
    if (rt.http.length || rt.tcp.length) this.b.model.routeTables.push(rt);
  }

  /** A virtual service provided by a node: all its traffic goes to the node; its name resolves to it. */
  private routeToNode(rt: RouteTable, vs: AmVirtualService, node: AmNode, path: PathSegment[]): void {
    const ns = this.nodeServices.get(node);
    if (!ns) return; // no listeners or no service discovery: analysis reports it
    if (ns.service.hostname !== vs.name && !ns.service.aliases.includes(vs.name))
      ns.service.aliases.push(vs.name);
    const listeners = node.spec.listeners ?? [];
    const web = listeners.filter((l) => l.portMapping.protocol !== "tcp");
    const tcp = listeners.filter((l) => l.portMapping.protocol === "tcp");
    const dest = (port: number | undefined): RouteDestination => ({
      host: ns.service.hostname,
      subset: ns.subset,
      port,
      weight: 100,
      path,
    });
    if (web.length) {
      // A listener's per-request timeout bounds what is routed straight to the node.
      const perRequest = web
        .map((l) => l.timeout?.[l.portMapping.protocol as "http" | "http2" | "grpc"]?.perRequest)
        .find((t) => t !== undefined);
      rt.http.push({
        matches: [],
        destinations: [dest(web.length === 1 ? web[0]?.portMapping.port : undefined)],
        timeoutMs: perRequest ?? APPMESH_DEFAULT_TIMEOUT_MS,
        retries: APPMESH_DEFAULT_RETRIES,
        mirrors: [],
        headers: noHeaderOps(),
        source: vs.resource.source,
        path,
      });
    }
    for (const l of tcp)
      rt.tcp.push({
        matches: tcp.length > 1 ? [{ port: l.portMapping.port, destinationSubnets: [] }] : [],
        destinations: [dest(l.portMapping.port)],
        source: vs.resource.source,
        path,
      });
  }

  /** A virtual service provided by a router: the router's routes, and a Service for the name. */
  private routeThroughRouter(rt: RouteTable, vs: AmVirtualService, router: AmRouter): void {
    const known = this.b.model.services.some((s) => s.hostname === vs.name || s.aliases.includes(vs.name));
    if (!known)
      this.b.model.services.push({
        hostname: vs.name,
        namespace: vs.namespace,
        ports: router.listeners.map((l) => ({
          number: l.portMapping.port,
          name: `${l.portMapping.protocol}-${l.portMapping.port}`,
          protocol: PROTOCOL[l.portMapping.protocol] as Protocol,
        })),
        // No workloads of its own: traffic to the name is always routed by the router's routes.
        selector: undefined,
        location: "MESH_INTERNAL",
        resolution: "STATIC",
        endpoints: [],
        exportTo: ["*"],
        aliases: [],
        source: vs.resource.source,
      });
    const ordered = byPriority(
      router.routes,
      (r) => r.spec.priority,
      (r) => {
        const s = r.spec;
        if (s.grpcRoute)
          return `/${s.grpcRoute.match.serviceName ?? ""}/${s.grpcRoute.match.methodName ?? ""}`.length;
        return matchLength((s.httpRoute ?? s.http2Route)?.match);
      },
    );
    for (const route of ordered) {
      const s = route.spec;
      if (s.httpRoute) rt.http.push(this.httpRoute(route, "httpRoute", s.httpRoute));
      else if (s.http2Route) rt.http.push(this.httpRoute(route, "http2Route", s.http2Route));
      else if (s.grpcRoute) rt.http.push(this.grpcRoute(route, s.grpcRoute));
      else if (s.tcpRoute) rt.tcp.push(this.tcpRoute(route, s.tcpRoute));
    }
  }

  private destinations(route: AmRoute, kind: string, targets: WeightedTargetSpec[]): RouteDestination[] {
    const out: RouteDestination[] = [];
    targets.forEach((t, i) => {
      const path = specPath(route, kind, "action", "weightedTargets", i);
      if (AppMeshSet.unresolved(route, [...path, t.target.field])) return;
      const node = this.set.find("VirtualNode", t.target, route);
      const ns = node && this.nodeServices.get(node);
      if (!node || !ns) return; // analysis reports targets that point at nothing
      const ports = (node.spec.listeners ?? []).map((l) => l.portMapping.port);
      // A target port the node does not listen on is reported by analysis, at the target.
      const port =
        t.port !== undefined
          ? ports.includes(t.port)
            ? t.port
            : undefined
          : ports.length === 1
            ? ports[0]
            : undefined;
      out.push({ host: ns.service.hostname, subset: ns.subset, port, weight: t.weight, path });
    });
    return out;
  }

  private retries(r: HttpRouteSpec["retryPolicy"] | GrpcRouteSpec["retryPolicy"]): RetryPolicy {
    if (!r) return APPMESH_DEFAULT_RETRIES;
    const events = [
      ...(r.httpRetryEvents ?? []),
      ...(r.tcpRetryEvents ?? []),
      ...("grpcRetryEvents" in r ? (r.grpcRetryEvents ?? []) : []),
    ];
    return {
      attempts: r.maxRetries,
      perTryTimeoutMs: r.perRetryTimeout,
      retryOn: [...new Set(events.flatMap((e) => RETRY_ON[e] ?? []))],
    };
  }

  private httpRoute(route: AmRoute, kind: "httpRoute" | "http2Route", h: HttpRouteSpec): HttpRoute {
    const path = specPath(route, kind);
    const m = h.match;
    const match: RequestMatch = {
      uri: m.prefix !== undefined ? { kind: "prefix", value: m.prefix } : pathMatch(m.path),
      method: m.method ? { kind: "exact", value: m.method } : undefined,
      scheme: m.scheme ? { kind: "exact", value: m.scheme } : undefined,
      headers: headerMatches(m.headers),
      queryParams: (m.queryParameters ?? []).map((q) => ({
        name: q.name,
        match: q.match ? { kind: "exact" as const, value: q.match.exact } : undefined,
      })),
      ignoreUriCase: false,
      port: m.port,
    };
    return {
      name: route.name,
      matches: isEmpty(match) ? [] : [match],
      destinations: this.destinations(route, kind, h.action.weightedTargets),
      timeoutMs: h.timeout?.perRequest ?? APPMESH_DEFAULT_TIMEOUT_MS,
      retries: this.retries(h.retryPolicy),
      mirrors: [],
      headers: noHeaderOps(),
      source: route.resource.source,
      path,
    };
  }

  private grpcRoute(route: AmRoute, g: GrpcRouteSpec): HttpRoute {
    const path = specPath(route, "grpcRoute");
    const m = g.match;
    const match: RequestMatch = {
      uri: grpcUri(m.serviceName, m.methodName),
      headers: headerMatches(m.metadata),
      queryParams: [],
      ignoreUriCase: false,
      port: m.port,
    };
    return {
      name: route.name,
      matches: isEmpty(match) ? [] : [match],
      destinations: this.destinations(route, "grpcRoute", g.action.weightedTargets),
      timeoutMs: g.timeout?.perRequest ?? APPMESH_DEFAULT_TIMEOUT_MS,
      retries: this.retries(g.retryPolicy),
      mirrors: [],
      headers: noHeaderOps(),
      source: route.resource.source,
      path,
    };
  }

  private tcpRoute(route: AmRoute, t: TcpRouteSpec): TcpRoute {
    return {
      matches: t.match?.port !== undefined ? [{ port: t.match.port, destinationSubnets: [] }] : [],
      destinations: this.destinations(route, "tcpRoute", t.action.weightedTargets),
      source: route.resource.source,
      path: specPath(route, "tcpRoute"),
    };
  }

  /** Warnings for route fields without effect, once per route (not once per virtual service using it). */
  private routeFieldWarnings(): void {
    const routes = [
      ...this.set.routes,
      ...this.set.routers.flatMap((r) => (r.style === "k8s" ? r.routes : [])),
    ];
    for (const route of routes) {
      const s = route.spec;
      for (const kind of ["httpRoute", "http2Route", "grpcRoute"] as const) {
        const h = s[kind];
        if (!h) continue;
        if (h.timeout?.idle !== undefined)
          this.noEffect(route, specPath(route, kind, "timeout", "idle"), "route idle timeout");
        const list =
          "headers" in h.match ? h.match.headers : "metadata" in h.match ? h.match.metadata : undefined;
        const field = kind === "grpcRoute" ? "metadata" : "headers";
        list?.forEach((hm, i) => {
          if (hm.match?.range)
            this.noEffect(
              route,
              specPath(route, kind, "match", field, i, "match", "range"),
              "a range match",
              "Skein matches this header for presence only; use exact, prefix, suffix or regex",
            );
        });
      }
      if (s.tcpRoute?.timeout?.idle !== undefined)
        this.noEffect(route, specPath(route, "tcpRoute", "timeout", "idle"), "TCP route idle timeout");
    }
  }

  // ── Virtual gateways and gateway routes ──────────────────────────────────────────────────────

  private gateway(g: AmGateway): void {
    this.b.model.gateways.push({
      name: g.modelName,
      namespace: g.namespace,
      selector: g.selector,
      listeners: g.spec.listeners.map((l) => ({
        port: l.portMapping.port,
        protocol: PROTOCOL[l.portMapping.protocol] as Protocol,
        hosts: ["*"],
      })),
      source: g.resource.source,
    });
    g.spec.listeners.forEach((l, i) => {
      if (l.tls) this.noEffect(g, specPath(g, "listeners", i, "tls"), "listener TLS");
      if (l.healthCheck)
        this.noEffect(g, specPath(g, "listeners", i, "healthCheck"), "gateway listener healthCheck");
      if (l.connectionPool)
        this.noEffect(g, specPath(g, "listeners", i, "connectionPool"), "gateway listener connectionPool");
    });
    if (g.spec.backendDefaults)
      this.noEffect(g, specPath(g, "backendDefaults"), "backendDefaults (client TLS)");
    if (g.spec.logging) this.noEffect(g, specPath(g, "logging"), "logging (access logs)");
    if (g.selectorExpressions)
      this.noEffect(
        g,
        ["spec", "podSelector", "matchExpressions"],
        "podSelector.matchExpressions",
        "use matchLabels",
      );
  }

  private gatewayRoutes(): void {
    const byGateway = new Map<string, { table: RouteTable; routes: AmGatewayRoute[] }>();
    for (const gr of this.set.gatewayRoutes) {
      const g = this.set.gatewayOf(gr);
      if (!g) {
        if (!gr.gatewayRef && gr.style === "k8s")
          this.noEffect(
            gr,
            ["spec"],
            "this GatewayRoute",
            "Skein cannot tell which VirtualGateway it belongs to (it does not evaluate gateway selectors): set spec.virtualGatewayRef",
          );
        continue; // a named gateway that does not exist is reported by analysis
      }
      const k = `${g.namespace}\u0000${g.modelName}`;
      let entry = byGateway.get(k);
      if (!entry) {
        entry = {
          table: {
            origin: "appmesh",
            name: g.modelName,
            namespace: g.namespace,
            hosts: ["*"],
            gateways: [g.modelName],
            exportTo: ["*"],
            http: [],
            tcp: [],
            source: g.resource.source,
          },
          routes: [],
        };
        byGateway.set(k, entry);
        this.b.model.routeTables.push(entry.table);
      }
      entry.routes.push(gr);
    }
    for (const { table, routes } of byGateway.values()) {
      const ordered = byPriority(
        routes,
        (r) => r.spec.priority,
        (r) => matchLength((r.spec.httpRoute ?? r.spec.http2Route)?.match),
      );
      for (const gr of ordered) {
        const route = this.gatewayRoute(gr);
        if (route) table.http.push(route);
      }
    }
  }

  private gatewayRoute(gr: AmGatewayRoute): HttpRoute | undefined {
    const kind = gr.spec.httpRoute ? "httpRoute" : gr.spec.http2Route ? "http2Route" : "grpcRoute";
    const spec = (gr.spec.httpRoute ?? gr.spec.http2Route ?? gr.spec.grpcRoute) as
      | HttpGatewayRouteSpec
      | GrpcGatewayRouteSpec;
    const path = specPath(gr, kind);
    const targetRef = spec.action.target.virtualService.target;
    const targetPath = specPath(gr, kind, "action", "target", "virtualService", targetRef.field);
    if (AppMeshSet.unresolved(gr, targetPath)) return undefined;
    const vs = this.set.find("VirtualService", targetRef, gr);
    const host = vs?.name ?? (targetRef.by === "name" ? targetRef.name : undefined);
    if (!host) return undefined;
    const m = spec.match;
    const hm = m as HttpGatewayRouteSpec["match"];
    const gm = m as GrpcGatewayRouteSpec["match"];
    const authority: StringMatch | undefined = m.hostname?.exact
      ? { kind: "exact", value: m.hostname.exact }
      : m.hostname?.suffix
        ? { kind: "regex", value: `.*${escapeRegex(m.hostname.suffix)}` }
        : undefined;
    const match: RequestMatch =
      kind === "grpcRoute"
        ? {
            uri: grpcUri(gm.serviceName, undefined),
            authority,
            headers: headerMatches(gm.metadata),
            queryParams: [],
            ignoreUriCase: false,
            port: m.port,
          }
        : {
            uri: hm.prefix !== undefined ? { kind: "prefix", value: hm.prefix } : pathMatch(hm.path),
            method: hm.method ? { kind: "exact", value: hm.method } : undefined,
            authority,
            headers: headerMatches(hm.headers),
            queryParams: (hm.queryParameters ?? []).map((q) => ({
              name: q.name,
              match: q.match ? { kind: "exact" as const, value: q.match.exact } : undefined,
            })),
            ignoreUriCase: false,
            port: m.port,
          };
    // App Mesh rewrites the host to the target virtual service's name and a matched prefix to "/",
    // unless told otherwise.
    const rw = spec.action.rewrite as HttpGatewayRouteSpec["action"]["rewrite"];
    const rewriteAuthority = rw?.hostname?.defaultTargetHostname === "DISABLED" ? undefined : host;
    let rewriteUri: string | undefined;
    if (kind !== "grpcRoute") {
      if (hm.prefix !== undefined)
        rewriteUri = rw?.prefix?.value ?? (rw?.prefix?.defaultPrefix === "DISABLED" ? undefined : "/");
      else if (rw?.path?.exact !== undefined) rewriteUri = rw.path.exact;
    }
    return {
      name: gr.modelName,
      matches: isEmpty(match) ? [] : [match],
      destinations: [
        { host, port: spec.action.target.port, weight: 100, path: specPath(gr, kind, "action", "target") },
      ],
      rewrite:
        rewriteAuthority !== undefined || rewriteUri !== undefined
          ? { authority: rewriteAuthority, uri: rewriteUri }
          : undefined,
      mirrors: [],
      headers: noHeaderOps(),
      source: gr.resource.source,
      path,
    };
  }

  // ── Reporting ────────────────────────────────────────────────────────────────────────────────

  private noEffect(o: AmObject, path: PathSegment[], what: string, hint?: string): void {
    this.b.report(
      o.resource.source,
      path,
      "warning",
      Codes.NO_EFFECT,
      `${what} is accepted but has no effect in Skein yet`,
      hint ?? "remove it, or keep it knowing the proxy ignores it",
    );
  }
}

function listenerPolicy(l: NodeListener): Omit<TrafficPolicy, "portLevelSettings"> | undefined {
  const out: Omit<TrafficPolicy, "portLevelSettings"> = {};
  const hc = l.healthCheck;
  if (hc)
    out.healthChecks = [
      {
        protocol: PROTOCOL[hc.protocol] as "HTTP" | "HTTP2" | "GRPC" | "TCP",
        ...(hc.path !== undefined ? { path: hc.path } : {}),
        ...(hc.port !== undefined ? { port: hc.port } : {}),
        healthyThreshold: hc.healthyThreshold,
        unhealthyThreshold: hc.unhealthyThreshold,
        timeoutMs: hc.timeoutMillis,
        intervalMs: hc.intervalMillis,
      },
    ];
  const od = l.outlierDetection;
  if (od)
    out.outlierDetection = {
      consecutive5xxErrors: od.maxServerErrors,
      intervalMs: od.interval,
      baseEjectionTimeMs: od.baseEjectionDuration,
      maxEjectionPercent: od.maxEjectionPercent,
    };
  const cp = l.connectionPool;
  if (cp?.tcp) out.connectionPool = { tcp: { maxConnections: cp.tcp.maxConnections } };
  else if (cp?.http)
    out.connectionPool = {
      tcp: { maxConnections: cp.http.maxConnections },
      ...(cp.http.maxPendingRequests !== undefined
        ? { http: { http1MaxPendingRequests: cp.http.maxPendingRequests } }
        : {}),
    };
  else if (cp?.http2 ?? cp?.grpc)
    out.connectionPool = { http: { http2MaxRequests: (cp.http2 ?? cp.grpc)?.maxRequests } };
  return Object.keys(out).length ? out : undefined;
}

/** Header (or gRPC metadata) matches. A range match has no model form yet (reported by the lowering). */
function headerMatches(headers: HeaderMatchSpec[] | undefined): HeaderMatch[] {
  return (headers ?? []).map((h) => {
    let match: StringMatch | undefined;
    const mm = h.match;
    if (mm?.exact !== undefined) match = { kind: "exact", value: mm.exact };
    else if (mm?.prefix !== undefined) match = { kind: "prefix", value: mm.prefix };
    else if (mm?.suffix !== undefined) match = { kind: "regex", value: `.*${escapeRegex(mm.suffix)}` };
    else if (mm?.regex !== undefined) match = { kind: "regex", value: mm.regex };
    return { name: h.name, match, invert: h.invert ?? false };
  });
}

function pathMatch(p: { exact?: string; regex?: string } | undefined): StringMatch | undefined {
  if (p?.exact !== undefined) return { kind: "exact", value: p.exact };
  if (p?.regex !== undefined) return { kind: "regex", value: p.regex };
  return undefined;
}

/** gRPC requests are POSTs to /<package.Service>/<Method>. */
function grpcUri(service: string | undefined, method: string | undefined): StringMatch | undefined {
  if (service === undefined) return undefined;
  return method === undefined
    ? { kind: "prefix", value: `/${service}/` }
    : { kind: "exact", value: `/${service}/${method}` };
}

function isEmpty(m: RequestMatch): boolean {
  return (
    m.uri === undefined &&
    m.method === undefined &&
    m.scheme === undefined &&
    m.authority === undefined &&
    m.headers.length === 0 &&
    m.queryParams.length === 0 &&
    m.port === undefined
  );
}

export const appMeshLowering: SetLowering = {
  name: "appmesh",
  lower(resources: readonly Resource[], b: ModelBuilder): void {
    new AppMeshLowering(collectAppMesh(resources), b).run();
  },
};
