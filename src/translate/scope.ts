// What one proxy sees of the mesh: the services visible to it (exportTo, then its Sidecar egress), the
// route tables and destination policy that apply to each, and the workloads it fronts. Built once per
// translation so that each resource builder asks only for what it needs.

import { hostMatches, resolveHost, ServiceIndex, selectorMatches } from "../model/hosts.js";
import type { MeshSnapshot, ProxyIdentity, WorkloadInstance } from "../model/snapshot.js";
import type {
  DestinationPolicy,
  MeshModel,
  RequestMatch,
  RouteTable,
  Service,
  ServicePort,
  SidecarScope,
} from "../model/types.js";
import { compare } from "./values.js";

/** A service as one proxy sees it: only the ports its Sidecar egress lets through. */
export interface VisibleService {
  service: Service;
  ports: ServicePort[];
}

export interface ProxyView {
  proxy: ProxyIdentity;
  model: MeshModel;
  workloads: readonly WorkloadInstance[];
  /** Sorted by hostname, then namespace. */
  services: VisibleService[];
  /** Every service in the mesh by every name, for resolving route destinations. */
  index: ServiceIndex;
  /** The route tables bound to the mesh (sidecars) for this service, most specific first. */
  routeTables(service: Service): RouteTable[];
  /** The destination policy that applies to traffic from this proxy to the service (Istio's lookup order). */
  destinationPolicy(service: Service): DestinationPolicy | undefined;
  /** Whether a route match applies to traffic from this proxy on this port. */
  matchApplies(match: RequestMatch, port: number): boolean;
}

/** Istio exportTo: `*` everyone, `.` the owner's namespace, `~` nobody, else the listed namespaces. */
export function isExportedTo(exportTo: readonly string[], owner: string, namespace: string): boolean {
  if (exportTo.length === 0) return true;
  return exportTo.some((e) => e === "*" || e === namespace || (e === "." && owner === namespace));
}

export function buildView(snapshot: MeshSnapshot, proxy: ProxyIdentity): ProxyView {
  const model = snapshot.model;
  const labels = proxy.workload?.labels;
  const sortedServices = [...model.services].sort(
    (a, b) => compare(a.hostname, b.hostname) || compare(a.namespace, b.namespace),
  );
  const exported = sortedServices.filter((s) => isExportedTo(s.exportTo, s.namespace, proxy.namespace));
  const scope = sidecarScopeFor(model, proxy);
  const services = exported
    .map(
      (service): VisibleService => ({
        service,
        ports: scope ? egressPorts(scope, service, proxy.namespace) : service.ports,
      }),
    )
    .filter((v) => v.ports.length > 0);

  const tables = model.routeTables
    .filter(
      (t) =>
        (t.gateways.length === 0 || t.gateways.includes("mesh")) &&
        isExportedTo(t.exportTo, t.namespace, proxy.namespace),
    )
    .sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name));
  const policies = model.destinationPolicies
    .filter((p) => isExportedTo(p.exportTo, p.namespace, proxy.namespace))
    .filter(
      (p) =>
        !p.workloadSelector ||
        (p.namespace === proxy.namespace && selectorMatches(p.workloadSelector, labels ?? {})),
    )
    .sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name));

  return {
    proxy,
    model,
    workloads: snapshot.workloads,
    services,
    index: new ServiceIndex(sortedServices),
    routeTables(service) {
      const ranked: { table: RouteTable; rank: number[] }[] = [];
      for (const table of tables) {
        const specificity = bestHostMatch(table.hosts, table.namespace, service);
        if (specificity === undefined) continue;
        ranked.push({
          table,
          rank: [namespaceTier(table.namespace, proxy.namespace, service.namespace), -specificity],
        });
      }
      return ranked.sort((a, b) => compareRanks(a.rank, b.rank)).map((r) => r.table);
    },
    destinationPolicy(service) {
      // Istio looks in the proxy's namespace, then the service's, then the root namespace; a
      // workload-selecting policy beats a namespace-wide one, an exact host beats a wildcard.
      let best: { policy: DestinationPolicy; rank: number[] } | undefined;
      for (const policy of policies) {
        const tier = namespaceTier(
          policy.namespace,
          proxy.namespace,
          service.namespace,
          model.meshConfig.rootNamespace,
        );
        if (tier > 2) continue;
        const specificity = bestHostMatch([policy.host], policy.namespace, service);
        if (specificity === undefined) continue;
        const rank = [tier, policy.workloadSelector ? 0 : 1, -specificity];
        if (!best || compareRanks(rank, best.rank) < 0) best = { policy, rank };
      }
      return best?.policy;
    },
    matchApplies(match, port) {
      if (match.port !== undefined && match.port !== port) return false;
      if (match.gateways && match.gateways.length > 0 && !match.gateways.includes("mesh")) return false;
      if (match.sourceNamespace !== undefined && match.sourceNamespace !== proxy.namespace) return false;
      if (match.sourceLabels && !(labels && selectorMatches(match.sourceLabels, labels))) return false;
      return true;
    },
  };
}

/** 0: the proxy's namespace, 1: the service's, 2: the root namespace, 3: elsewhere. */
function namespaceTier(owner: string, proxyNs: string, serviceNs: string, rootNs?: string): number {
  if (owner === proxyNs) return 0;
  if (owner === serviceNs) return 1;
  if (owner === rootNs) return 2;
  return 3;
}

/** How specifically `hosts` (written in `namespace`) name the service: its length for the best match, else undefined. */
function bestHostMatch(hosts: readonly string[], namespace: string, service: Service): number | undefined {
  let best: number | undefined;
  const names = [service.hostname, ...service.aliases];
  for (const h of hosts) {
    const pattern = resolveHost(h, namespace);
    if (!names.some((n) => hostMatches(pattern, n))) continue;
    // An exact name outranks any wildcard; longer wildcards outrank shorter ones.
    const score = pattern.startsWith("*") ? pattern.length : 10_000;
    if (best === undefined || score > best) best = score;
  }
  return best;
}

function compareRanks(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The Sidecar (Istio) or App Mesh backends scope for this proxy: one selecting its workload in its
 * namespace, else its namespace's selector-less one, else the root namespace's; none means "see all".
 */
export function sidecarScopeFor(model: MeshModel, proxy: ProxyIdentity): SidecarScope | undefined {
  const sorted = [...model.sidecars].sort((a, b) => compare(a.name, b.name));
  const labels = proxy.workload?.labels;
  return (
    sorted.find(
      (s) => s.namespace === proxy.namespace && s.selector && labels && selectorMatches(s.selector, labels),
    ) ??
    sorted.find((s) => s.namespace === proxy.namespace && !s.selector) ??
    sorted.find((s) => s.namespace === model.meshConfig.rootNamespace && !s.selector)
  );
}

/** The ports of `service` that some egress listener of the scope lets through (`namespace/host`, Istio's form). */
function egressPorts(scope: SidecarScope, service: Service, proxyNs: string): ServicePort[] {
  const names = [service.hostname, ...service.aliases];
  const out = new Set<ServicePort>();
  for (const egress of scope.egress) {
    const admitted = egress.hosts.some((entry) => {
      const slash = entry.indexOf("/");
      const ns = slash >= 0 ? entry.slice(0, slash) : "*";
      const host = slash >= 0 ? entry.slice(slash + 1) : entry;
      const nsOk =
        ns === "*" || (ns === "." ? service.namespace === proxyNs : ns !== "~" && ns === service.namespace);
      return nsOk && names.some((n) => hostMatches(host, n));
    });
    if (!admitted) continue;
    for (const p of service.ports) if (egress.port === undefined || egress.port === p.number) out.add(p);
  }
  return service.ports.filter((p) => out.has(p));
}

/** The workloads behind a service: same namespace, selector (and subset labels) matching. */
export function serviceWorkloads(
  workloads: readonly WorkloadInstance[],
  service: Service,
  subsetLabels?: Record<string, string>,
): WorkloadInstance[] {
  if (!service.selector) return [];
  return workloads.filter(
    (w) =>
      w.namespace === service.namespace &&
      selectorMatches(service.selector, w.labels) &&
      selectorMatches(subsetLabels, w.labels),
  );
}

/** Where a workload takes a service port's traffic (snapshot.ts): its override, else targetPort, else the port. */
export function endpointPort(ports: Record<string, number>, port: ServicePort): number {
  return ports[port.name] ?? port.targetPort ?? port.number;
}
