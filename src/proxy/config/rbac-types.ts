// The compiled form of Envoy's RBAC configs (envoy.config.rbac.v3.RBAC inside the HTTP filter
// envoy.extensions.filters.http.rbac.v3.RBAC and the network filter
// envoy.extensions.filters.network.rbac.v3.RBAC): plain tagged trees the sidecar's RBAC engine walks per
// request or connection, with matchers, CIDR blocks and regexes built once when the config arrives.
import type { BlockList } from "node:net";
import type { HeaderMatcher, StringMatcher } from "./types.js";

/** A CIDR range (Envoy's CidrRange); `block` answers membership (IPv4-mapped IPv6 unwrapped first). */
export interface Cidr {
  /** As configured, for messages and tests: `10.0.0.0/8`. */
  text: string;
  /** Addresses of the other family never match (Envoy compares families first). */
  family: 4 | 6;
  block: BlockList;
}

/** Envoy's ValueMatcher (of a metadata value). */
export type ValueMatcher =
  | { kind: "null" }
  | { kind: "double"; exact?: number; start?: number; end?: number }
  | { kind: "string"; match: StringMatcher }
  | { kind: "bool"; value: boolean }
  | { kind: "present"; present: boolean }
  /** list_match.one_of: the value is a list and one of its items matches. */
  | { kind: "list"; oneOf: ValueMatcher }
  | { kind: "or"; matchers: ValueMatcher[] };

/**
 * Envoy's MetadataMatcher. Skein keeps filters' per-request metadata in the request's filter state under the
 * filter (namespace) name, as a plain object: `path` walks into it key by key.
 */
export interface MetadataMatcher {
  filter: string;
  path: string[];
  value: ValueMatcher;
  invert: boolean;
}

/** What a policy's permissions test: the action (request or connection). */
export type RbacPermission =
  | { kind: "any" }
  | { kind: "and"; rules: RbacPermission[] }
  | { kind: "or"; rules: RbacPermission[] }
  | { kind: "not"; rule: RbacPermission }
  | { kind: "header"; header: HeaderMatcher }
  /** The request path without query and fragment (url_path). */
  | { kind: "url-path"; match: StringMatcher }
  | { kind: "destination-ip"; cidr: Cidr }
  | { kind: "destination-port"; port: number }
  /** [start, end), as Envoy's Int32Range. */
  | { kind: "destination-port-range"; start: number; end: number }
  | { kind: "metadata"; matcher: MetadataMatcher }
  | { kind: "requested-server-name"; match: StringMatcher };

/** What a policy's principals test: the caller. */
export type RbacPrincipal =
  | { kind: "any" }
  | { kind: "and"; ids: RbacPrincipal[] }
  | { kind: "or"; ids: RbacPrincipal[] }
  | { kind: "not"; id: RbacPrincipal }
  /** A verified peer certificate; with `match`, its principal (URI SAN) must match. */
  | { kind: "authenticated"; match?: StringMatcher }
  /** The connection's peer address (direct_remote_ip; source_ip, deprecated, means the same here). */
  | { kind: "direct-remote-ip"; cidr: Cidr }
  /** The original client address (remote_ip); Skein trusts no forwarding header, so the peer address. */
  | { kind: "remote-ip"; cidr: Cidr }
  | { kind: "header"; header: HeaderMatcher }
  | { kind: "url-path"; match: StringMatcher }
  | { kind: "metadata"; matcher: MetadataMatcher };

export interface RbacPolicy {
  name: string;
  /** Any of them matches (OR). */
  permissions: RbacPermission[];
  /** Any of them matches (OR). */
  principals: RbacPrincipal[];
}

/** envoy.config.rbac.v3.RBAC: policies sorted by name, as Envoy iterates its policy map. */
export interface RbacRules {
  action: "ALLOW" | "DENY" | "LOG";
  policies: RbacPolicy[];
}

/** The HTTP RBAC filter's config. Without `rules` nothing is enforced; `shadowRules` only count. */
export interface RbacFilterConfig {
  kind: "rbac";
  rules?: RbacRules;
  shadowRules?: RbacRules;
  rulesStatPrefix: string;
  shadowRulesStatPrefix: string;
}

/** The network RBAC filter's config, evaluated once per connection before the upstream is connected. */
export interface NetworkRbacConfig {
  kind: "network-rbac";
  /** Stats are `<statPrefix>rbac.allowed` and so on. */
  statPrefix: string;
  rules?: RbacRules;
  shadowRules?: RbacRules;
  shadowRulesStatPrefix: string;
}
