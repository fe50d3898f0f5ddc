// Which workloads a security policy (AuthorizationPolicy, RequestAuthentication) selects, by Istio's scopes:
// `targetRefs` to a Service select the workloads behind it (other targets concern gateways); a selector picks
// workloads in the policy's namespace, or in every namespace for a policy in the root namespace; no selector:
// every workload of the namespace, or of the mesh for the root namespace.
import { selectorMatches } from "../model/hosts.js";
import type { WorkloadInstance } from "../model/snapshot.js";
import type { PolicyTargetRef, TelemetryPolicy, WorkloadMode } from "../model/types.js";
import type { ProxyView } from "./scope.js";

export interface ScopedPolicy {
  namespace: string;
  selector?: Record<string, string>;
  targetRefs?: PolicyTargetRef[];
}

export function policyApplies(view: ProxyView, policy: ScopedPolicy, workload: WorkloadInstance): boolean {
  const root = view.model.meshConfig.rootNamespace;
  if (policy.targetRefs && policy.targetRefs.length > 0) {
    return policy.targetRefs.some((ref) => {
      if (ref.group !== "" || ref.kind !== "Service" || policy.namespace !== workload.namespace) return false;
      return view.index
        .find(ref.name, policy.namespace)
        .some(
          (s) =>
            s.namespace === workload.namespace &&
            s.selector !== undefined &&
            selectorMatches(s.selector, workload.labels),
        );
    });
  }
  if (policy.selector) {
    if (policy.namespace !== root && policy.namespace !== workload.namespace) return false;
    return selectorMatches(policy.selector, workload.labels);
  }
  return policy.namespace === root || policy.namespace === workload.namespace;
}

/**
 * How specifically a Telemetry applies to the proxy's workload: 2 by selector (in its namespace, or in the root
 * namespace for every namespace), 1 its namespace's, 0 mesh-wide (root namespace); -1 not at all. The most
 * specific wins. Telemetry `targetRefs` are not applied (they concern gateways and services, not sidecars' own
 * telemetry here).
 */
export function telemetryLevel(view: ProxyView, t: TelemetryPolicy): number {
  if (t.targetRefs?.length) return -1;
  const w = view.proxy.workload;
  const root = view.model.meshConfig.rootNamespace;
  if (t.selector && Object.keys(t.selector).length > 0) {
    const inScope = t.namespace === view.proxy.namespace || t.namespace === root;
    return inScope && w !== undefined && selectorMatches(t.selector, w.labels) ? 2 : -1;
  }
  if (t.namespace === view.proxy.namespace && t.namespace !== root) return 1;
  return t.namespace === root ? 0 : -1;
}

/** Whether a Telemetry rule's `match.mode` covers this side (CLIENT: outbound, SERVER: inbound). */
export function telemetryModeMatches(mode: WorkloadMode | undefined, side: "inbound" | "outbound"): boolean {
  if (mode === undefined || mode === "CLIENT_AND_SERVER") return true;
  return (mode === "CLIENT") === (side === "outbound");
}
