// Which workloads a security policy (AuthorizationPolicy, RequestAuthentication) selects, by Istio's scopes:
// `targetRefs` to a Service select the workloads behind it (other targets concern gateways); a selector picks
// workloads in the policy's namespace, or in every namespace for a policy in the root namespace; no selector:
// every workload of the namespace, or of the mesh for the root namespace.
import { selectorMatches } from "../model/hosts.js";
import type { WorkloadInstance } from "../model/snapshot.js";
import type { PolicyTargetRef } from "../model/types.js";
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
