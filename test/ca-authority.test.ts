// The certificate authority on its own: the generated root (persisted owner-only, reloaded unchanged), an
// operator's root or intermediate in Istio's cacerts layout (validated), and signing: only the SPIFFE identity
// it is told, never the names a CSR asks for; forged CSRs refused; lifetimes as requested; certificates that
// verify to the root and work in a real mutual-TLS handshake.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { connect, createServer, type TLSSocket } from "node:tls";
import { CertificateAuthority, type IssuedCertificate } from "../src/control-plane/ca/authority.js";
import { CaCodes } from "../src/control-plane/ca/codes.js";
import { createLogger } from "../src/lib/log.js";
import { x509 } from "../src/lib/x509.js";
import {
  csrPem,
  forgedCsrPem,
  intermediateCa,
  keyPair,
  P256,
  P384,
  pkcs8Pem,
  rootCa,
  writeCacerts,
} from "./ca-fixtures.js";

const logger = createLogger("ca", "error");
const order = { trustDomain: "cluster.local", namespace: "production", serviceAccount: "order-service" };
const ORDER_ID = "spiffe://cluster.local/ns/production/sa/order-service";
const stateDir = () => mkdtempSync(join(tmpdir(), "skein-ca-state-"));

/** Splits a PEM bundle into node:crypto certificates, in order. */
function certs(pem: string): X509Certificate[] {
  return (pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    (b) => new X509Certificate(b),
  );
}

/** Every link of the chain is issued and signed by the next, and the last by a root of the bundle. */
function assertChainsToRoot(issued: IssuedCertificate): void {
  const chain = certs(issued.certificateChain);
  const roots = certs(issued.rootCert);
  for (let i = 0; i + 1 < chain.length; i++) {
    const [c, issuer] = [chain[i] as X509Certificate, chain[i + 1] as X509Certificate];
    assert.ok(c.checkIssued(issuer), `certificate ${i} is issued by certificate ${i + 1}`);
    assert.ok(
      c.verify(issuer.publicKey),
      `certificate ${i}'s signature verifies with certificate ${i + 1}'s key`,
    );
  }
  const last = chain.at(-1) as X509Certificate;
  assert.ok(
    roots.some((r) => r.raw.equals(last.raw) || (last.checkIssued(r) && last.verify(r.publicKey))),
    "the chain ends at a root of the trust bundle",
  );
}

async function rejects(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (e: Error & { code?: string }) => {
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
}

describe("generated root", () => {
  it("is generated on first start, written owner-only, and reloaded unchanged after a restart", async () => {
    const dir = stateDir();
    const first = await CertificateAuthority.load({ stateDir: dir, logger });
    assert.equal(first.source, "generated");
    const keyFile = join(dir, "ca", "root-key.pem");
    const certFile = join(dir, "ca", "root-cert.pem");
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, "the key is readable by its owner only");
    assert.equal(statSync(join(dir, "ca")).mode & 0o077, 0, "and so is its directory");
    const root = new X509Certificate(readFileSync(certFile));
    assert.ok(root.ca);
    assert.match(root.subject, /O=cluster\.local/);
    assert.ok(root.verify(root.publicKey), "self-signed");
    assert.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1", "ECDSA P-256");
    assert.match(readFileSync(keyFile, "utf8"), /^-----BEGIN PRIVATE KEY-----/);

    const again = await CertificateAuthority.load({ stateDir: dir, logger });
    assert.equal(again.source, "reloaded");
    assert.equal(again.rootFingerprint, first.rootFingerprint);
    assert.equal(again.rootCert, first.rootCert);
    // What the first instance signed verifies against the reloaded root: workloads keep working across restarts.
    const issued = await first.sign(await csrPem(await keyPair()), order);
    assert.ok(certs(issued.certificate)[0]?.verify(certs(again.rootCert)[0]?.publicKey as never));
  });

  it("refuses a key file that others can read, saying how to fix it", async () => {
    const dir = stateDir();
    await CertificateAuthority.load({ stateDir: dir, logger });
    const keyFile = join(dir, "ca", "root-key.pem");
    chmodSync(keyFile, 0o644);
    await rejects(
      CertificateAuthority.load({ stateDir: dir, logger }),
      CaCodes.KEY_PERMISSIONS,
      /mode 0644.*chmod 600/,
    );
    chmodSync(keyFile, 0o640);
    await rejects(CertificateAuthority.load({ stateDir: dir, logger }), CaCodes.KEY_PERMISSIONS);
    chmodSync(keyFile, 0o600);
    assert.equal((await CertificateAuthority.load({ stateDir: dir, logger })).source, "reloaded");
  });

  it("refuses half a root (a key without its certificate) rather than replacing it", async () => {
    const dir = stateDir();
    await CertificateAuthority.load({ stateDir: dir, logger });
    rmSync(join(dir, "ca", "root-cert.pem"));
    await rejects(
      CertificateAuthority.load({ stateDir: dir, logger }),
      CaCodes.FILE_MISSING,
      /root-cert\.pem/,
    );
    assert.ok(existsSync(join(dir, "ca", "root-key.pem")), "the key is left alone");
  });

  it("refuses a root whose key is not its own", async () => {
    const dir = stateDir();
    await CertificateAuthority.load({ stateDir: dir, logger });
    writeFileSync(join(dir, "ca", "root-key.pem"), pkcs8Pem((await keyPair()).privateKey), { mode: 0o600 });
    await rejects(CertificateAuthority.load({ stateDir: dir, logger }), CaCodes.KEY_MISMATCH);
  });

  it("without a state dir lives in memory: a new root on every start", async () => {
    const a = await CertificateAuthority.load({ logger });
    const b = await CertificateAuthority.load({ logger });
    assert.equal(a.source, "ephemeral");
    assert.notEqual(a.rootFingerprint, b.rootFingerprint);
  });
});

describe("operator CA (Istio cacerts layout)", () => {
  it("signs through an intermediate: the leaf chains leaf → intermediate → operator root", async () => {
    const root = await rootCa();
    const inter = await intermediateCa(root, P384);
    const dir = writeCacerts({ ca: inter, root, chain: [inter, root] });
    const ca = await CertificateAuthority.load({ caDir: dir, stateDir: stateDir(), logger });
    assert.equal(ca.source, "cacerts");
    assert.equal(certs(ca.rootCert)[0]?.fingerprint256, new X509Certificate(root.pem).fingerprint256);

    const issued = await ca.sign(await csrPem(await keyPair()), order);
    const chain = certs(issued.certificateChain);
    assert.deepEqual(
      chain.map((c) => c.fingerprint256),
      [
        chain[0]?.fingerprint256,
        new X509Certificate(inter.pem).fingerprint256,
        new X509Certificate(root.pem).fingerprint256,
      ],
    );
    assertChainsToRoot(issued);
    // The same check with the library: a chain built from the leaf reaches the operator's root.
    const built = await new x509.X509ChainBuilder({
      certificates: [inter.cert, root.cert],
    }).build(new x509.X509Certificate(issued.certificate));
    assert.equal(built.length, 3);
    assert.equal(built.at(-1)?.subject, root.cert.subject);
  });

  it("accepts an operator root used directly, with a PKCS#8 key", async () => {
    const root = await rootCa("CN=Flat Root", P256);
    const dir = writeCacerts({ ca: root, root, chain: [root], key: pkcs8Pem(root.keys.privateKey) });
    const ca = await CertificateAuthority.load({ caDir: dir, logger });
    const issued = await ca.sign(await csrPem(await keyPair()), order);
    assertChainsToRoot(issued);
  });

  it("refuses a ca-key.pem that is not ca-cert.pem's key", async () => {
    const root = await rootCa();
    const inter = await intermediateCa(root, P384);
    const other = await keyPair();
    const dir = writeCacerts({ ca: inter, root, chain: [inter, root], key: pkcs8Pem(other.privateKey) });
    await rejects(
      CertificateAuthority.load({ caDir: dir, logger }),
      CaCodes.KEY_MISMATCH,
      /ca-key\.pem is not the private key of .*ca-cert\.pem/,
    );
  });

  it("refuses a ca-cert.pem that does not chain to root-cert.pem", async () => {
    const root = await rootCa();
    const stranger = await rootCa("CN=Someone else's root");
    const inter = await intermediateCa(stranger, P384);
    const dir = writeCacerts({ ca: inter, root, chain: [inter] });
    await rejects(CertificateAuthority.load({ caDir: dir, logger }), CaCodes.CHAIN, /does not chain/);
  });

  it("refuses a ca-cert.pem that is not a CA certificate", async () => {
    const root = await rootCa();
    const keys = await keyPair();
    const leafLike = await x509.X509CertificateGenerator.create({
      subject: "CN=not a ca",
      issuer: root.cert.subjectName,
      publicKey: keys.publicKey,
      signingKey: root.keys.privateKey,
      signingAlgorithm: P384,
      extensions: [new x509.BasicConstraintsExtension(false, undefined, true)],
    });
    const fake = { cert: leafLike, keys, pem: leafLike.toString("pem") };
    const dir = writeCacerts({ ca: fake, root, chain: [fake, root] });
    await rejects(CertificateAuthority.load({ caDir: dir, logger }), CaCodes.NOT_A_CA);
  });

  it("refuses an expired intermediate, a missing file, and a key others can read", async () => {
    const root = await rootCa();
    const expired = await intermediateCa(root, P384, "CN=old", new Date(Date.now() - 60_000));
    const dir = writeCacerts({ ca: expired, root, chain: [expired, root] });
    await rejects(CertificateAuthority.load({ caDir: dir, logger }), CaCodes.EXPIRED, /expired/);

    const inter = await intermediateCa(root, P384);
    const missing = writeCacerts({ ca: inter, root, chain: [inter, root] });
    rmSync(join(missing, "cert-chain.pem"));
    await rejects(
      CertificateAuthority.load({ caDir: missing, logger }),
      CaCodes.FILE_MISSING,
      /cert-chain\.pem/,
    );

    const open = writeCacerts({ ca: inter, root, chain: [inter, root] });
    chmodSync(join(open, "ca-key.pem"), 0o644);
    await rejects(CertificateAuthority.load({ caDir: open, logger }), CaCodes.KEY_PERMISSIONS);
  });

  it("never issues a certificate that outlives the CA signing it", async () => {
    const root = await rootCa();
    const caExpiry = new Date(Date.now() + 3600_000);
    caExpiry.setMilliseconds(0);
    const inter = await intermediateCa(root, P384, "CN=short-lived", caExpiry);
    const ca = await CertificateAuthority.load({
      caDir: writeCacerts({ ca: inter, root, chain: [inter, root] }),
      logger,
    });
    const issued = await ca.sign(await csrPem(await keyPair()), order, 24 * 3600_000);
    assert.equal(issued.expiresAt.getTime(), caExpiry.getTime());
  });
});

describe("signing", () => {
  it("grants only the SPIFFE URI it is told, whatever names the CSR asks for", async () => {
    const ca = await CertificateAuthority.load({ logger });
    const csr = await csrPem(await keyPair(), {
      subject: "CN=admin, O=system:masters",
      dns: ["payment-service.production.svc.cluster.local", "*"],
      uris: ["spiffe://cluster.local/ns/istio-system/sa/istiod"],
    });
    const issued = await ca.sign(csr, order);
    assert.equal(issued.spiffeId, ORDER_ID);
    const leaf = new X509Certificate(issued.certificate);
    assert.equal(leaf.subjectAltName, `URI:${ORDER_ID}`, "one SAN, the URI; no DNS names, no other URI");
    assert.equal(leaf.subject, undefined, "no subject: the CSR's CN and O are dropped");
    assert.equal(leaf.ca, false);
    assert.deepEqual(
      leaf.keyUsage.sort(),
      ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"],
      "EKU serverAuth + clientAuth",
    );
    const parsed = new x509.X509Certificate(issued.certificate);
    const ku = parsed.getExtension(x509.KeyUsagesExtension);
    assert.equal(ku?.usages, x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment);
    assert.equal(ku?.critical, true);
    assert.equal(
      parsed.getExtension(x509.SubjectAlternativeNameExtension)?.critical,
      true,
      "critical: empty subject",
    );
    assertChainsToRoot(issued);
  });

  it("certifies the CSR's own key, and refuses a CSR whose signature was not made with it", async () => {
    const ca = await CertificateAuthority.load({ logger });
    const victim = await keyPair();
    const issued = await ca.sign(await csrPem(victim), order);
    const spki = async (k: CryptoKey) => Buffer.from(await crypto.subtle.exportKey("spki", k));
    assert.ok(
      new X509Certificate(issued.certificate).publicKey
        .export({ type: "spki", format: "der" })
        .equals(await spki(victim.publicKey)),
    );
    await rejects(ca.sign(await forgedCsrPem(victim), order), CaCodes.CSR_SIGNATURE, /does not verify/);
    await rejects(
      ca.sign("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----", order),
      CaCodes.CSR_INVALID,
    );
    await rejects(ca.sign("hello", order), CaCodes.CSR_INVALID);
  });

  it("refuses a CSR for a key it does not certify (RSA under 2048 bits)", async () => {
    const ca = await CertificateAuthority.load({ logger });
    const alg = {
      name: "RSASSA-PKCS1-v1_5",
      hash: "SHA-256",
      publicExponent: new Uint8Array([1, 0, 1]),
      modulusLength: 1024,
    };
    const keys = (await crypto.subtle.generateKey(alg, false, ["sign", "verify"])) as CryptoKeyPair;
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: alg });
    await rejects(ca.sign(csr.toString("pem"), order), CaCodes.CSR_KEY, /1024 bits/);
  });

  it("honours a 2-minute lifetime, backdates a minute for clock skew, and defaults to 24 h", async () => {
    const ca = await CertificateAuthority.load({ logger });
    const before = Date.now();
    const short = await ca.sign(await csrPem(await keyPair()), order, 120_000);
    const after = Date.now();
    const leaf = new x509.X509Certificate(short.certificate);
    assert.equal(
      leaf.notAfter.getTime(),
      short.expiresAt.getTime(),
      "expiresAt is the certificate's notAfter",
    );
    assert.equal(leaf.notBefore.getTime(), short.notBefore.getTime());
    // X.509 times are whole seconds: the issuing time is the second the request was signed in.
    const issuedAt = short.expiresAt.getTime() - 120_000;
    assert.ok(
      issuedAt >= before - 1000 && issuedAt <= after,
      `issued at ${issuedAt}, asked ${before}..${after}`,
    );
    assert.equal(short.notBefore.getTime(), issuedAt - 60_000);

    const day = await ca.sign(await csrPem(await keyPair()), order);
    assert.equal(day.expiresAt.getTime() - day.notBefore.getTime(), 24 * 3600_000 + 60_000);

    await rejects(ca.sign(await csrPem(await keyPair()), order, 5_000), CaCodes.TTL);
    await rejects(ca.sign(await csrPem(await keyPair()), order, 365 * 24 * 3600_000), CaCodes.TTL);
    const custom = await CertificateAuthority.load({ logger, defaultTtlMs: 5 * 60_000 });
    const five = await custom.sign(await csrPem(await keyPair()), order);
    assert.equal(five.expiresAt.getTime() - five.notBefore.getTime(), 6 * 60_000);
  });

  it("refuses identities that could spell another one", async () => {
    const ca = await CertificateAuthority.load({ logger });
    const csr = await csrPem(await keyPair());
    for (const bad of [
      { ...order, namespace: "production/sa/admin" },
      { ...order, serviceAccount: "../istiod" },
      { ...order, namespace: "Production" },
      { ...order, trustDomain: "evil.com/ns/x" },
    ]) {
      await rejects(ca.sign(csr, bad), CaCodes.BAD_IDENTITY);
    }
  });

  it("issues certificates a real mutual-TLS handshake accepts, each side seeing the other's SPIFFE ID", async () => {
    const ca = await CertificateAuthority.load({ logger });
    const serverKeys = await keyPair();
    const clientKeys = await keyPair();
    const server = await ca.sign(await csrPem(serverKeys), order);
    const client = await ca.sign(await csrPem(clientKeys), { ...order, serviceAccount: "api-gateway" });
    const seen: string[] = [];
    const tlsServer = createServer(
      {
        key: pkcs8Pem(serverKeys.privateKey),
        cert: server.certificateChain,
        ca: server.rootCert,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (socket) => {
        seen.push(socket.getPeerCertificate().subjectaltname ?? "");
        socket.end("ok");
      },
    );
    await new Promise<void>((r) => tlsServer.listen(0, "127.0.0.1", r));
    const port = (tlsServer.address() as { port: number }).port;
    try {
      const reply = await new Promise<{ data: string; peer: string }>((resolve, reject) => {
        const socket: TLSSocket = connect({
          host: "127.0.0.1",
          port,
          key: pkcs8Pem(clientKeys.privateKey),
          cert: client.certificateChain,
          ca: client.rootCert,
          // Mesh peers are named by SPIFFE URI, not DNS: identity is checked against the URI SAN instead.
          checkServerIdentity: () => undefined,
        });
        let data = "";
        socket.on("data", (d) => {
          data += d;
        });
        socket.on("end", () => resolve({ data, peer: socket.getPeerCertificate().subjectaltname ?? "" }));
        socket.on("error", reject);
      });
      assert.equal(reply.data, "ok");
      assert.equal(reply.peer, `URI:${ORDER_ID}`);
      assert.deepEqual(seen, ["URI:spiffe://cluster.local/ns/production/sa/api-gateway"]);
    } finally {
      tlsServer.close();
    }
  });
});
