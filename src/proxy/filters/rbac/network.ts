// Envoy's network RBAC filter (envoy.filters.network.rbac) for TCP listeners: each connection is decided
// once, from the connection alone (peer certificate, addresses, ports, SNI), before any upstream is
// connected; a refused connection is closed and never reaches the application. Envoy decides on the first
// byte; deciding at accept refuses the same connections (nothing the rules may read arrives with the bytes)
// and also covers server-first protocols, whose upstream Envoy would already have connected. Stats as Envoy
// names them: `<stat_prefix>rbac.allowed|denied` and
// `<stat_prefix>rbac.<shadow_rules_stat_prefix>shadow_allowed|shadow_denied`.
import type { NetworkRbacConfig } from "../../config/rbac-types.js";
import type { ConnectionInfo } from "../../router/connection.js";
import type { Stat, Stats } from "../../router/stats.js";
import { evaluate } from "./engine.js";

export const NETWORK_RBAC_FILTER = "envoy.filters.network.rbac";

interface Compiled {
  config: NetworkRbacConfig;
  allowed: Stat;
  denied: Stat;
  shadowAllowed: Stat;
  shadowDenied: Stat;
}

/** The network RBAC filters of one TCP listener, in chain order; every one must let a connection through. */
export class NetworkRbac {
  private readonly filters: Compiled[];

  constructor(configs: readonly NetworkRbacConfig[], stats: Stats) {
    this.filters = configs.map((config) => {
      const p = `${config.statPrefix}rbac.`;
      const log = config.rules?.action === "LOG";
      return {
        config,
        allowed: stats.counter(`${p}${log ? "not_logged" : "allowed"}`),
        denied: stats.counter(`${p}${log ? "logged" : "denied"}`),
        shadowAllowed: stats.counter(`${p}${config.shadowRulesStatPrefix}shadow_allowed`),
        shadowDenied: stats.counter(`${p}${config.shadowRulesStatPrefix}shadow_denied`),
      };
    });
  }

  /** Whether the connection may go on; undefined when allowed, else the policy that refused it (`none`). */
  refusal(connection: ConnectionInfo): string | undefined {
    const input = { connection };
    for (const f of this.filters) {
      const { rules, shadowRules } = f.config;
      if (shadowRules !== undefined) {
        const s = evaluate(shadowRules, input);
        const ok =
          shadowRules.action === "DENY" ? !s.matched : shadowRules.action === "ALLOW" ? s.matched : true;
        (ok ? f.shadowAllowed : f.shadowDenied).value++;
      }
      if (rules === undefined) continue;
      const r = evaluate(rules, input);
      if (rules.action === "LOG") {
        (r.matched ? f.denied : f.allowed).value++;
        continue;
      }
      const ok = rules.action === "ALLOW" ? r.matched : !r.matched;
      if (ok) {
        f.allowed.value++;
        continue;
      }
      f.denied.value++;
      return r.policy ?? "none";
    }
    return undefined;
  }
}
