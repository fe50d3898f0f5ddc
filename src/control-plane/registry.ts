// The workloads the mesh knows right now: static ones from configuration (Skein Workload kinds) and
// the ones whose proxy is connected, registered from the xDS node (id and metadata, as Istio's node
// metadata) and removed a short grace period after their stream closes (so a reconnect is seamless).
import { EventEmitter } from "node:events";
import { DEFAULT_NAMESPACE } from "../api/resource.js";
import { type ProxyIdentity, TLS_MODE_LABEL, type WorkloadInstance } from "../model/snapshot.js";
import type { MeshModel } from "../model/types.js";

/** The parts of an Envoy Node the registry reads (metadata is the decoded Struct). */
export interface NodeInfo {
  id: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
  locality?: { region?: string; zone?: string; subZone?: string };
}

/** Node metadata keys, Istio's names where Istio has one. */
export const NodeMetadata = {
  namespace: "NAMESPACE",
  labels: "LABELS",
  serviceAccount: "SERVICE_ACCOUNT",
  instanceIps: "INSTANCE_IPS",
  workloadName: "WORKLOAD_NAME",
  /** `grpc` marks a proxyless gRPC client or server (Istio's convention). */
  generator: "GENERATOR",
  /** Skein: service port name → port the workload serves it on, when not the service port itself. */
  ports: "SKEIN_PORTS",
} as const;

function str(v: unknown): string | undefined {
  return typeof v === "string" && v.length > 0 ? v : undefined;
}

function strMap(v: unknown): Record<string, string> {
  if (!v || typeof v !== "object" || Array.isArray(v)) return {};
  return Object.fromEntries(Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string"));
}

function portMap(v: unknown): Record<string, number> {
  if (!v || typeof v !== "object" || Array.isArray(v)) return {};
  return Object.fromEntries(
    Object.entries(v)
      .map(([k, p]) => [k, typeof p === "string" ? Number(p) : p] as const)
      .filter((e): e is [string, number] => Number.isInteger(e[1]) && e[1] > 0 && e[1] < 65536),
  );
}

/**
 * Reads who a proxy is from its node: Istio's id form `sidecar~<ip>~<pod>.<ns>~<ns>.svc.cluster.local`
 * and/or metadata. Metadata wins where both say something.
 */
export function identify(node: NodeInfo): { identity: ProxyIdentity; instance?: WorkloadInstance } {
  const md = node.metadata ?? {};
  const parts = node.id.split("~");
  const fromId =
    parts.length === 4 ? { ip: parts[1], pod: parts[2], ns: parts[3]?.split(".")[0] } : undefined;
  const podName = fromId?.pod?.includes(".") ? fromId.pod.slice(0, fromId.pod.lastIndexOf(".")) : fromId?.pod;
  const namespace = str(md[NodeMetadata.namespace]) ?? str(fromId?.ns) ?? DEFAULT_NAMESPACE;
  const kind = md[NodeMetadata.generator] === "grpc" ? "proxyless" : "sidecar";
  const address = str(md[NodeMetadata.instanceIps])?.split(",")[0]?.trim() ?? str(fromId?.ip);
  const labels = strMap(md[NodeMetadata.labels]);
  const instance: WorkloadInstance | undefined =
    address && (kind === "sidecar" || Object.keys(labels).length > 0)
      ? {
          id: node.id,
          name: str(md[NodeMetadata.workloadName]) ?? podName ?? node.id,
          namespace,
          labels,
          serviceAccount: str(md[NodeMetadata.serviceAccount]) ?? "default",
          address,
          ports: portMap(md[NodeMetadata.ports]),
          origin: "proxy",
          tlsMode: kind === "sidecar" ? "istio" : "disabled",
          healthy: true,
          locality: node.locality,
        }
      : undefined;
  return { identity: { id: node.id, kind, namespace, workload: instance }, instance };
}

export interface RegistryEvents {
  changed: [];
}

export class Registry extends EventEmitter<RegistryEvents> {
  private readonly dynamic = new Map<string, WorkloadInstance>();
  private readonly leaving = new Map<string, NodeJS.Timeout>();
  private staticInstances: WorkloadInstance[] = [];
  /** Bumped on every change; part of the snapshot version. */
  generation = 0;

  constructor(private readonly graceMs = 5000) {
    super();
  }

  private changed(): void {
    this.generation++;
    this.emit("changed");
  }

  /** Static workloads from the accepted configuration. */
  setStatic(model: MeshModel): void {
    this.staticInstances = model.workloads
      .filter((w) => w.address)
      .map((w) => ({
        id: `Workload ${w.namespace}/${w.name}`,
        name: w.name,
        namespace: w.namespace,
        labels: w.labels,
        serviceAccount: w.serviceAccount,
        address: w.address as string,
        ports: Object.fromEntries(w.ports.map((p) => [p.name, p.number])),
        origin: "static" as const,
        tlsMode: w.labels[TLS_MODE_LABEL] === "istio" ? ("istio" as const) : ("disabled" as const),
        healthy: true,
      }));
    this.changed();
  }

  /** A proxy connected: register its workload (if it fronts one). */
  connect(node: NodeInfo): ProxyIdentity {
    const { identity, instance } = identify(node);
    const pending = this.leaving.get(node.id);
    if (pending) {
      clearTimeout(pending);
      this.leaving.delete(node.id);
    }
    if (instance) {
      this.dynamic.set(node.id, instance);
      this.changed();
    }
    return identity;
  }

  /** A proxy's stream closed: forget its workload after the grace period unless it comes back. */
  disconnect(nodeId: string): void {
    if (!this.dynamic.has(nodeId) || this.leaving.has(nodeId)) return;
    const timer = setTimeout(() => {
      this.leaving.delete(nodeId);
      if (this.dynamic.delete(nodeId)) this.changed();
    }, this.graceMs);
    timer.unref();
    this.leaving.set(nodeId, timer);
  }

  instances(): WorkloadInstance[] {
    return [...this.staticInstances, ...this.dynamic.values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  close(): void {
    for (const t of this.leaving.values()) clearTimeout(t);
    this.leaving.clear();
  }
}
