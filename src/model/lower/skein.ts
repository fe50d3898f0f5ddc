// Lowers Skein's Service, Workload and RateLimit kinds into the model.
import type { StringMatchSpec } from "../../api/istio/common.js";
import type { Resource } from "../../api/resource.js";
import {
  protocolFromPortName,
  type SkeinRateLimitSpec,
  type SkeinServiceSpec,
  type SkeinWorkloadSpec,
} from "../../api/skein.js";
import type { ModelBuilder } from "../builder.js";
import { CLUSTER_DOMAIN, serviceFqdn } from "../hosts.js";
import type { RequestMatch, StringMatch } from "../types.js";

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

function stringMatch(m: StringMatchSpec | undefined): StringMatch | undefined {
  if (m?.exact !== undefined) return { kind: "exact", value: m.exact };
  if (m?.prefix !== undefined) return { kind: "prefix", value: m.prefix };
  if (m?.regex !== undefined) return { kind: "regex", value: m.regex };
  return undefined;
}

export function lowerSkeinRateLimit(r: Resource<SkeinRateLimitSpec>, b: ModelBuilder): void {
  const m = r.spec.match;
  const match: RequestMatch | undefined = m && {
    uri: stringMatch(m.uri),
    method: stringMatch(m.method),
    headers: Object.entries(m.headers ?? {}).map(([name, sm]) => ({
      name: name.toLowerCase(),
      match: stringMatch(sm),
      invert: false,
    })),
    queryParams: Object.entries(m.queryParams ?? {}).map(([name, sm]) => ({ name, match: stringMatch(sm) })),
    ignoreUriCase: m.ignoreUriCase ?? false,
  };
  const t = r.spec.tokenBucket;
  b.model.rateLimits.push({
    name: r.name,
    namespace: r.namespace,
    ...(r.spec.selector && { selector: r.spec.selector }),
    ...(r.spec.service !== undefined && { service: r.spec.service }),
    ...(r.spec.port !== undefined && { port: r.spec.port }),
    ...(match && { match }),
    tokenBucket: { maxTokens: t.maxTokens, tokensPerFill: t.tokensPerFill, fillIntervalMs: t.fillInterval },
    source: r.source,
  });
}
