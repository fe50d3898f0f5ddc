// AuthorizationPolicy → Envoy RBAC on a workload's inbound listeners, as Istio's authz builder
// (pilot/pkg/security/authz) translates it:
// - the policies that apply to the workload: mesh-wide (root namespace, no selector), its namespace's
//   selector-less ones, those selecting it by label (in its namespace, or the root namespace for every
//   namespace) and those whose targetRefs name a Service of its namespace that selects it;
// - HTTP ports get Istio's filters before the router: AUDIT policies as an RBAC filter with action LOG, then
//   DENY policies (action DENY), then ALLOW policies (action ALLOW, present only when some ALLOW policy
//   applies: then a request no policy allows is refused). Each rule is one RBAC policy named
//   `ns[<ns>]-policy[<name>]-rule[<i>]`; a policy without rules is one policy that never matches (an ALLOW
//   policy without rules therefore denies everything); a rule `{}` matches everything. `from` entries are
//   the policy's principals (any may match), `to` entries its permissions, `when` conditions are ANDed into
//   each. The filters are named istio.authorization.deny / istio.authorization.allow (Istio's names for its
//   RBAC filter instances; the sidecar keys per-route config by filter name, so names must be unique).
// - TCP ports get envoy.filters.network.rbac filters (stat prefix `tcp.`) in the same order. HTTP-only fields
//   (hosts, methods, paths, request principals, request.headers and request.auth.* conditions) cannot be
//   evaluated there: an ALLOW rule using any is dropped (it allows nothing), a DENY or AUDIT rule is kept
//   with those fields left out (it denies more), as Istio does.
// - CUSTOM policies need an external authorizer, which Skein does not run: their rules are enforced as DENY
//   rules (fail closed), as Istio does when a CUSTOM policy's provider is unusable.
// Skein's departures from Istio's output, all towards refusing more: regex metacharacters in wildcard
// principals and namespaces are escaped; a host without a port also matches it with any port (Istio needs
// `host:*` for that, and DENY policies on hosts are bypassed without it); request.auth.audiences and claims
// match a string or one item of a list (the sidecar's JWT filter keeps lists as lists).
// Path normalisation: Skein's inbound connection managers set normalize_path, merge_slashes and
// path_with_escaped_slashes_action REJECT_REQUEST (see AUTHZ_PATH_NORMALIZATION), so a policy's paths are
// compared with the path the application will serve.

import type { WorkloadInstance } from "../model/snapshot.js";
import type { AuthorizationPolicyModel, AuthzRule } from "../model/types.js";
import type { CidrRange } from "../xds/generated/envoy/config/core/v3/CidrRange.js";
import type { Filter } from "../xds/generated/envoy/config/listener/v3/Filter.js";
import type { Permission } from "../xds/generated/envoy/config/rbac/v3/Permission.js";
import type { Policy } from "../xds/generated/envoy/config/rbac/v3/Policy.js";
import type { Principal } from "../xds/generated/envoy/config/rbac/v3/Principal.js";
import type { RBAC as Rules } from "../xds/generated/envoy/config/rbac/v3/RBAC.js";
import type { HeaderMatcher } from "../xds/generated/envoy/config/route/v3/HeaderMatcher.js";
import type { HttpFilter } from "../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.js";
import type { StringMatcher } from "../xds/generated/envoy/type/matcher/v3/StringMatcher.js";
import type { ValueMatcher } from "../xds/generated/envoy/type/matcher/v3/ValueMatcher.js";
import type { InboundPort } from "./clusters.js";
import { policyApplies } from "./policy-applies.js";
import type { ProxyView } from "./scope.js";
import { FILTER, typed } from "./typed.js";
import { compare } from "./values.js";

/** The metadata namespace the JWT filter fills with request.auth.* (Istio's authn filter name). */
export const ISTIO_AUTHN = "istio_authn";
/** Istio's stat prefix for the network RBAC filter. */
export const TCP_RBAC_STAT_PREFIX = "tcp.";

/**
 * What Skein's inbound connection managers set for paths: RFC 3986 normalisation, merged slashes and
 * requests with %2F or %5C refused (400). Istio's default (BASE) normalises only; merging makes a DENY on
 * `/admin` hold for `//admin` too, and refusing escaped slashes keeps `..%2F` from reaching the application.
 */
export const AUTHZ_PATH_NORMALIZATION = {
  normalizePath: { value: true },
  mergeSlashes: true,
  pathWithEscapedSlashesAction: "REJECT_REQUEST",
} as const;

/** Istio's name of one rule's RBAC policy. */
export function rbacPolicyName(namespace: string, name: string, rule: number): string {
  return `ns[${namespace}]-policy[${name}]-rule[${rule}]`;
}

/** Whether an AuthorizationPolicy applies to the workload (Istio's scopes; Service targetRefs select). */
export function authorizationPolicyApplies(
  view: ProxyView,
  policy: AuthorizationPolicyModel,
  workload: WorkloadInstance,
): boolean {
  return policyApplies(view, policy, workload);
}

/** The policies that apply to the workload, by namespace then name. */
export function authorizationPoliciesFor(
  view: ProxyView,
  workload: WorkloadInstance,
): AuthorizationPolicyModel[] {
  return view.model.authorizationPolicies
    .filter((p) => authorizationPolicyApplies(view, p, workload))
    .sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name));
}

// ── Matchers ─────────────────────────────────────────────────────────────────────────────────────────

/** RE2 escaping of a literal. */
function quote(s: string): string {
  return s.replace(/[\\.+*?()|[\]{}^$]/g, "\\$&");
}

const regex = (r: string): StringMatcher => ({ safeRegex: { regex: r } });

/** Istio's StringMatcherWithPrefix: `*` any non-empty value, `*x` suffix, `x*` prefix, else exact. */
function stringMatcher(v: string, prefix = ""): StringMatcher {
  if (v === "*") return regex(".+");
  if (v.startsWith("*"))
    return prefix ? regex(`${quote(prefix)}.*${quote(v.slice(1))}`) : { suffix: v.slice(1) };
  if (v.endsWith("*")) return { prefix: prefix + v.slice(0, -1) };
  return { exact: prefix + v };
}

function headerMatcher(name: string, v: string): HeaderMatcher {
  return v === "*" ? { name, presentMatch: true } : { name, stringMatch: stringMatcher(v) };
}

/**
 * A request header from a `when` condition. Envoy joins repeated headers with commas, so, as Istio does,
 * the value must equal one of the comma-separated items (sending a header twice cannot dodge a DENY).
 */
function requestHeaderMatcher(name: string, v: string): HeaderMatcher {
  if (v === "*") return { name, presentMatch: true };
  const item = v.startsWith("*")
    ? `.*${quote(v.slice(1))}`
    : v.endsWith("*")
      ? `${quote(v.slice(0, -1))}.*`
      : quote(v);
  return { name, safeRegexMatch: { regex: `^${item}$|^${item},.*|.*,${item},.*|.*,${item}$` } };
}

/** `:authority` case-insensitively; a host without a port matches with any port too. */
function hostMatcher(v: string): HeaderMatcher {
  const name = ":authority";
  if (v === "*") return { name, presentMatch: true };
  if (v.endsWith("*")) return { name, stringMatch: { prefix: v.slice(0, -1), ignoreCase: true } };
  const host = v.startsWith("*") ? `.*${quote(v.slice(1))}` : quote(v);
  const port = /:[0-9]+$/.test(v) ? "" : "(:[0-9]+)?";
  return { name, stringMatch: regex(`(?i)${host}${port}`) };
}

/** An Istio path: `*` any, `/x/*` prefix, `*.html` suffix, `{*}`/`{**}` templates as a regex, else exact. */
function pathMatcher(v: string): Permission {
  if (v.includes("{*}") || v.includes("{**}")) {
    const segments = v.split("/").map((s) => (s === "{*}" ? "[^/]+" : s === "{**}" ? ".*" : quote(s)));
    return { urlPath: { path: regex(segments.join("/")) } };
  }
  return { urlPath: { path: stringMatcher(v) } };
}

function cidr(v: string): CidrRange {
  const [address = "", len] = v.split("/");
  return {
    addressPrefix: address,
    prefixLen: { value: len !== undefined ? Number(len) : address.includes(":") ? 128 : 32 },
  };
}

function metadata(
  path: string[],
  value: ValueMatcher,
): { filter: string; path: { key: string }[]; value: ValueMatcher } {
  return { filter: ISTIO_AUTHN, path: path.map((key) => ({ key })), value };
}

/** A string value, or one item of a list value. */
function stringOrItem(v: string): ValueMatcher {
  const s: ValueMatcher = { stringMatch: stringMatcher(v) };
  return { orMatch: { valueMatchers: [s, { listMatch: { oneOf: s } }] } };
}

const principalName = (m: StringMatcher): Principal => ({ authenticated: { principalName: m } });

const sourcePrincipal = (v: string) => principalName(stringMatcher(v, "spiffe://"));
const sourceNamespace = (v: string) => principalName(regex(`.*/ns/${v.split("*").map(quote).join(".*")}/.*`));

// ── One rule ─────────────────────────────────────────────────────────────────────────────────────────

type Action = "ALLOW" | "DENY" | "LOG";

/** One key of a rule: values ORed, notValues ORed and negated; `httpOnly` keys cannot apply on TCP. */
interface Key<T> {
  values: readonly string[];
  notValues: readonly string[];
  httpOnly: boolean;
  make(v: string): T;
}

/** Undefined: the rule cannot apply (an ALLOW rule with HTTP-only fields on TCP). */
function conjunction<T>(
  keys: Key<T>[],
  forTcp: boolean,
  action: Action,
  or: (xs: T[]) => T,
  not: (x: T) => T,
): T[] | undefined {
  const out: T[] = [];
  for (const k of keys) {
    if (k.values.length === 0 && k.notValues.length === 0) continue;
    if (forTcp && k.httpOnly) {
      if (action === "ALLOW") return undefined;
      continue; // DENY and AUDIT: left out, so the rule matches more.
    }
    if (k.values.length > 0) out.push(or(k.values.map(k.make)));
    if (k.notValues.length > 0) out.push(not(or(k.notValues.map(k.make))));
  }
  return out;
}

const orPermission = (xs: Permission[]): Permission => ({ orRules: { rules: xs } });
const notPermission = (x: Permission): Permission => ({ notRule: x });
const orPrincipal = (xs: Principal[]): Principal => ({ orIds: { ids: xs } });
const notPrincipal = (x: Principal): Principal => ({ notId: x });

function key<T>(
  values: readonly string[],
  notValues: readonly string[],
  httpOnly: boolean,
  make: (v: string) => T,
): Key<T> {
  return { values, notValues, httpOnly, make };
}

/** `request.auth.claims[a][b]` → ["a", "b"]. */
function bracketed(k: string, base: string): string[] {
  return [...k.slice(base.length).matchAll(/\[([^\]]*)\]/g)].map((m) => m[1] as string);
}

/** A `when` condition: a permission key (destination.*, connection.sni) or a principal key (the rest). */
function conditionKey(
  c: AuthzRule["when"][number],
): { side: "permission"; key: Key<Permission> } | { side: "principal"; key: Key<Principal> } | undefined {
  const v = c.values;
  const n = c.notValues;
  const k = c.key;
  const perm = (httpOnly: boolean, make: (v: string) => Permission) => ({
    side: "permission" as const,
    key: key(v, n, httpOnly, make),
  });
  const prin = (httpOnly: boolean, make: (v: string) => Principal) => ({
    side: "principal" as const,
    key: key(v, n, httpOnly, make),
  });
  switch (k) {
    case "destination.ip":
      return perm(false, (x) => ({ destinationIp: cidr(x) }));
    case "destination.port":
      return perm(false, (x) => ({ destinationPort: Number(x) }));
    case "connection.sni":
      return perm(false, (x) => ({ requestedServerName: stringMatcher(x) }));
    case "source.ip":
      return prin(false, (x) => ({ directRemoteIp: cidr(x) }));
    case "remote.ip":
      return prin(false, (x) => ({ remoteIp: cidr(x) }));
    case "source.namespace":
      return prin(false, sourceNamespace);
    case "source.principal":
      return prin(false, sourcePrincipal);
    case "request.auth.principal":
      return prin(true, (x) => ({ metadata: metadata([k], { stringMatch: stringMatcher(x) }) }));
    case "request.auth.audiences":
      return prin(true, (x) => ({ metadata: metadata([k], stringOrItem(x)) }));
    case "request.auth.presenter":
      return prin(true, (x) => ({ metadata: metadata([k], { stringMatch: stringMatcher(x) }) }));
  }
  if (k.startsWith("request.headers[")) {
    const [name = ""] = bracketed(k, "request.headers");
    return prin(true, (x) => ({ header: requestHeaderMatcher(name.toLowerCase(), x) }));
  }
  if (k.startsWith("request.auth.claims[")) {
    const path = ["request.auth.claims", ...bracketed(k, "request.auth.claims")];
    return prin(true, (x) => ({ metadata: metadata(path, stringOrItem(x)) }));
  }
  if (k.startsWith("experimental.envoy.filters.")) {
    // `experimental.envoy.filters.a.b[c]`: metadata of filter envoy.filters.a.b at key c; `[v]` a list item.
    const open = k.indexOf("[");
    const filter = k.slice("experimental.".length, open);
    const path = bracketed(k, k.slice(0, open)).map((p) => ({ key: p }));
    return perm(false, (x) => ({
      metadata: {
        filter,
        path,
        value:
          x.startsWith("[") && x.endsWith("]")
            ? { listMatch: { oneOf: { stringMatch: stringMatcher(x.slice(1, -1)) } } }
            : { stringMatch: stringMatcher(x) },
      },
    }));
  }
  return undefined;
}

/** One rule as an RBAC policy, or undefined when it cannot apply on this filter (see conjunction). */
function rulePolicy(rule: AuthzRule, forTcp: boolean, action: Action): Policy | undefined {
  const whenPermissions: Key<Permission>[] = [];
  const whenPrincipals: Key<Principal>[] = [];
  for (const c of rule.when) {
    const k = conditionKey(c);
    // A key the API layer let through but no generator knows: Istio skips the whole rule.
    if (k === undefined) return undefined;
    if (k.side === "permission") whenPermissions.push(k.key);
    else whenPrincipals.push(k.key);
  }
  const permissions: Permission[] = [];
  for (const o of rule.to.length > 0 ? rule.to : [undefined]) {
    const keys: Key<Permission>[] = o
      ? [
          key(o.hosts, o.notHosts, true, (v) => ({ header: hostMatcher(v) })),
          key(o.methods, o.notMethods, true, (v) => ({ header: headerMatcher(":method", v) })),
          key(o.paths, o.notPaths, true, pathMatcher),
          key(o.ports.map(String), o.notPorts.map(String), false, (v) => ({ destinationPort: Number(v) })),
        ]
      : [];
    const and = conjunction([...keys, ...whenPermissions], forTcp, action, orPermission, notPermission);
    if (and === undefined) return undefined;
    permissions.push({ andRules: { rules: and.length > 0 ? and : [{ any: true }] } });
  }
  const principals: Principal[] = [];
  for (const s of rule.from.length > 0 ? rule.from : [undefined]) {
    const keys: Key<Principal>[] = s
      ? [
          key(s.principals, s.notPrincipals, false, sourcePrincipal),
          key(s.requestPrincipals, s.notRequestPrincipals, true, (v) => ({
            metadata: metadata(["request.auth.principal"], { stringMatch: stringMatcher(v) }),
          })),
          key(s.namespaces, s.notNamespaces, false, sourceNamespace),
          key(s.remoteIpBlocks, s.notRemoteIpBlocks, false, (v) => ({ remoteIp: cidr(v) })),
          key(s.ipBlocks, s.notIpBlocks, false, (v) => ({ directRemoteIp: cidr(v) })),
        ]
      : [];
    const and = conjunction([...keys, ...whenPrincipals], forTcp, action, orPrincipal, notPrincipal);
    if (and === undefined) return undefined;
    principals.push({ andIds: { ids: and.length > 0 ? and : [{ any: true }] } });
  }
  return { permissions, principals };
}

/** Istio's policy for a policy without rules: it never matches. */
const MATCH_NEVER: Policy = {
  permissions: [{ notRule: { any: true } }],
  principals: [{ notId: { any: true } }],
};

/** The RBAC rules of `policies` for one action; undefined when there are none. */
export function buildRbacRules(
  policies: readonly AuthorizationPolicyModel[],
  action: Action,
  forTcp: boolean,
): Rules | undefined {
  if (policies.length === 0) return undefined;
  const out: Record<string, Policy> = {};
  for (const p of policies) {
    if (p.rules.length === 0) {
      out[rbacPolicyName(p.namespace, p.name, 0)] = MATCH_NEVER;
      continue;
    }
    p.rules.forEach((rule, i) => {
      const policy = rulePolicy(rule, forTcp, action);
      if (policy) out[rbacPolicyName(p.namespace, p.name, i)] = policy;
    });
  }
  return { action, policies: out };
}

/** The workload's policies grouped as Istio builds its filters: AUDIT (LOG), DENY (and CUSTOM), ALLOW. */
function grouped(
  view: ProxyView,
  workload: WorkloadInstance,
): [Action, AuthorizationPolicyModel[], string][] {
  const all = authorizationPoliciesFor(view, workload);
  return [
    ["LOG", all.filter((p) => p.action === "AUDIT"), FILTER.rbacAudit],
    ["DENY", all.filter((p) => p.action === "DENY" || p.action === "CUSTOM"), FILTER.rbacDeny],
    ["ALLOW", all.filter((p) => p.action === "ALLOW"), FILTER.rbacAllow],
  ];
}

/** The RBAC HTTP filters for an inbound HTTP port, to go before the router (empty when no policy applies). */
export function authzHttpFilters(view: ProxyView, _inbound: InboundPort): HttpFilter[] {
  const workload = view.proxy.workload;
  if (!workload) return [];
  const out: HttpFilter[] = [];
  for (const [action, policies, name] of grouped(view, workload)) {
    const rules = buildRbacRules(policies, action, false);
    if (rules)
      out.push({ name, typedConfig: typed("envoy.extensions.filters.http.rbac.v3.RBAC", { rules }) });
  }
  return out;
}

/** The network RBAC filters for an inbound TCP port, before tcp_proxy (empty when no policy applies). */
export function authzNetworkFilters(view: ProxyView, _inbound: InboundPort): Filter[] {
  const workload = view.proxy.workload;
  if (!workload) return [];
  const out: Filter[] = [];
  for (const [action, policies] of grouped(view, workload)) {
    const rules = buildRbacRules(policies, action, true);
    if (rules)
      out.push({
        name: FILTER.networkRbac,
        typedConfig: typed("envoy.extensions.filters.network.rbac.v3.RBAC", {
          rules,
          statPrefix: TCP_RBAC_STAT_PREFIX,
        }),
      });
  }
  return out;
}
