// Verifying one JWT the way Envoy's jwt_authn authenticator does (with jwt_verify_lib), in its order and with
// its status texts, which become the 401/403 reply bodies: parse (three base64url parts, JSON header with a
// supported alg, JSON payload), issuer allowed at the token's location, a provider for the issuer, time
// constraints (nbf, exp, with clock skew), audiences, then the signature against the provider's JWKS. Keys are
// chosen as jwt_verify_lib chooses them (kid and alg must agree when both sides name one; every remaining
// key is tried) and imported and checked with jose. Remote key sets are fetched and cached by jose's
// createRemoteJWKSet, kept in a store that outlives config updates.
import { compactVerify, createRemoteJWKSet, importJWK, type JWK } from "jose";
import type { JwksSource, JwtProviderConfig } from "../../config/jwt.js";

/** jwt_verify_lib's status texts (getStatusString), for the statuses this verifier produces. */
export const JwtStatus = {
  ok: "OK",
  missing: "Jwt is missing",
  notYetValid: "Jwt not yet valid",
  expired: "Jwt is expired",
  badFormat: "Jwt is not in the form of Header.Payload.Signature",
  headerParse: "Jwt header is an invalid Base64url input or an invalid JSON",
  headerBadAlg: "Jwt header [alg] field is not a string",
  headerAlgNotImplemented: "Jwt header [alg] field value is invalid",
  headerBadKid: "Jwt header [kid] field is not a string",
  payloadParse: "Jwt payload is an invalid Base64 or an invalid JSON",
  signatureParse: "Jwt signature is an invalid Base64",
  unknownIssuer: "Jwt issuer is not configured",
  audienceNotAllowed: "Audiences in Jwt are not allowed",
  verificationFail: "Jwt verification fails",
  jwksNoValidKeys: "Jwks doesn't have any valid public key",
  jwksKidAlgMismatch: "Jwks doesn't have key to match kid or alg from Jwt",
  jwksFetchFail: "Jwks remote fetch is failed",
} as const;

export type JwtStatusText = (typeof JwtStatus)[keyof typeof JwtStatus];

/** A parsed token: its header and payload, and the payload's base64url text (forward_payload_header). */
export interface ParsedJwt {
  token: string;
  alg: string;
  kid: string;
  payload: Record<string, unknown>;
  payloadBase64: string;
  iss: string;
  audiences: string[];
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function decodeJson(part: string): unknown {
  if (!BASE64URL.test(part)) throw new Error("not base64url");
  return JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
}

/** The key type (and EC curve) each algorithm jwt_verify_lib implements needs. */
const ALGORITHMS: Record<string, { kty: string; crv?: string }> = {
  RS256: { kty: "RSA" },
  RS384: { kty: "RSA" },
  RS512: { kty: "RSA" },
  PS256: { kty: "RSA" },
  PS384: { kty: "RSA" },
  PS512: { kty: "RSA" },
  ES256: { kty: "EC", crv: "P-256" },
  ES384: { kty: "EC", crv: "P-384" },
  ES512: { kty: "EC", crv: "P-521" },
  HS256: { kty: "oct" },
  HS384: { kty: "oct" },
  HS512: { kty: "oct" },
  EdDSA: { kty: "OKP" },
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Parses a token as jwt_verify_lib's Jwt::parseFromString; a status text when it is not a well-formed JWT. */
export function parseJwt(token: string): ParsedJwt | JwtStatusText {
  const parts = token.split(".");
  if (parts.length !== 3) return JwtStatus.badFormat;
  const [h, p, s] = parts as [string, string, string];
  let header: unknown;
  try {
    header = decodeJson(h);
  } catch {
    return JwtStatus.headerParse;
  }
  if (!isObject(header)) return JwtStatus.headerParse;
  if (typeof header.alg !== "string") return JwtStatus.headerBadAlg;
  if (!(header.alg in ALGORITHMS)) return JwtStatus.headerAlgNotImplemented;
  if (header.kid !== undefined && typeof header.kid !== "string") return JwtStatus.headerBadKid;
  let payload: unknown;
  try {
    payload = decodeJson(p);
  } catch {
    return JwtStatus.payloadParse;
  }
  if (!isObject(payload)) return JwtStatus.payloadParse;
  // Registered claims of the wrong type make the payload unparseable for jwt_verify_lib.
  for (const c of ["iss", "sub", "azp"] as const)
    if (payload[c] !== undefined && typeof payload[c] !== "string") return JwtStatus.payloadParse;
  for (const c of ["exp", "nbf", "iat"] as const)
    if (payload[c] !== undefined && typeof payload[c] !== "number") return JwtStatus.payloadParse;
  const aud = payload.aud;
  let audiences: string[] = [];
  if (typeof aud === "string") audiences = [aud];
  else if (Array.isArray(aud) && aud.every((a) => typeof a === "string")) audiences = aud as string[];
  else if (aud !== undefined) return JwtStatus.payloadParse;
  if (!BASE64URL.test(s) || s === "") return JwtStatus.signatureParse;
  return {
    token,
    alg: header.alg,
    kid: (header.kid as string | undefined) ?? "",
    payload,
    payloadBase64: p,
    iss: (payload.iss as string | undefined) ?? "",
    audiences,
  };
}

/** jwt_verify_lib's CheckAudience: scheme prefixes and a trailing slash do not matter. */
function sanitizeAudience(a: string): string {
  let out = a;
  if (out.startsWith("http://")) out = out.slice(7);
  else if (out.startsWith("https://")) out = out.slice(8);
  if (out.endsWith("/")) out = out.slice(0, -1);
  return out;
}

export function audiencesAllowed(configured: readonly string[], token: readonly string[]): boolean {
  if (configured.length === 0) return true;
  const allowed = new Set(configured.map(sanitizeAudience));
  return token.some((a) => allowed.has(sanitizeAudience(a)));
}

/** Time constraints (seconds since the epoch), as jwt_verify_lib's verifyTimeConstraint. */
export function checkTime(jwt: ParsedJwt, nowSeconds: number, skewSeconds: number): JwtStatusText {
  const nbf = jwt.payload.nbf as number | undefined;
  const exp = jwt.payload.exp as number | undefined;
  if (nbf !== undefined && nbf > nowSeconds + skewSeconds) return JwtStatus.notYetValid;
  if (exp !== undefined && exp > 0 && nowSeconds > exp + skewSeconds) return JwtStatus.expired;
  return JwtStatus.ok;
}

/** A key set ready to verify with: its usable JWKs, or nothing usable. */
type KeySet = { keys: JWK[] } | undefined;

/** Parses a JWKS document; undefined when it is not one or has no key (Envoy: "no valid public key"). */
export function parseJwks(text: string): KeySet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isObject(doc) || !Array.isArray(doc.keys)) return undefined;
  const keys = doc.keys.filter((k): k is JWK => isObject(k) && typeof k.kty === "string");
  return keys.length > 0 ? { keys } : undefined;
}

type RemoteSet = ReturnType<typeof createRemoteJWKSet>;

/**
 * Key sets by source, shared by the filters of one sidecar: inline documents parsed once, remote sets
 * fetched on first use and re-fetched when their cache duration has passed (jose's createRemoteJWKSet).
 */
export class JwksStore {
  private readonly local = new Map<string, KeySet>();
  private readonly remote = new Map<string, RemoteSet>();
  /** Imported keys by JWK and algorithm (importing is the expensive part). */
  private readonly imported = new Map<string, Promise<CryptoKey | Uint8Array>>();

  /** The keys of a provider; a status text when there are none or the fetch failed. */
  async keys(source: JwksSource): Promise<JWK[] | JwtStatusText> {
    if (source.kind === "local") {
      let set = this.local.get(source.jwks);
      if (!this.local.has(source.jwks)) {
        set = parseJwks(source.jwks);
        this.local.set(source.jwks, set);
      }
      return set?.keys ?? JwtStatus.jwksNoValidKeys;
    }
    const id = `${source.uri}|${source.timeoutMs}|${source.cacheMs}`;
    let set = this.remote.get(id);
    if (!set) {
      set = createRemoteJWKSet(new URL(source.uri), {
        timeoutDuration: Math.max(1, Math.round(source.timeoutMs)),
        cacheMaxAge: source.cacheMs,
        cooldownDuration: 0,
      });
      this.remote.set(id, set);
    }
    try {
      if (!set.fresh) await set.reload();
    } catch {
      return JwtStatus.jwksFetchFail;
    }
    const doc = set.jwks();
    const parsed = doc ? parseJwks(JSON.stringify(doc)) : undefined;
    return parsed?.keys ?? JwtStatus.jwksNoValidKeys;
  }

  importKey(jwk: JWK, alg: string): Promise<CryptoKey | Uint8Array> {
    const id = `${alg}|${JSON.stringify(jwk)}`;
    let key = this.imported.get(id);
    if (!key) {
      key = importJWK(jwk, alg);
      // A key that cannot be imported stays failed; do not keep retrying per request.
      key.catch(() => undefined);
      this.imported.set(id, key);
    }
    return key;
  }
}

/**
 * Checks the signature with the keys jwt_verify_lib would try: those whose kid (when both name one) and alg
 * (when the key names one) agree with the token's and whose type suits the algorithm.
 */
export async function verifySignature(
  jwt: ParsedJwt,
  keys: readonly JWK[],
  store: JwksStore,
): Promise<JwtStatusText> {
  const need = ALGORITHMS[jwt.alg] as { kty: string; crv?: string };
  let matched = false;
  for (const jwk of keys) {
    if (jwt.kid && jwk.kid && jwk.kid !== jwt.kid) continue;
    if (jwk.alg && jwk.alg !== jwt.alg) continue;
    if (jwk.kty !== need.kty || (need.crv !== undefined && jwk.crv !== need.crv)) continue;
    if (jwk.use !== undefined && jwk.use !== "sig") continue;
    matched = true;
    try {
      const key = await store.importKey(jwk, jwt.alg);
      await compactVerify(jwt.token, key, { algorithms: [jwt.alg] });
      return JwtStatus.ok;
    } catch {
      // This key does not verify it (or cannot be used); try the next.
    }
  }
  return matched ? JwtStatus.verificationFail : JwtStatus.jwksKidAlgMismatch;
}

/** The provider that verifies a token when the requirement names none: the first for its issuer, else one for any. */
export function providerForIssuer(
  providers: readonly JwtProviderConfig[],
  iss: string,
): JwtProviderConfig | undefined {
  return providers.find((p) => p.issuer !== "" && p.issuer === iss) ?? providers.find((p) => p.issuer === "");
}
