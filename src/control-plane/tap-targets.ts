// Which sidecars `skein tap SERVICE` reads: those in front of the service's workloads (its inbound side)
// and every other sidecar (their outbound side, narrowed to the service's cluster by the tap itself), each
// with its admin address (the workload's address, port 15000: DESIGN.md's well-known ports).
import type { WorkloadInstance } from "../model/snapshot.js";
import type { MeshModel, Service } from "../model/types.js";

export const ADMIN_PORT = 15000;

export interface TapTarget {
  id: string;
  workload: string;
  namespace: string;
  /** `http://<address>:15000`. */
  admin: string;
  /** server: the sidecar serves the service (tap its inbound side); client: it may call it (outbound). */
  role: "server" | "client";
}

export interface TapTargets {
  service: string;
  namespace: string;
  hostname: string;
  targets: TapTarget[];
}

function selects(service: Service, w: WorkloadInstance): boolean {
  if (!service.selector || w.namespace !== service.namespace) return false;
  return Object.entries(service.selector).every(([k, v]) => w.labels[k] === v);
}

/** The service called `name` (short name or hostname) in `namespace`, and the sidecars to tap for it. */
export function tapTargets(
  model: MeshModel,
  workloads: readonly WorkloadInstance[],
  name: string,
  namespace: string,
): TapTargets | undefined {
  const service = model.services.find(
    (s) =>
      s.namespace === namespace &&
      (s.hostname === name || s.hostname.split(".")[0] === name || s.aliases.includes(name)),
  );
  if (!service) return undefined;
  // Only sidecars have an admin /tap (proxyless gRPC clients and static entries do not).
  const sidecars = workloads.filter((w) => w.origin === "proxy" && w.id.startsWith("sidecar~"));
  const targets = sidecars.map(
    (w): TapTarget => ({
      id: w.id,
      workload: w.name,
      namespace: w.namespace,
      admin: `http://${w.address}:${ADMIN_PORT}`,
      role: selects(service, w) ? "server" : "client",
    }),
  );
  return { service: name, namespace, hostname: service.hostname, targets };
}
