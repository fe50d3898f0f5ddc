// The jwt_authn filter in the sidecar, through a real HTTP listener to a real upstream: keys made here with
// jose (RS256 and ES256), key sets inline, from a file and from a URL served on 127.0.0.1. Valid tokens are
// forwarded with the principal in filter state (read by a probe filter placed after jwt_authn, as RBAC will
// be); expired, wrong-issuer, wrong-audience and badly signed tokens get Envoy's replies; tokenless requests
// pass; tokens come from Authorization: Bearer, a custom header with a prefix, a query parameter; forward
// false strips them; payload and claim headers go upstream and cannot be spoofed.
import assert from "node:assert/strict";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { exportJWK, generateKeyPair, type JWK, SignJWT } from "jose";
import { At } from "../src/proxy/config/fields.js";
import { compileJwtAuthentication } from "../src/proxy/config/jwt.js";
import { registerBuiltinFilters } from "../src/proxy/filters/index.js";
import {
  ISTIO_AUTHN_STATE,
  type IstioAuthnState,
  JWT_PAYLOADS_STATE,
  jwtAuthnFactory,
} from "../src/proxy/filters/jwt-authn/jwt-authn.js";
import { UNKNOWN_NODE } from "../src/proxy/node.js";
import { Continue, FilterRegistry } from "../src/proxy/router/chain.js";
import type { DownstreamRequest } from "../src/proxy/router/downstream.js";
import type { LocalReply } from "../src/proxy/router/local-reply.js";
import { Stats } from "../src/proxy/router/stats.js";
import { wire } from "./proxy-config-fixtures.js";
import {
  cluster,
  type Echo,
  echoServer,
  endpoint,
  freePort,
  httpListener,
  prefixMatch,
  request,
  route,
  routeAction,
  routeTable,
  runtimeConfig,
  Sidecar,
  type Upstream,
  virtualHost,
} from "./proxy-router-fixtures.js";

const ADDR = "127.0.88.1";
const HOST = "orders.local";
const RS_ISS = "https://rs.example";
const ES_ISS = "https://es.example";
const REMOTE_ISS = "https://remote.example";
const JWT_TYPE = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";

type Key = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

async function keyPair(alg: "RS256" | "ES256", kid: string): Promise<{ priv: Key; jwk: JWK }> {
  const { publicKey, privateKey } = await generateKeyPair(alg);
  return { priv: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

/** A signed token; `exp`/`nbf` in seconds from now (default: valid for an hour). */
function sign(
  key: Key,
  alg: string,
  kid: string,
  claims: Record<string, unknown>,
  times: { exp?: number; nbf?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const t = new SignJWT(claims)
    .setProtectedHeader({ alg, kid, typ: "JWT" })
    .setIssuedAt(now)
    .setExpirationTime(now + (times.exp ?? 3600));
  if (times.nbf !== undefined) t.setNotBefore(now + times.nbf);
  return t.sign(key);
}

/** What the probe filter saw of the filter state, per request, by x-probe header. */
const probed = new Map<string, { authn: unknown; payloads: unknown }>();

/** The istio_authn state the probe saw for a request; fails when there is none. */
function authnOf(id: string): IstioAuthnState {
  const a = probed.get(id)?.authn;
  assert.ok(a, `no istio_authn state for ${id}`);
  return a as IstioAuthnState;
}

describe("jwt_authn over a real listener", () => {
  const sidecar = new Sidecar({
    registry: registerBuiltinFilters(new FilterRegistry()).register("test.probe", () => ({
      decodeHeaders(req) {
        const id = req.headers["x-probe"];
        if (typeof id === "string")
          probed.set(id, {
            authn: req.filterState(ISTIO_AUTHN_STATE),
            payloads: req.filterState(JWT_PAYLOADS_STATE),
          });
        return Continue;
      },
    })),
  });
  let app: Upstream;
  let jwksServer: Server;
  let jwksFetches = 0;
  let port: number;
  let rs: { priv: Key; jwk: JWK };
  let es: { priv: Key; jwk: JWK };
  let remote: { priv: Key; jwk: JWK };
  let stranger: { priv: Key; jwk: JWK };

  const get = (path: string, headers: Record<string, string> = {}) =>
    request(ADDR, port, { path, headers: { host: HOST, ...headers } });
  const echo = (r: { body: string }): Echo => JSON.parse(r.body) as Echo;
  const rsToken = (claims: Record<string, unknown> = {}, times = {}) =>
    sign(
      rs.priv,
      "RS256",
      "rs-1",
      { iss: RS_ISS, sub: "alice", aud: "orders", azp: "web", ...claims },
      times,
    );

  before(async () => {
    rs = await keyPair("RS256", "rs-1");
    es = await keyPair("ES256", "es-1");
    remote = await keyPair("ES256", "remote-1");
    // Same kid as rs: a token it signs names a key the JWKS has, but the signature does not verify.
    stranger = await keyPair("RS256", "rs-1");
    app = await echoServer("app");
    jwksServer = createServer((req, res) => {
      jwksFetches++;
      if (req.url !== "/jwks.json") return void res.writeHead(404).end();
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ keys: [remote.jwk] }));
    });
    jwksServer.listen(0, "127.0.0.1");
    await once(jwksServer, "listening");
    const jwksPort = (jwksServer.address() as { port: number }).port;
    const esFile = join(tmpdir(), `skein-jwt-es-${process.pid}.json`);
    writeFileSync(esFile, JSON.stringify({ keys: [es.jwk] }));

    // The filter config as the control plane sends it, through the wire and the sidecar's compiler.
    const message = wire(JWT_TYPE, {
      providers: {
        "origins-0": {
          issuer: RS_ISS,
          audiences: ["orders"],
          localJwks: { inlineString: JSON.stringify({ keys: [rs.jwk] }) },
          forwardPayloadHeader: "x-jwt-payload",
          claimToHeaders: [{ headerName: "x-user", claimName: "sub" }],
          payloadInMetadata: RS_ISS,
        },
        "origins-1": {
          issuer: ES_ISS,
          localJwks: { filename: esFile },
          fromHeaders: [{ name: "x-token", valuePrefix: "Token " }],
          fromParams: ["jwt"],
          payloadInMetadata: ES_ISS,
        },
        "origins-2": {
          issuer: REMOTE_ISS,
          remoteJwks: {
            httpUri: {
              uri: `http://127.0.0.1:${jwksPort}/jwks.json`,
              cluster: `outbound|${jwksPort}||127.0.0.1`,
              timeout: { seconds: 5 },
            },
            cacheDuration: { seconds: 300 },
          },
          fromHeaders: [{ name: "x-remote-token" }],
          forward: true,
          payloadInMetadata: REMOTE_ISS,
        },
      },
      rules: [
        {
          match: { prefix: "/" },
          requires: {
            requiresAny: {
              requirements: [
                { providerName: "origins-0" },
                { providerName: "origins-1" },
                { providerName: "origins-2" },
                { allowMissing: {} },
              ],
            },
          },
        },
      ],
      bypassCorsPreflight: true,
    });
    const jwt = compileJwtAuthentication(message, new At("test"));
    port = await freePort(ADDR);
    const routes = routeTable("inbound", [
      virtualHost("inbound", ["*"], [route("default", prefixMatch("/"), routeAction("app"))]),
    ]);
    await sidecar.apply(
      runtimeConfig({
        listeners: [
          httpListener("inbound_test", ADDR, port, routes, {}, [
            { name: "envoy.filters.http.jwt_authn", config: jwt },
            { name: "test.probe", config: {} },
            { name: "envoy.filters.http.router", config: { kind: "router", suppressEnvoyHeaders: false } },
          ]),
        ],
        clusters: [cluster("app")],
        endpoints: { app: [endpoint(app.port)] },
      }),
    );
  });

  after(async () => {
    await sidecar.close();
    await app.close();
    await new Promise<void>((r) => jwksServer.close(() => r()));
  });

  it("a valid RS256 bearer token: forwarded without the token, payload and claim headers set, principal in filter state", async () => {
    const token = await rsToken({ role: "admin" });
    const r = await get("/orders/1", { authorization: `Bearer ${token}`, "x-probe": "valid" });
    assert.equal(r.status, 200);
    const seen = echo(r);
    assert.equal(seen.headers.authorization, undefined, "forwardOriginalToken false removes the token");
    assert.equal(seen.headers["x-user"], "alice");
    const payload = JSON.parse(Buffer.from(String(seen.headers["x-jwt-payload"]), "base64url").toString());
    assert.equal(payload.role, "admin");
    const state = probed.get("valid");
    const authn = authnOf("valid");
    assert.equal(authn["request.auth.principal"], `${RS_ISS}/alice`);
    assert.deepEqual(authn["request.auth.audiences"], ["orders"]);
    assert.equal(authn["request.auth.presenter"], "web");
    assert.equal(authn["request.auth.claims"].role, "admin");
    const payloads = state?.payloads as Record<string, { sub: string }>;
    assert.deepEqual(Object.keys(payloads), [RS_ISS]);
    assert.equal(payloads[RS_ISS]?.sub, "alice");
  });

  it("an expired token: 401 `Jwt is expired` with a Bearer challenge; the upstream never sees it", async () => {
    const before = app.seen.length;
    const token = await rsToken({}, { exp: -3600 });
    const r = await get("/orders?x=1", { authorization: `Bearer ${token}` });
    assert.equal(r.status, 401);
    assert.equal(r.body, "Jwt is expired");
    assert.equal(
      r.headers["www-authenticate"],
      `Bearer realm="http://${HOST}/orders?x=1", error="invalid_token"`,
    );
    assert.equal(app.seen.length, before);
  });

  it("within the 60 s clock skew an expired token still passes; a not-yet-valid one is refused", async () => {
    assert.equal(
      (await get("/", { authorization: `Bearer ${await rsToken({}, { exp: -30 })}` })).status,
      200,
    );
    const early = await get("/", { authorization: `Bearer ${await rsToken({}, { nbf: 600 })}` });
    assert.equal(early.status, 401);
    assert.equal(early.body, "Jwt not yet valid");
  });

  it("a token from an issuer no provider names: 401 `Jwt issuer is not configured`", async () => {
    const token = await sign(rs.priv, "RS256", "rs-1", {
      iss: "https://evil.example",
      sub: "x",
      aud: "orders",
    });
    const r = await get("/", { authorization: `Bearer ${token}` });
    assert.equal(r.status, 401);
    assert.equal(r.body, "Jwt issuer is not configured");
  });

  it("a wrong audience: 403 `Audiences in Jwt are not allowed` (Envoy answers 403 here, not 401)", async () => {
    const r = await get("/", { authorization: `Bearer ${await rsToken({ aud: ["payments"] })}` });
    assert.equal(r.status, 403);
    assert.equal(r.body, "Audiences in Jwt are not allowed");
  });

  it("a bad signature (another key, same kid): 401 `Jwt verification fails`", async () => {
    const token = await sign(stranger.priv, "RS256", "rs-1", { iss: RS_ISS, sub: "mallory", aud: "orders" });
    const r = await get("/", { authorization: `Bearer ${token}` });
    assert.equal(r.status, 401);
    assert.equal(r.body, "Jwt verification fails");
    // A tampered payload under a genuine signature fails the same way.
    const [h, , s] = (await rsToken()).split(".");
    const forged = Buffer.from(JSON.stringify({ iss: RS_ISS, sub: "root", aud: "orders" })).toString(
      "base64url",
    );
    const t = await get("/", { authorization: `Bearer ${h}.${forged}.${s}` });
    assert.equal(t.status, 401);
    assert.equal(t.body, "Jwt verification fails");
  });

  it("garbage in the Authorization header: 401 with the parse error", async () => {
    const r = await get("/", { authorization: "Bearer not-a-jwt" });
    assert.equal(r.status, 401);
    assert.equal(r.body, "Jwt is not in the form of Header.Payload.Signature");
  });

  it("no token: forwarded, with no principal (RequestAuthentication alone requires none)", async () => {
    const r = await get("/public", { "x-probe": "anonymous" });
    assert.equal(r.status, 200);
    assert.equal(probed.get("anonymous")?.authn, undefined);
    assert.equal(probed.get("anonymous")?.payloads, undefined);
  });

  it("a client cannot forge the payload or claim headers: they are removed before verification", async () => {
    const r = await get("/", { "x-jwt-payload": "eyJzdWIiOiJyb290In0", "x-user": "root" });
    assert.equal(r.status, 200);
    assert.equal(echo(r).headers["x-jwt-payload"], undefined);
    assert.equal(echo(r).headers["x-user"], undefined);
  });

  it("ES256 from a custom header with a prefix (JWKS from a file): accepted and stripped", async () => {
    const token = await sign(es.priv, "ES256", "es-1", { iss: ES_ISS, sub: "bob" });
    const r = await get("/", { "x-token": `Token ${token}`, "x-probe": "es-header" });
    assert.equal(r.status, 200);
    assert.equal(echo(r).headers["x-token"], undefined);
    assert.equal(authnOf("es-header")["request.auth.principal"], `${ES_ISS}/bob`);
    // Without the prefix the header holds no token for that location: the request is anonymous.
    const plain = await get("/", { "x-token": token, "x-probe": "es-noprefix" });
    assert.equal(plain.status, 200);
    assert.equal(probed.get("es-noprefix")?.authn, undefined);
  });

  it("ES256 from a query parameter: accepted, and the parameter is removed from the forwarded path", async () => {
    const token = await sign(es.priv, "ES256", "es-1", { iss: ES_ISS, sub: "carol" });
    const r = await get(`/search?q=shoes&jwt=${token}&page=2`, { "x-probe": "es-param" });
    assert.equal(r.status, 200);
    assert.equal(echo(r).url, "/search?q=shoes&page=2");
    assert.equal(authnOf("es-param")["request.auth.principal"], `${ES_ISS}/carol`);
    const bad = await get(`/search?jwt=${token.slice(0, -4)}AAAA`);
    assert.equal(bad.status, 401);
  });

  it("a JWKS from a URL: fetched once and cached; forward true keeps the token", async () => {
    const fetchesBefore = jwksFetches;
    for (const sub of ["dave", "erin"]) {
      const token = await sign(remote.priv, "ES256", "remote-1", { iss: REMOTE_ISS, sub });
      const r = await get("/", { "x-remote-token": token, "x-probe": `remote-${sub}` });
      assert.equal(r.status, 200);
      assert.equal(echo(r).headers["x-remote-token"], token);
      const authn = authnOf(`remote-${sub}`);
      assert.equal(authn["request.auth.principal"], `${REMOTE_ISS}/${sub}`);
    }
    assert.equal(jwksFetches - fetchesBefore, 1);
  });

  it("a CORS preflight passes even with a bad token (bypass_cors_preflight)", async () => {
    const r = await request(ADDR, port, {
      method: "OPTIONS",
      path: "/",
      headers: {
        host: HOST,
        origin: "https://shop.example",
        "access-control-request-method": "POST",
        authorization: "Bearer junk",
      },
    });
    assert.equal(r.status, 200);
  });

  it("stats: http.<prefix>.jwt_authn.allowed and denied count every decision", async () => {
    const stats = sidecar.listeners.stats;
    const allowed = stats.counter("http.inbound_test.jwt_authn.allowed").value;
    const denied = stats.counter("http.inbound_test.jwt_authn.denied").value;
    await get("/", { authorization: `Bearer ${await rsToken()}` });
    await get("/", { authorization: "Bearer x.y.z" });
    await get("/");
    assert.equal(stats.counter("http.inbound_test.jwt_authn.allowed").value - allowed, 2);
    assert.equal(stats.counter("http.inbound_test.jwt_authn.denied").value - denied, 1);
  });
});

// Requirement semantics, on the filter itself (a stand-in request: what the filter reads and writes).
describe("jwt_authn requirements", () => {
  let key: { priv: Key; jwk: JWK };
  const ISS = "https://req.example";

  /** A filter for one provider (Authorization: Bearer) under `requires`. */
  function filterFor(requires: object) {
    const config = compileJwtAuthentication(
      wire(JWT_TYPE, {
        providers: {
          p: {
            issuer: ISS,
            localJwks: { inlineString: JSON.stringify({ keys: [key.jwk] }) },
            payloadInMetadata: ISS,
          },
        },
        rules: [{ match: { prefix: "/" }, requires }],
      }),
      new At("test"),
    );
    const stats = new Stats();
    const ctx = { clusters: {} as never, stats, random: Math.random, statPrefix: "t", node: UNKNOWN_NODE };
    return jwtAuthnFactory()(config, "envoy.filters.http.jwt_authn", ctx);
  }

  function fakeRequest(headers: Record<string, string>) {
    const state = new Map<string, unknown>();
    return {
      method: "GET",
      scheme: "http",
      authority: "svc",
      path: "/p",
      headers,
      setFilterState: (k: string, v: unknown) => state.set(k, v),
      filterState: (k: string) => state.get(k),
      state,
    };
  }

  async function run(requires: object, headers: Record<string, string>) {
    const req = fakeRequest(headers);
    const status = await filterFor(requires).decodeHeaders(req as unknown as DownstreamRequest, undefined);
    return { status, req };
  }

  before(async () => {
    key = await keyPair("ES256", "req-1");
  });

  it("provider alone: a missing token is refused, 401 `Jwt is missing` with a challenge naming no error", async () => {
    const { status } = await run({ providerName: "p" }, {});
    assert.equal(status.kind, "local-reply");
    const reply = status as LocalReply;
    assert.equal(reply.status, 401);
    assert.equal(reply.body, "Jwt is missing");
    assert.equal(reply.headers?.["www-authenticate"], 'Bearer realm="http://svc/p"');
    assert.equal(reply.details, "jwt_authn_access_denied{Jwt_is_missing}");
  });

  it("allow_missing_or_failed: a bad token passes, without a principal; a good one passes with it", async () => {
    const bad = await run({ allowMissingOrFailed: {} }, { authorization: "Bearer a.b.c" });
    assert.equal(bad.status.kind, "continue");
    assert.equal(bad.req.state.size, 0);
    // Alone, a bypass has no sibling providers: it extracts no token at all (Envoy's behaviour).
    const token = await sign(key.priv, "ES256", "req-1", { iss: ISS, sub: "zoe" });
    const alone = await run({ allowMissingOrFailed: {} }, { authorization: `Bearer ${token}` });
    assert.equal(alone.status.kind, "continue");
    assert.equal(alone.req.state.size, 0);
    const any = await run(
      { requiresAny: { requirements: [{ providerName: "p" }, { allowMissingOrFailed: {} }] } },
      { authorization: `Bearer ${token}` },
    );
    assert.equal(any.status.kind, "continue");
    assert.equal(
      (any.req.state.get(ISTIO_AUTHN_STATE) as IstioAuthnState)["request.auth.principal"],
      `${ISS}/zoe`,
    );
  });

  it("allow_missing alongside a provider: missing passes, a bad token fails with its own status", async () => {
    const requires = { requiresAny: { requirements: [{ providerName: "p" }, { allowMissing: {} }] } };
    assert.equal((await run(requires, {})).status.kind, "continue");
    const expired = await sign(key.priv, "ES256", "req-1", { iss: ISS, sub: "zoe" }, { exp: -600 });
    const r = await run(requires, { authorization: `Bearer ${expired}` });
    assert.equal((r.status as LocalReply).status, 401);
    assert.equal((r.status as LocalReply).body, "Jwt is expired");
  });
});
