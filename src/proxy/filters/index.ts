// The HTTP filters the sidecar runs besides the router, by Envoy filter name: what a ListenerManager
// registers unless it is given its own registry.
import { FilterRegistry } from "../router/chain.js";
import { CORS_FILTER, createCorsFilter } from "./cors/cors.js";
import { createFaultFilter, FAULT_FILTER } from "./fault/fault.js";
import { JWT_AUTHN_FILTER, jwtAuthnFactory } from "./jwt-authn/jwt-authn.js";
import { LOCAL_RATE_LIMIT_FILTER, localRateLimitFactory } from "./local-ratelimit/local-ratelimit.js";
import { createPeerMetadataFilter, PEER_METADATA_FILTER } from "./metadata-exchange/metadata-exchange.js";
import { createRbacFilter, RBAC_FILTER } from "./rbac/rbac.js";
import { createTracingFilter, TRACING_FILTER } from "./tracing/tracing.js";

/** Registers the built-in filters; state that outlives config updates (rate-limit buckets) is per registry. */
export function registerBuiltinFilters(registry: FilterRegistry = new FilterRegistry()): FilterRegistry {
  return registry
    .register(FAULT_FILTER, createFaultFilter)
    .register(CORS_FILTER, createCorsFilter)
    .register(LOCAL_RATE_LIMIT_FILTER, localRateLimitFactory())
    .register(JWT_AUTHN_FILTER, jwtAuthnFactory())
    .register(PEER_METADATA_FILTER, createPeerMetadataFilter)
    .register(RBAC_FILTER, createRbacFilter)
    .register(TRACING_FILTER, createTracingFilter);
}
