// Envoy's JWT authentication filter (envoy.filters.http.jwt_authn) in the sidecar. The first rule's requirement
// is evaluated as Envoy's verifiers do: a provider requirement extracts tokens from that provider's locations
// and needs every one of them to verify; requires_any tries its requirements in order (a bypass —
// allow_missing or allow_missing_or_failed — last, over the locations of its sibling providers) and passes on
// the first success, else fails with the last one's status; allow_missing passes when no token is present,
// allow_missing_or_failed always. A failure is answered 401 (403 for a disallowed audience, as Envoy since
// 1.12) with the status text as body and a `WWW-Authenticate: Bearer realm="<uri>"` header. A verified token
// is removed from its header or query parameter unless `forward`; its payload can go upstream in a header,
// claims in headers; and it is kept for later filters:
// - filter state "envoy.filters.http.jwt_authn": `{ [payload_in_metadata]: payload }` (Envoy's dynamic metadata);
// - filter state "istio_authn": the request.auth.* attributes Istio derives from it (principal `<iss>/<sub>`,
//   audiences, presenter `azp`, claims), which the RBAC filter reads for requestPrincipals and `when`.
// Stats: http.<stat prefix>.jwt_authn.{allowed,denied,cors_preflight_bypassed}.
import type { JwtAuthnConfig, JwtProviderConfig, JwtRequirementConfig } from "../../config/jwt.js";
import { Continue, type FilterContext, type FilterStatus, type StreamFilter } from "../../router/chain.js";
import type { DownstreamRequest } from "../../router/downstream.js";
import { first } from "../../router/headers.js";
import { localReply } from "../../router/local-reply.js";
import type { Stat } from "../../router/stats.js";
import {
  audiencesAllowed,
  checkTime,
  JwksStore,
  JwtStatus,
  type JwtStatusText,
  type ParsedJwt,
  parseJwt,
  providerForIssuer,
  verifySignature,
} from "./verify.js";

export const JWT_AUTHN_FILTER = "envoy.filters.http.jwt_authn";
/** Filter-state keys other filters read. */
export const JWT_PAYLOADS_STATE = "envoy.filters.http.jwt_authn";
export const ISTIO_AUTHN_STATE = "istio_authn";

/** What the filter leaves under ISTIO_AUTHN_STATE after a token verified (Istio's request.auth.* attributes). */
export interface IstioAuthnState {
  /** `<iss>/<sub>`; absent when the token has no iss or no sub. */
  "request.auth.principal"?: string;
  "request.auth.audiences": string[];
  /** The `azp` claim; absent when the token has none. */
  "request.auth.presenter"?: string;
  "request.auth.claims": Record<string, unknown>;
}

/** Envoy: the path in WWW-Authenticate's realm is cut at 256 characters. */
const MAX_URI_PATH = 256;

/** jwt_authn's counters. */
class JwtStats {
  readonly allowed: Stat;
  readonly denied: Stat;
  readonly corsPreflightBypassed: Stat;

  constructor(ctx: FilterContext, name: string) {
    const p = `http.${ctx.statPrefix ?? name}.jwt_authn.`;
    this.allowed = ctx.stats.counter(`${p}allowed`);
    this.denied = ctx.stats.counter(`${p}denied`);
    this.corsPreflightBypassed = ctx.stats.counter(`${p}cors_preflight_bypassed`);
  }
}

/** A factory whose filters share one JwksStore (fetched key sets survive config updates). */
export function jwtAuthnFactory(
  store = new JwksStore(),
  now: () => number = Date.now,
): (config: unknown, name: string, ctx: FilterContext) => StreamFilter {
  return (config, name, ctx) =>
    new JwtAuthnFilter(config as JwtAuthnConfig, new JwtStats(ctx, name), store, now);
}

/** Where a token was found, and which issuers may use that location. */
interface Location {
  token: string;
  /** undefined: any issuer (a provider without issuer named the location). */
  issuers: ReadonlySet<string> | undefined;
  from: { kind: "header"; name: string } | { kind: "param"; name: string } | { kind: "cookie" };
}

/** The request being authenticated: headers and path are copied, changed, and handed back on success. */
interface Work {
  headers: Record<string, string | string[] | undefined>;
  path: string;
  changed: boolean;
  /** payload_in_metadata → payload, in verification order. */
  payloads: Map<string, Record<string, unknown>>;
  /** The first verified token (Istio's request.auth.* come from it). */
  principalJwt?: ParsedJwt;
}

type Outcome = JwtStatusText;

export class JwtAuthnFilter implements StreamFilter {
  private readonly providers: Map<string, JwtProviderConfig>;

  constructor(
    private readonly config: JwtAuthnConfig,
    private readonly stats: JwtStats,
    private readonly store: JwksStore,
    private readonly now: () => number,
  ) {
    this.providers = new Map(config.providers.map((p) => [p.name, p]));
  }

  decodeHeaders(req: DownstreamRequest, _perRoute: unknown): FilterStatus | Promise<FilterStatus> {
    if (this.config.bypassCorsPreflight && isCorsPreflight(req)) {
      this.stats.corsPreflightBypassed.value++;
      this.stats.allowed.value++;
      return Continue;
    }
    const requirement = this.config.requirement;
    if (requirement === undefined || requirement.kind === "allow-all") {
      this.stats.allowed.value++;
      return Continue;
    }
    return this.authenticate(req, requirement);
  }

  private async authenticate(
    req: DownstreamRequest,
    requirement: JwtRequirementConfig,
  ): Promise<FilterStatus> {
    const uri = `${req.scheme}://${req.authority}${req.path.slice(0, MAX_URI_PATH)}`;
    const work: Work = { headers: { ...req.headers }, path: req.path, changed: false, payloads: new Map() };
    const status = await this.evaluate(requirement, [], work);
    if (status !== JwtStatus.ok) {
      this.stats.denied.value++;
      const code = status === JwtStatus.audienceNotAllowed ? 403 : 401;
      let challenge = `Bearer realm="${uri}"`;
      if (status !== JwtStatus.missing) challenge += ', error="invalid_token"';
      const details = `jwt_authn_access_denied{${status.replace(/\s/g, "_")}}`;
      return localReply(code, this.config.stripFailureResponse ? "" : status, 0, details, {
        headers: { "www-authenticate": challenge },
      });
    }
    if (work.changed) {
      req.headers = work.headers;
      req.path = work.path;
    }
    if (work.payloads.size > 0) req.setFilterState(JWT_PAYLOADS_STATE, Object.fromEntries(work.payloads));
    if (work.principalJwt) req.setFilterState(ISTIO_AUTHN_STATE, istioAuthn(work.principalJwt));
    this.stats.allowed.value++;
    return Continue;
  }

  /** One requirement; `siblings` are the providers of the enclosing requires_any (for its bypass). */
  private async evaluate(r: JwtRequirementConfig, siblings: string[], work: Work): Promise<Outcome> {
    switch (r.kind) {
      case "provider": {
        const p = this.providers.get(r.provider) as JwtProviderConfig;
        return this.authenticateTokens([p], work, p, "none");
      }
      case "allow-missing":
      case "allow-missing-or-failed": {
        const ps = siblings.map((n) => this.providers.get(n) as JwtProviderConfig);
        return this.authenticateTokens(
          ps,
          work,
          undefined,
          r.kind === "allow-missing" ? "missing" : "failed",
        );
      }
      case "allow-all":
        return JwtStatus.ok;
      case "any": {
        // Envoy keeps one bypass, last (allow_missing_or_failed wins over allow_missing).
        const regular = r.requirements.filter(
          (x) => x.kind !== "allow-missing" && x.kind !== "allow-missing-or-failed",
        );
        const bypass =
          r.requirements.find((x) => x.kind === "allow-missing-or-failed") ??
          r.requirements.find((x) => x.kind === "allow-missing");
        const used = regular.flatMap((x) => (x.kind === "provider" ? [x.provider] : []));
        let last: Outcome = JwtStatus.ok;
        for (const x of [...regular, ...(bypass ? [bypass] : [])]) {
          last = await this.evaluate(x, used, work);
          if (last === JwtStatus.ok) return last;
        }
        return last;
      }
    }
  }

  /**
   * Envoy's authenticator over the tokens found in `providers`' locations: with `fixed`, every token must
   * verify with that provider; without, each token's issuer picks the provider. `allow` is the bypass kind.
   */
  private async authenticateTokens(
    providers: readonly JwtProviderConfig[],
    work: Work,
    fixed: JwtProviderConfig | undefined,
    allow: "none" | "missing" | "failed",
  ): Promise<Outcome> {
    for (const p of providers) sanitize(p, work);
    const tokens = extract(providers, work);
    if (tokens.length === 0) return allow === "none" ? JwtStatus.missing : JwtStatus.ok;
    let status: Outcome = JwtStatus.ok;
    // Envoy takes tokens from the back; without a bypass, the first failure decides.
    for (let i = tokens.length - 1; i >= 0; i--) {
      status = await this.verifyOne(tokens[i] as Location, fixed, work);
      if (status !== JwtStatus.ok && allow === "none") return status;
    }
    if (allow === "failed") return JwtStatus.ok;
    return status;
  }

  private async verifyOne(loc: Location, fixed: JwtProviderConfig | undefined, work: Work): Promise<Outcome> {
    const jwt = parseJwt(loc.token);
    if (typeof jwt === "string") return jwt;
    if (loc.issuers !== undefined && !loc.issuers.has(jwt.iss)) return JwtStatus.unknownIssuer;
    const p = fixed ?? providerForIssuer(this.config.providers, jwt.iss);
    if (!p) return JwtStatus.unknownIssuer;
    const time = checkTime(jwt, Math.floor(this.now() / 1000), p.clockSkewSeconds);
    if (time !== JwtStatus.ok) return time;
    if (!audiencesAllowed(p.audiences, jwt.audiences)) return JwtStatus.audienceNotAllowed;
    const keys = await this.store.keys(p.jwks);
    if (typeof keys === "string") return keys;
    const sig = await verifySignature(jwt, keys, this.store);
    if (sig !== JwtStatus.ok) return sig;
    accept(p, jwt, loc, work);
    return JwtStatus.ok;
  }
}

function isCorsPreflight(req: DownstreamRequest): boolean {
  return (
    req.method === "OPTIONS" &&
    !!first(req.headers.origin) &&
    !!first(req.headers["access-control-request-method"])
  );
}

/** Removes the headers a provider writes, so a client cannot pass them off as verified output. */
function sanitize(p: JwtProviderConfig, work: Work): void {
  const names = [
    ...(p.forwardPayloadHeader ? [p.forwardPayloadHeader] : []),
    ...p.claimToHeaders.map((c) => c.header),
  ];
  for (const n of names) {
    if (work.headers[n] === undefined) continue;
    delete work.headers[n];
    work.changed = true;
  }
}

const TOKEN_START = /[A-Za-z0-9_.-]/;

/** Envoy's extractor: header locations (by name and prefix), then query parameters, then cookies, each sorted. */
function extract(providers: readonly JwtProviderConfig[], work: Work): Location[] {
  const headers = new Map<string, { name: string; prefix: string; issuers: Set<string> | undefined }>();
  const params = new Map<string, Set<string> | undefined>();
  const cookies = new Map<string, Set<string> | undefined>();
  const add = (set: Set<string> | undefined, issuer: string, had: boolean): Set<string> | undefined => {
    if (issuer === "" || (had && set === undefined)) return undefined;
    const s = set ?? new Set<string>();
    s.add(issuer);
    return s;
  };
  for (const p of providers) {
    for (const h of p.fromHeaders) {
      const key = h.name + h.prefix;
      const cur = headers.get(key);
      headers.set(key, {
        name: h.name,
        prefix: h.prefix,
        issuers: add(cur?.issuers, p.issuer, cur !== undefined),
      });
    }
    for (const q of p.fromParams) params.set(q, add(params.get(q), p.issuer, params.has(q)));
    for (const c of p.fromCookies) cookies.set(c, add(cookies.get(c), p.issuer, cookies.has(c)));
  }
  const out: Location[] = [];
  for (const key of [...headers.keys()].sort()) {
    const spec = headers.get(key) as { name: string; prefix: string; issuers: Set<string> | undefined };
    const raw = work.headers[spec.name];
    const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
    for (const v of values) {
      let token = v;
      if (spec.prefix !== "") {
        const at = v.indexOf(spec.prefix);
        if (at < 0) continue;
        // From the first base64url (or dot) character after the prefix; the whole value if there is none.
        let start = at + spec.prefix.length;
        while (start < v.length && !TOKEN_START.test(v.charAt(start))) start++;
        token = start < v.length ? v.slice(start) : v;
      }
      out.push({ token, issuers: spec.issuers, from: { kind: "header", name: spec.name } });
    }
  }
  if (params.size > 0) {
    const q = work.path.indexOf("?");
    const query = new URLSearchParams(q >= 0 ? work.path.slice(q + 1) : "");
    for (const name of [...params.keys()].sort()) {
      const v = query.get(name);
      if (v !== null) out.push({ token: v, issuers: params.get(name), from: { kind: "param", name } });
    }
  }
  if (cookies.size > 0) {
    const jar = parseCookies(work.headers.cookie);
    for (const name of [...cookies.keys()].sort()) {
      const v = jar.get(name);
      if (v !== undefined) out.push({ token: v, issuers: cookies.get(name), from: { kind: "cookie" } });
    }
  }
  return out;
}

function parseCookies(header: string | string[] | undefined): Map<string, string> {
  const jar = new Map<string, string>();
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [header];
  for (const line of lines)
    for (const part of line.split(";")) {
      const eq = part.indexOf("=");
      if (eq < 0) continue;
      const name = part.slice(0, eq).trim();
      let value = part.slice(eq + 1).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      if (!jar.has(name)) jar.set(name, value);
    }
  return jar;
}

/** A claim as a header value: strings as they are, integers without a fraction, booleans; others not at all. */
function claimValue(v: unknown): string | undefined {
  if (typeof v === "string") return v === "" ? undefined : v;
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number" && Number.isFinite(v))
    // Envoy prints non-integral (and negative) numbers with std::to_string: six decimals.
    return Number.isInteger(v) && v >= 0 ? String(v) : v.toFixed(6);
  return undefined;
}

/** Envoy's handleGoodJwt: outputs, token removal, and the payload for later filters. */
function accept(p: JwtProviderConfig, jwt: ParsedJwt, loc: Location, work: Work): void {
  if (p.forwardPayloadHeader) {
    let payload = jwt.payloadBase64;
    if (p.padForwardPayloadHeader) payload += "=".repeat((4 - (payload.length % 4)) % 4);
    work.headers[p.forwardPayloadHeader] = payload;
    work.changed = true;
  }
  for (const c of p.claimToHeaders) {
    const v = claimValue(jwt.payload[c.claim]);
    if (v === undefined) continue;
    work.headers[c.header] = v;
    work.changed = true;
  }
  if (!p.forward) {
    if (loc.from.kind === "header") {
      delete work.headers[loc.from.name];
      work.changed = true;
    } else if (loc.from.kind === "param") {
      work.path = withoutParam(work.path, loc.from.name);
      work.changed = true;
    }
    // Envoy leaves cookies in place.
  }
  if (p.payloadInMetadata) work.payloads.set(p.payloadInMetadata, jwt.payload);
  work.principalJwt ??= jwt;
}

function withoutParam(path: string, name: string): string {
  const q = path.indexOf("?");
  if (q < 0) return path;
  const query = new URLSearchParams(path.slice(q + 1));
  query.delete(name);
  const rest = query.toString();
  return rest ? `${path.slice(0, q)}?${rest}` : path.slice(0, q);
}

/** Istio's request.auth.* attributes of a verified token. */
export function istioAuthn(jwt: ParsedJwt): IstioAuthnState {
  const sub = jwt.payload.sub;
  const out: IstioAuthnState = {
    "request.auth.audiences": [...jwt.audiences],
    "request.auth.claims": jwt.payload,
  };
  if (jwt.iss && typeof sub === "string" && sub) out["request.auth.principal"] = `${jwt.iss}/${sub}`;
  if (typeof jwt.payload.azp === "string") out["request.auth.presenter"] = jwt.payload.azp;
  return out;
}
