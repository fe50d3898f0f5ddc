// The dashboard on the control plane's HTTP API (:15080): the page at `/`, its bundle under `/dashboard/`
// (built into dist/dashboard by scripts/build-dashboard.mjs, served from disk, nothing from a CDN), and the
// JSON it polls: `/api/v1/graph` (workload versions and the traffic between them, from sidecar telemetry)
// and `/api/v1/services[/<ns>/<name>]` (canary split configured and observed, routes, recent errors).
// The page polls every two seconds; scrapes happen every few, so polling costs nothing a stream would save.
import { readFile } from "node:fs/promises";
import type { IncomingMessage, ServerResponse } from "node:http";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveHost, selectorMatches } from "../model/hosts.js";
import type { WorkloadInstance } from "../model/snapshot.js";
import type { MeshModel, RequestMatch, RouteDestination, RouteTable, StringMatch } from "../model/types.js";
import type {
  ErrorEvent,
  GraphEdge,
  GraphNode,
  GraphResponse,
  RouteSummary,
  ServiceDetail,
  ServicesResponse,
  SplitEntry,
} from "./dashboard-types.js";
import {
  type EdgeTraffic,
  joinHalfEdges,
  type PeerLabels,
  summarize,
  type TelemetryError,
  type TelemetryScraper,
} from "./telemetry.js";

export const DashboardCodes = {
  NOT_BUILT: "SKEIN_E_DASHBOARD_NOT_BUILT",
  NOT_FOUND: "SKEIN_E_API_NOT_FOUND",
} as const;

/** Where `npm run build` puts the bundle: dist/dashboard, from src/control-plane or dist/control-plane alike. */
export const DEFAULT_ASSETS_DIR = fileURLToPath(new URL("../../dist/dashboard/", import.meta.url));

export interface DashboardSources {
  /** The accepted configuration's model, if any. */
  model: () => MeshModel | undefined;
  workloads: () => WorkloadInstance[];
  telemetry: TelemetryScraper;
  assetsDir?: string;
}

const UNKNOWN = "unknown";

/** The graph node id of an app version. */
export const nodeId = (namespace: string, app: string, version: string) =>
  app === UNKNOWN && namespace === UNKNOWN ? UNKNOWN : `${namespace}/${app}/${version}`;

function shortName(hostname: string, namespace: string): string {
  const suffix = `.${namespace}.svc.cluster.local`;
  return hostname.endsWith(suffix) ? hostname.slice(0, -suffix.length) : hostname;
}

const appOf = (w: WorkloadInstance) => w.labels.app ?? w.labels["service.istio.io/canonical-name"] ?? w.name;
const versionOf = (w: WorkloadInstance) =>
  w.labels.version ?? w.labels["service.istio.io/canonical-revision"] ?? UNKNOWN;

/** Builds graph nodes and edges from the registry, the model's services and the telemetry window. */
export class GraphBuilder {
  private readonly nodes = new Map<string, GraphNode>();
  private readonly instances: WorkloadInstance[];

  constructor(
    private readonly model: MeshModel | undefined,
    workloads: WorkloadInstance[],
  ) {
    this.instances = workloads;
    for (const w of workloads) {
      const node = this.node(w.namespace, appOf(w), versionOf(w), this.serviceFor(w));
      node.instances++;
      if (!node.workloads.includes(w.name)) node.workloads.push(w.name);
    }
  }

  /** The mesh service (short name) whose selector picks this workload, when one does. */
  private serviceFor(w: WorkloadInstance): string | undefined {
    const s = this.model?.services.find(
      (s) =>
        s.namespace === w.namespace &&
        s.location === "MESH_INTERNAL" &&
        s.selector &&
        Object.keys(s.selector).length > 0 &&
        selectorMatches(s.selector, w.labels),
    );
    return s ? shortName(s.hostname, s.namespace) : undefined;
  }

  private node(namespace: string, app: string, version: string, service?: string): GraphNode {
    const id = nodeId(namespace, app, version);
    let n = this.nodes.get(id);
    if (!n) {
      n = { id, namespace, app, version, service, workloads: [], instances: 0 };
      this.nodes.set(id, n);
    }
    n.service ??= service;
    return n;
  }

  /**
   * The node a metrics peer belongs to. The workload label is matched to a registry instance by name, or
   * as a Kubernetes-style owner (`order-service-v1` owns instance `order-service-v1-1-5`); the labels'
   * canonical service and version win where the reporter set them.
   */
  nodeForPeer(p: PeerLabels, service?: string, serviceNamespace?: string): GraphNode {
    if (p.workload === UNKNOWN && service && serviceNamespace && p.namespace === UNKNOWN)
      // A service called whose workloads report nothing: one node for the service.
      return this.node(serviceNamespace, service, UNKNOWN, service);
    if (p.workload === UNKNOWN && p.namespace === UNKNOWN) return this.node(UNKNOWN, UNKNOWN, UNKNOWN);
    const inNs = this.instances.filter((w) => w.namespace === p.namespace);
    const w =
      inNs.find((w) => w.name === p.workload) ??
      inNs.find(
        (w) => w.name.startsWith(`${p.workload}-`) && (p.version === UNKNOWN || versionOf(w) === p.version),
      ) ??
      inNs.find((w) => appOf(w) === p.workload && (p.version === UNKNOWN || versionOf(w) === p.version));
    const app =
      p.canonicalService ?? (w ? appOf(w) : p.workload === UNKNOWN ? (service ?? UNKNOWN) : p.workload);
    const version = p.version !== UNKNOWN ? p.version : w ? versionOf(w) : UNKNOWN;
    const node = this.node(p.namespace, app, version, w ? this.serviceFor(w) : service);
    if (p.workload !== UNKNOWN && !node.workloads.includes(p.workload)) node.workloads.push(p.workload);
    return node;
  }

  /** Node-level edges: the telemetry's workload edges merged per (source node, target node). */
  edges(traffic: readonly EdgeTraffic[]): GraphEdge[] {
    const grouped = new Map<string, { source: string; target: string; parts: EdgeTraffic[] }>();
    for (const t of joinHalfEdges(traffic)) {
      const source = this.nodeForPeer(t.source).id;
      const target = this.nodeForPeer(t.destination, t.destinationService, t.destinationServiceNamespace).id;
      const id = `${source}->${target}`;
      const g = grouped.get(id) ?? { source, target, parts: [] };
      g.parts.push(t);
      grouped.set(id, g);
    }
    return [...grouped]
      .map(([id, g]) => {
        const s = summarize(g.parts);
        return {
          id,
          source: g.source,
          target: g.target,
          rps: s.rps,
          errorRate: s.errorRate,
          p99Ms: s.p99Ms,
          mtlsShare: s.mtlsShare,
          mtls: s.mtlsShare >= 0.999,
          reporter: g.parts.some((p) => p.reporter === "destination") ? "destination" : "source",
        } satisfies GraphEdge;
      })
      .sort((a, b) => a.id.localeCompare(b.id));
  }

  allNodes(): GraphNode[] {
    return [...this.nodes.values()].sort((a, b) => a.id.localeCompare(b.id));
  }
}

/** The graph the dashboard draws. */
export function buildGraph(sources: DashboardSources, now = new Date()): GraphResponse {
  const builder = new GraphBuilder(sources.model(), sources.workloads());
  const edges = builder.edges(sources.telemetry.window.edges());
  const h = sources.telemetry.health();
  return {
    generatedAt: now.toISOString(),
    nodes: builder.allNodes(),
    edges,
    scrape: {
      targets: h.targets,
      ok: h.ok,
      failures: h.failures,
      lastAt: h.lastAt === undefined ? undefined : new Date(h.lastAt).toISOString(),
      intervalMs: sources.telemetry.intervalMs,
    },
  };
}

function describeString(m: StringMatch): string {
  return `${m.kind} ${JSON.stringify(m.value)}`;
}

/** A route match in words, for the services panel. */
export function describeMatch(matches: readonly RequestMatch[]): string {
  if (matches.length === 0) return "any request";
  return matches
    .map((m) => {
      const parts: string[] = [];
      if (m.uri) parts.push(`uri ${describeString(m.uri)}`);
      if (m.method) parts.push(`method ${describeString(m.method)}`);
      if (m.authority) parts.push(`authority ${describeString(m.authority)}`);
      for (const h of m.headers)
        parts.push(
          `${h.invert ? "without " : ""}header ${h.name}${h.match ? ` ${describeString(h.match)}` : ""}`,
        );
      for (const q of m.queryParams)
        parts.push(`query ${q.name}${q.match ? ` ${describeString(q.match)}` : ""}`);
      if (m.port) parts.push(`port ${m.port}`);
      if (m.sourceLabels)
        parts.push(
          `from ${Object.entries(m.sourceLabels)
            .map(([k, v]) => `${k}=${v}`)
            .join(",")}`,
        );
      if (m.sourceNamespace) parts.push(`from namespace ${m.sourceNamespace}`);
      return parts.length ? parts.join(" and ") : "any request";
    })
    .join(" or ");
}

/** The route table (mesh-bound) that routes `hostname`, the first by namespace and name. */
function routeTableFor(
  model: MeshModel,
  hostname: string,
  aliases: readonly string[],
): RouteTable | undefined {
  const names = new Set([hostname, ...aliases]);
  return [...model.routeTables]
    .filter((rt) => rt.gateways.length === 0 || rt.gateways.includes("mesh"))
    .filter((rt) => rt.hosts.some((h) => names.has(resolveHost(h, rt.namespace)) || names.has(h)))
    .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`))[0];
}

/** Destinations as percentages of the route's total weight, with the version each subset selects. */
function split(model: MeshModel, rt: RouteTable, destinations: readonly RouteDestination[]): SplitEntry[] {
  const total = destinations.reduce((a, d) => a + d.weight, 0);
  return destinations.map((d) => {
    const host = resolveHost(d.host, rt.namespace);
    const subset = d.subset
      ? model.destinationPolicies
          .filter((p) => resolveHost(p.host, p.namespace) === host)
          .flatMap((p) => p.subsets)
          .find((s) => s.name === d.subset)
      : undefined;
    return {
      host: d.host,
      subset: d.subset,
      version: subset?.labels.version,
      percent: total > 0 ? (100 * d.weight) / total : 100 / destinations.length,
    };
  });
}

const toErrorEvent = (e: TelemetryError, b: GraphBuilder): ErrorEvent => ({
  at: new Date(e.at).toISOString(),
  source: b.nodeForPeer(e.source).id,
  destination: b.nodeForPeer(e.destination, e.destinationService, e.destinationServiceNamespace).id,
  responseCode: e.responseCode,
  responseFlags: e.responseFlags,
  count: e.count,
  reporter: e.reporter,
});

/** Every mesh-internal service with a selector, with its routing and traffic. */
export function buildServices(sources: DashboardSources, now = new Date()): ServicesResponse {
  const model = sources.model();
  const builder = new GraphBuilder(model, sources.workloads());
  const edges = builder.edges(sources.telemetry.window.edges());
  const joined = joinHalfEdges(sources.telemetry.window.edges());
  const nodes = builder.allNodes();
  const errors = sources.telemetry.window.recentErrors();
  const services: ServiceDetail[] = [];
  for (const s of model?.services ?? []) {
    if (s.location !== "MESH_INTERNAL" || !s.selector || Object.keys(s.selector).length === 0) continue;
    const name = shortName(s.hostname, s.namespace);
    const mine = new Set(
      nodes.filter((n) => n.namespace === s.namespace && n.service === name).map((n) => n.id),
    );
    const rt = model ? routeTableFor(model, s.hostname, s.aliases) : undefined;
    const routes: RouteSummary[] =
      rt && model
        ? rt.http.map((r) => ({
            name: r.name,
            match: describeMatch(r.matches),
            destinations: split(model, rt, r.destinations),
          }))
        : [];
    const catchAll = rt?.http.find((r) => r.matches.length === 0) ?? rt?.http.at(-1);
    const inbound = edges.filter((e) => mine.has(e.target));
    const byVersion = new Map<string, number>();
    for (const n of nodes) if (mine.has(n.id)) byVersion.set(n.version, 0);
    for (const e of inbound) {
      const v = nodes.find((n) => n.id === e.target)?.version ?? UNKNOWN;
      byVersion.set(v, (byVersion.get(v) ?? 0) + e.rps);
    }
    const rps = inbound.reduce((a, e) => a + e.rps, 0);
    const summary = summarize(
      joined.filter((t) =>
        mine.has(builder.nodeForPeer(t.destination, t.destinationService, t.destinationServiceNamespace).id),
      ),
    );
    services.push({
      namespace: s.namespace,
      name,
      hostname: s.hostname,
      versions: [...byVersion.keys()].sort(),
      routeTable: rt ? `${rt.namespace}/${rt.name}` : undefined,
      routes,
      configuredSplit: catchAll && model && rt ? split(model, rt, catchAll.destinations) : [],
      observedSplit: [...byVersion]
        .sort((a, b) => a[0].localeCompare(b[0]))
        .map(([version, r]) => ({ version, rps: r, percent: rps > 0 ? (100 * r) / rps : 0 })),
      rps,
      errorRate: summary.errorRate,
      p99Ms: summary.p99Ms,
      recentErrors: errors
        .filter(
          (e) =>
            (e.destinationService === name && e.destinationServiceNamespace === s.namespace) ||
            mine.has(builder.nodeForPeer(e.destination).id),
        )
        .slice(0, 20)
        .map((e) => toErrorEvent(e, builder)),
    });
  }
  services.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  return { generatedAt: now.toISOString(), services };
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json",
  ".svg": "image/svg+xml",
};

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

async function sendAsset(res: ServerResponse, dir: string, file: string): Promise<void> {
  let data: Buffer;
  try {
    data = await readFile(join(dir, file));
  } catch {
    if (file === "index.html")
      return sendJson(res, 503, {
        code: DashboardCodes.NOT_BUILT,
        message: `the dashboard is not built (no ${join(dir, file)}): run \`npm run build\``,
      });
    return sendJson(res, 404, { code: DashboardCodes.NOT_FOUND, message: `no dashboard asset ${file}` });
  }
  res.writeHead(200, {
    "content-type": CONTENT_TYPES[extname(file)] ?? "application/octet-stream",
    "content-length": data.length,
    "cache-control": "no-cache",
  });
  res.end(data);
}

/**
 * The dashboard's routes for the HTTP API: answers true when it handled the request, false when the path
 * is not one of its own (the API then goes on to its 404).
 */
export function createDashboard(
  sources: DashboardSources,
): (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean> {
  const dir = sources.assetsDir ?? DEFAULT_ASSETS_DIR;
  return async (req, res, url) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = url.pathname;
    if (path === "/" || path === "/dashboard" || path === "/dashboard/") {
      await sendAsset(res, dir, "index.html");
      return true;
    }
    const asset = /^\/dashboard\/([\w][\w.-]*)$/.exec(path)?.[1];
    if (asset) {
      await sendAsset(res, dir, asset);
      return true;
    }
    if (path === "/api/v1/graph") {
      sendJson(res, 200, buildGraph(sources));
      return true;
    }
    if (path === "/api/v1/services") {
      sendJson(res, 200, buildServices(sources));
      return true;
    }
    const m = /^\/api\/v1\/services\/([^/]+)\/([^/]+)$/.exec(path);
    if (m) {
      const [ns, name] = [decodeURIComponent(m[1] as string), decodeURIComponent(m[2] as string)];
      const detail = buildServices(sources).services.find((s) => s.namespace === ns && s.name === name);
      if (!detail)
        sendJson(res, 404, { code: DashboardCodes.NOT_FOUND, message: `no mesh service ${ns}/${name}` });
      else sendJson(res, 200, detail);
      return true;
    }
    return false;
  };
}
