// Envoy's RBAC engine over the compiled trees of config/rbac-types.ts: a policy matches when one of its
// permissions and one of its principals match; a rule set reports the first matching policy in name order.
// The caller's identity comes only from the connection (the verified peer certificate and the socket's
// addresses); request headers are read only by header matchers a policy spells out.
import { isIP } from "node:net";
import type {
  Cidr,
  MetadataMatcher,
  RbacPermission,
  RbacPrincipal,
  RbacRules,
  ValueMatcher,
} from "../../config/rbac-types.js";
import type { ConnectionInfo } from "../../router/connection.js";
import { headerMatches, headerValue, type MatchableRequest, stringMatches } from "../../router/match.js";

/** What the engine may look at: the connection, and for HTTP the request and its filters' metadata. */
export interface RbacInput {
  readonly connection: ConnectionInfo | undefined;
  /** HTTP only: the request (headers, method, authority, path). */
  readonly request?: MatchableRequest;
  /** HTTP only: the path without query and fragment, after normalisation (url_path). */
  readonly urlPath?: string;
  /** HTTP only: where filters left the request's metadata, by filter name (the JWT filter's istio_authn). */
  readonly state?: { filterState(filter: string): unknown };
}

export interface RbacResult {
  matched: boolean;
  /** The first matching policy in name order; undefined when none matched. */
  policy: string | undefined;
}

const NO_MATCH: RbacResult = { matched: false, policy: undefined };

/** The first policy (by name) of `rules` that matches, if any. */
export function evaluate(rules: RbacRules, input: RbacInput): RbacResult {
  for (const policy of rules.policies) {
    let permitted = false;
    for (const p of policy.permissions)
      if (permissionMatches(p, input)) {
        permitted = true;
        break;
      }
    if (!permitted) continue;
    for (const id of policy.principals)
      if (principalMatches(id, input)) return { matched: true, policy: policy.name };
  }
  return NO_MATCH;
}

/** `::ffff:10.0.0.1` is 10.0.0.1: Node reports IPv4 peers of dual-stack sockets that way. */
function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

export function cidrContains(cidr: Cidr, address: string | undefined): boolean {
  if (!address) return false;
  const a = plainAddress(address);
  const family = isIP(a);
  if (family !== cidr.family) return false;
  return cidr.block.check(a, family === 4 ? "ipv4" : "ipv6");
}

function permissionMatches(p: RbacPermission, input: RbacInput): boolean {
  switch (p.kind) {
    case "any":
      return true;
    case "and":
      for (const r of p.rules) if (!permissionMatches(r, input)) return false;
      return true;
    case "or":
      for (const r of p.rules) if (permissionMatches(r, input)) return true;
      return false;
    case "not":
      return !permissionMatches(p.rule, input);
    case "header":
      return (
        input.request !== undefined && headerMatches(p.header, headerValue(input.request, p.header.name))
      );
    case "url-path":
      return input.urlPath !== undefined && stringMatches(p.match, input.urlPath);
    case "destination-ip":
      return cidrContains(p.cidr, input.connection?.localAddress);
    case "destination-port":
      return input.connection !== undefined && input.connection.localPort === p.port;
    case "destination-port-range": {
      const port = input.connection?.localPort;
      return port !== undefined && port >= p.start && port < p.end;
    }
    case "metadata":
      return metadataMatches(p.matcher, input);
    case "requested-server-name":
      return stringMatches(p.match, input.connection?.sni ?? "");
  }
}

function principalMatches(p: RbacPrincipal, input: RbacInput): boolean {
  switch (p.kind) {
    case "any":
      return true;
    case "and":
      for (const r of p.ids) if (!principalMatches(r, input)) return false;
      return true;
    case "or":
      for (const r of p.ids) if (principalMatches(r, input)) return true;
      return false;
    case "not":
      return !principalMatches(p.id, input);
    case "authenticated": {
      const principal = input.connection?.peerPrincipal;
      if (principal === undefined) return false;
      return p.match === undefined || stringMatches(p.match, principal);
    }
    case "direct-remote-ip":
    case "remote-ip":
      return cidrContains(p.cidr, input.connection?.sourceAddress);
    case "header":
      return (
        input.request !== undefined && headerMatches(p.header, headerValue(input.request, p.header.name))
      );
    case "url-path":
      return input.urlPath !== undefined && stringMatches(p.match, input.urlPath);
    case "metadata":
      return metadataMatches(p.matcher, input);
  }
}

const MISSING = Symbol("missing");

function metadataMatches(m: MetadataMatcher, input: RbacInput): boolean {
  let value: unknown = input.state?.filterState(m.filter);
  for (const key of m.path) {
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      value = MISSING;
      break;
    }
    value = Object.hasOwn(value, key) ? (value as Record<string, unknown>)[key] : MISSING;
  }
  if (value === undefined) value = MISSING;
  const matched = valueMatches(m.value, value);
  return m.invert ? !matched : matched;
}

/** Envoy's ValueMatcher on a JSON-like value; MISSING (no such path) matches only present_match: false. */
function valueMatches(v: ValueMatcher, value: unknown): boolean {
  switch (v.kind) {
    case "present":
      return (value !== MISSING) === v.present;
    case "null":
      return value === null;
    case "string":
      return typeof value === "string" && stringMatches(v.match, value);
    case "bool":
      return typeof value === "boolean" && value === v.value;
    case "double":
      if (typeof value !== "number") return false;
      if (v.exact !== undefined) return value === v.exact;
      return value >= (v.start ?? Number.NEGATIVE_INFINITY) && value < (v.end ?? Number.POSITIVE_INFINITY);
    case "list":
      if (!Array.isArray(value)) return false;
      for (const item of value) if (valueMatches(v.oneOf, item)) return true;
      return false;
    case "or":
      for (const m of v.matchers) if (valueMatches(m, value)) return true;
      return false;
  }
}
