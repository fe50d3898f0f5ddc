// Envoy's RBAC filters (HTTP envoy.extensions.filters.http.rbac.v3.RBAC, network
// envoy.extensions.filters.network.rbac.v3.RBAC) compiled into the plain trees of rbac-types.ts. Everything
// the sidecar's engine evaluates is listed; anything else (the `matcher` API, CEL conditions, audit
// loggers, URI templates, filter-state principals, per-rule stats) is refused with the field's path,
// because an authorization rule the sidecar silently ignored would allow or deny the wrong requests.
import { BlockList, isIP } from "node:net";
import type { CidrRange__Output } from "../../xds/generated/envoy/config/core/v3/CidrRange.js";
import type { Permission__Output } from "../../xds/generated/envoy/config/rbac/v3/Permission.js";
import type { Policy__Output } from "../../xds/generated/envoy/config/rbac/v3/Policy.js";
import type { Principal__Output } from "../../xds/generated/envoy/config/rbac/v3/Principal.js";
import type { RBAC__Output as Rules__Output } from "../../xds/generated/envoy/config/rbac/v3/RBAC.js";
import type { RBAC__Output as HttpRbac__Output } from "../../xds/generated/envoy/extensions/filters/http/rbac/v3/RBAC.js";
import type { RBAC__Output as NetworkRbac__Output } from "../../xds/generated/envoy/extensions/filters/network/rbac/v3/RBAC.js";
import type { MetadataMatcher__Output } from "../../xds/generated/envoy/type/matcher/v3/MetadataMatcher.js";
import type { PathMatcher__Output } from "../../xds/generated/envoy/type/matcher/v3/PathMatcher.js";
import type { ValueMatcher__Output } from "../../xds/generated/envoy/type/matcher/v3/ValueMatcher.js";
import { type At, decodeAny, names, onlyFields } from "./fields.js";
import { compileHeaderMatcher, compileStringMatcher } from "./matchers.js";
import type {
  Cidr,
  MetadataMatcher,
  NetworkRbacConfig,
  RbacFilterConfig,
  RbacPermission,
  RbacPolicy,
  RbacPrincipal,
  RbacRules,
  ValueMatcher,
} from "./rbac-types.js";

export const HTTP_RBAC_TYPE = "envoy.extensions.filters.http.rbac.v3.RBAC";
export const NETWORK_RBAC_TYPE = "envoy.extensions.filters.network.rbac.v3.RBAC";

/** Deeper trees than this are refused: a bound on the engine's recursion, far above anything Istio builds. */
const MAX_DEPTH = 64;

/** A CidrRange: prefix_len unset is 0, as in Envoy (the whole address family). */
export function compileCidr(c: CidrRange__Output | null | undefined, at: At): Cidr {
  if (!c) return at.invalid("a CIDR range is required");
  onlyFields("envoy.config.core.v3.CidrRange", c, names("addressPrefix", "prefixLen"), at);
  const family = isIP(c.addressPrefix);
  if (family !== 4 && family !== 6)
    return at.field("addressPrefix").invalid(`${JSON.stringify(c.addressPrefix)} is not an IP address`);
  const len = c.prefixLen?.value ?? 0;
  const max = family === 4 ? 32 : 128;
  if (len > max) at.field("prefixLen").invalid(`must be at most ${max} for ${c.addressPrefix}, got ${len}`);
  const block = new BlockList();
  block.addSubnet(c.addressPrefix, len, family === 4 ? "ipv4" : "ipv6");
  return { text: `${c.addressPrefix}/${len}`, family, block };
}

function compilePathMatcher(p: PathMatcher__Output | null | undefined, at: At) {
  if (!p) return at.invalid("a path matcher is required");
  onlyFields("envoy.type.matcher.v3.PathMatcher", p, names("path"), at);
  if (!p.path) return at.field("path").invalid("is required");
  return compileStringMatcher(p.path, at.field("path"));
}

const VALUE_FIELDS = names(
  "nullMatch",
  "doubleMatch",
  "stringMatch",
  "boolMatch",
  "presentMatch",
  "listMatch",
  "orMatch",
);

function compileValueMatcher(
  v: ValueMatcher__Output | null | undefined,
  at: At,
  depth: number,
): ValueMatcher {
  if (!v) return at.invalid("a value matcher is required");
  if (depth > MAX_DEPTH) return at.invalid(`nested deeper than ${MAX_DEPTH} levels`);
  onlyFields("envoy.type.matcher.v3.ValueMatcher", v, VALUE_FIELDS, at);
  switch (v.matchPattern) {
    case "nullMatch":
      return { kind: "null" };
    case "doubleMatch": {
      const d = v.doubleMatch;
      const dat = at.field("doubleMatch");
      if (!d) return dat.invalid("is required");
      if (d.matchPattern === "exact") return { kind: "double", exact: d.exact ?? 0 };
      if (d.matchPattern === "range" && d.range)
        return { kind: "double", start: d.range.start, end: d.range.end };
      return dat.invalid("range or exact is required");
    }
    case "stringMatch":
      return { kind: "string", match: compileStringMatcher(v.stringMatch, at.field("stringMatch")) };
    case "boolMatch":
      return { kind: "bool", value: v.boolMatch === true };
    case "presentMatch":
      return { kind: "present", present: v.presentMatch === true };
    case "listMatch": {
      const lat = at.field("listMatch");
      if (!v.listMatch?.oneOf) return lat.field("oneOf").invalid("is required");
      return { kind: "list", oneOf: compileValueMatcher(v.listMatch.oneOf, lat.field("oneOf"), depth + 1) };
    }
    case "orMatch": {
      const oat = at.field("orMatch").field("valueMatchers");
      const list = v.orMatch?.valueMatchers ?? [];
      if (list.length < 2) return oat.invalid("needs at least 2 value matchers");
      return {
        kind: "or",
        matchers: list.map((m, i) => compileValueMatcher(m, oat.index(i), depth + 1)),
      };
    }
    default:
      return at.invalid("match_pattern is required");
  }
}

function compileMetadataMatcher(m: MetadataMatcher__Output | null | undefined, at: At): MetadataMatcher {
  if (!m) return at.invalid("a metadata matcher is required");
  onlyFields("envoy.type.matcher.v3.MetadataMatcher", m, names("filter", "path", "value", "invert"), at);
  if (m.filter === "") at.field("filter").invalid("must not be empty");
  if (m.path.length === 0) at.field("path").invalid("needs at least one segment");
  const path = m.path.map((s, i) => {
    if (s.segment !== "key" || !s.key)
      return at.field("path").index(i).field("key").invalid("must not be empty");
    return s.key;
  });
  return {
    filter: m.filter,
    path,
    value: compileValueMatcher(m.value, at.field("value"), 0),
    invert: m.invert === true,
  };
}

/** The rule kinds the engine evaluates; the other members of the oneof are refused by name. */
const PERMISSION_FIELDS = names(
  "andRules",
  "orRules",
  "any",
  "header",
  "urlPath",
  "destinationIp",
  "destinationPort",
  "destinationPortRange",
  "metadata",
  "notRule",
  "requestedServerName",
);

export function compilePermission(p: Permission__Output, at: At, depth = 0): RbacPermission {
  if (depth > MAX_DEPTH) return at.invalid(`nested deeper than ${MAX_DEPTH} levels`);
  onlyFields("envoy.config.rbac.v3.Permission", p, PERMISSION_FIELDS, at);
  switch (p.rule) {
    case "any":
      if (p.any !== true) return at.field("any").invalid("must be true");
      return { kind: "any" };
    case "andRules":
    case "orRules": {
      const sat = at.field(p.rule).field("rules");
      const rules = (p[p.rule]?.rules ?? []).map((r, i) => compilePermission(r, sat.index(i), depth + 1));
      if (rules.length === 0) return sat.invalid("needs at least one rule");
      return { kind: p.rule === "andRules" ? "and" : "or", rules };
    }
    case "notRule":
      if (!p.notRule) return at.field("notRule").invalid("is required");
      return { kind: "not", rule: compilePermission(p.notRule, at.field("notRule"), depth + 1) };
    case "header":
      if (!p.header) return at.field("header").invalid("is required");
      return { kind: "header", header: compileHeaderMatcher(p.header, at.field("header")) };
    case "urlPath":
      return { kind: "url-path", match: compilePathMatcher(p.urlPath, at.field("urlPath")) };
    case "destinationIp":
      return { kind: "destination-ip", cidr: compileCidr(p.destinationIp, at.field("destinationIp")) };
    case "destinationPort": {
      const port = p.destinationPort ?? 0;
      if (port > 65535) at.field("destinationPort").invalid(`must be at most 65535, got ${port}`);
      return { kind: "destination-port", port };
    }
    case "destinationPortRange": {
      const r = p.destinationPortRange;
      const rat = at.field("destinationPortRange");
      if (!r) return rat.invalid("is required");
      if (r.end < r.start) rat.invalid(`end ${r.end} is below start ${r.start}`);
      return { kind: "destination-port-range", start: r.start, end: r.end };
    }
    case "metadata":
      return { kind: "metadata", matcher: compileMetadataMatcher(p.metadata, at.field("metadata")) };
    case "requestedServerName":
      return {
        kind: "requested-server-name",
        match: compileStringMatcher(p.requestedServerName, at.field("requestedServerName")),
      };
    default:
      return at.invalid("rule is required (any, and_rules, or_rules, not_rule, header, url_path, ...)");
  }
}

const PRINCIPAL_FIELDS = names(
  "andIds",
  "orIds",
  "any",
  "authenticated",
  "sourceIp",
  "directRemoteIp",
  "remoteIp",
  "header",
  "urlPath",
  "metadata",
  "notId",
);

export function compilePrincipal(p: Principal__Output, at: At, depth = 0): RbacPrincipal {
  if (depth > MAX_DEPTH) return at.invalid(`nested deeper than ${MAX_DEPTH} levels`);
  onlyFields("envoy.config.rbac.v3.Principal", p, PRINCIPAL_FIELDS, at);
  switch (p.identifier) {
    case "any":
      if (p.any !== true) return at.field("any").invalid("must be true");
      return { kind: "any" };
    case "andIds":
    case "orIds": {
      const sat = at.field(p.identifier).field("ids");
      const ids = (p[p.identifier]?.ids ?? []).map((r, i) => compilePrincipal(r, sat.index(i), depth + 1));
      if (ids.length === 0) return sat.invalid("needs at least one principal");
      return { kind: p.identifier === "andIds" ? "and" : "or", ids };
    }
    case "notId":
      if (!p.notId) return at.field("notId").invalid("is required");
      return { kind: "not", id: compilePrincipal(p.notId, at.field("notId"), depth + 1) };
    case "authenticated": {
      const aat = at.field("authenticated");
      const a = p.authenticated;
      if (!a) return aat.invalid("is required");
      onlyFields("envoy.config.rbac.v3.Principal.Authenticated", a, names("principalName"), aat);
      return a.principalName
        ? { kind: "authenticated", match: compileStringMatcher(a.principalName, aat.field("principalName")) }
        : { kind: "authenticated" };
    }
    case "sourceIp":
      return { kind: "direct-remote-ip", cidr: compileCidr(p.sourceIp, at.field("sourceIp")) };
    case "directRemoteIp":
      return { kind: "direct-remote-ip", cidr: compileCidr(p.directRemoteIp, at.field("directRemoteIp")) };
    case "remoteIp":
      return { kind: "remote-ip", cidr: compileCidr(p.remoteIp, at.field("remoteIp")) };
    case "header":
      if (!p.header) return at.field("header").invalid("is required");
      return { kind: "header", header: compileHeaderMatcher(p.header, at.field("header")) };
    case "urlPath":
      return { kind: "url-path", match: compilePathMatcher(p.urlPath, at.field("urlPath")) };
    case "metadata":
      return { kind: "metadata", matcher: compileMetadataMatcher(p.metadata, at.field("metadata")) };
    default:
      return at.invalid("identifier is required (any, authenticated, and_ids, or_ids, not_id, ...)");
  }
}

function compilePolicy(name: string, p: Policy__Output, at: At): RbacPolicy {
  if (p.condition || p.checkedCondition)
    at.field(p.condition ? "condition" : "checkedCondition").unsupported(
      "CEL conditions are not supported by the Skein sidecar's RBAC filter",
    );
  onlyFields("envoy.config.rbac.v3.Policy", p, names("permissions", "principals"), at);
  if (p.permissions.length === 0) at.field("permissions").invalid("needs at least one permission");
  if (p.principals.length === 0) at.field("principals").invalid("needs at least one principal");
  return {
    name,
    permissions: p.permissions.map((x, i) => compilePermission(x, at.field("permissions").index(i))),
    principals: p.principals.map((x, i) => compilePrincipal(x, at.field("principals").index(i))),
  };
}

const ACTIONS: Record<string, RbacRules["action"]> = {
  ALLOW: "ALLOW",
  DENY: "DENY",
  LOG: "LOG",
  "0": "ALLOW",
};

/** envoy.config.rbac.v3.RBAC; policies in name order (Envoy's map order decides which policy is reported). */
export function compileRbacRules(r: Rules__Output, at: At): RbacRules {
  onlyFields("envoy.config.rbac.v3.RBAC", r, names("action", "policies"), at);
  const action = ACTIONS[String(r.action)];
  if (!action) return at.field("action").invalid(`${r.action}: only ALLOW, DENY and LOG are supported`);
  const policies = Object.keys(r.policies ?? {})
    .sort()
    .map((name) =>
      compilePolicy(
        name,
        (r.policies as Record<string, Policy__Output>)[name] as Policy__Output,
        at.field("policies").key(name),
      ),
    );
  return { action, policies };
}

function refuseMatchers(m: { matcher: unknown; shadowMatcher: unknown }, at: At): void {
  if (m.matcher)
    at.field("matcher").unsupported(
      "the RBAC matcher API is not supported by the Skein sidecar; use rules (policies)",
    );
  if (m.shadowMatcher)
    at.field("shadowMatcher").unsupported(
      "the RBAC matcher API is not supported by the Skein sidecar; use shadow_rules",
    );
}

/** The HTTP filter's typed_config. */
export function compileHttpRbac(m: HttpRbac__Output, at: At): RbacFilterConfig {
  refuseMatchers(m, at);
  if (m.trackPerRuleStats)
    at.field("trackPerRuleStats").unsupported("per-rule stats are not supported by the Skein sidecar");
  onlyFields(
    HTTP_RBAC_TYPE,
    m,
    names("rules", "shadowRules", "shadowRulesStatPrefix", "rulesStatPrefix"),
    at,
  );
  const out: RbacFilterConfig = {
    kind: "rbac",
    rulesStatPrefix: m.rulesStatPrefix,
    shadowRulesStatPrefix: m.shadowRulesStatPrefix,
  };
  if (m.rules) out.rules = compileRbacRules(m.rules, at.field("rules"));
  if (m.shadowRules) out.shadowRules = compileRbacRules(m.shadowRules, at.field("shadowRules"));
  return out;
}

/** Rules of a network filter may only look at the connection: HTTP-only matchers are refused by path. */
function checkConnectionOnly(rules: RbacRules, at: At): void {
  const httpOnly = (kind: string) => kind === "header" || kind === "url-path" || kind === "metadata";
  const walkPermission = (p: RbacPermission, where: At): void => {
    if (httpOnly(p.kind))
      where.unsupported(`${p.kind} is HTTP-only and cannot be evaluated by the network RBAC filter`);
    if (p.kind === "and" || p.kind === "or")
      for (const [i, r] of p.rules.entries()) walkPermission(r, where.index(i));
    if (p.kind === "not") walkPermission(p.rule, where.field("notRule"));
  };
  const walkPrincipal = (p: RbacPrincipal, where: At): void => {
    if (httpOnly(p.kind))
      where.unsupported(`${p.kind} is HTTP-only and cannot be evaluated by the network RBAC filter`);
    if (p.kind === "and" || p.kind === "or")
      for (const [i, r] of p.ids.entries()) walkPrincipal(r, where.index(i));
    if (p.kind === "not") walkPrincipal(p.id, where.field("notId"));
  };
  for (const policy of rules.policies) {
    const pat = at.field("policies").key(policy.name);
    for (const [i, p] of policy.permissions.entries()) walkPermission(p, pat.field("permissions").index(i));
    for (const [i, p] of policy.principals.entries()) walkPrincipal(p, pat.field("principals").index(i));
  }
}

/** The network filter's typed_config. */
export function compileNetworkRbac(m: NetworkRbac__Output, at: At): NetworkRbacConfig {
  refuseMatchers(m, at);
  if (m.enforcementType === "CONTINUOUS")
    at.field("enforcementType").unsupported(
      "CONTINUOUS enforcement is not supported by the Skein sidecar (it decides once, before connecting)",
    );
  onlyFields(
    NETWORK_RBAC_TYPE,
    m,
    names("rules", "shadowRules", "statPrefix", "enforcementType", "shadowRulesStatPrefix"),
    at,
  );
  if (m.statPrefix === "") at.field("statPrefix").invalid("must not be empty");
  const out: NetworkRbacConfig = {
    kind: "network-rbac",
    statPrefix: m.statPrefix,
    shadowRulesStatPrefix: m.shadowRulesStatPrefix,
  };
  if (m.rules) {
    out.rules = compileRbacRules(m.rules, at.field("rules"));
    checkConnectionOnly(out.rules, at.field("rules"));
  }
  if (m.shadowRules) {
    out.shadowRules = compileRbacRules(m.shadowRules, at.field("shadowRules"));
    checkConnectionOnly(out.shadowRules, at.field("shadowRules"));
  }
  return out;
}

/** A network RBAC filter of a chain (never the terminal one: tcp_proxy must follow it). */
export function compileNetworkRbacFilter(
  f: {
    name: string;
    typedConfig?: { type_url?: string; typeUrl?: string; value?: Uint8Array | null } | null;
  },
  last: boolean,
  at: At,
): NetworkRbacConfig {
  if (last) at.invalid(`${f.name || NETWORK_RBAC_TYPE} is not a terminal filter: tcp_proxy must follow it`);
  const tat = at.field("typedConfig");
  if (!f.typedConfig) return tat.invalid("is required");
  return compileNetworkRbac(decodeAny(f.typedConfig, tat).message as unknown as NetworkRbac__Output, tat);
}

/** Puts a chain's network RBAC filters on its TCP proxy; before a connection manager they are refused. */
export function withNetworkRbac<C extends { kind: string; rbac?: NetworkRbacConfig[] }>(
  config: C,
  rbac: NetworkRbacConfig[],
  at: At,
): C {
  if (rbac.length === 0) return config;
  if (config.kind !== "tcp")
    return at.unsupported(
      "the network RBAC filter is supported before tcp_proxy only; for HTTP use envoy.filters.http.rbac",
    );
  return { ...config, rbac };
}
