// Proxies that see the mesh alike get the same outbound clusters, routes and endpoints, so a push translates
// those once per kind of view rather than once per proxy (at 1000 services they are nearly all of a proxy's
// translation). Two proxies see the mesh alike when they have the same kind, namespace and workload presence,
// and the same values for every label that some configuration selects proxies by: VirtualService
// `sourceLabels`, DestinationRule `workloadSelector`, and the `selector` of Sidecar, Telemetry and other
// policies. Their own listeners and inbound clusters are still translated per proxy.
// Cached per MeshSnapshot object (a WeakMap, so a new snapshot starts afresh); results are shared, never mutated.

import type { MeshSnapshot, ProxyIdentity } from "../model/snapshot.js";
import type { MeshModel } from "../model/types.js";
import type { Cluster } from "../xds/generated/envoy/config/cluster/v3/Cluster.js";
import type { ClusterLoadAssignment } from "../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js";
import type { RouteConfiguration } from "../xds/generated/envoy/config/route/v3/RouteConfiguration.js";
import { buildOutboundClusters } from "./clusters.js";
import { buildEndpoints } from "./endpoints.js";
import { buildRoutes } from "./routes.js";
import type { ProxyView } from "./scope.js";
import { byName } from "./values.js";

export interface SharedResources {
  /** Outbound and tracing clusters, deduplicated, unsorted. */
  readonly clusters: readonly Cluster[];
  readonly routes: readonly RouteConfiguration[];
  readonly endpoints: readonly ClusterLoadAssignment[];
}

/** Model fields whose label maps select the proxy (not destinations). */
const SELECTING = new Set(["sourceLabels", "workloadSelector", "selector"]);

const labelKeysByModel = new WeakMap<MeshModel, readonly string[]>();

/** Every label key some configuration selects proxies by, sorted. */
export function proxySelectingLabelKeys(model: MeshModel): readonly string[] {
  const cached = labelKeysByModel.get(model);
  if (cached) return cached;
  const keys = new Set<string>();
  const walk = (v: unknown, depth: number): void => {
    if (depth > 12 || v === null || typeof v !== "object") return;
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
      return;
    }
    for (const [k, x] of Object.entries(v)) {
      if (SELECTING.has(k) && x && typeof x === "object" && !Array.isArray(x))
        for (const label of Object.keys(x)) keys.add(label);
      else if (k !== "source") walk(x, depth + 1);
    }
  };
  // Service selectors pick a service's workloads (destinations), not who calls them: left out on purpose.
  walk([model.routeTables, model.destinationPolicies, model.sidecars, model.gateways, model.telemetry], 0);
  const sorted = [...keys].sort();
  labelKeysByModel.set(model, sorted);
  return sorted;
}

/** Proxies with equal keys get equal outbound clusters, routes and endpoints. */
export function viewKey(model: MeshModel, proxy: ProxyIdentity): string {
  const labels = proxy.workload?.labels ?? {};
  const relevant = proxySelectingLabelKeys(model)
    .filter((k) => k in labels)
    .map((k) => [k, labels[k]]);
  return JSON.stringify([proxy.kind, proxy.namespace, proxy.workload !== undefined, relevant]);
}

const cache = new WeakMap<MeshSnapshot, Map<string, SharedResources>>();

export function sharedResources(snapshot: MeshSnapshot, view: ProxyView): SharedResources {
  let byKey = cache.get(snapshot);
  if (!byKey) {
    byKey = new Map();
    cache.set(snapshot, byKey);
  }
  const key = viewKey(snapshot.model, view.proxy);
  const hit = byKey.get(key);
  if (hit) return hit;
  const clusters = buildOutboundClusters(view);
  const shared: SharedResources = {
    clusters,
    routes: buildRoutes(view).sort(byName),
    endpoints: buildEndpoints(view, clusters),
  };
  byKey.set(key, shared);
  return shared;
}
