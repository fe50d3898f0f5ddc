// Workload identity through a running control plane: bootstrap tokens from POST /api/v1/workloads/token,
// certificates from POST /api/v1/certificates (the workload side in src/lib/identity.ts), refused with stable
// codes for every identity the token does not prove, and the trust bundle served to proxies over SDS.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CaCodes } from "../src/control-plane/ca/codes.js";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { IdentityCodes, requestWorkloadCertificate, rotateAt } from "../src/lib/identity.js";
import { createLogger } from "../src/lib/log.js";
import type { Secret } from "../src/xds/generated/envoy/extensions/transport_sockets/tls/v3/Secret.js";
import { jsonToStruct, SECRET, unpack } from "../src/xds/protos.js";
import { csrPem, keyPair } from "./ca-fixtures.js";
import { sotwClient } from "./xds-helpers.js";

const meshConfig = `apiVersion: install.istio.io/v1alpha1
kind: IstioOperator
metadata: { name: mesh, namespace: istio-system }
spec:
  meshConfig:
    trustDomain: skein.test
`;

let cp: ControlPlane;
let url: string;

async function call(
  method: string,
  path: string,
  body?: unknown,
  token?: string,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: {
      "content-type": "application/json",
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function token(namespace: string, serviceAccount: string): Promise<string> {
  const r = await call("POST", "/api/v1/workloads/token", { namespace, serviceAccount });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json.token as string;
}

before(async () => {
  const config = mkdtempSync(join(tmpdir(), "skein-ca-api-"));
  writeFileSync(join(config, "mesh.yaml"), meshConfig);
  cp = new ControlPlane({
    configDir: config,
    stateDir: mkdtempSync(join(tmpdir(), "skein-ca-api-state-")),
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: createLogger("control-plane", "error"),
    bootstrapTokenIdleMs: 1500,
  });
  await cp.start();
  url = `http://127.0.0.1:${cp.ports.http}`;
});

after(async () => {
  await cp.stop();
});

describe("certificates through the API", () => {
  it("a token gets its workload a certificate for its own identity, in the mesh's trust domain", async () => {
    const t = await token("production", "order-service");
    const cert = await requestWorkloadCertificate({ controlPlane: url, token: t, ttlMs: 120_000 });
    assert.equal(cert.spiffeId, "spiffe://skein.test/ns/production/sa/order-service");
    const leaf = new X509Certificate(cert.chain);
    assert.equal(leaf.subjectAltName, `URI:${cert.spiffeId}`);
    const root = new X509Certificate(cert.root);
    assert.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), "the leaf verifies against the root");
    assert.equal(root.fingerprint256.replaceAll(":", "").toLowerCase(), cp.certificates?.ca.rootFingerprint);
    // The key stayed here: it matches the certificate, and the control plane never had it.
    assert.match(cert.key, /^-----BEGIN PRIVATE KEY-----/);
    const lifetime = cert.expiresAt.getTime() - cert.issuedAt.getTime();
    assert.ok(lifetime > 118_000 && lifetime <= 120_000, `a 2-minute certificate, got ${lifetime} ms`);
    assert.equal(
      rotateAt(cert.expiresAt, cert.issuedAt).getTime(),
      Math.floor(cert.issuedAt.getTime() + lifetime / 2),
    );
    // Renewal with the same token works (the token was used, so it is alive well past its idle time).
    const again = await requestWorkloadCertificate({ controlPlane: url, token: t });
    assert.ok(again.expiresAt.getTime() - again.issuedAt.getTime() > 23 * 3600_000, "24 h by default");
  });

  it("a token for production/order-service cannot get any other identity (403)", async () => {
    const t = await token("production", "order-service");
    const keys = await keyPair();
    const other = await call(
      "POST",
      "/api/v1/certificates",
      { csr: await csrPem(keys), namespace: "production", serviceAccount: "payment-service" },
      t,
    );
    assert.equal(other.status, 403);
    assert.equal(other.json.code, CaCodes.IDENTITY_MISMATCH);
    const ns = await call(
      "POST",
      "/api/v1/certificates",
      { csr: await csrPem(keys), namespace: "staging" },
      t,
    );
    assert.equal(ns.status, 403);
    assert.equal(ns.json.code, CaCodes.IDENTITY_MISMATCH);
    const byCsr = await call(
      "POST",
      "/api/v1/certificates",
      { csr: await csrPem(keys, { uris: ["spiffe://skein.test/ns/istio-system/sa/istiod"] }) },
      t,
    );
    assert.equal(byCsr.status, 403);
    assert.equal(byCsr.json.code, CaCodes.IDENTITY_MISMATCH);
    // Names other than SPIFFE IDs are simply not granted; the request itself is fine.
    const dns = await call(
      "POST",
      "/api/v1/certificates",
      { csr: await csrPem(keys, { dns: ["evil.example"] }) },
      t,
    );
    assert.equal(dns.status, 201);
    assert.equal(
      new X509Certificate(dns.json.certificateChain as string).subjectAltName,
      "URI:spiffe://skein.test/ns/production/sa/order-service",
    );
  });

  it("no token, an unknown, a revoked or an expired one: 401 with a stable code", async () => {
    const csr = await csrPem(await keyPair());
    const none = await call("POST", "/api/v1/certificates", { csr });
    assert.equal(none.status, 401);
    assert.equal(none.json.code, CaCodes.UNAUTHENTICATED);
    const unknown = await call(
      "POST",
      "/api/v1/certificates",
      { csr },
      Buffer.alloc(32, 7).toString("base64url"),
    );
    assert.equal(unknown.status, 401);
    assert.equal(unknown.json.code, CaCodes.TOKEN_INVALID);

    const revoked = await token("production", "inventory-service");
    const del = await call("DELETE", "/api/v1/workloads/token", undefined, revoked);
    assert.deepEqual(del.json, { revoked: 1 });
    const r = await call("POST", "/api/v1/certificates", { csr }, revoked);
    assert.equal(r.status, 401);
    assert.equal(r.json.code, CaCodes.TOKEN_INVALID);

    // This control plane's tokens live 1.5 s unused.
    const idle = await token("production", "inventory-service");
    await new Promise((res) => setTimeout(res, 1700));
    const expired = await call("POST", "/api/v1/certificates", { csr }, idle);
    assert.equal(expired.status, 401);
    assert.equal(expired.json.code, CaCodes.TOKEN_INVALID);
    // The workload side reports the CA's own code.
    await assert.rejects(requestWorkloadCertificate({ controlPlane: url, token: idle }), {
      code: CaCodes.TOKEN_INVALID,
    });
  });

  it("bad requests are 400 with stable codes: not JSON, no CSR, a forged CSR, a bad ttl, a bad identity", async () => {
    const t = await token("production", "order-service");
    const keys = await keyPair();
    const cases: [unknown, string][] = [
      ["{nope", CaCodes.REQUEST],
      [{ ttl: "2m" }, CaCodes.REQUEST],
      [{ csr: "not a csr" }, CaCodes.CSR_INVALID],
      [{ csr: await csrPem(keys), ttl: "forever" }, CaCodes.TTL],
      [{ csr: await csrPem(keys), ttl: 1 }, CaCodes.TTL],
    ];
    for (const [body, code] of cases) {
      const r = await call("POST", "/api/v1/certificates", body, t);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.json.code, code);
    }
    const badIdentity = await call("POST", "/api/v1/workloads/token", {
      namespace: "a/b",
      serviceAccount: "x",
    });
    assert.equal(badIdentity.status, 400);
    assert.equal(badIdentity.json.code, CaCodes.BAD_IDENTITY);
    const missing = await call("POST", "/api/v1/workloads/token", { namespace: "a" });
    assert.equal(missing.status, 400);
    assert.equal(missing.json.code, CaCodes.REQUEST);
  });

  it("revoking an identity revokes all its tokens", async () => {
    const a = await token("staging", "cart");
    const b = await token("staging", "cart");
    const del = await call("DELETE", "/api/v1/workloads/token", {
      namespace: "staging",
      serviceAccount: "cart",
    });
    assert.deepEqual(del.json, { revoked: 2 });
    for (const t of [a, b]) {
      await assert.rejects(requestWorkloadCertificate({ controlPlane: url, token: t }), {
        code: CaCodes.TOKEN_INVALID,
      });
    }
  });

  it("an unreachable control plane is SKEIN_E_IDENTITY_UNREACHABLE", async () => {
    await assert.rejects(requestWorkloadCertificate({ controlPlane: "http://127.0.0.1:1", token: "x" }), {
      code: IdentityCodes.UNREACHABLE,
    });
  });

  it("GET /api/v1/ca shows the root", async () => {
    const r = await call("GET", "/api/v1/ca");
    assert.equal(r.status, 200);
    assert.equal(r.json.source, "generated");
    assert.equal(r.json.rootFingerprint, cp.certificates?.ca.rootFingerprint);
    assert.match(r.json.rootCert as string, /^-----BEGIN CERTIFICATE-----/);
  });
});

describe("SDS", () => {
  it("a connected proxy that subscribes to ROOTCA by name gets the trust bundle; config_dump shows it", async () => {
    const client = sotwClient(cp.ports.xds);
    const nodeId = "sidecar~127.0.6.1~order-v1.production~production.svc.cluster.local";
    try {
      client.send({
        node: { id: nodeId, cluster: "sim", metadata: jsonToStruct({ SERVICE_ACCOUNT: "order-service" }) },
        typeUrl: SECRET,
        resourceNames: ["ROOTCA"],
      });
      const res = await client.inbox.next(5000);
      assert.equal(res.typeUrl, SECRET);
      assert.equal(res.resources.length, 1);
      const secret = unpack<Secret>(res.resources[0] as never, { defaults: false, oneofs: true });
      assert.equal(secret.name, "ROOTCA");
      const pem = Buffer.from(secret.validationContext?.trustedCa?.inlineBytes as Uint8Array).toString(
        "utf8",
      );
      assert.equal(pem, cp.certificates?.ca.rootCert);
      assert.equal(secret.tlsCertificate, undefined, "never a private key: the control plane has none");
      client.send({
        typeUrl: SECRET,
        versionInfo: res.versionInfo,
        responseNonce: res.nonce,
        resourceNames: ["ROOTCA"],
      });

      const dump = (await (
        await fetch(`${url}/debug/config_dump?proxy=${encodeURIComponent(nodeId)}`)
      ).json()) as {
        sds: { name: string; validationContext: { trustedCa: { inlineBytes: string } } }[];
      };
      assert.deepEqual(
        dump.sds.map((s) => s.name),
        ["ROOTCA"],
      );
      assert.equal(
        Buffer.from(dump.sds[0]?.validationContext.trustedCa.inlineBytes ?? "", "base64").toString(),
        pem,
      );
    } finally {
      client.close();
    }
  });
});
