// Envoy's jwt_authn filter config (envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication) compiled for
// the sidecar: providers (issuer, audiences, JWKS inline or from a file or a URL, token locations, forwarding,
// payload and claim outputs, clock skew) and rules matching every path (prefix "/") with requirements built
// from provider_name, requires_any, allow_missing and allow_missing_or_failed — what Istio's
// RequestAuthentication translation uses. Anything else is refused, naming the field. Local key sets are read
// here (a file at config load, as Envoy reads DataSources) but parsed by the filter, so the config stays
// plain data.
import type { JwtAuthentication__Output } from "../../xds/generated/envoy/extensions/filters/http/jwt_authn/v3/JwtAuthentication.js";
import type { JwtProvider__Output } from "../../xds/generated/envoy/extensions/filters/http/jwt_authn/v3/JwtProvider.js";
import type { JwtRequirement__Output } from "../../xds/generated/envoy/extensions/filters/http/jwt_authn/v3/JwtRequirement.js";
import type { RemoteJwks__Output } from "../../xds/generated/envoy/extensions/filters/http/jwt_authn/v3/RemoteJwks.js";
import { type At, dataSourceText, headerName, names, onlyFields, positiveDurationMs } from "./fields.js";

export const JWT_AUTHN_TYPE = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
const PKG = "envoy.extensions.filters.http.jwt_authn.v3";

/** Envoy's defaults: jwt_verify_lib's clock skew, and how long a fetched JWKS is cached. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 60;
export const DEFAULT_JWKS_CACHE_MS = 600_000;

/** Where a provider's keys come from: a JWKS document (inline or read from a file), or a URL to fetch. */
export type JwksSource =
  | { kind: "local"; jwks: string }
  | { kind: "remote"; uri: string; cluster: string; timeoutMs: number; cacheMs: number };

/** One JwtProvider, by its name in the providers map. */
export interface JwtProviderConfig {
  name: string;
  /** "" accepts any issuer. */
  issuer: string;
  /** Empty: the audience is not checked. */
  audiences: string[];
  jwks: JwksSource;
  /** Keep the token in the request forwarded upstream (Envoy default false: removed). */
  forward: boolean;
  /**
   * Token locations, Envoy's defaults filled in: with no from_headers, from_params and from_cookies, the
   * `Authorization: Bearer <token>` header and the `access_token` query parameter. Header names lower-cased.
   */
  fromHeaders: { name: string; prefix: string }[];
  fromParams: string[];
  fromCookies: string[];
  /** Header to carry the verified payload (base64url) upstream. */
  forwardPayloadHeader?: string;
  padForwardPayloadHeader: boolean;
  /** Copy claims (primitive values) to request headers. */
  claimToHeaders: { header: string; claim: string }[];
  /** Key under which the payload is kept for later filters. */
  payloadInMetadata?: string;
  clockSkewSeconds: number;
}

/** A JwtRequirement: a provider, any of several requirements, or a bypass. */
export type JwtRequirementConfig =
  | { kind: "provider"; provider: string }
  | { kind: "any"; requirements: JwtRequirementConfig[] }
  | { kind: "allow-missing" }
  | { kind: "allow-missing-or-failed" }
  /** A rule without a requirement: every request passes. */
  | { kind: "allow-all" };

/** The compiled jwt_authn filter config. */
export interface JwtAuthnConfig {
  kind: "jwt-authn";
  providers: JwtProviderConfig[];
  /**
   * The requirement of the first rule (every rule matches every path, so only the first can apply);
   * undefined when there are no rules (nothing is verified).
   */
  requirement?: JwtRequirementConfig;
  bypassCorsPreflight: boolean;
  /** Failure replies without the status text as body. */
  stripFailureResponse: boolean;
}

const AUTHENTICATION_FIELDS = names("providers", "rules", "bypassCorsPreflight", "stripFailureResponse");
const PROVIDER_FIELDS = names(
  "issuer",
  "audiences",
  "remoteJwks",
  "localJwks",
  "forward",
  "fromHeaders",
  "fromParams",
  "fromCookies",
  "forwardPayloadHeader",
  "padForwardPayloadHeader",
  "payloadInMetadata",
  "clockSkewSeconds",
  "claimToHeaders",
);
const RULE_FIELDS = names("match", "requires");
const REQUIREMENT_FIELDS = names("providerName", "requiresAny", "allowMissing", "allowMissingOrFailed");
const REMOTE_FIELDS = names("httpUri", "cacheDuration");
const HTTP_URI_FIELDS = names("uri", "cluster", "timeout");

function remoteJwks(r: RemoteJwks__Output, at: At): JwksSource {
  onlyFields(`${PKG}.RemoteJwks`, r, REMOTE_FIELDS, at);
  const h = r.httpUri;
  const hat = at.field("httpUri");
  if (!h) return hat.invalid("is required");
  onlyFields("envoy.config.core.v3.HttpUri", h, HTTP_URI_FIELDS, hat);
  if (!h.uri) hat.field("uri").invalid("must not be empty");
  let url: URL;
  try {
    url = new URL(h.uri);
  } catch {
    return hat.field("uri").invalid(`${JSON.stringify(h.uri)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:")
    hat.field("uri").invalid(`${JSON.stringify(h.uri)} is not an http or https URL`);
  const cluster = h.cluster;
  if (!cluster) return hat.field("cluster").invalid("must not be empty");
  const timeoutMs = positiveDurationMs(h.timeout, hat.field("timeout"));
  const cacheMs = positiveDurationMs(r.cacheDuration, at.field("cacheDuration"), DEFAULT_JWKS_CACHE_MS);
  return { kind: "remote", uri: h.uri, cluster, timeoutMs, cacheMs };
}

function compileProvider(name: string, p: JwtProvider__Output, at: At): JwtProviderConfig {
  onlyFields(`${PKG}.JwtProvider`, p, PROVIDER_FIELDS, at);
  let jwks: JwksSource;
  if (p.jwksSourceSpecifier === "localJwks" && p.localJwks)
    jwks = { kind: "local", jwks: dataSourceText(p.localJwks, at.field("localJwks")) };
  else if (p.jwksSourceSpecifier === "remoteJwks" && p.remoteJwks)
    jwks = remoteJwks(p.remoteJwks, at.field("remoteJwks"));
  else return at.invalid("local_jwks or remote_jwks is required");
  const fromHeaders = p.fromHeaders.map((h, i) => {
    const hat = at.field("fromHeaders").index(i);
    onlyFields(`${PKG}.JwtHeader`, h, names("name", "valuePrefix"), hat);
    return { name: headerName(h.name, hat.field("name")), prefix: h.valuePrefix };
  });
  p.fromParams.forEach((q, i) => {
    if (!q) at.field("fromParams").index(i).invalid("must not be empty");
  });
  p.fromCookies.forEach((c, i) => {
    if (!c) at.field("fromCookies").index(i).invalid("must not be empty");
  });
  const defaults = fromHeaders.length === 0 && p.fromParams.length === 0 && p.fromCookies.length === 0;
  const out: JwtProviderConfig = {
    name,
    issuer: p.issuer,
    audiences: [...p.audiences],
    jwks,
    forward: p.forward === true,
    fromHeaders: defaults ? [{ name: "authorization", prefix: "Bearer " }] : fromHeaders,
    fromParams: defaults ? ["access_token"] : [...p.fromParams],
    fromCookies: [...p.fromCookies],
    padForwardPayloadHeader: p.padForwardPayloadHeader === true,
    claimToHeaders: p.claimToHeaders.map((c, i) => {
      const cat = at.field("claimToHeaders").index(i);
      onlyFields(`${PKG}.JwtClaimToHeader`, c, names("headerName", "claimName"), cat);
      if (!c.claimName) cat.field("claimName").invalid("must not be empty");
      return { header: headerName(c.headerName, cat.field("headerName")), claim: c.claimName };
    }),
    clockSkewSeconds: p.clockSkewSeconds > 0 ? p.clockSkewSeconds : DEFAULT_CLOCK_SKEW_SECONDS,
  };
  if (p.forwardPayloadHeader)
    out.forwardPayloadHeader = headerName(p.forwardPayloadHeader, at.field("forwardPayloadHeader"));
  if (p.payloadInMetadata) out.payloadInMetadata = p.payloadInMetadata;
  return out;
}

function compileRequirement(
  r: JwtRequirement__Output,
  providers: ReadonlySet<string>,
  at: At,
): JwtRequirementConfig {
  onlyFields(`${PKG}.JwtRequirement`, r, REQUIREMENT_FIELDS, at);
  switch (r.requiresType) {
    case "providerName": {
      const name = r.providerName ?? "";
      if (!providers.has(name))
        at.field("providerName").invalid(`required provider ['${name}'] is not configured`);
      return { kind: "provider", provider: name };
    }
    case "requiresAny": {
      const list = r.requiresAny?.requirements ?? [];
      const lat = at.field("requiresAny").field("requirements");
      if (list.length < 2) lat.invalid("must list at least 2 requirements");
      return {
        kind: "any",
        requirements: list.map((x, i) => compileRequirement(x, providers, lat.index(i))),
      };
    }
    case "allowMissing":
      return { kind: "allow-missing" };
    case "allowMissingOrFailed":
      return { kind: "allow-missing-or-failed" };
    default:
      return { kind: "allow-all" };
  }
}

/** Envoy JwtAuthentication → JwtAuthnConfig. */
export function compileJwtAuthentication(m: JwtAuthentication__Output, at: At): JwtAuthnConfig {
  onlyFields(JWT_AUTHN_TYPE, m, AUTHENTICATION_FIELDS, at);
  const providers = Object.keys(m.providers)
    .sort()
    .map((name) =>
      compileProvider(name, m.providers[name] as JwtProvider__Output, at.field("providers").key(name)),
    );
  const known = new Set(providers.map((p) => p.name));
  let requirement: JwtRequirementConfig | undefined;
  m.rules.forEach((rule, i) => {
    const rat = at.field("rules").index(i);
    onlyFields(`${PKG}.RequirementRule`, rule, RULE_FIELDS, rat);
    const match = rule.match;
    if (!match) {
      rat.field("match").invalid("is required");
      return;
    }
    onlyFields("envoy.config.route.v3.RouteMatch", match, names("prefix"), rat.field("match"));
    if (match.pathSpecifier !== "prefix" || match.prefix !== "/")
      rat
        .field("match")
        .unsupported('only the prefix "/" match (every request) is supported by the Skein sidecar');
    const compiled = rule.requires
      ? compileRequirement(rule.requires, known, rat.field("requires"))
      : ({ kind: "allow-all" } as const);
    // Rules are tried in order and all match every path: the first decides.
    if (i === 0) requirement = compiled;
  });
  const out: JwtAuthnConfig = {
    kind: "jwt-authn",
    providers,
    bypassCorsPreflight: m.bypassCorsPreflight === true,
    stripFailureResponse: m.stripFailureResponse === true,
  };
  if (requirement) out.requirement = requirement;
  return out;
}
