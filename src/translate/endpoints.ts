// ClusterLoadAssignments: for every EDS cluster, the workload instances behind the service (its
// selector, plus the subset's labels) and its static endpoints, grouped by locality. Also the inline
// assignments of DNS clusters.

import { selectorMatches } from "../model/hosts.js";
import type { Service, ServicePort, StaticEndpoint } from "../model/types.js";
import type { Cluster } from "../xds/generated/envoy/config/cluster/v3/Cluster.js";
import type { Locality } from "../xds/generated/envoy/config/core/v3/Locality.js";
import type { ClusterLoadAssignment } from "../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js";
import type { LbEndpoint } from "../xds/generated/envoy/config/endpoint/v3/LbEndpoint.js";
import type { LocalityLbEndpoints } from "../xds/generated/envoy/config/endpoint/v3/LocalityLbEndpoints.js";
import { acceptsIstioMtls, endpointTlsMetadata } from "./mtls.js";
import { parseClusterName } from "./names.js";
import { endpointPort, type ProxyView, serviceWorkloads } from "./scope.js";
import { compare, socketAddress, u32 } from "./values.js";

interface EndpointEntry {
  address: string;
  port: number;
  /** Has a sidecar that takes Istio mTLS on this port (transport_socket_match metadata). */
  mtls?: boolean;
  healthy: boolean;
  weight: number;
  locality: Locality;
}

/** One assignment per EDS cluster, so every EDS name a cluster references exists (consistent snapshots). */
export function buildEndpoints(view: ProxyView, clusters: readonly Cluster[]): ClusterLoadAssignment[] {
  const out: ClusterLoadAssignment[] = [];
  for (const cluster of clusters) {
    if (cluster.type !== "EDS" || !cluster.name) continue;
    const parsed = parseClusterName(cluster.name);
    if (parsed?.direction !== "outbound") continue;
    const visible = view.services.find((v) => v.service.hostname === parsed.hostname);
    const port = visible?.ports.find((p) => p.number === parsed.port);
    if (!visible || !port) continue;
    const subsetLabels = parsed.subset
      ? view.destinationPolicy(visible.service)?.subsets.find((s) => s.name === parsed.subset)?.labels
      : undefined;
    out.push(edsLoadAssignment(view, cluster.name, visible.service, port, subsetLabels));
  }
  return out.sort((a, b) => compare(a.clusterName ?? "", b.clusterName ?? ""));
}

export function edsLoadAssignment(
  view: ProxyView,
  clusterName: string,
  service: Service,
  port: ServicePort,
  subsetLabels: Record<string, string> | undefined,
): ClusterLoadAssignment {
  const entries: EndpointEntry[] = serviceWorkloads(view.workloads, service, subsetLabels).map((w) => ({
    address: w.address,
    port: endpointPort(w.ports, port),
    mtls: acceptsIstioMtls(view.model, w, endpointPort(w.ports, port)),
    healthy: w.healthy,
    weight: 1,
    locality: {
      ...(w.locality?.region && { region: w.locality.region }),
      ...(w.locality?.zone && { zone: w.locality.zone }),
      ...(w.locality?.subZone && { subZone: w.locality.subZone }),
    },
  }));
  entries.push(...staticEntries(service, port, subsetLabels));
  return { clusterName, endpoints: groupByLocality(entries) };
}

/**
 * The inline assignment of a DNS cluster: the static endpoints (hostnames Envoy resolves), or the
 * service's own hostname when it lists none, as Istio does for DNS ServiceEntries. LOGICAL_DNS takes
 * exactly one endpoint (gRPC rejects more).
 */
export function staticLoadAssignment(
  clusterName: string,
  service: Service,
  port: ServicePort,
  subsetLabels: Record<string, string> | undefined,
  single: boolean,
): ClusterLoadAssignment {
  let entries = staticEntries(service, port, subsetLabels);
  if (entries.length === 0)
    entries = [
      {
        address: service.hostname,
        port: port.targetPort ?? port.number,
        healthy: true,
        weight: 1,
        locality: {},
      },
    ];
  if (single) entries = [{ ...(entries[0] as EndpointEntry), locality: {} }];
  return { clusterName, endpoints: groupByLocality(entries) };
}

function staticEntries(
  service: Service,
  port: ServicePort,
  subsetLabels: Record<string, string> | undefined,
): EndpointEntry[] {
  return service.endpoints
    .filter((e) => selectorMatches(subsetLabels, e.labels))
    .map((e: StaticEndpoint) => ({
      address: e.address,
      port: endpointPort(e.ports, port),
      healthy: true,
      // Envoy requires weights ≥ 1; ServiceEntry leaves 0 to mean "unset".
      weight: e.weight && e.weight > 0 ? e.weight : 1,
      locality: parseLocality(e.locality),
    }));
}

/** ServiceEntry localities are written `region/zone/subzone`. */
function parseLocality(locality: string | undefined): Locality {
  if (!locality) return {};
  const [region, zone, subZone] = locality.split("/");
  return { ...(region && { region }), ...(zone && { zone }), ...(subZone && { subZone }) };
}

const localityKey = (l: Locality) => `${l.region ?? ""}/${l.zone ?? ""}/${l.subZone ?? ""}`;

/**
 * One LocalityLbEndpoints per locality, each with load_balancing_weight set (the sum of its endpoints'
 * weights): gRPC ignores localities without a weight, and Envoy's locality-weighted balancing needs
 * it. The same address:port twice in one assignment is dropped (gRPC NACKs duplicates).
 */
function groupByLocality(entries: EndpointEntry[]): LocalityLbEndpoints[] {
  const sorted = [...entries].sort(
    (a, b) =>
      compare(localityKey(a.locality), localityKey(b.locality)) ||
      compare(a.address, b.address) ||
      a.port - b.port,
  );
  const seen = new Set<string>();
  const groups = new Map<string, { locality: Locality; endpoints: LbEndpoint[]; weight: number }>();
  for (const e of sorted) {
    const id = `${e.address}:${e.port}`;
    if (seen.has(id)) continue;
    seen.add(id);
    const key = localityKey(e.locality);
    const group = groups.get(key) ?? { locality: e.locality, endpoints: [], weight: 0 };
    group.endpoints.push({
      endpoint: { address: socketAddress(e.address, e.port) },
      ...(e.mtls && { metadata: endpointTlsMetadata() }),
      healthStatus: e.healthy ? "HEALTHY" : "UNHEALTHY",
      ...(e.weight !== 1 && { loadBalancingWeight: u32(e.weight) }),
    });
    group.weight += e.weight;
    groups.set(key, group);
  }
  return [...groups.values()].map((g) => ({
    locality: g.locality,
    lbEndpoints: g.endpoints,
    loadBalancingWeight: u32(g.weight),
  }));
}
