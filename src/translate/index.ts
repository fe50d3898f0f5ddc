// Translation: (MeshSnapshot, ProxyIdentity) → the Envoy v3 resources that proxy is served. Pure: no
// I/O, clocks or randomness; every list sorted by name so equal inputs give byte-equal snapshots.

import type { MeshSnapshot, ProxyIdentity } from "../model/snapshot.js";
import type { Cluster } from "../xds/generated/envoy/config/cluster/v3/Cluster.js";
import type { ClusterLoadAssignment } from "../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js";
import type { Listener } from "../xds/generated/envoy/config/listener/v3/Listener.js";
import type { RouteConfiguration } from "../xds/generated/envoy/config/route/v3/RouteConfiguration.js";
import { buildClusters, buildInboundClusters, dedupe } from "./clusters.js";
import { buildEndpoints } from "./endpoints.js";
import { buildListeners } from "./listeners.js";
import { buildRoutes } from "./routes.js";
import { buildView } from "./scope.js";
import { sharedResources } from "./shared.js";
import { byName } from "./values.js";

export interface ProxyResources {
  listeners: Listener[];
  routes: RouteConfiguration[];
  clusters: Cluster[];
  endpoints: ClusterLoadAssignment[];
}

/**
 * The proxy's resources. Outbound clusters, routes and endpoints are shared between proxies that see the mesh
 * alike (shared.ts); `shared: false` translates everything afresh (tests compare the two).
 */
export function translate(
  snapshot: MeshSnapshot,
  proxy: ProxyIdentity,
  options: { shared?: boolean } = {},
): ProxyResources {
  const view = buildView(snapshot, proxy);
  if (options.shared === false) {
    const clusters = buildClusters(view);
    return {
      listeners: buildListeners(view),
      routes: buildRoutes(view).sort(byName),
      clusters,
      endpoints: buildEndpoints(view, clusters),
    };
  }
  const shared = sharedResources(snapshot, view);
  return {
    listeners: buildListeners(view),
    routes: [...shared.routes],
    clusters: dedupe([...shared.clusters, ...buildInboundClusters(view)]).sort(byName),
    endpoints: [...shared.endpoints],
  };
}

export type { ProxyView } from "./scope.js";
export {
  type SimulatedRequest,
  type SimulationResult,
  simulate,
  simulateOutbound,
  simulateTarget,
} from "./simulate.js";
export { asTyped, FILTER, type TypedConfig, type TypeName, typed } from "./typed.js";
