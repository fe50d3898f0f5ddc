// Envoy's CORS filter (envoy.filters.http.cors): the policy is the route's CorsPolicy, else the virtual host's
// (typed_per_filter_config). Preflights (OPTIONS with Origin and Access-Control-Request-Method) from an allowed
// origin are answered here with the policy's Access-Control-* headers; from other origins they go upstream
// (forward_not_matching_preflights, Envoy's default) or get a bare 200. Actual requests from an allowed origin
// go upstream and their responses get Access-Control-Allow-Origin, -Allow-Credentials and -Expose-Headers.
import type { CorsConfig } from "../../config/types.js";
import { Continue, type FilterContext, type FilterStatus, type StreamFilter } from "../../router/chain.js";
import type { DownstreamRequest } from "../../router/downstream.js";
import { first, type HeaderRecord } from "../../router/headers.js";
import { localReply } from "../../router/local-reply.js";
import { stringMatches } from "../../router/match.js";

export const CORS_FILTER = "envoy.filters.http.cors";

const PREFLIGHT_DETAILS = "cors_response";
/** Marks a request whose policy's filter_enabled roll said no (only policies below 100% roll). */
const DISABLED = 1;

export function createCorsFilter(_config: unknown, name: string, ctx: FilterContext): StreamFilter {
  return new CorsFilter(name, ctx.random);
}

/** Envoy's isOriginAllowed: a matcher that accepts "*" allows every origin. */
export function originAllowed(policy: CorsConfig, origin: string): boolean {
  for (const m of policy.allowOrigins) if (stringMatches(m, "*") || stringMatches(m, origin)) return true;
  return false;
}

export class CorsFilter implements StreamFilter {
  constructor(
    /** The name the filter has in the chain: its key in the routes' per-filter configs and request state. */
    private readonly name: string,
    private readonly random: () => number,
  ) {}

  decodeHeaders(req: DownstreamRequest, perRoute: unknown): FilterStatus {
    const policy = asPolicy(perRoute);
    if (policy === undefined) return Continue;
    if (policy.enabled < 1 && this.random() >= policy.enabled) {
      req.setFilterState(this.name, DISABLED);
      return Continue;
    }
    const origin = first(req.headers.origin);
    if (!origin) return Continue;
    if (req.method !== "OPTIONS" || !first(req.headers["access-control-request-method"])) return Continue;
    if (!originAllowed(policy, origin)) {
      if (policy.forwardNotMatchingPreflights) return Continue;
      return localReply(200, "", 0, "cors_origin_not_allowed");
    }
    const headers: Record<string, string> = { "access-control-allow-origin": origin };
    if (policy.allowCredentials) headers["access-control-allow-credentials"] = "true";
    if (policy.allowMethods) headers["access-control-allow-methods"] = policy.allowMethods;
    if (policy.allowHeaders) headers["access-control-allow-headers"] = policy.allowHeaders;
    if (policy.maxAge) headers["access-control-max-age"] = policy.maxAge;
    if (
      policy.allowPrivateNetworkAccess &&
      first(req.headers["access-control-request-private-network"]) === "true"
    )
      headers["access-control-allow-private-network"] = "true";
    return localReply(200, "", 0, PREFLIGHT_DETAILS, { headers });
  }

  encodeHeaders(req: DownstreamRequest, _status: number, headers: HeaderRecord): void {
    // The preflight answer already carries its headers.
    if (req.info.responseCodeDetails === PREFLIGHT_DETAILS) return;
    const policy = asPolicy(req.perFilterConfig(this.name));
    if (policy === undefined) return;
    if (policy.enabled < 1 && req.filterState(this.name) === DISABLED) return;
    const origin = first(req.headers.origin);
    if (!origin || !originAllowed(policy, origin)) return;
    headers["access-control-allow-origin"] = origin;
    if (policy.allowCredentials) headers["access-control-allow-credentials"] = "true";
    if (policy.exposeHeaders) headers["access-control-expose-headers"] = policy.exposeHeaders;
  }
}

function asPolicy(perRoute: unknown): CorsConfig | undefined {
  return (perRoute as { kind?: unknown } | undefined)?.kind === "cors" ? (perRoute as CorsConfig) : undefined;
}
