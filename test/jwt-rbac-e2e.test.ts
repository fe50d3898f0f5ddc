// RequestAuthentication with AuthorizationPolicy requestPrincipals, end to end through real sidecars: the
// jwt_authn filter establishes `<iss>/<sub>` (filter state istio_authn) and the RBAC filter after it reads
// it. RequestAuthentication alone lets tokenless requests through; `requestPrincipals` is what requires a
// token, and a specific principal admits only that subject.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import type { ControlPlane } from "../src/control-plane/control-plane.js";
import {
  type RunningSidecar,
  send,
  startControlPlane,
  startSidecar,
  type Upstream,
  until,
  upstream,
} from "./resilience-harness.js";

const CLIENT = "127.0.89.70";
const SERVER = "127.0.89.71";
const HOST = "order-service.production:8080";
const ISSUER = "https://accounts.example.com";

let app: Upstream;
let cp: ControlPlane;
let client: RunningSidecar;
let server: RunningSidecar;
let privateKey: CryptoKey;

function token(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, sub })
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(privateKey);
}

before(async () => {
  const pair = await generateKeyPair("ES256");
  privateKey = pair.privateKey;
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1" }] });
  const mesh = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: order-service, namespace: production }
spec:
  selector: { app: order-service }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: { name: order-service-jwt, namespace: production }
spec:
  selector:
    matchLabels: { app: order-service }
  jwtRules:
    - issuer: "${ISSUER}"
      jwks: '${jwks}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: order-service-users, namespace: production }
spec:
  selector:
    matchLabels: { app: order-service }
  rules:
    - from: [{ source: { requestPrincipals: ["*"] } }]
      to: [{ operation: { paths: ["/orders*"] } }]
    - from: [{ source: { requestPrincipals: ["${ISSUER}/admin"] } }]
      to: [{ operation: { paths: ["/admin*"] } }]
    - to: [{ operation: { paths: ["/health"] } }]
`;
  app = await upstream("127.0.0.1");
  const started = await startControlPlane({ "mesh.yaml": mesh });
  cp = started.cp;
  server = await startSidecar(started.xds, SERVER, "order-service", "production", { "app:http": app.port });
  client = await startSidecar(started.xds, CLIENT);
  await until(
    "the order-service endpoint is known",
    async () => (await send(CLIENT, HOST, "/health")).status === 200,
  );
});

after(async () => {
  await client?.stop();
  await server?.stop();
  await cp?.stop();
  await app?.close();
});

test('requestPrincipals ["*"] requires a verified token', async () => {
  const anonymous = await send(CLIENT, HOST, "/orders");
  assert.equal(anonymous.status, 403);
  const r = await send(CLIENT, HOST, "/orders", {
    headers: { authorization: `Bearer ${await token("alice")}` },
  });
  assert.equal(r.status, 200);
});

test("a specific request principal `<iss>/<sub>` admits only that subject", async () => {
  const alice = await send(CLIENT, HOST, "/admin", {
    headers: { authorization: `Bearer ${await token("alice")}` },
  });
  assert.equal(alice.status, 403);
  const admin = await send(CLIENT, HOST, "/admin", {
    headers: { authorization: `Bearer ${await token("admin")}` },
  });
  assert.equal(admin.status, 200);
});

test("an invalid token is refused by jwt_authn (401) before authorization is asked", async () => {
  const r = await send(CLIENT, HOST, "/health", { headers: { authorization: "Bearer x.y.z" } });
  assert.equal(r.status, 401);
});
