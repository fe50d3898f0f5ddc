// Lowers security.istio.io kinds (PeerAuthentication, AuthorizationPolicy, RequestAuthentication) into
// the model. Authorization ports become numbers; absent lists become empty ones. Scope is provisional
// here (default root namespace) and fixed by the policy-scope set lowering.
import { Codes } from "../../api/codes.js";
import type {
  AuthorizationPolicySpec,
  PeerAuthenticationSpec,
  RequestAuthenticationSpec,
} from "../../api/istio/security.js";
import type { Resource } from "../../api/resource.js";
import { DEFAULT_ROOT_NAMESPACE, type ModelBuilder } from "../builder.js";
import type { AuthzOperation, AuthzRule, AuthzSource, MtlsMode } from "../types.js";
import { lowerSelector, lowerTargetRefs, policyScope } from "./policy-scope.js";

export function lowerPeerAuthentication(
  r: Resource<PeerAuthenticationSpec | undefined>,
  b: ModelBuilder,
): void {
  const spec = r.spec ?? {};
  const selector = lowerSelector(r, spec.selector, b);
  const portLevel: Record<number, MtlsMode> = {};
  for (const [p, m] of Object.entries(spec.portLevelMtls ?? {})) portLevel[Number(p)] = m.mode ?? "UNSET";
  b.model.peerAuthentications.push({
    name: r.name,
    namespace: r.namespace,
    scope: policyScope(r.namespace, selector, undefined, DEFAULT_ROOT_NAMESPACE),
    selector,
    mode: spec.mtls?.mode ?? "UNSET",
    portLevel,
    source: r.source,
  });
}

type SourceSpec = NonNullable<
  NonNullable<AuthorizationPolicySpec["rules"]>[number]["from"]
>[number]["source"];
type OperationSpec = NonNullable<
  NonNullable<AuthorizationPolicySpec["rules"]>[number]["to"]
>[number]["operation"];

function lowerSource(s: SourceSpec): AuthzSource {
  return {
    principals: s.principals ?? [],
    notPrincipals: s.notPrincipals ?? [],
    requestPrincipals: s.requestPrincipals ?? [],
    notRequestPrincipals: s.notRequestPrincipals ?? [],
    namespaces: s.namespaces ?? [],
    notNamespaces: s.notNamespaces ?? [],
    ipBlocks: s.ipBlocks ?? [],
    notIpBlocks: s.notIpBlocks ?? [],
    remoteIpBlocks: s.remoteIpBlocks ?? [],
    notRemoteIpBlocks: s.notRemoteIpBlocks ?? [],
  };
}

function lowerOperation(o: OperationSpec): AuthzOperation {
  return {
    hosts: o.hosts ?? [],
    notHosts: o.notHosts ?? [],
    ports: o.ports ?? [],
    notPorts: o.notPorts ?? [],
    methods: o.methods ?? [],
    notMethods: o.notMethods ?? [],
    paths: o.paths ?? [],
    notPaths: o.notPaths ?? [],
  };
}

/** Source fields that a TCP connection has (everything but request principals, which need HTTP). */
const TCP_SOURCE_FIELDS = [
  "principals",
  "notPrincipals",
  "namespaces",
  "notNamespaces",
  "ipBlocks",
  "notIpBlocks",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
] as const;

export function lowerAuthorizationPolicy(
  r: Resource<AuthorizationPolicySpec | undefined>,
  b: ModelBuilder,
): void {
  const spec = r.spec ?? {};
  const selector = lowerSelector(r, spec.selector, b);
  const targetRefs = lowerTargetRefs(spec);
  const action = spec.action ?? "ALLOW";
  const rules: AuthzRule[] = (spec.rules ?? []).map((rule, i) => {
    const lowered: AuthzRule = {
      from: (rule.from ?? []).map((f) => lowerSource(f.source)),
      to: (rule.to ?? []).map((t) => lowerOperation(t.operation)),
      when: (rule.when ?? []).map((c) => ({
        key: c.key,
        values: c.values ?? [],
        notValues: c.notValues ?? [],
      })),
    };
    lowered.to.forEach((op, j) => {
      for (const field of ["methods", "notMethods"] as const)
        op[field].forEach((m, k) => {
          if (m !== m.toUpperCase())
            b.report(
              r.source,
              ["spec", "rules", i, "to", j, "operation", field, k],
              "warning",
              Codes.METHOD_CASE,
              `method "${m}" is not upper-case; HTTP methods are case-sensitive, so it would never match a request`,
              `write "${m.toUpperCase()}"`,
            );
        });
    });
    // Istio's own warning: on a TCP port, HTTP-only attributes cannot be evaluated, so a DENY rule made
    // only of them is turned into "deny everything" there.
    if (action === "DENY") {
      const fromExists = lowered.from.length > 0;
      const toExists = lowered.to.length > 0;
      const tcpInFrom = lowered.from.some((s) => TCP_SOURCE_FIELDS.some((f) => s[f].length > 0));
      const tcpInTo = lowered.to.some((o) => o.ports.length > 0 || o.notPorts.length > 0);
      if ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo))
        b.report(
          r.source,
          ["spec", "rules", i],
          "warning",
          Codes.AUTHZ_HTTP_ONLY_DENY,
          "this DENY rule uses only HTTP attributes, which a TCP connection does not have: on TCP ports under this policy it denies every connection",
          "add ports (or notPorts) to its operations to limit it to HTTP ports",
        );
    }
    return lowered;
  });
  b.model.authorizationPolicies.push({
    name: r.name,
    namespace: r.namespace,
    scope: policyScope(r.namespace, selector, targetRefs, DEFAULT_ROOT_NAMESPACE),
    selector,
    targetRefs,
    action,
    provider: spec.provider?.name,
    rules,
    source: r.source,
  });
}

export function lowerRequestAuthentication(
  r: Resource<RequestAuthenticationSpec | undefined>,
  b: ModelBuilder,
): void {
  const spec = r.spec ?? {};
  const selector = lowerSelector(r, spec.selector, b);
  const targetRefs = lowerTargetRefs(spec);
  b.model.requestAuthentications.push({
    name: r.name,
    namespace: r.namespace,
    scope: policyScope(r.namespace, selector, targetRefs, DEFAULT_ROOT_NAMESPACE),
    selector,
    targetRefs,
    jwtRules: (spec.jwtRules ?? []).map((j) => ({
      issuer: j.issuer,
      audiences: j.audiences ?? [],
      jwksUri: j.jwksUri,
      jwks: j.jwks,
      fromHeaders: (j.fromHeaders ?? []).map((h) => ({ name: h.name, prefix: h.prefix })),
      fromParams: j.fromParams ?? [],
      fromCookies: j.fromCookies ?? [],
      outputPayloadToHeader: j.outputPayloadToHeader,
      outputClaimToHeaders: (j.outputClaimToHeaders ?? []).map((o) => ({ header: o.header, claim: o.claim })),
      forwardOriginalToken: j.forwardOriginalToken ?? false,
      timeoutMs: j.timeout,
    })),
    source: r.source,
  });
}
