// The sidecar's own workload, as its xDS node describes it (Istio's node id and metadata conventions):
// what telemetry labels (source_* on the client side, destination_* on the server side), the peer-metadata
// exchange and span tags say about "this" end of a request.
import type { AdsClientNode } from "../xds/client.js";

export interface LocalNode {
  /** The xDS node id (`sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local`). */
  readonly id: string;
  /** The workload (deployment) name: the `app` label's owner; WORKLOAD_NAME metadata. */
  readonly workloadName: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly labels: Readonly<Record<string, string>>;
  /** `app` (or `app.kubernetes.io/name`) label, "unknown" when absent, as Istio's telemetry does. */
  readonly app: string;
  /** `version` (or `app.kubernetes.io/version`) label, "unknown" when absent. */
  readonly version: string;
  readonly trustDomain: string;
  /** `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`. */
  readonly principal: string;
  /** The workload's address (its own loopback address in local mode), "" when unknown. */
  readonly address: string;
  /** The mesh's cluster id (node.cluster, else "Kubernetes" as Istio). */
  readonly clusterId: string;
}

function str(v: unknown, fallback: string): string {
  return typeof v === "string" && v !== "" ? v : fallback;
}

/** Reads the node the sidecar announces to the control plane. */
export function localNodeFrom(node: AdsClientNode): LocalNode {
  const md = (node.metadata ?? {}) as Record<string, unknown>;
  const rawLabels = md.LABELS;
  const labels: Record<string, string> = {};
  if (rawLabels && typeof rawLabels === "object")
    for (const [k, v] of Object.entries(rawLabels)) if (typeof v === "string") labels[k] = v;
  const namespace = str(md.NAMESPACE, "default");
  const serviceAccount = str(md.SERVICE_ACCOUNT, "default");
  const trustDomain = str(md.TRUST_DOMAIN, "cluster.local");
  const ips = md.INSTANCE_IPS;
  return {
    id: node.id,
    workloadName: str(md.WORKLOAD_NAME, str(labels.app, "unknown")),
    namespace,
    serviceAccount,
    labels,
    app: str(labels.app, str(labels["app.kubernetes.io/name"], "unknown")),
    version: str(labels.version, str(labels["app.kubernetes.io/version"], "unknown")),
    trustDomain,
    principal: `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`,
    address: typeof ips === "string" ? (ips.split(",")[0] ?? "") : "",
    clusterId: str(node.cluster, "Kubernetes"),
  };
}

/** For tests and tools that run listeners without a control plane. */
export const UNKNOWN_NODE: LocalNode = localNodeFrom({
  id: "sidecar~127.0.0.1~unknown.default~default.svc.cluster.local",
});
