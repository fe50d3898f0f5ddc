// Cross-resource checks of security policies, in the spirit of `istioctl analyze`:
// - a selector that matches no known workload (Istio's NoMatchingWorkloadsFound; workloads may still
//   register at run time, so it is a warning),
// - more than one PeerAuthentication for the same scope (Istio silently applies the oldest one),
// - principals and namespaces naming a namespace with no services or workloads (Istio's analyzer checks
//   `namespaces` against existing Namespaces; Skein knows namespaces through services and workloads),
// - an ALLOW policy without rules, Istio's allow-nothing policy: explained, since it denies requests.
import { Codes } from "../../api/codes.js";
import { principalNamespace, wildcardForm } from "../../api/istio/policy.js";
import type { PathSegment } from "../../api/yaml.js";
import type { Diagnostic } from "../../lib/diagnostics.js";
import { diagnosticAt } from "../builder.js";
import { selectorMatches } from "../hosts.js";
import type { AuthorizationPolicyModel, MeshModel, PeerAuthenticationPolicy, SourceRef } from "../types.js";
import type { Analyzer } from "./types.js";

const describeSelector = (s: Record<string, string>) =>
  Object.entries(s)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");

const where = (ref: SourceRef) => `${ref.file}:${ref.line ?? 1}`;

/** Is there a known workload (or a Service's selector, standing for its workloads) the selector picks? */
function selectsSomething(
  model: MeshModel,
  selector: Record<string, string>,
  inScope: (ns: string) => boolean,
): boolean {
  if (model.workloads.some((w) => inScope(w.namespace) && selectorMatches(selector, w.labels))) return true;
  return model.services.some((s) => {
    if (!inScope(s.namespace) || !s.selector || Object.keys(s.selector).length === 0) return false;
    // Either every workload of the service carries the policy's labels, or a workload with exactly the
    // policy's labels would belong to the service.
    return selectorMatches(selector, s.selector) || selectorMatches(s.selector, selector);
  });
}

function checkSelectors(model: MeshModel, out: Diagnostic[]): void {
  const root = model.meshConfig.rootNamespace;
  const policies: {
    kind: string;
    p: { name: string; namespace: string; selector?: Record<string, string>; source: SourceRef };
  }[] = [
    ...model.authorizationPolicies.map((p) => ({ kind: "AuthorizationPolicy", p })),
    ...model.requestAuthentications.map((p) => ({ kind: "RequestAuthentication", p })),
    // A PeerAuthentication selector in the root namespace is reported by lowering (Istio ignores it).
    ...model.peerAuthentications
      .filter((p) => p.namespace !== root)
      .map((p) => ({ kind: "PeerAuthentication", p })),
  ];
  for (const { kind, p } of policies) {
    if (!p.selector) continue;
    // In the root namespace a selector picks workloads in every namespace.
    const meshWide = p.namespace === root && kind !== "PeerAuthentication";
    if (selectsSomething(model, p.selector, (ns) => meshWide || ns === p.namespace)) continue;
    out.push(
      diagnosticAt(
        p.source,
        ["spec", "selector"],
        "warning",
        Codes.SELECTOR_MATCHES_NOTHING,
        `${kind} ${p.namespace}/${p.name} selects ${describeSelector(p.selector)}, but no workload ${meshWide ? "in the mesh" : `in namespace ${p.namespace}`} has these labels and no Service there selects them`,
        "check the labels against your workloads' labels; if the workloads register later at run time, this policy will apply to them then",
      ),
    );
  }
}

function checkPeerAuthnConflicts(model: MeshModel, out: Diagnostic[]): void {
  const conflict = (
    second: PeerAuthenticationPolicy,
    first: PeerAuthenticationPolicy,
    what: string,
    hint: string,
  ) =>
    out.push(
      diagnosticAt(
        second.source,
        second.selector ? ["spec", "selector"] : [],
        "error",
        Codes.PEER_AUTHN_CONFLICT,
        `PeerAuthentication ${second.namespace}/${second.name} and ${first.namespace}/${first.name} (${where(first.source)}) ${what}; Istio applies only the older of the two, so the mTLS mode depends on the order they were created`,
        hint,
      ),
    );
  const byScope = new Map<string, PeerAuthenticationPolicy[]>();
  for (const p of model.peerAuthentications) {
    if (p.scope === "workload") continue;
    const key = p.scope === "mesh" ? "mesh" : `ns:${p.namespace}`;
    byScope.set(key, [...(byScope.get(key) ?? []), p]);
  }
  for (const [key, list] of byScope) {
    const first = list[0] as PeerAuthenticationPolicy;
    for (const second of list.slice(1))
      conflict(
        second,
        first,
        key === "mesh"
          ? `are both mesh-wide (no selector in the root namespace ${first.namespace})`
          : `are both namespace-wide in ${first.namespace}`,
        key === "mesh"
          ? "keep a single mesh-wide PeerAuthentication (merge the two)"
          : "keep a single PeerAuthentication without selector per namespace (merge the two)",
      );
  }
  const root = model.meshConfig.rootNamespace;
  const workloadLevel = model.peerAuthentications.filter((p) => p.selector && p.namespace !== root);
  for (let i = 0; i < workloadLevel.length; i++)
    for (let j = 0; j < i; j++) {
      const a = workloadLevel[j] as PeerAuthenticationPolicy;
      const b = workloadLevel[i] as PeerAuthenticationPolicy;
      if (a.namespace !== b.namespace || !a.selector || !b.selector) continue;
      const same = describeSelector(a.selector) === describeSelector(b.selector);
      const shared = model.workloads.find(
        (w) =>
          w.namespace === a.namespace &&
          selectorMatches(a.selector, w.labels) &&
          selectorMatches(b.selector, w.labels),
      );
      if (same || shared)
        conflict(
          b,
          a,
          same
            ? `have the same selector (${describeSelector(b.selector)})`
            : `both select workload ${shared?.namespace}/${shared?.name}`,
          "make the selectors pick disjoint workloads, or merge the two policies",
        );
    }
}

function namespaceMatches(pattern: string, ns: string): boolean {
  switch (wildcardForm(pattern)) {
    case "presence":
      return true;
    case "prefix":
      return ns.startsWith(pattern.slice(0, -1));
    case "suffix":
      return ns.endsWith(pattern.slice(1));
    default:
      return ns === pattern;
  }
}

function checkNamespaceRefs(model: MeshModel, out: Diagnostic[]): void {
  const known = new Set([
    ...model.services.map((s) => s.namespace),
    ...model.workloads.map((w) => w.namespace),
  ]);
  const hint =
    "check the namespace name; if its workloads are defined elsewhere or register at run time, this warning does not apply";
  // One warning per policy and namespace, at its first mention.
  const reported = new Set<string>();
  const warn = (p: AuthorizationPolicyModel, ns: string, path: PathSegment[], message: string) => {
    const key = `${p.namespace}/${p.name}\u0000${ns}`;
    if (reported.has(key)) return;
    reported.add(key);
    out.push(diagnosticAt(p.source, path, "warning", Codes.NAMESPACE_NOT_FOUND, message, hint));
  };
  const checkPrincipal = (p: AuthorizationPolicyModel, principal: string, path: PathSegment[]) => {
    const ns = principalNamespace(principal);
    if (ns && !known.has(ns))
      warn(
        p,
        ns,
        path,
        `principal "${principal}" names namespace "${ns}", which has no services or workloads in this configuration`,
      );
  };
  const checkNamespace = (p: AuthorizationPolicyModel, pattern: string, path: PathSegment[]) => {
    if (![...known].some((ns) => namespaceMatches(pattern, ns)))
      warn(
        p,
        pattern,
        path,
        `namespace "${pattern}" matches no namespace with services or workloads in this configuration`,
      );
  };
  for (const p of model.authorizationPolicies)
    p.rules.forEach((rule, i) => {
      rule.from.forEach((src, j) => {
        const at = (field: string, k: number): PathSegment[] => [
          "spec",
          "rules",
          i,
          "from",
          j,
          "source",
          field,
          k,
        ];
        for (const field of ["principals", "notPrincipals"] as const)
          src[field].forEach((v, k) => {
            checkPrincipal(p, v, at(field, k));
          });
        for (const field of ["namespaces", "notNamespaces"] as const)
          src[field].forEach((v, k) => {
            checkNamespace(p, v, at(field, k));
          });
      });
      rule.when.forEach((c, j) => {
        const check =
          c.key === "source.principal"
            ? checkPrincipal
            : c.key === "source.namespace"
              ? checkNamespace
              : undefined;
        if (!check) return;
        for (const field of ["values", "notValues"] as const)
          c[field].forEach((v, k) => {
            check(p, v, ["spec", "rules", i, "when", j, field, k]);
          });
      });
    });
}

function checkAllowNothing(model: MeshModel, out: Diagnostic[]): void {
  for (const p of model.authorizationPolicies) {
    if (p.action !== "ALLOW" || p.rules.length > 0) continue;
    const target = p.targetRefs?.length
      ? `the resources it targets (${p.targetRefs.map((t) => `${t.kind} ${t.name}`).join(", ")})`
      : p.selector
        ? `workloads with ${describeSelector(p.selector)}${p.namespace === model.meshConfig.rootNamespace ? " in every namespace" : ` in ${p.namespace}`}`
        : p.scope === "mesh"
          ? "every workload in the mesh"
          : `every workload in namespace ${p.namespace}`;
    out.push(
      diagnosticAt(
        p.source,
        ["spec", "rules"],
        "info",
        Codes.AUTHZ_ALLOW_NOTHING,
        `AuthorizationPolicy ${p.namespace}/${p.name} is an ALLOW policy without rules, so it matches no request: requests to ${target} are denied unless another ALLOW policy allows them (Istio's allow-nothing policy)`,
        "that is the usual deny-by-default baseline; to allow every request instead, write `rules: [{}]`",
      ),
    );
  }
}

export const securityAnalyzer: Analyzer = {
  name: "security",
  run({ model }) {
    const out: Diagnostic[] = [];
    checkSelectors(model, out);
    checkPeerAuthnConflicts(model, out);
    checkNamespaceRefs(model, out);
    checkAllowNothing(model, out);
    return out;
  },
};
