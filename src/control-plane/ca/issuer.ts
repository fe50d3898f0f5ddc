// What the HTTP API's identity endpoints do: issue and revoke bootstrap tokens, and sign a workload's CSR for
// exactly the identity its token proves. Transport-free, so the rules are tested without HTTP.
import { SkeinError } from "../../lib/diagnostics.js";
import { createLogger, type Logger } from "../../lib/log.js";
import { spiffeId, validateIdentity } from "../../lib/spiffe.js";
import type { Secret } from "../../xds/generated/envoy/extensions/transport_sockets/tls/v3/Secret.js";
import { type CertificateAuthority, readCsr, requestedUris } from "./authority.js";
import { CaCodes } from "./codes.js";
import { rootCaSecret } from "./sds.js";
import type { BootstrapTokens } from "./tokens.js";

/** The body of POST /api/v1/certificates. */
export interface CertificateRequest {
  /** PEM PKCS#10, signed with the workload's private key. */
  csr: string;
  /** Seconds, or a duration such as "90s", "2m", "24h", "1h30m"; default: the CA's. */
  ttl?: number | string;
  /** Optional: the identity the caller expects; refused (403) unless the token proves it. */
  namespace?: string;
  serviceAccount?: string;
}

/** The answer of POST /api/v1/certificates. */
export interface CertificateResponse {
  /** Leaf first, then the CA chain, PEM. */
  certificateChain: string;
  /** The trust bundle, PEM. */
  rootCert: string;
  expiresAt: string;
  spiffeId: string;
}

const fail = (code: string, message: string) => new SkeinError(code, message);

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000 };

/** A TTL as the API accepts it (seconds, or a Go-style duration) in milliseconds. */
export function parseTtl(ttl: number | string): number {
  if (typeof ttl === "number") {
    if (!Number.isFinite(ttl) || ttl <= 0)
      throw fail(CaCodes.TTL, `ttl ${ttl} must be a positive number of seconds`);
    return ttl * 1000;
  }
  if (typeof ttl === "string" && /^(\d+(\.\d+)?(ms|s|m|h))+$/.test(ttl)) {
    let ms = 0;
    for (const m of ttl.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g))
      ms += Number(m[1]) * (UNITS[m[2] as string] as number);
    return ms;
  }
  throw fail(
    CaCodes.TTL,
    `ttl ${JSON.stringify(ttl)} is not a duration: give seconds or e.g. "90s", "2m", "24h"`,
  );
}

export class WorkloadCertificates {
  private readonly log: Logger;
  private rootSecret?: { pem: string; secret: Secret };

  constructor(
    readonly ca: CertificateAuthority,
    readonly tokens: BootstrapTokens,
    /** The accepted mesh config's trust domain, read at every signing so a change applies to the next certificate. */
    private readonly trustDomain: () => string,
    logger?: Logger,
  ) {
    this.log = logger ?? createLogger("ca");
  }

  /** A bootstrap token for a workload about to start (POST /api/v1/workloads/token). */
  async issueToken(body: unknown): Promise<{ token: string; expiresAt: string; spiffeId: string }> {
    const subject = identityOf(body);
    const id = spiffeId({ trustDomain: this.trustDomain(), ...subject });
    const { token, expiresAt } = await this.tokens.issue(subject);
    this.log.info("bootstrap token issued", { identity: id, expires: expiresAt.toISOString() });
    return { token, expiresAt: expiresAt.toISOString(), spiffeId: id };
  }

  /** Revokes the bearer's own token, or every token of {namespace, serviceAccount} (DELETE /api/v1/workloads/token). */
  async revokeTokens(bearer: string | undefined, body: unknown): Promise<{ revoked: number }> {
    if (bearer) return { revoked: (await this.tokens.revoke(bearer)) ? 1 : 0 };
    const subject = identityOf(body);
    const revoked = await this.tokens.revokeAll(subject);
    this.log.info("bootstrap tokens revoked", { ...subject, revoked });
    return { revoked };
  }

  /**
   * Signs the CSR for the identity the bearer token proves (POST /api/v1/certificates): 401 without a live
   * token, 403 when the request names any other identity (in the body or as a SPIFFE URI in the CSR). The body
   * may be the raw JSON text: it is parsed only once the token checks out.
   */
  async certificate(
    bearer: string | undefined,
    body: string | object | undefined,
  ): Promise<CertificateResponse> {
    if (!bearer)
      throw fail(
        CaCodes.UNAUTHENTICATED,
        "send the workload's bootstrap token as `Authorization: Bearer <token>`",
      );
    const subject = this.tokens.authenticate(bearer);
    if (!subject)
      throw fail(
        CaCodes.TOKEN_INVALID,
        "the bootstrap token is unknown, expired or revoked: register the workload again for a new one",
      );
    let parsed: unknown = body;
    if (typeof body === "string") {
      try {
        parsed = JSON.parse(body);
      } catch {
        parsed = undefined;
      }
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
      throw fail(CaCodes.REQUEST, 'send a JSON object: {"csr": "<PEM>", "ttl"?: "24h"}');
    const req = parsed as Partial<CertificateRequest>;
    if (typeof req.csr !== "string")
      throw fail(CaCodes.REQUEST, "csr (a PEM certificate request) is required");
    const identity = { trustDomain: this.trustDomain(), ...subject };
    const id = spiffeId(identity);
    for (const [field, value] of [
      ["namespace", req.namespace],
      ["serviceAccount", req.serviceAccount],
    ] as const) {
      if (value !== undefined && value !== subject[field])
        throw fail(
          CaCodes.IDENTITY_MISMATCH,
          `this token proves ${id}; it cannot get a certificate for ${field} ${JSON.stringify(value)}`,
        );
    }
    const ttlMs = req.ttl === undefined ? undefined : parseTtl(req.ttl);
    const csr = await readCsr(req.csr);
    // The CA grants only the token's identity whatever a CSR asks; a CSR that names another one is refused
    // outright so a confused or malicious caller learns it, instead of receiving a certificate it did not expect.
    const other = requestedUris(csr).find((u) => u.startsWith("spiffe://") && u !== id);
    if (other) throw fail(CaCodes.IDENTITY_MISMATCH, `this token proves ${id}; the CSR asks for ${other}`);
    const issued = await this.ca.sign(req.csr, identity, ttlMs);
    // The certificate is signed: a failure to record the token's use on disk must not cost the workload it.
    await this.tokens.used(bearer, issued.expiresAt.getTime()).catch((e: Error) =>
      this.log.error("cannot record a bootstrap token's use; it may expire early after a restart", {
        identity: id,
        error: e.message,
      }),
    );
    this.log.debug("certificate issued", {
      identity: id,
      serial: issued.serialNumber,
      expires: issued.expiresAt.toISOString(),
    });
    return {
      certificateChain: issued.certificateChain,
      rootCert: issued.rootCert,
      expiresAt: issued.expiresAt.toISOString(),
      spiffeId: issued.spiffeId,
    };
  }

  /** The `ROOTCA` SDS Secret every proxy gets; built once per trust bundle. */
  rootCaSecret(): Secret {
    const pem = this.ca.rootCert;
    if (this.rootSecret?.pem !== pem) this.rootSecret = { pem, secret: rootCaSecret(pem) };
    return this.rootSecret.secret;
  }
}

function identityOf(body: unknown): { namespace: string; serviceAccount: string } {
  if (!body || typeof body !== "object" || Array.isArray(body))
    throw fail(CaCodes.REQUEST, 'send a JSON object: {"namespace": "...", "serviceAccount": "..."}');
  const { namespace, serviceAccount } = body as Record<string, unknown>;
  if (typeof namespace !== "string" || typeof serviceAccount !== "string")
    throw fail(CaCodes.REQUEST, "namespace and serviceAccount (strings) are required");
  // The trust domain is checked when the SPIFFE ID is built; here only the parts the caller chose.
  validateIdentity({ trustDomain: "cluster.local", namespace, serviceAccount });
  return { namespace, serviceAccount };
}
