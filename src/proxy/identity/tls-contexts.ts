// Turns a compiled TlsContext plus the secret manager's current secrets into what node:tls takes (key, chain,
// trusted roots, protocol versions), cached per context and secret version so a rotation rebuilds it for the
// next connection only. Also the peer checks Envoy's validation context makes: SAN matchers over URI and DNS
// SANs, and the peer's SPIFFE identity (its URI SAN) for ConnectionInfo and authorization.

import { X509Certificate } from "node:crypto";
import {
  createSecureContext,
  type PeerCertificate,
  type SecureContext,
  type SecureContextOptions,
} from "node:tls";
import type { SanMatcher, TlsContext } from "../config/types.js";
import { stringMatches } from "../router/match.js";
import type { SecretManager } from "./secrets.js";

/** What node:tls needs for one side of a TLS context, and the identity this side presents. */
export interface TlsMaterial {
  options: SecureContextOptions;
  /** The URI SAN of the certificate presented, if any. */
  localPrincipal: string | undefined;
  /** The secrets' version this was built from (0 for contexts with inline material only). */
  version: number;
}

/** The URI SAN of a PEM chain's leaf. */
export function leafSpiffeId(chainPem: string): string | undefined {
  try {
    return uriSans(new X509Certificate(chainPem).subjectAltName ?? "")[0];
  } catch {
    return undefined;
  }
}

type CacheEntry = { version: number; material: TlsMaterial; client?: SecureContext };
// Per manager (sidecars in one process have their own secrets), then per compiled context.
const caches = new WeakMap<SecretManager, WeakMap<TlsContext, CacheEntry>>();

function cacheOf(secrets: SecretManager): WeakMap<TlsContext, CacheEntry> {
  let c = caches.get(secrets);
  if (!c) {
    c = new WeakMap();
    caches.set(secrets, c);
  }
  return c;
}

const usesSecrets = (ctx: TlsContext) => ctx.certificate?.kind === "sds" || ctx.trust?.kind === "sds";

/** Builds (or reuses) the material for `ctx`; throws SKEIN_E_PROXY_NO_IDENTITY when a named secret is missing. */
export function tlsMaterial(ctx: TlsContext, secrets: SecretManager): TlsMaterial {
  const version = usesSecrets(ctx) ? secrets.version : 0;
  const cache = cacheOf(secrets);
  const cached = cache.get(ctx);
  if (cached && cached.version === version) return cached.material;
  const options: SecureContextOptions = {};
  let localPrincipal: string | undefined;
  const cert = ctx.certificate;
  if (cert?.kind === "inline") {
    options.cert = cert.chain;
    options.key = cert.key;
    localPrincipal = leafSpiffeId(cert.chain);
  } else if (cert?.kind === "sds") {
    const w = secrets.workload;
    if (!w) throw secrets.missing(cert.name);
    options.cert = w.chain;
    options.key = w.key;
    localPrincipal = w.spiffeId;
  }
  const trust = ctx.trust;
  if (trust?.kind === "inline") options.ca = trust.pem;
  else if (trust?.kind === "sds") {
    const roots = secrets.roots;
    if (roots === undefined) throw secrets.missing(trust.name);
    options.ca = roots;
  }
  if (ctx.minVersion) options.minVersion = ctx.minVersion;
  if (ctx.maxVersion) options.maxVersion = ctx.maxVersion;
  const material = { options, localPrincipal, version };
  cache.set(ctx, { version, material });
  return material;
}

/** A client-side SecureContext for `ctx`, shared by every upstream connection until the secrets change. */
export function clientSecureContext(
  ctx: TlsContext,
  secrets: SecretManager,
): { context: SecureContext; localPrincipal: string | undefined } {
  const material = tlsMaterial(ctx, secrets);
  const entry = cacheOf(secrets).get(ctx);
  if (entry && entry.material === material && entry.client)
    return { context: entry.client, localPrincipal: material.localPrincipal };
  const context = createSecureContext(material.options);
  if (entry && entry.material === material) entry.client = context;
  return { context, localPrincipal: material.localPrincipal };
}

const SAN_ENTRY =
  /(?:^|,\s*)(DNS|URI|IP Address|email|othername|DirName|Registered ID):("(?:[^"\\]|\\.)*"|[^,]*)/g;

function sanEntries(subjectAltName: string): { type: string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  for (const m of subjectAltName.matchAll(SAN_ENTRY)) {
    let value = m[2] as string;
    if (value.startsWith('"')) value = JSON.parse(value) as string;
    out.push({ type: m[1] as string, value });
  }
  return out;
}

/** The URI SANs in a certificate's subjectaltname string, in order. */
export function uriSans(subjectAltName: string): string[] {
  return sanEntries(subjectAltName)
    .filter((e) => e.type === "URI")
    .map((e) => e.value);
}

/** The peer's SPIFFE identity: its first URI SAN. */
export function peerPrincipal(cert: PeerCertificate | undefined): string | undefined {
  if (!cert?.subjectaltname) return undefined;
  return uriSans(cert.subjectaltname)[0];
}

/** Envoy's SAN check: passes when any matcher matches a SAN of its type; with no matchers, any peer passes. */
export function sansMatch(cert: PeerCertificate | undefined, sans: readonly SanMatcher[]): boolean {
  if (sans.length === 0) return true;
  const entries = sanEntries(cert?.subjectaltname ?? "");
  return sans.some((m) =>
    entries.some(
      (e) =>
        (m.type === "any" ? e.type === "URI" || e.type === "DNS" : e.type === m.type) &&
        stringMatches(m.match, e.value),
    ),
  );
}

/** How the expected SANs read in an error message: `spiffe://.../sa/x or prefix spiffe://...`. */
export function describeSans(sans: readonly SanMatcher[]): string {
  return sans
    .map((s) => {
      const m = s.match;
      return m.kind === "regex"
        ? `regex ${m.regex.source}`
        : m.kind === "exact"
          ? m.value
          : `${m.kind} ${m.value}`;
    })
    .join(" or ");
}

/** What the peer presented, for error messages: its URI and DNS SANs, or "no SAN". */
export function describePeer(cert: PeerCertificate | undefined): string {
  const names = sanEntries(cert?.subjectaltname ?? "")
    .filter((e) => e.type === "URI" || e.type === "DNS")
    .map((e) => e.value);
  return names.length > 0 ? names.join(", ") : "a certificate without URI or DNS SAN";
}
