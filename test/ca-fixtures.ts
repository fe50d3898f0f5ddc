// Shared by the CA tests: key pairs, CSRs (honest, asking for other names, or forged) and operator CA hierarchies
// in Istio's cacerts layout, all made with the same library the CA uses.
import { KeyObject, webcrypto } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { x509 } from "../src/lib/x509.js";

export const P256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" };
export const P384 = { name: "ECDSA", namedCurve: "P-384", hash: "SHA-384" };

export async function keyPair(alg: { name: string; namedCurve: string } = P256): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as CryptoKeyPair;
}

export const pkcs8Pem = (key: CryptoKey) =>
  KeyObject.from(key).export({ type: "pkcs8", format: "pem" }) as string;
/** SEC1 (`BEGIN EC PRIVATE KEY`), the form `openssl ecparam -genkey` writes. */
export const sec1Pem = (key: CryptoKey) =>
  KeyObject.from(key).export({ type: "sec1", format: "pem" }) as string;

/** A CSR made with `keys`, optionally asking for names the CA must not grant. */
export async function csrPem(
  keys: CryptoKeyPair,
  ask: { dns?: string[]; uris?: string[]; subject?: string } = {},
): Promise<string> {
  const names = [
    ...(ask.dns ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(ask.uris ?? []).map((value) => ({ type: "url" as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: P256,
    ...(ask.subject ? { name: ask.subject } : {}),
    extensions: names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return csr.toString("pem");
}

/**
 * A CSR carrying `victim`'s public key but signed with another key: what someone who copied a workload's public
 * key would send to get a certificate for a key they do not hold.
 */
export async function forgedCsrPem(victim: CryptoKeyPair): Promise<string> {
  const attacker = await keyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys: attacker, signingAlgorithm: P256 });
  const der = Buffer.from(csr.rawData);
  const attackerSpki = Buffer.from(await webcrypto.subtle.exportKey("spki", attacker.publicKey));
  const victimSpki = Buffer.from(await webcrypto.subtle.exportKey("spki", victim.publicKey));
  // P-256 SPKIs all have the same length, so the swap keeps every DER length valid.
  const at = der.indexOf(attackerSpki);
  if (at < 0 || attackerSpki.length !== victimSpki.length)
    throw new Error("fixture: cannot find the CSR's key");
  victimSpki.copy(der, at);
  return x509.PemConverter.encode(der, "CERTIFICATE REQUEST");
}

export interface CaCert {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  pem: string;
}

export async function rootCa(
  name = "CN=Operator Root, O=example",
  alg = P384,
  notAfter?: Date,
): Promise<CaCert> {
  const keys = await keyPair(alg);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name,
    keys,
    signingAlgorithm: alg,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: notAfter ?? new Date(Date.now() + 365 * 24 * 3600_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys, pem: cert.toString("pem") };
}

export async function intermediateCa(
  parent: CaCert,
  parentAlg: { name: string; hash: string },
  name = "CN=Skein intermediate, O=example",
  notAfter?: Date,
): Promise<CaCert> {
  const keys = await keyPair(P256);
  const cert = await x509.X509CertificateGenerator.create({
    subject: name,
    issuer: parent.cert.subjectName,
    publicKey: keys.publicKey,
    signingKey: parent.keys.privateKey,
    signingAlgorithm: parentAlg,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: notAfter ?? new Date(Date.now() + 180 * 24 * 3600_000),
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys, pem: cert.toString("pem") };
}

/** Writes Istio's cacerts layout; `key` defaults to the CA's own key (SEC1, as openssl writes it). */
export function writeCacerts(files: { ca: CaCert; root: CaCert; chain: CaCert[]; key?: string }): string {
  const dir = mkdtempSync(join(tmpdir(), "skein-cacerts-"));
  writeFileSync(join(dir, "ca-cert.pem"), files.ca.pem);
  writeFileSync(join(dir, "ca-key.pem"), files.key ?? sec1Pem(files.ca.keys.privateKey), { mode: 0o600 });
  writeFileSync(join(dir, "root-cert.pem"), files.root.pem);
  writeFileSync(join(dir, "cert-chain.pem"), files.chain.map((c) => c.pem).join("\n"));
  return dir;
}
