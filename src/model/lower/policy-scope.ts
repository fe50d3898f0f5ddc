// Where an Istio policy applies (mesh, namespace, workload) depends on the root namespace, which comes
// from meshConfig — possibly in another file, lowered after the policy. Kind lowerings therefore compute
// the scope with the default root namespace, and the `policy-scope` set lowering, which runs after every
// kind lowering, recomputes it with the final one. The checks that depend on the root namespace live there.
import { Codes } from "../../api/codes.js";
import type { PolicySelectorSpec, TargetRefSpec } from "../../api/istio/policy.js";
import type { Resource } from "../../api/resource.js";
import type { ModelBuilder } from "../builder.js";
import type { PolicyScope, PolicyTargetRef } from "../types.js";
import type { SetLowering } from "./types.js";

export function policyScope(
  namespace: string,
  selector: Record<string, string> | undefined,
  targetRefs: readonly PolicyTargetRef[] | undefined,
  rootNamespace: string,
): PolicyScope {
  if (selector || (targetRefs?.length ?? 0) > 0) return "workload";
  return namespace === rootNamespace ? "mesh" : "namespace";
}

/** The selector's labels; an empty selector selects everything, which Istio treats as no selector. */
export function lowerSelector(
  r: Resource,
  selector: PolicySelectorSpec | undefined,
  b: ModelBuilder,
): Record<string, string> | undefined {
  if (!selector) return undefined;
  const labels = selector.matchLabels ?? {};
  if (Object.keys(labels).length === 0) {
    b.report(
      r.source,
      ["spec", "selector"],
      "warning",
      Codes.NO_EFFECT,
      "selector has no matchLabels, so it selects every workload: the policy applies to the whole namespace",
      "add matchLabels to pick workloads, or remove the selector",
    );
    return undefined;
  }
  return { ...labels };
}

export function lowerTargetRefs(spec: {
  targetRef?: TargetRefSpec;
  targetRefs?: TargetRefSpec[];
}): PolicyTargetRef[] | undefined {
  const refs = [...(spec.targetRef ? [spec.targetRef] : []), ...(spec.targetRefs ?? [])];
  if (refs.length === 0) return undefined;
  return refs.map((t) => ({ group: t.group === "core" ? "" : (t.group ?? ""), kind: t.kind, name: t.name }));
}

export const policyScopes: SetLowering = {
  name: "policy-scope",
  lower(_resources, b) {
    const root = b.model.meshConfig.rootNamespace;
    const m = b.model;
    for (const p of m.peerAuthentications) {
      p.scope = policyScope(p.namespace, p.selector, undefined, root);
      // Istio composes peer authentication from mesh, namespace and workload policies, and ignores
      // workload (selector) policies in the root namespace.
      if (p.selector && p.namespace === root)
        b.report(
          p.source,
          ["spec", "selector"],
          "warning",
          Codes.NO_EFFECT,
          `PeerAuthentication ${p.namespace}/${p.name} has a selector in the root namespace (${root}), where Istio ignores workload-level peer authentication`,
          "move it to the namespace of the workloads it selects, or remove the selector to make it mesh-wide",
        );
    }
    for (const p of m.authorizationPolicies)
      p.scope = policyScope(p.namespace, p.selector, p.targetRefs, root);
    for (const p of m.requestAuthentications)
      p.scope = policyScope(p.namespace, p.selector, p.targetRefs, root);
    for (const p of m.telemetry) p.scope = policyScope(p.namespace, p.selector, p.targetRefs, root);
  },
};
