// The traffic policy that governs one cluster, merged as Istio does: the destination policy's top
// level, replaced field group by field group (connection pool, load balancer, outlier detection,
// TLS, health checks) by its port-level settings for the port, then by the subset's policy, then by
// the subset's port-level settings. Groups replace; they do not merge field by field.

import type { DestinationPolicy, TrafficPolicy } from "../model/types.js";

export type PortTrafficPolicy = Omit<TrafficPolicy, "portLevelSettings">;

const GROUPS = ["connectionPool", "loadBalancer", "outlierDetection", "tls", "healthChecks"] as const;

function overlay(base: PortTrafficPolicy, top: PortTrafficPolicy | undefined): PortTrafficPolicy {
  if (!top) return base;
  const out: PortTrafficPolicy = { ...base };
  for (const g of GROUPS) if (top[g] !== undefined) Object.assign(out, { [g]: top[g] });
  return out;
}

function atPort(policy: TrafficPolicy | undefined, port: number): PortTrafficPolicy {
  if (!policy) return {};
  const { portLevelSettings, ...top } = policy;
  const level = portLevelSettings.find((p) => p.port === port);
  return overlay(top, level);
}

export function mergedTrafficPolicy(
  policy: DestinationPolicy | undefined,
  port: number,
  subset?: string,
): PortTrafficPolicy {
  const base = atPort(policy?.trafficPolicy, port);
  if (subset === undefined) return base;
  const s = policy?.subsets.find((x) => x.name === subset);
  return overlay(base, s?.trafficPolicy ? atPort(s.trafficPolicy, port) : undefined);
}
