// The workload side of mesh identity, for the sidecar: make a key pair in memory, have the control plane's CA sign
// a CSR for it with the workload's bootstrap token, and know when to renew. The private key never leaves this
// process; the control plane only ever sees the public key.
import { KeyObject, webcrypto, X509Certificate } from "node:crypto";
import { SkeinError } from "./diagnostics.js";
import { x509 } from "./x509.js";

export const IdentityCodes = {
  /** The control plane's API could not be reached. */
  UNREACHABLE: "SKEIN_E_IDENTITY_UNREACHABLE",
  /** The control plane answered with something that is not a certificate for this workload's key. */
  BAD_RESPONSE: "SKEIN_E_IDENTITY_BAD_RESPONSE",
} as const;

export interface WorkloadCertificate {
  /** The private key, PKCS#8 PEM (what node:tls takes); it exists only in this process. */
  key: string;
  /** The certificate chain to present, leaf first, PEM. */
  chain: string;
  /** The trust bundle peers' certificates must chain to, PEM. */
  root: string;
  spiffeId: string;
  /** When this process asked for it (the certificate itself is backdated a little for clock skew). */
  issuedAt: Date;
  expiresAt: Date;
}

export interface CertificateRequestOptions {
  /** The control plane's HTTP API, e.g. `http://127.0.0.1:15080`. */
  controlPlane: string;
  /** The workload's bootstrap token. */
  token: string;
  /** Requested lifetime; the CA's default (24 h) when absent. */
  ttlMs?: number;
  signal?: AbortSignal;
}

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };

/**
 * Generates an ECDSA P-256 key pair, sends a CSR to POST /api/v1/certificates with the token, and checks that
 * the certificate it gets back is for this key. Errors from the CA keep its code (SKEIN_E_CA_TOKEN_INVALID, …).
 */
export async function requestWorkloadCertificate(
  options: CertificateRequestOptions,
): Promise<WorkloadCertificate> {
  // Extractable only so node:tls can be given the key as PEM; it is exported nowhere else.
  const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  // No names: the CA decides the identity from the token, whatever a CSR asks for.
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: ALGORITHM });
  const issuedAt = new Date();
  const url = new URL("/api/v1/certificates", options.controlPlane);
  let res: Response;
  try {
    res = await fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${options.token}`, "content-type": "application/json" },
      body: JSON.stringify({
        csr: csr.toString("pem"),
        ...(options.ttlMs !== undefined ? { ttl: `${Math.round(options.ttlMs)}ms` } : {}),
      }),
      signal: options.signal,
    });
  } catch (e) {
    throw new SkeinError(
      IdentityCodes.UNREACHABLE,
      `cannot reach the control plane at ${url.origin} for a certificate: ${(e as Error).message}`,
    );
  }
  const text = await res.text();
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new SkeinError(IdentityCodes.BAD_RESPONSE, `the control plane answered ${res.status} without JSON`);
  }
  if (!res.ok) {
    throw new SkeinError(
      typeof body.code === "string" ? body.code : IdentityCodes.BAD_RESPONSE,
      `the control plane refused the certificate request (${res.status}): ${String(body.message ?? text)}`,
    );
  }
  const { certificateChain, rootCert, expiresAt } = body;
  if (typeof certificateChain !== "string" || typeof rootCert !== "string" || typeof expiresAt !== "string")
    throw new SkeinError(
      IdentityCodes.BAD_RESPONSE,
      "the control plane's answer lacks certificateChain, rootCert or expiresAt",
    );
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certificateChain);
  } catch (e) {
    throw new SkeinError(
      IdentityCodes.BAD_RESPONSE,
      `certificateChain does not parse: ${(e as Error).message}`,
    );
  }
  // A certificate for another key would fail every handshake later, far from the cause; catch it here.
  const ours = KeyObject.from(keys.publicKey).export({ type: "spki", format: "der" });
  if (!leaf.publicKey.export({ type: "spki", format: "der" }).equals(ours))
    throw new SkeinError(
      IdentityCodes.BAD_RESPONSE,
      "the certificate the control plane returned is not for this workload's key",
    );
  // Read from the certificate itself: that, not the JSON around it, is what peers will see.
  const spiffeId = /URI:(spiffe:\/\/[^,\s]+)/.exec(leaf.subjectAltName ?? "")?.[1];
  if (!spiffeId)
    throw new SkeinError(
      IdentityCodes.BAD_RESPONSE,
      "the certificate the control plane returned has no SPIFFE ID",
    );
  const expires = new Date(expiresAt);
  if (Number.isNaN(expires.getTime()))
    throw new SkeinError(IdentityCodes.BAD_RESPONSE, `expiresAt ${JSON.stringify(expiresAt)} is not a date`);
  return {
    key: KeyObject.from(keys.privateKey).export({ type: "pkcs8", format: "pem" }) as string,
    chain: certificateChain,
    root: rootCert,
    spiffeId,
    issuedAt,
    expiresAt: expires,
  };
}

/** When to renew: at half the certificate's life, as Istio's agent does, leaving the other half for retries. */
export function rotateAt(expiresAt: Date, issuedAt: Date): Date {
  return new Date(issuedAt.getTime() + (expiresAt.getTime() - issuedAt.getTime()) / 2);
}
