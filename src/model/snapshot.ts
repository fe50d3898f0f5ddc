// What translation reads: the mesh model plus the workload instances the registry knows right now
// (static Workloads from config and proxies that connected), frozen for one push. And who a proxy is.
import type { MeshModel } from "./types.js";

/** One running instance of a workload: a pod, in Kubernetes terms. */
/** The label Istio's injector puts on pods with a sidecar; a static Workload with it is reached over mTLS. */
export const TLS_MODE_LABEL = "security.istio.io/tlsMode";

export interface WorkloadInstance {
  /** Unique: the proxy's node id when it registered through xDS, `Workload <ns>/<name>` when static. */
  id: string;
  name: string;
  namespace: string;
  labels: Record<string, string>;
  serviceAccount: string;
  /** Its address (a loopback address of its own in local mode: DESIGN.md, "Addressing without Kubernetes"). */
  address: string;
  /**
   * Port overrides by service port name. Without one, the endpoint for a service port is
   * `address:(targetPort ?? port)`: in local mode the sidecar listens on the service's own port.
   */
  ports: Record<string, number>;
  /** Where it came from: a connected proxy (sidecar or proxyless gRPC) or static config. */
  origin: "proxy" | "static";
  /**
   * "istio" when a Skein sidecar fronts the workload (it registered as a sidecar, or a static Workload carries
   * the `security.istio.io/tlsMode: istio` label, as Istio's injector sets it): peers may send it mutual TLS.
   * Absent or "disabled": plaintext only (proxyless gRPC, workloads without a sidecar).
   */
  tlsMode?: "istio" | "disabled";
  /** Proxyless gRPC servers and sidecars both report readiness; static entries are assumed healthy. */
  healthy: boolean;
  locality?: { region?: string; zone?: string; subZone?: string };
}

export interface MeshSnapshot {
  /** Changes whenever anything in the snapshot changes; used as the xDS version basis. */
  version: string;
  model: MeshModel;
  workloads: readonly WorkloadInstance[];
}

/** The proxy a translation is for. */
export interface ProxyIdentity {
  /** xDS node id. */
  id: string;
  /** `sidecar`: a Skein/Envoy sidecar next to a workload. `proxyless`: a gRPC client with xDS built in. */
  kind: "sidecar" | "proxyless";
  namespace: string;
  /** The workload the proxy stands in front of (absent for a pure client). */
  workload?: WorkloadInstance;
}
