// RequestAuthentication end to end: YAML → the model → Envoy jwt_authn on the selected workload's inbound
// listener → over ADS into the real server-side Sidecar, reached through a real client-side Sidecar. The key
// pair is made here (RS256) and its JWKS inlined in the policy. A valid token reaches the application without
// the token and with the claim header; an expired or foreign one is refused by the server's sidecar with
// Envoy's 401; a request without a token passes.
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

const CLIENT = "127.0.89.60";
const SERVER = "127.0.89.61";
const HOST = "order-service.production:8080";
const ISSUER = "https://accounts.example.com";

let app: Upstream;
let cp: ControlPlane;
let client: RunningSidecar;
let server: RunningSidecar;
let privateKey: CryptoKey;
let stranger: CryptoKey;

function token(key: CryptoKey, claims: Record<string, unknown>, expiresIn = 3600): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, aud: "order-service", ...claims })
    .setProtectedHeader({ alg: "RS256", kid: "k1" })
    .setIssuedAt(now)
    .setExpirationTime(now + expiresIn)
    .sign(key);
}

before(async () => {
  const pair = await generateKeyPair("RS256");
  privateKey = pair.privateKey;
  stranger = (await generateKeyPair("RS256")).privateKey;
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "RS256" }] });
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
      audiences: [order-service]
      jwks: '${jwks}'
      outputClaimToHeaders:
        - { header: x-user, claim: sub }
`;
  app = await upstream("127.0.0.1");
  const started = await startControlPlane({ "mesh.yaml": mesh });
  cp = started.cp;
  server = await startSidecar(started.xds, SERVER, "order-service", "production", { "app:http": app.port });
  client = await startSidecar(started.xds, CLIENT);
  await until(
    "the order-service endpoint is known",
    async () => (await send(CLIENT, HOST, "/")).status === 200,
  );
});

after(async () => {
  await client?.stop();
  await server?.stop();
  await cp?.stop();
  await app?.close();
});

test("a valid token reaches the application without the token, with the claim header", async () => {
  const seen = app.seen.length;
  const r = await send(CLIENT, HOST, "/orders", {
    headers: { authorization: `Bearer ${await token(privateKey, { sub: "alice" })}` },
  });
  assert.equal(r.status, 200);
  const req = app.seen[seen];
  assert.ok(req, "the application got the request");
  assert.equal(req.headers.authorization, undefined);
  assert.equal(req.headers["x-user"], "alice");
});

test("an expired token and a token signed by another key are refused by the server's sidecar", async () => {
  const seen = app.seen.length;
  const expired = await send(CLIENT, HOST, "/orders", {
    headers: { authorization: `Bearer ${await token(privateKey, { sub: "alice" }, -3600)}` },
  });
  assert.equal(expired.status, 401);
  assert.equal(expired.body, "Jwt is expired");
  const forged = await send(CLIENT, HOST, "/orders", {
    headers: { authorization: `Bearer ${await token(stranger, { sub: "mallory" })}` },
  });
  assert.equal(forged.status, 401);
  assert.equal(forged.body, "Jwt verification fails");
  assert.equal(app.seen.length, seen, "refused requests never reach the application");
  const stats = server.sidecar.listeners.stats;
  const denied = stats
    .entries()
    .filter(([name]) => name.endsWith(".jwt_authn.denied"))
    .reduce((n, [, s]) => n + s.value, 0);
  assert.equal(denied, 2);
});

test("a request without a token passes: RequestAuthentication alone requires none", async () => {
  const r = await send(CLIENT, HOST, "/public");
  assert.equal(r.status, 200);
});
