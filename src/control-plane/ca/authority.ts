// The mesh's certificate authority: it holds a signing certificate and key (a self-signed root it generated and
// keeps under the state dir, or an operator's root or intermediate in Istio's cacerts layout) and turns workload
// CSRs into short-lived SPIFFE certificates. It only ever sees workloads' public keys.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  KeyObject as KeyObjects,
  X509Certificate as NodeCertificate,
  randomBytes,
  webcrypto,
} from "node:crypto";
import { mkdir, readFile, rename, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SkeinError } from "../../lib/diagnostics.js";
import { createLogger, type Logger } from "../../lib/log.js";
import { spiffeId, type WorkloadIdentity } from "../../lib/spiffe.js";
import { x509 } from "../../lib/x509.js";
import { CaCodes } from "./codes.js";

export const DEFAULT_CERT_TTL_MS = 24 * 3600_000;
/** Istio's default ceiling for workload certificates. */
export const DEFAULT_MAX_CERT_TTL_MS = 90 * 24 * 3600_000;
/** Short enough for rotation tests; a certificate is backdated a minute, so skew never cuts this. */
export const MIN_CERT_TTL_MS = 10_000;
const ROOT_LIFETIME_MS = 10 * 365 * 24 * 3600_000;
/** Certificates start a minute in the past so a peer whose clock is slightly behind accepts them. */
const BACKDATE_MS = 60_000;
const MAX_CSR_BYTES = 64 * 1024;
const MAX_CHAIN_DEPTH = 10;

/** Istio's cacerts file names. */
export const CACERTS = {
  cert: "ca-cert.pem",
  key: "ca-key.pem",
  root: "root-cert.pem",
  chain: "cert-chain.pem",
} as const;
/** Where a generated root lives under the state dir. */
export const GENERATED = { dir: "ca", cert: "root-cert.pem", key: "root-key.pem" } as const;

export interface CertificateAuthorityOptions {
  /** Keeps a generated root in `<stateDir>/ca/`; without it the root lives in memory, new on every start. */
  stateDir?: string;
  /** An Istio cacerts directory (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); wins over stateDir. */
  caDir?: string;
  /** Goes into a generated root's subject (O=), as Istio's self-signed root does. */
  trustDomain?: string;
  /** Lifetime of a certificate when the request names none. */
  defaultTtlMs?: number;
  /** The longest lifetime a request may ask for. */
  maxTtlMs?: number;
  logger?: Logger;
  now?: () => number;
}

/** Where the signing certificate came from. */
export type CaSource = "generated" | "reloaded" | "cacerts" | "ephemeral";

export interface IssuedCertificate {
  spiffeId: string;
  /** The leaf alone, PEM. */
  certificate: string;
  /** The leaf, then the CA's chain up to its root, PEM: what a workload presents in a handshake. */
  certificateChain: string;
  /** The trust bundle (one or more roots), PEM. */
  rootCert: string;
  serialNumber: string;
  notBefore: Date;
  expiresAt: Date;
}

interface SigningKey {
  key: webcrypto.CryptoKey;
  /** The signature algorithm for this key, as WebCrypto names it. */
  algorithm: { name: string; hash: string };
  spki: Buffer;
}

interface ParsedCertificate {
  pem: string;
  node: NodeCertificate;
  cert: x509.X509Certificate;
}

const fail = (code: string, message: string) => new SkeinError(code, message);

const CURVES: Record<string, { namedCurve: string; hash: string }> = {
  prime256v1: { namedCurve: "P-256", hash: "SHA-256" },
  secp384r1: { namedCurve: "P-384", hash: "SHA-384" },
  secp521r1: { namedCurve: "P-521", hash: "SHA-512" },
};

export class CertificateAuthority {
  private constructor(
    readonly source: CaSource,
    private readonly signer: ParsedCertificate,
    private readonly signingKey: SigningKey,
    /** The signing certificate, then each issuer up to and including a root from the trust bundle. */
    private readonly chain: readonly ParsedCertificate[],
    private readonly roots: readonly ParsedCertificate[],
    private readonly authorityKeyId: x509.AuthorityKeyIdentifierExtension,
    readonly defaultTtlMs: number,
    readonly maxTtlMs: number,
    private readonly now: () => number,
  ) {}

  /**
   * Loads the CA: cacerts when `caDir` is given, else the root under `<stateDir>/ca/` (generated and written
   * there on first start), else a root that lives in memory. Throws SkeinError SKEIN_E_CA_* naming the file.
   */
  static async load(options: CertificateAuthorityOptions = {}): Promise<CertificateAuthority> {
    const log = options.logger ?? createLogger("ca");
    const now = options.now ?? Date.now;
    const defaultTtlMs = options.defaultTtlMs ?? DEFAULT_CERT_TTL_MS;
    const maxTtlMs = Math.max(options.maxTtlMs ?? DEFAULT_MAX_CERT_TTL_MS, defaultTtlMs);
    checkTtl(defaultTtlMs, maxTtlMs, "certTtlMs");
    const trustDomain = options.trustDomain ?? "cluster.local";

    let source: CaSource;
    let certFile: string;
    let keyFile: string;
    let signerPem: string;
    let keyPem: string;
    let intermediates: ParsedCertificate[] = [];
    let roots: ParsedCertificate[];
    if (options.caDir) {
      source = "cacerts";
      const file = (name: string) => join(options.caDir as string, name);
      for (const name of Object.values(CACERTS)) await mustExist(file(name), "the cacerts layout");
      certFile = file(CACERTS.cert);
      keyFile = file(CACERTS.key);
      await assertOwnerOnly(keyFile);
      signerPem = await readFile(certFile, "utf8");
      keyPem = await readFile(keyFile, "utf8");
      roots = parseBundle(await readFile(file(CACERTS.root), "utf8"), file(CACERTS.root));
      intermediates = parseBundle(await readFile(file(CACERTS.chain), "utf8"), file(CACERTS.chain));
    } else if (options.stateDir) {
      const dir = join(options.stateDir, GENERATED.dir);
      certFile = join(dir, GENERATED.cert);
      keyFile = join(dir, GENERATED.key);
      const [hasCert, hasKey] = await Promise.all([exists(certFile), exists(keyFile)]);
      if (hasCert !== hasKey) {
        throw fail(
          CaCodes.FILE_MISSING,
          `${hasCert ? keyFile : certFile} is missing but ${hasCert ? certFile : keyFile} is there: restore it, or remove ${dir} to generate a new root (every workload then needs a new certificate)`,
        );
      }
      if (hasCert) {
        source = "reloaded";
        await assertOwnerOnly(keyFile);
        signerPem = await readFile(certFile, "utf8");
        keyPem = await readFile(keyFile, "utf8");
      } else {
        source = "generated";
        ({ certPem: signerPem, keyPem } = await generateRoot(trustDomain, now()));
        await persistRoot(dir, certFile, keyFile, signerPem, keyPem);
        log.info("generated the mesh root certificate", { dir });
      }
      roots = parseBundle(signerPem, certFile);
    } else {
      source = "ephemeral";
      certFile = "the generated root certificate";
      keyFile = "the generated root key";
      ({ certPem: signerPem, keyPem } = await generateRoot(trustDomain, now()));
      roots = parseBundle(signerPem, certFile);
      log.warn("no state dir: the root certificate lives in memory and changes on every restart");
    }

    const [signer] = parseBundle(signerPem, certFile) as [ParsedCertificate];
    const signingKey = await importSigningKey(keyPem, keyFile);
    const certSpki = signer.node.publicKey.export({ type: "spki", format: "der" });
    if (!certSpki.equals(signingKey.spki)) {
      throw fail(
        CaCodes.KEY_MISMATCH,
        `${keyFile} is not the private key of ${certFile}: supply the key the certificate was issued for`,
      );
    }
    const at = now();
    assertSigningCa(signer, certFile, at);
    const chain = buildChain(signer, intermediates, roots, certFile, at);
    const ski = signer.cert.getExtension(x509.SubjectKeyIdentifierExtension);
    const authorityKeyId = ski
      ? new x509.AuthorityKeyIdentifierExtension(ski.keyId)
      : await x509.AuthorityKeyIdentifierExtension.create(signer.cert.publicKey);
    const ca = new CertificateAuthority(
      source,
      signer,
      signingKey,
      chain,
      roots,
      authorityKeyId,
      defaultTtlMs,
      maxTtlMs,
      now,
    );
    log.info("certificate authority ready", {
      source,
      subject: signer.cert.subject,
      root: ca.rootFingerprint,
      expires: signer.cert.notAfter.toISOString(),
    });
    return ca;
  }

  /** The trust bundle: every root a workload should accept, PEM. */
  get rootCert(): string {
    return this.roots.map((r) => r.pem).join("");
  }

  /** SHA-256 of the first root's DER, hex: stable across restarts while the root is. */
  get rootFingerprint(): string {
    return createHash("sha256")
      .update((this.roots[0] as ParsedCertificate).node.raw)
      .digest("hex");
  }

  /** The signing certificate's subject, as the CA's identity in logs and the API. */
  get subject(): string {
    return this.signer.cert.subject;
  }

  /**
   * Signs a workload certificate for `identity` with the CSR's public key: after verifying the CSR's
   * self-signature (proof that the caller holds the private key), and ignoring every name the CSR asks for,
   * since the identity comes from authentication, not from the request. Validity: a minute ago until
   * now + ttl, never past the CA's own expiry.
   */
  async sign(
    csrPem: string,
    identity: WorkloadIdentity,
    ttlMs = this.defaultTtlMs,
  ): Promise<IssuedCertificate> {
    checkTtl(ttlMs, this.maxTtlMs, "ttl");
    const uri = spiffeId(identity);
    const csr = await readCsr(csrPem);
    // Empty subject with a critical SAN, as Istio's workload certificates: the URI is the identity.
    const leaf = await this.leaf({
      subject: "",
      publicKey: csr.publicKey,
      ttlMs,
      usages: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
      names: [{ type: "url", value: uri }],
      criticalNames: true,
    });
    return {
      spiffeId: uri,
      certificate: leaf.pem,
      certificateChain: leaf.pem + this.chain.map((c) => c.pem).join(""),
      rootCert: this.rootCert,
      serialNumber: leaf.serialNumber,
      notBefore: leaf.notBefore,
      expiresAt: leaf.expiresAt,
    };
  }

  /**
   * A leaf certificate signed by this CA: valid from a minute ago (clock skew) for `ttlMs`, never past the CA's
   * own expiry, in whole seconds as X.509 stores them (so expiresAt is exactly notAfter).
   */
  private async leaf(o: {
    subject: string;
    publicKey: x509.PublicKeyType;
    ttlMs: number;
    usages: string[];
    names: x509.JsonGeneralName[];
    criticalNames: boolean;
  }): Promise<{ pem: string; serialNumber: string; notBefore: Date; expiresAt: Date }> {
    const at = Math.floor(this.now() / 1000) * 1000;
    const notBefore = new Date(at - BACKDATE_MS);
    const expiresAt = new Date(Math.min(at + o.ttlMs, this.signer.cert.notAfter.getTime()));
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject: o.subject,
      issuer: this.signer.cert.subjectName,
      notBefore,
      notAfter: expiresAt,
      publicKey: o.publicKey,
      signingKey: this.signingKey.key,
      signingAlgorithm: this.signingKey.algorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension(o.usages),
        new x509.SubjectAlternativeNameExtension(o.names, o.criticalNames),
        this.authorityKeyId,
        await x509.SubjectKeyIdentifierExtension.create(o.publicKey),
      ],
    });
    return {
      pem: cert.toString("pem").trim().concat("\n"),
      serialNumber: cert.serialNumber,
      notBefore,
      expiresAt,
    };
  }

  /**
   * A serving certificate for the control plane itself (xDS over TLS): the key pair is made here, in the
   * process that will use it; DNS and IP SANs so clients dialling the host by name or address can verify it,
   * and the control plane's own SPIFFE ID. Valid for `ttlMs` (default a year, never past the CA's expiry).
   */
  async issueServingCertificate(
    names: { uri: string; dns: string[]; ips: string[] },
    ttlMs = 365 * 24 * 3600_000,
  ): Promise<{ key: string; certificateChain: string; rootCert: string; expiresAt: Date }> {
    const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
    const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
      "sign",
      "verify",
    ])) as webcrypto.CryptoKeyPair;
    const leaf = await this.leaf({
      subject: "CN=skein-control-plane",
      publicKey: keys.publicKey,
      ttlMs,
      usages: [x509.ExtendedKeyUsage.serverAuth],
      names: [
        { type: "url", value: names.uri },
        ...names.dns.map((value) => ({ type: "dns" as const, value })),
        ...names.ips.map((value) => ({ type: "ip" as const, value })),
      ],
      criticalNames: false,
    });
    const key = KeyObjects.from(keys.privateKey).export({ type: "pkcs8", format: "pem" }) as string;
    return {
      key,
      certificateChain: leaf.pem + this.chain.map((c) => c.pem).join(""),
      rootCert: this.rootCert,
      expiresAt: leaf.expiresAt,
    };
  }
}

/** Parses a PEM CSR and checks its key and self-signature (proof that the caller holds the private key). */
export async function readCsr(csrPem: string): Promise<x509.Pkcs10CertificateRequest> {
  if (
    typeof csrPem !== "string" ||
    csrPem.length > MAX_CSR_BYTES ||
    !csrPem.includes("CERTIFICATE REQUEST")
  ) {
    throw fail(
      CaCodes.CSR_INVALID,
      "csr must be a PEM PKCS#10 certificate request (-----BEGIN CERTIFICATE REQUEST-----)",
    );
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (e) {
    throw fail(CaCodes.CSR_INVALID, `csr does not parse as PKCS#10: ${(e as Error).message}`);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: "der", type: "spki" });
  } catch (e) {
    throw fail(CaCodes.CSR_KEY, `the CSR's public key cannot be read: ${(e as Error).message}`);
  }
  const details = key.asymmetricKeyDetails ?? {};
  const acceptable =
    (key.asymmetricKeyType === "ec" &&
      (details.namedCurve === "prime256v1" || details.namedCurve === "secp384r1")) ||
    (key.asymmetricKeyType === "rsa" && (details.modulusLength ?? 0) >= 2048);
  if (!acceptable) {
    throw fail(
      CaCodes.CSR_KEY,
      `the CSR's key is ${key.asymmetricKeyType}${details.namedCurve ? ` ${details.namedCurve}` : ""}${details.modulusLength ? ` ${details.modulusLength} bits` : ""}: use ECDSA P-256 (or P-384, or RSA of at least 2048 bits)`,
    );
  }
  let valid = false;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  if (!valid) {
    throw fail(
      CaCodes.CSR_SIGNATURE,
      "the CSR's signature does not verify with the key it carries: sign the CSR with the workload's own private key",
    );
  }
  return csr;
}

/** The URI SANs a CSR asks for (in its extension request), for the API's identity check. */
export function requestedUris(csr: x509.Pkcs10CertificateRequest): string[] {
  const uris: string[] = [];
  for (const ext of csr.getExtensions("2.5.29.17")) {
    // The library parses known extensions into their classes; anything else it could not read names nothing.
    if (!(ext instanceof x509.SubjectAlternativeNameExtension)) continue;
    for (const n of ext.names.items) if (n.type === "url") uris.push(n.value);
  }
  return uris;
}

function checkTtl(ttlMs: number, maxTtlMs: number, field: string): void {
  if (!Number.isFinite(ttlMs) || ttlMs < MIN_CERT_TTL_MS || ttlMs > maxTtlMs) {
    throw fail(
      CaCodes.TTL,
      `${field} ${ttlMs} ms is out of range: give between ${MIN_CERT_TTL_MS / 1000} s and ${maxTtlMs / 3600_000} h`,
    );
  }
}

/** 16 random bytes, positive and without a leading zero byte, so every serial encodes to the same length. */
function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x40;
  return b.toString("hex");
}

async function generateRoot(trustDomain: string, at: number): Promise<{ certPem: string; keyPem: string }> {
  const algorithm = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
  // Extractable so it can be written to the state dir; it never leaves this process otherwise.
  const keys = (await webcrypto.subtle.generateKey(algorithm, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ O: [trustDomain] }, { CN: ["Skein root CA"] }],
    notBefore: new Date(at - BACKDATE_MS),
    notAfter: new Date(at + ROOT_LIFETIME_MS),
    signingAlgorithm: algorithm,
    keys: keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = KeyObjects.from(keys.privateKey).export({ type: "pkcs8", format: "pem" }) as string;
  return { certPem: cert.toString("pem").trim().concat("\n"), keyPem };
}

/** Writes the key (owner-only) and then the certificate, each through a rename so a crash never leaves half a file. */
async function persistRoot(dir: string, certFile: string, keyFile: string, certPem: string, keyPem: string) {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const [file, data, mode] of [
      [keyFile, keyPem, 0o600],
      [certFile, certPem, 0o644],
    ] as const) {
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
      try {
        await writeFile(tmp, data, { mode, flag: "wx" });
        await rename(tmp, file);
      } catch (e) {
        await unlink(tmp).catch(() => undefined);
        throw e;
      }
    }
  } catch (e) {
    throw fail(CaCodes.STATE, `cannot write the root certificate to ${dir}: ${(e as Error).message}`);
  }
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function mustExist(file: string, what: string): Promise<void> {
  if (!(await exists(file))) {
    throw fail(
      CaCodes.FILE_MISSING,
      `${file} is missing: ${what} needs ${Object.values(CACERTS).join(", ")} in one directory`,
    );
  }
}

/** A CA key must be readable by its owner only, as ssh insists for its keys. */
async function assertOwnerOnly(file: string): Promise<void> {
  // Windows has no such mode bits; its ACLs are out of reach here.
  if (process.platform === "win32") return;
  const mode = (await stat(file)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw fail(
      CaCodes.KEY_PERMISSIONS,
      `${file} is accessible by users other than its owner (mode ${mode.toString(8).padStart(4, "0")}): run chmod 600 ${file}`,
    );
  }
}

function parseBundle(text: string, file: string): ParsedCertificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw fail(CaCodes.CERT_INVALID, `${file} holds no PEM certificate`);
  return blocks.map((block, i) => {
    try {
      const node = new NodeCertificate(block);
      return { pem: `${block}\n`, node, cert: new x509.X509Certificate(node.raw) };
    } catch (e) {
      throw fail(
        CaCodes.CERT_INVALID,
        `${file}: certificate ${i + 1} does not parse: ${(e as Error).message}`,
      );
    }
  });
}

async function importSigningKey(pem: string, file: string): Promise<SigningKey> {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (e) {
    throw fail(
      CaCodes.KEY_INVALID,
      `${file} is not an unencrypted PEM private key (PKCS#8, SEC1 or PKCS#1): ${(e as Error).message}`,
    );
  }
  const pkcs8 = key.export({ type: "pkcs8", format: "der" });
  const spki = createPublicKey(key).export({ type: "spki", format: "der" });
  let importAs: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams;
  let algorithm: { name: string; hash: string };
  if (key.asymmetricKeyType === "ec") {
    const curve = CURVES[key.asymmetricKeyDetails?.namedCurve ?? ""];
    if (!curve) {
      throw fail(
        CaCodes.KEY_UNSUPPORTED,
        `${file} is an EC key on curve ${key.asymmetricKeyDetails?.namedCurve}: the CA signs with P-256, P-384 or P-521`,
      );
    }
    importAs = { name: "ECDSA", namedCurve: curve.namedCurve };
    algorithm = { name: "ECDSA", hash: curve.hash };
  } else if (key.asymmetricKeyType === "rsa") {
    importAs = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    algorithm = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  } else {
    throw fail(
      CaCodes.KEY_UNSUPPORTED,
      `${file} is a ${key.asymmetricKeyType} key: the CA signs with EC (P-256, P-384, P-521) or RSA keys`,
    );
  }
  const cryptoKey = await webcrypto.subtle.importKey("pkcs8", pkcs8, importAs, false, ["sign"]);
  return { key: cryptoKey, algorithm, spki };
}

function assertValidAt(c: ParsedCertificate, file: string, at: number): void {
  if (c.cert.notAfter.getTime() <= at) {
    throw fail(
      CaCodes.EXPIRED,
      `${file}: ${c.cert.subject} expired at ${c.cert.notAfter.toISOString()}: supply a current CA certificate`,
    );
  }
  if (c.cert.notBefore.getTime() > at) {
    throw fail(
      CaCodes.EXPIRED,
      `${file}: ${c.cert.subject} is not valid before ${c.cert.notBefore.toISOString()}: check this host's clock`,
    );
  }
}

function assertCa(c: ParsedCertificate, file: string): void {
  const bc = c.cert.getExtension(x509.BasicConstraintsExtension);
  const ku = c.cert.getExtension(x509.KeyUsagesExtension);
  if (!bc?.ca || (ku && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0)) {
    throw fail(
      CaCodes.NOT_A_CA,
      `${file}: ${c.cert.subject || "the certificate"} is not a CA certificate (it needs basicConstraints CA:TRUE and, when key usage is present, keyCertSign)`,
    );
  }
}

function assertSigningCa(c: ParsedCertificate, file: string, at: number): void {
  assertCa(c, file);
  assertValidAt(c, file, at);
}

/**
 * The path from the signing certificate to a root in the trust bundle, through cert-chain.pem's certificates,
 * each link's signature verified. The signing certificate may itself be one of the roots.
 */
function buildChain(
  signer: ParsedCertificate,
  pool: readonly ParsedCertificate[],
  roots: readonly ParsedCertificate[],
  file: string,
  at: number,
): ParsedCertificate[] {
  const path = [signer];
  let current = signer;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
    if (roots.some((r) => r.node.raw.equals(current.node.raw))) return path;
    const issuer = [...roots, ...pool].find(
      (c) =>
        !c.node.raw.equals(current.node.raw) &&
        current.node.checkIssued(c.node) &&
        current.node.verify(c.node.publicKey),
    );
    if (!issuer) {
      throw fail(
        CaCodes.CHAIN,
        `${file}: ${current.cert.subject || "a certificate"} (issuer ${current.cert.issuer}) does not chain to a certificate in root-cert.pem: put the intermediates in cert-chain.pem and the root in root-cert.pem`,
      );
    }
    assertCa(issuer, file);
    assertValidAt(issuer, file, at);
    path.push(issuer);
    current = issuer;
  }
  throw fail(
    CaCodes.CHAIN,
    `${file}: the chain to root-cert.pem is longer than ${MAX_CHAIN_DEPTH} certificates`,
  );
}
