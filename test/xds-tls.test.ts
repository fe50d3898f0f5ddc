// xDS over TLS (Istio's 15012): the control plane serves ADS with a certificate from the mesh's own CA and
// requires a workload certificate from each proxy; a proxy gets config only as the identity its certificate
// proves. Refused: no client certificate, a certificate from another CA, a node claiming another service account.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { requestWorkloadCertificate, type WorkloadCertificate } from "../src/lib/identity.js";
import { createLogger } from "../src/lib/log.js";
import { createAdsClient, LISTENER } from "../src/xds/protos.js";
import { keyPair, pkcs8Pem, rootCa } from "./ca-fixtures.js";

const mesh = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: orders, namespace: shop }
spec:
  selector: { app: orders }
  ports: [{ name: http, port: 8080 }]
`;

let cp: ControlPlane;
let api: string;
let cert: WorkloadCertificate;

before(async () => {
  const config = mkdtempSync(join(tmpdir(), "skein-xds-tls-"));
  writeFileSync(join(config, "mesh.yaml"), mesh);
  cp = new ControlPlane({
    configDir: config,
    host: "127.0.0.1",
    xdsPort: 0,
    xdsTlsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: createLogger("test", "error"),
  });
  await cp.start();
  api = `http://127.0.0.1:${cp.ports.http}`;
  const res = await fetch(`${api}/api/v1/workloads/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ namespace: "shop", serviceAccount: "orders" }),
  });
  const { token } = (await res.json()) as { token: string };
  cert = await requestWorkloadCertificate({ controlPlane: api, token });
});

after(async () => {
  await cp.stop();
});

const node = (serviceAccount: string) => ({
  id: `sidecar~127.0.4.1~orders-1.shop~shop.svc.cluster.local`,
  metadata: jsonStruct({
    NAMESPACE: "shop",
    SERVICE_ACCOUNT: serviceAccount,
    LABELS: { app: "orders" },
    INSTANCE_IPS: "127.0.4.1",
  }),
});

// biome-ignore lint/suspicious/noExplicitAny: a Struct built by hand for the raw request
function jsonStruct(v: Record<string, unknown>): any {
  const value = (x: unknown): unknown =>
    typeof x === "string"
      ? { stringValue: x }
      : {
          structValue: {
            fields: Object.fromEntries(Object.entries(x as object).map(([k, y]) => [k, value(y)])),
          },
        };
  return { fields: Object.fromEntries(Object.entries(v).map(([k, x]) => [k, value(x)])) };
}

/** Opens a stream, asks for listeners, and resolves with the first response's listener count or the error. */
function ask(
  credentials: grpc.ChannelCredentials,
  serviceAccount: string,
  port = cp.ports.xdsTls,
): Promise<{ listeners: number } | { code: number; details: string }> {
  const client = createAdsClient(`127.0.0.1:${port}`, credentials);
  return new Promise((resolve) => {
    const call = client.StreamAggregatedResources();
    const done = (r: { listeners: number } | { code: number; details: string }) => {
      call.cancel();
      client.close();
      resolve(r);
    };
    call.on("data", (r: { resources: unknown[] }) => done({ listeners: r.resources.length }));
    call.on("error", (e: grpc.ServiceError) => done({ code: e.code, details: e.details }));
    call.write({ node: node(serviceAccount), typeUrl: LISTENER });
  });
}

const tls = (c: { root: string; key?: string; chain?: string }) =>
  grpc.credentials.createSsl(
    Buffer.from(c.root),
    c.key ? Buffer.from(c.key) : null,
    c.chain ? Buffer.from(c.chain) : null,
  );

test("a proxy with its workload certificate gets its config over TLS", async () => {
  assert.ok(cp.ports.xdsTls > 0);
  const r = await ask(tls(cert), "orders");
  assert.ok("listeners" in r, JSON.stringify(r));
  assert.ok(r.listeners > 0);
});

test("a node claiming another identity than its certificate proves is refused (PERMISSION_DENIED)", async () => {
  const r = await ask(tls(cert), "payments");
  assert.ok("code" in r, JSON.stringify(r));
  assert.equal(r.code, grpc.status.PERMISSION_DENIED);
  assert.match(r.details, /proves spiffe:\/\/cluster\.local\/ns\/shop\/sa\/orders.*claims .*sa\/payments/);
});

test("no client certificate, or one from another CA: the TLS handshake fails, no config", async () => {
  const none = await ask(tls({ root: cert.root }), "orders");
  assert.ok("code" in none, JSON.stringify(none));
  assert.equal(none.code, grpc.status.UNAVAILABLE);
  const foreign = await rootCa("CN=Other CA");
  const keys = await keyPair();
  const { x509 } = await import("../src/lib/x509.js");
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: "01",
    subject: "",
    issuer: foreign.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3600_000),
    publicKey: keys.publicKey,
    signingKey: foreign.keys.privateKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-384" },
    extensions: [
      new x509.SubjectAlternativeNameExtension([
        { type: "url", value: "spiffe://cluster.local/ns/shop/sa/orders" },
      ]),
    ],
  });
  const other = await ask(
    tls({ root: cert.root, key: pkcs8Pem(keys.privateKey), chain: leaf.toString("pem") }),
    "orders",
  );
  assert.ok("code" in other, JSON.stringify(other));
  assert.equal(other.code, grpc.status.UNAVAILABLE);
});

test("the plaintext port stays open for local proxies (unauthenticated, as Istio's 15010)", async () => {
  const r = await ask(grpc.credentials.createInsecure(), "anything", cp.ports.xds);
  assert.ok("listeners" in r, JSON.stringify(r));
});

test("skein proxy --xds-tls: the sidecar gets its certificate, then its config over TLS, and becomes ready", async () => {
  const { Sidecar } = await import("../src/proxy/sidecar.js");
  const res = await fetch(`${api}/api/v1/workloads/token`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ namespace: "shop", serviceAccount: "orders" }),
  });
  const { token } = (await res.json()) as { token: string };
  const sidecar = new Sidecar({
    xds: `127.0.0.1:${cp.ports.xdsTls}`,
    xdsTls: true,
    token,
    ca: api,
    node: {
      id: "sidecar~127.0.4.2~orders-2.shop~shop.svc.cluster.local",
      metadata: {
        NAMESPACE: "shop",
        SERVICE_ACCOUNT: "orders",
        LABELS: { app: "orders" },
        INSTANCE_IPS: "127.0.4.2",
      },
    },
    adminAddress: "127.0.4.2",
    adminPort: 0,
    drainMs: 100,
    logger: createLogger("test", "error"),
  });
  await sidecar.start();
  try {
    const deadline = Date.now() + 15_000;
    while (!sidecar.ready() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(sidecar.ready(), "ready over authenticated xDS");
    const status = (await (await fetch(`${api}/api/v1/status`)).json()) as { xdsTls?: string };
    assert.equal(status.xdsTls, `127.0.0.1:${cp.ports.xdsTls}`);
  } finally {
    await sidecar.stop();
  }
});
