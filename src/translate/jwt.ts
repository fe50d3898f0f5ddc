// RequestAuthentication → Envoy's jwt_authn filter (envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication)
// on a workload's inbound HTTP listeners, as Istio's policy applier builds it:
// - every RequestAuthentication that applies to the workload contributes its jwtRules (mesh-wide ones from the
//   root namespace, the namespace's, and those selecting the workload by label or through a targeted Service:
//   Istio merges them all, it does not pick the most specific), stably sorted by issuer;
// - one provider per rule, named `origins-<i>`, with the issuer, audiences, token locations, forwarding and
//   output settings, and `payload_in_metadata` = the issuer (so later filters find each payload by issuer);
// - one rule for every path: `requires_any` of every provider plus `allow_missing`. A request without a token
//   passes (RequestAuthentication alone never requires one); a token that is present must verify with some
//   provider. Istio nests per-provider `{provider OR allow_missing}` in a requires_all for several rules; the
//   flat form accepts and rejects the same requests for tokens in their providers' locations and needs no
//   requires_all in the sidecar;
// - `bypass_cors_preflight`: preflights carry no credentials.
// JWKS: `jwks` is inlined (`local_jwks.inline_string`). For `jwksUri` the provider gets `remote_jwks` (the URI,
// the `outbound|<port>||<host>` cluster Istio names for it, the rule's timeout or 5 s, a 5-minute cache) and the
// proxy fetches it. Istio's istiod fetches and inlines by default; Skein's translation is pure (no I/O, same
// input → byte-equal output), so fetching belongs to the proxy. A rule with neither (Istio would use OpenID
// discovery at istiod) gets an empty inline key set, so its tokens fail verification and tokenless requests
// still pass — Istio's behaviour when discovery fails.

import type { WorkloadInstance } from "../model/snapshot.js";
import type { JwtRule, RequestAuthenticationPolicy } from "../model/types.js";
import type { JwtAuthentication } from "../xds/generated/envoy/extensions/filters/http/jwt_authn/v3/JwtAuthentication.js";
import type { JwtProvider } from "../xds/generated/envoy/extensions/filters/http/jwt_authn/v3/JwtProvider.js";
import type { HttpFilter } from "../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.js";
import { outboundClusterName } from "./names.js";
import { policyApplies } from "./policy-applies.js";
import type { ProxyView } from "./scope.js";
import { typed } from "./typed.js";
import { compare, duration } from "./values.js";

/** The filter's name in http_filters (Istio's EnvoyJwtFilterName). */
export const JWT_AUTHN_FILTER = "envoy.filters.http.jwt_authn";
export const JWT_AUTHN_TYPE = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";

/** Istio's defaults for remote JWKS: the fetch timeout when the rule sets none, and how long keys are cached. */
export const JWKS_FETCH_TIMEOUT_MS = 5000;
export const JWKS_CACHE_MS = 5 * 60 * 1000;

/** What an issuer without jwks or jwksUri verifies against: nothing (its tokens fail, as Istio's fake JWKS). */
export const EMPTY_JWKS = '{"keys":[]}';

/** Whether a RequestAuthentication applies to the workload (scopes as for AuthorizationPolicy). */
export function requestAuthenticationApplies(
  view: ProxyView,
  policy: RequestAuthenticationPolicy,
  workload: WorkloadInstance,
): boolean {
  return policyApplies(view, policy, workload);
}

/** The jwtRules that apply to the workload, in Istio's order: by issuer, stable over (namespace, name). */
export function jwtRulesFor(view: ProxyView, workload: WorkloadInstance): JwtRule[] {
  const policies = view.model.requestAuthentications
    .filter((p) => requestAuthenticationApplies(view, p, workload))
    .sort((a, b) => compare(a.namespace, b.namespace) || compare(a.name, b.name));
  const rules = policies.flatMap((p) => p.jwtRules);
  // Array.prototype.sort is stable: rules of one issuer keep their policy order.
  return rules.sort((a, b) => compare(a.issuer, b.issuer));
}

/** The cluster Istio names for a JWKS URI: the mesh service's when the host is one, else built from the URI. */
function jwksCluster(view: ProxyView, uri: string, namespace: string): string {
  const url = new URL(uri);
  const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  const host = url.hostname;
  const service = view.index.find(host, namespace).find((s) => s.ports.some((p) => p.number === port));
  return outboundClusterName(port, undefined, service?.hostname ?? host);
}

function provider(view: ProxyView, rule: JwtRule, namespace: string): JwtProvider {
  const p: JwtProvider = { issuer: rule.issuer };
  if (rule.audiences.length > 0) p.audiences = [...rule.audiences];
  if (rule.jwksUri !== undefined) {
    p.remoteJwks = {
      httpUri: {
        uri: rule.jwksUri,
        cluster: jwksCluster(view, rule.jwksUri, namespace),
        timeout: duration(rule.timeoutMs ?? JWKS_FETCH_TIMEOUT_MS),
      },
      cacheDuration: duration(JWKS_CACHE_MS),
    };
  } else {
    p.localJwks = { inlineString: rule.jwks ?? EMPTY_JWKS };
  }
  if (rule.forwardOriginalToken) p.forward = true;
  if (rule.fromHeaders.length > 0)
    p.fromHeaders = rule.fromHeaders.map((h) => ({
      name: h.name,
      ...(h.prefix !== undefined && h.prefix !== "" && { valuePrefix: h.prefix }),
    }));
  if (rule.fromParams.length > 0) p.fromParams = [...rule.fromParams];
  if (rule.fromCookies.length > 0) p.fromCookies = [...rule.fromCookies];
  if (rule.outputPayloadToHeader) p.forwardPayloadHeader = rule.outputPayloadToHeader;
  if (rule.outputClaimToHeaders.length > 0)
    p.claimToHeaders = rule.outputClaimToHeaders.map((o) => ({ headerName: o.header, claimName: o.claim }));
  p.payloadInMetadata = rule.issuer;
  return p;
}

/** The JwtAuthentication for these rules (in order; providers `origins-0`, `origins-1`, ...), or undefined for none. */
export function jwtAuthentication(
  view: ProxyView,
  rules: readonly JwtRule[],
  namespace: string,
): JwtAuthentication | undefined {
  if (rules.length === 0) return undefined;
  const providers: Record<string, JwtProvider> = {};
  const names: string[] = [];
  rules.forEach((rule, i) => {
    const name = `origins-${i}`;
    names.push(name);
    providers[name] = provider(view, rule, namespace);
  });
  return {
    providers,
    rules: [
      {
        match: { prefix: "/" },
        requires: {
          requiresAny: {
            requirements: [...names.map((providerName) => ({ providerName })), { allowMissing: {} }],
          },
        },
      },
    ],
    bypassCorsPreflight: true,
  };
}

/**
 * The jwt_authn HTTP filter for the workload's inbound HTTP listeners: none when no RequestAuthentication
 * applies (an empty list, so callers can spread it into http_filters).
 */
export function jwtAuthnFilters(view: ProxyView): HttpFilter[] {
  const workload = view.proxy.workload;
  if (!workload) return [];
  const config = jwtAuthentication(view, jwtRulesFor(view, workload), workload.namespace);
  if (!config) return [];
  return [{ name: JWT_AUTHN_FILTER, typedConfig: typed(JWT_AUTHN_TYPE, config) }];
}
