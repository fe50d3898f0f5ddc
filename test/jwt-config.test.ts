// The sidecar's jwt_authn config compiler: Envoy's defaults written out (token locations, clock skew, JWKS
// cache), and NACKs that name the field for everything the sidecar does not implement or Envoy would reject.
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ProxyConfigCodes } from "../src/proxy/config/codes.js";
import { At } from "../src/proxy/config/fields.js";
import { compileJwtAuthentication, type JwtAuthnConfig } from "../src/proxy/config/jwt.js";
import { compileListener } from "../src/proxy/config/listener.js";
import { LISTENER } from "../src/xds/protos.js";
import { hcm, listener, nack, routerFilter, typed, wire } from "./proxy-config-fixtures.js";

const TYPE = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
const JWKS = '{"keys":[]}';

function compile(message: object): JwtAuthnConfig {
  return compileJwtAuthentication(wire(TYPE, message), new At('Listener "l"'));
}

function withProvider(provider: object, requires: object = { providerName: "p" }): object {
  return {
    providers: { p: { issuer: "iss", localJwks: { inlineString: JWKS }, ...provider } },
    rules: [{ match: { prefix: "/" }, requires }],
  };
}

test("defaults: Authorization Bearer and access_token when no location is given, 60 s skew, 10 min JWKS cache", () => {
  const c = compile(
    withProvider({
      localJwks: undefined,
      remoteJwks: { httpUri: { uri: "https://keys.example/jwks", cluster: "c", timeout: { seconds: 1 } } },
    }),
  );
  const p = c.providers[0];
  assert.deepEqual(p?.fromHeaders, [{ name: "authorization", prefix: "Bearer " }]);
  assert.deepEqual(p?.fromParams, ["access_token"]);
  assert.equal(p?.clockSkewSeconds, 60);
  assert.equal(p?.forward, false);
  assert.deepEqual(p?.jwks, {
    kind: "remote",
    uri: "https://keys.example/jwks",
    cluster: "c",
    timeoutMs: 1000,
    cacheMs: 600_000,
  });
  assert.deepEqual(c.requirement, { kind: "provider", provider: "p" });
  // Any location given replaces the defaults; header names are lower-cased.
  const q = compile(withProvider({ fromHeaders: [{ name: "X-Token" }], clockSkewSeconds: 5 })).providers[0];
  assert.deepEqual(q?.fromHeaders, [{ name: "x-token", prefix: "" }]);
  assert.deepEqual(q?.fromParams, []);
  assert.equal(q?.clockSkewSeconds, 5);
});

test("a JWKS file is read at config load; an unreadable one is refused", () => {
  const file = join(tmpdir(), `skein-jwt-config-${process.pid}.json`);
  writeFileSync(file, '{"keys":[{"kty":"oct","k":"AA"}]}');
  const c = compile(withProvider({ localJwks: { filename: file } }));
  assert.deepEqual(c.providers[0]?.jwks, { kind: "local", jwks: '{"keys":[{"kty":"oct","k":"AA"}]}' });
  const e = nack(() => compile(withProvider({ localJwks: { filename: `${file}.missing` } })));
  assert.equal(e.code, ProxyConfigCodes.INVALID);
  assert.match(e.message, /providers\["p"\]\.local_jwks\.filename: cannot read .*ENOENT/);
});

test("no rules: nothing is verified; a rule without requires allows everything", () => {
  assert.equal(compile({ providers: {} }).requirement, undefined);
  assert.deepEqual(compile({ rules: [{ match: { prefix: "/" } }] }).requirement, { kind: "allow-all" });
});

test("NACKs name the field: unsupported requirements, matches and options; invalid references and sources", () => {
  const cases: [string, object, string, RegExp][] = [
    [
      "requires_all",
      withProvider({}, { requiresAll: { requirements: [{ providerName: "p" }, { allowMissing: {} }] } }),
      ProxyConfigCodes.UNSUPPORTED,
      /rules\[0\]\.requires\.requires_all: not supported/,
    ],
    [
      "provider_and_audiences",
      withProvider({}, { providerAndAudiences: { providerName: "p", audiences: ["a"] } }),
      ProxyConfigCodes.UNSUPPORTED,
      /requires\.provider_and_audiences: not supported/,
    ],
    [
      "unknown provider",
      withProvider({}, { providerName: "nope" }),
      ProxyConfigCodes.INVALID,
      /requires\.provider_name: required provider \['nope'\] is not configured/,
    ],
    [
      "requires_any with one entry",
      withProvider({}, { requiresAny: { requirements: [{ providerName: "p" }] } }),
      ProxyConfigCodes.INVALID,
      /requires_any\.requirements: must list at least 2 requirements/,
    ],
    [
      "path match",
      { providers: {}, rules: [{ match: { path: "/admin" } }] },
      ProxyConfigCodes.UNSUPPORTED,
      /rules\[0\]\.match\.path: not supported/,
    ],
    [
      "other prefix",
      { providers: {}, rules: [{ match: { prefix: "/api" } }] },
      ProxyConfigCodes.UNSUPPORTED,
      /rules\[0\]\.match: only the prefix "\/" match/,
    ],
    [
      "requirement_map",
      { requirementMap: { r: { providerName: "p" } } },
      ProxyConfigCodes.UNSUPPORTED,
      /requirement_map: not supported/,
    ],
    [
      "no key source",
      withProvider({ localJwks: undefined }),
      ProxyConfigCodes.INVALID,
      /providers\["p"\]: local_jwks or remote_jwks is required/,
    ],
    [
      "remote without timeout",
      withProvider({
        localJwks: undefined,
        remoteJwks: { httpUri: { uri: "https://k.example/j", cluster: "c" } },
      }),
      ProxyConfigCodes.INVALID,
      /remote_jwks\.http_uri\.timeout: is required/,
    ],
    [
      "remote retry policy",
      withProvider({
        localJwks: undefined,
        remoteJwks: {
          httpUri: { uri: "https://k.example/j", cluster: "c", timeout: { seconds: 1 } },
          retryPolicy: { numRetries: { value: 2 } },
        },
      }),
      ProxyConfigCodes.UNSUPPORTED,
      /remote_jwks\.retry_policy: not supported/,
    ],
    [
      "normalize_payload_in_metadata",
      withProvider({ normalizePayloadInMetadata: { spaceDelimitedClaims: ["scope"] } }),
      ProxyConfigCodes.UNSUPPORTED,
      /providers\["p"\]\.normalize_payload_in_metadata: not supported/,
    ],
    [
      "bad claim header",
      withProvider({ claimToHeaders: [{ headerName: "x user", claimName: "sub" }] }),
      ProxyConfigCodes.INVALID,
      /claim_to_headers\[0\]\.header_name: invalid header name/,
    ],
  ];
  for (const [what, message, code, pattern] of cases) {
    const e = nack(() => compile(message));
    assert.equal(e.code, code, what);
    assert.match(e.message, pattern, what);
  }
});

test("in a listener, the jwt_authn filter compiles in place and a bad one NACKs the listener with its path", () => {
  const ok = compileListener(
    wire(
      LISTENER,
      listener("l", {
        filterChains: [
          {
            filters: [
              {
                name: "envoy.filters.network.http_connection_manager",
                typedConfig: hcm({
                  httpFilters: [
                    { name: "envoy.filters.http.jwt_authn", typedConfig: typed(TYPE, withProvider({})) },
                    routerFilter(),
                  ],
                }),
              },
            ],
          },
        ],
      }),
    ),
  );
  const filters = (ok.config as { filters: { name: string; config: { kind: string } }[] }).filters;
  assert.deepEqual(
    filters.map((f) => [f.name, f.config.kind]),
    [
      ["envoy.filters.http.jwt_authn", "jwt-authn"],
      ["envoy.filters.http.router", "router"],
    ],
  );
  const bad = nack(() =>
    compileListener(
      wire(
        LISTENER,
        listener("l", {
          filterChains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typedConfig: hcm({
                    httpFilters: [
                      {
                        name: "envoy.filters.http.jwt_authn",
                        typedConfig: typed(TYPE, withProvider({}, { providerName: "missing" })),
                      },
                      routerFilter(),
                    ],
                  }),
                },
              ],
            },
          ],
        }),
      ),
    ),
  );
  assert.equal(bad.code, ProxyConfigCodes.INVALID);
  assert.match(
    bad.message,
    /^Listener "l": .*http_filters\[0\]\.typed_config\.rules\[0\]\.requires\.provider_name: /,
  );
});
