// Lowers Skein's Service and Workload kinds into the model.
import type { Resource } from "../../api/resource.js";
import { protocolFromPortName, type SkeinServiceSpec, type SkeinWorkloadSpec } from "../../api/skein.js";
import type { ModelBuilder } from "../builder.js";
import { CLUSTER_DOMAIN, serviceFqdn } from "../hosts.js";

export function lowerSkeinService(r: Resource<SkeinServiceSpec>, b: ModelBuilder): void {
  b.model.services.push({
    hostname: serviceFqdn(r.name, r.namespace),
    namespace: r.namespace,
    ports: r.spec.ports.map((p) => ({
      number: p.port,
      name: p.name,
      protocol: p.protocol ?? protocolFromPortName(p.name) ?? "HTTP",
      targetPort: p.targetPort,
    })),
    selector: r.spec.selector,
    location: "MESH_INTERNAL",
    resolution: "STATIC",
    endpoints: [],
    exportTo: ["*"],
    aliases: [
      `${r.name}.${r.namespace}`,
      `${r.name}.${r.namespace}.svc`,
      `${r.name}.${r.namespace}.${CLUSTER_DOMAIN}`,
    ],
    source: r.source,
  });
}

export function lowerSkeinWorkload(r: Resource<SkeinWorkloadSpec>, b: ModelBuilder): void {
  b.model.workloads.push({
    name: r.name,
    namespace: r.namespace,
    labels: r.labels,
    serviceAccount: r.spec.serviceAccount,
    address: r.spec.address,
    ports: Object.entries(r.spec.ports ?? {}).map(([name, number]) => ({
      name,
      number,
      protocol: protocolFromPortName(name) ?? "HTTP",
    })),
    source: r.source,
  });
}
