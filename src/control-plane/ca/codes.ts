// Stable error codes of the certificate authority and bootstrap tokens (src/control-plane/ca/, src/lib/spiffe.ts) and
// the HTTP status each one answers with. Tests assert them; never rename or reuse one.
import { SpiffeCodes } from "../../lib/spiffe.js";

export const CaCodes = {
  /** A CA private key file that its owner's group or others may read or write. */
  KEY_PERMISSIONS: "SKEIN_E_CA_KEY_PERMISSIONS",
  /** A file the CA needs is missing (a cacerts file, or half of a persisted root). */
  FILE_MISSING: "SKEIN_E_CA_FILE_MISSING",
  /** A certificate file that holds no parseable PEM certificate. */
  CERT_INVALID: "SKEIN_E_CA_CERT_INVALID",
  /** A key file that is not an unencrypted PEM private key. */
  KEY_INVALID: "SKEIN_E_CA_KEY_INVALID",
  /** A CA key of a type the CA cannot sign with (it signs with EC P-256/P-384/P-521 and RSA keys). */
  KEY_UNSUPPORTED: "SKEIN_E_CA_KEY_UNSUPPORTED",
  /** The CA key is not the private key of the CA certificate. */
  KEY_MISMATCH: "SKEIN_E_CA_KEY_MISMATCH",
  /** The CA certificate does not chain to a certificate in root-cert.pem. */
  CHAIN: "SKEIN_E_CA_CHAIN",
  /** A certificate used as a CA lacks basicConstraints CA:TRUE or the keyCertSign key usage. */
  NOT_A_CA: "SKEIN_E_CA_NOT_A_CA",
  /** A CA certificate that is expired or not valid yet. */
  EXPIRED: "SKEIN_E_CA_EXPIRED",
  /** The CA's state could not be written. */
  STATE: "SKEIN_E_CA_STATE",
  /** A CSR that does not parse as PEM PKCS#10. */
  CSR_INVALID: "SKEIN_E_CA_CSR_INVALID",
  /** A CSR whose self-signature does not verify: it was not made with the private key it carries. */
  CSR_SIGNATURE: "SKEIN_E_CA_CSR_SIGNATURE",
  /** A CSR with a key the CA does not certify (only EC P-256/P-384 and RSA of at least 2048 bits). */
  CSR_KEY: "SKEIN_E_CA_CSR_KEY",
  /** A requested certificate lifetime that is malformed or out of range. */
  TTL: "SKEIN_E_CA_TTL",
  /** A namespace, service account or trust domain that cannot be part of a SPIFFE ID. */
  BAD_IDENTITY: SpiffeCodes.BAD_IDENTITY,
  /** A certificate request without `Authorization: Bearer <token>`. */
  UNAUTHENTICATED: "SKEIN_E_CA_UNAUTHENTICATED",
  /** A bootstrap token that is unknown, expired or revoked. */
  TOKEN_INVALID: "SKEIN_E_CA_TOKEN_INVALID",
  /** A request for a certificate of another identity than the token proves. */
  IDENTITY_MISMATCH: "SKEIN_E_CA_IDENTITY_MISMATCH",
  /** Bootstrap tokens are issued and revoked for callers on this host only. */
  NOT_LOCAL: "SKEIN_E_CA_NOT_LOCAL",
  /** Too many live bootstrap tokens. */
  TOKEN_LIMIT: "SKEIN_E_CA_TOKEN_LIMIT",
  /** A malformed request body (not JSON, a missing or mistyped field). */
  REQUEST: "SKEIN_E_CA_REQUEST",
} as const;

export type CaCode = (typeof CaCodes)[keyof typeof CaCodes];

/** The HTTP status of each code a request can meet; codes only start-up meets are absent (500 if ever). */
export const CA_HTTP_STATUS: Readonly<Record<string, number>> = {
  [CaCodes.CSR_INVALID]: 400,
  [CaCodes.CSR_SIGNATURE]: 400,
  [CaCodes.CSR_KEY]: 400,
  [CaCodes.TTL]: 400,
  [CaCodes.BAD_IDENTITY]: 400,
  [CaCodes.REQUEST]: 400,
  [CaCodes.UNAUTHENTICATED]: 401,
  [CaCodes.TOKEN_INVALID]: 401,
  [CaCodes.IDENTITY_MISMATCH]: 403,
  [CaCodes.NOT_LOCAL]: 403,
  [CaCodes.TOKEN_LIMIT]: 503,
  // The token file could not be written: the token or renewal was not recorded, so the request failed.
  [CaCodes.STATE]: 500,
};
