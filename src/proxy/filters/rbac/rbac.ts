// Envoy's HTTP RBAC filter (envoy.filters.http.rbac). ALLOW rules let a request on only when a policy
// matches, DENY rules stop it when one does, LOG rules only mark it for the access log. A refused request is
// answered 403 `RBAC: access denied` (gRPC: PERMISSION_DENIED) with response code details
// `rbac_access_denied_matched_policy[<policy>]` (`[none]` when no ALLOW policy matched). Shadow rules are
// evaluated for their stats only. Stats, in the connection manager's namespace as Envoy names them:
// `http.<stat_prefix>.rbac.<rules_stat_prefix>allowed|denied` (LOG: `logged|not_logged`) and
// `http.<stat_prefix>.rbac.<shadow_rules_stat_prefix>shadow_allowed|shadow_denied`.
import type { RbacFilterConfig, RbacRules } from "../../config/rbac-types.js";
import type { HttpListenerConfig } from "../../config/types.js";
import { Continue, type FilterContext, type FilterStatus, type StreamFilter } from "../../router/chain.js";
import type { ConnectionInfo } from "../../router/connection.js";
import type { DownstreamRequest } from "../../router/downstream.js";
import { type LocalReply, localReply } from "../../router/local-reply.js";
import type { MatchableRequest } from "../../router/match.js";
import { normalizeRequestPath } from "../../router/normalize.js";
import type { Stat } from "../../router/stats.js";
import { evaluate, type RbacInput } from "./engine.js";

export const RBAC_FILTER = "envoy.filters.http.rbac";
export const RBAC_DENIED_BODY = "RBAC: access denied";

/** The filter-state key of what the filter decided for the access log (Envoy's dynamic metadata). */
export interface RbacDecision {
  /** A LOG policy matched (Envoy's access_log_hint). */
  accessLogHint?: boolean;
  /** Shadow evaluation: `allowed` or `denied`, and the matching shadow policy. */
  shadowEngineResult?: "allowed" | "denied";
  shadowEffectivePolicyId?: string;
}

/** The path as url_path matchers see it: without query or fragment. */
export function urlPathOf(path: string): string {
  let end = path.length;
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 63 /* ? */ || c === 35 /* # */) {
      end = i;
      break;
    }
  }
  return end === path.length ? path : path.slice(0, end);
}

/** The engine's view of one request (one small object per request and filter, no closures). */
export function httpInput(req: DownstreamRequest): RbacInput {
  return {
    connection: req.connection,
    request: req,
    urlPath: urlPathOf(req.path),
    state: req,
  };
}

function deniedReply(policy: string | undefined): LocalReply {
  return localReply(403, RBAC_DENIED_BODY, 0, `rbac_access_denied_matched_policy[${policy ?? "none"}]`);
}

export function createRbacFilter(config: unknown, name: string, ctx: FilterContext): StreamFilter {
  return new RbacFilter(config as RbacFilterConfig, name, ctx);
}

export class RbacFilter implements StreamFilter {
  private readonly allowed: Stat;
  private readonly denied: Stat;
  private readonly shadowAllowed: Stat;
  private readonly shadowDenied: Stat;
  /** Replies by policy name (and `none`), built once. */
  private readonly replies = new Map<string, LocalReply>();
  private readonly none = deniedReply(undefined);

  constructor(
    private readonly config: RbacFilterConfig,
    /** The filter's name in the chain: its filter-state key. */
    private readonly name: string,
    ctx: FilterContext,
  ) {
    const p = `http.${ctx.statPrefix ?? ""}.rbac.`;
    const log = config.rules?.action === "LOG";
    this.allowed = ctx.stats.counter(`${p}${config.rulesStatPrefix}${log ? "not_logged" : "allowed"}`);
    this.denied = ctx.stats.counter(`${p}${config.rulesStatPrefix}${log ? "logged" : "denied"}`);
    this.shadowAllowed = ctx.stats.counter(`${p}${config.shadowRulesStatPrefix}shadow_allowed`);
    this.shadowDenied = ctx.stats.counter(`${p}${config.shadowRulesStatPrefix}shadow_denied`);
    for (const policy of config.rules?.policies ?? [])
      this.replies.set(policy.name, deniedReply(policy.name));
  }

  decodeHeaders(req: DownstreamRequest): FilterStatus {
    const { rules, shadowRules } = this.config;
    if (rules === undefined && shadowRules === undefined) return Continue;
    const input = httpInput(req);
    if (shadowRules !== undefined) this.shadow(req, shadowRules, input);
    if (rules === undefined) return Continue;
    const result = evaluate(rules, input);
    switch (rules.action) {
      case "ALLOW":
        if (result.matched) {
          this.allowed.value++;
          return Continue;
        }
        this.denied.value++;
        return this.none;
      case "DENY":
        if (!result.matched) {
          this.allowed.value++;
          return Continue;
        }
        this.denied.value++;
        return this.replies.get(result.policy as string) ?? deniedReply(result.policy);
      case "LOG":
        // Counted as logged/not_logged; the request always goes on.
        if (result.matched) {
          this.denied.value++;
          this.decision(req).accessLogHint = true;
        } else this.allowed.value++;
        return Continue;
    }
  }

  private shadow(req: DownstreamRequest, rules: RbacRules, input: RbacInput): void {
    const result = evaluate(rules, input);
    const allowed =
      rules.action === "DENY" ? !result.matched : rules.action === "ALLOW" ? result.matched : true;
    if (allowed) this.shadowAllowed.value++;
    else this.shadowDenied.value++;
    const d = this.decision(req);
    d.shadowEngineResult = allowed ? "allowed" : "denied";
    if (result.policy !== undefined) d.shadowEffectivePolicyId = result.policy;
  }

  private decision(req: DownstreamRequest): RbacDecision {
    let d = req.filterState(this.name) as RbacDecision | undefined;
    if (d === undefined) {
      d = {};
      req.setFilterState(this.name, d);
    }
    return d;
  }
}

/**
 * Upgrade and CONNECT requests become tunnels without running the filter chain; they are authorized here
 * with the listener's own path normalisation (the request's path is replaced by the normalised one) and
 * RBAC filter configs, in chain order. Returns the reply refusing the tunnel, if any. Tunnels are not counted
 * in the RBAC stats, and carry no JWT metadata (the JWT filter does not run): policies on request
 * principals deny or fail to allow them.
 */
export function authorizeTunnel(
  config: HttpListenerConfig,
  req: MatchableRequest,
  connection: ConnectionInfo | undefined,
): LocalReply | undefined {
  if (config.pathNormalization) {
    const n = normalizeRequestPath(req.path, config.pathNormalization);
    if (n.kind === "reply") return n.reply;
    req.path = n.path;
  }
  let input: RbacInput | undefined;
  for (const f of config.filters) {
    const c = f.config as RbacFilterConfig;
    if (c.kind !== "rbac" || c.rules === undefined || c.rules.action === "LOG") continue;
    input ??= { connection, request: req, urlPath: urlPathOf(req.path) };
    const r = evaluate(c.rules, input);
    if (c.rules.action === "ALLOW" && !r.matched) return deniedReply(undefined);
    if (c.rules.action === "DENY" && r.matched) return deniedReply(r.policy);
  }
  return undefined;
}
