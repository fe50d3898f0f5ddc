// The sidecar's config layer for mutual TLS: the contract's inbound listeners (STRICT, PERMISSIVE, DISABLE),
// outbound clusters with transport socket matches and endpoint tlsMode metadata, DestinationRule SIMPLE/MUTUAL
// contexts with files and SAN matchers compile to the runtime form; TLS settings the sidecar does not honour
// are NACKed with SKEIN_E_PROXY_CONFIG_TLS and the field's path.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { SkeinError } from "../src/lib/diagnostics.js";
import { compileCluster } from "../src/proxy/config/cluster.js";
import { ProxyConfigCodes } from "../src/proxy/config/codes.js";
import { compileClusterLoadAssignment } from "../src/proxy/config/endpoint.js";
import { compileListener } from "../src/proxy/config/listener.js";
import { endpointTls } from "../src/proxy/upstream/tls.js";
import { CLUSTER, ENDPOINT, LISTENER } from "../src/xds/protos.js";
import {
  assignment,
  downstreamTls,
  hcmTo,
  inboundListener,
  meshCluster,
  TLS_INSPECTOR,
  tcpProxyTo,
} from "./mtls-fixtures.js";
import { typed, wire } from "./proxy-config-fixtures.js";

const HCM = { name: "envoy.filters.network.http_connection_manager", typedConfig: hcmTo({ "/": "app" }) };
const SAN = "spiffe://cluster.local/ns/production/sa/order-service";

function nack(f: () => unknown): SkeinError {
  try {
    f();
  } catch (e) {
    return e as SkeinError;
  }
  throw new Error("expected a NACK");
}

const listener = (l: Record<string, unknown>) => compileListener(wire(LISTENER, l));
const cluster = (c: Record<string, unknown>) => compileCluster(wire(CLUSTER, c));

test("STRICT, PERMISSIVE and DISABLE inbound listeners compile to their transports", () => {
  const strict = listener(inboundListener("s", "127.0.0.1", 15006, "STRICT", HCM));
  assert.equal(strict.transport?.inspect, true);
  assert.equal(strict.transport?.rawBuffer.kind, "none");
  const t = strict.transport?.tls;
  assert.equal(t?.kind, "tls");
  assert.deepEqual(t?.kind === "tls" && t.context, {
    certificate: { kind: "sds", name: "default" },
    trust: { kind: "sds", name: "ROOTCA" },
    sans: [],
    alpn: ["h2", "http/1.1"],
    requireClientCertificate: true,
  });
  const permissive = listener(inboundListener("p", "127.0.0.1", 15006, "PERMISSIVE", HCM));
  assert.equal(permissive.transport?.tls.kind, "tls");
  assert.equal(permissive.transport?.rawBuffer.kind, "plaintext");
  assert.equal(permissive.config.kind, "http");
  const disable = listener(inboundListener("d", "127.0.0.1", 15006, "DISABLE", HCM));
  assert.equal(disable.transport, undefined);
  const tcp = listener(
    inboundListener(
      "t",
      "127.0.0.1",
      15006,
      "STRICT",
      { name: "envoy.filters.network.tcp_proxy", typedConfig: tcpProxyTo("app") },
      [],
    ),
  );
  assert.equal(tcp.config.kind, "tcp");
  assert.equal(tcp.transport?.tls.kind === "tls" && tcp.transport.tls.context.alpn.length, 0);
});

test("transport socket matches pick TLS per endpoint by its tlsMode metadata", () => {
  const c = cluster(meshCluster("outbound|8080||order-service", [SAN], "http2"));
  assert.equal(c.http2, true);
  assert.deepEqual(
    c.transportSocketMatches?.map((m) => [m.name, m.match, m.tls?.sni, m.tls?.alpn]),
    [
      [
        "tlsMode-istio",
        { tlsMode: "istio" },
        "outbound_.80_._.outbound|8080||order-service.svc.cluster.local",
        ["h2"],
      ],
      ["tlsMode-disabled", {}, undefined, undefined],
    ],
  );
  const set = compileClusterLoadAssignment(
    wire(
      ENDPOINT,
      assignment("x", [
        { address: "10.0.0.1", port: 80, istio: true },
        { address: "10.0.0.2", port: 80, istio: false },
      ]),
    ),
  );
  const [meshed, plain] = set.endpoints;
  assert.deepEqual(meshed?.transportSocketMatch, { tlsMode: "istio" });
  assert.equal(plain?.transportSocketMatch, undefined);
  const tls = endpointTls(c, meshed?.transportSocketMatch);
  assert.deepEqual(
    tls?.sans.map((s) => [s.type, s.match]),
    [["any", { kind: "exact", value: SAN, ignoreCase: false }]],
  );
  assert.equal(
    endpointTls(c, plain?.transportSocketMatch),
    undefined,
    "raw_buffer for endpoints without a sidecar",
  );
  assert.equal(endpointTls(c, { tlsMode: "disabled" }), undefined);
});

test("DestinationRule SIMPLE and MUTUAL contexts read files and inline data, SAN matchers and versions", () => {
  const dir = mkdtempSync(join(tmpdir(), "skein-tls-config-"));
  writeFileSync(join(dir, "ca.pem"), "CA PEM");
  writeFileSync(join(dir, "cert.pem"), "CERT PEM");
  const c = cluster({
    name: "external",
    type: "STATIC",
    transportSocket: {
      name: "envoy.transport_sockets.tls",
      typedConfig: typed("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", {
        sni: "api.example.com",
        commonTlsContext: {
          tlsCertificates: [
            {
              certificateChain: { filename: join(dir, "cert.pem") },
              privateKey: { inlineString: "KEY PEM" },
            },
          ],
          validationContext: {
            trustedCa: { filename: join(dir, "ca.pem") },
            matchTypedSubjectAltNames: [
              { sanType: "DNS", matcher: { suffix: ".example.com" } },
              { sanType: "URI", matcher: { safeRegex: { regex: "spiffe://example/.*" } } },
            ],
          },
          tlsParams: { tlsMinimumProtocolVersion: "TLSv1_2", tlsMaximumProtocolVersion: "TLSv1_3" },
          alpnProtocols: ["http/1.1"],
        },
      }),
    },
  });
  const tls = c.tls;
  assert.ok(tls);
  assert.deepEqual(tls.certificate, { kind: "inline", chain: "CERT PEM", key: "KEY PEM" });
  assert.deepEqual(tls.trust, { kind: "inline", pem: "CA PEM" });
  assert.equal(tls.sni, "api.example.com");
  assert.deepEqual([tls.minVersion, tls.maxVersion], ["TLSv1.2", "TLSv1.3"]);
  assert.deepEqual(
    tls.sans.map((s) => [s.type, s.match.kind]),
    [
      ["DNS", "suffix"],
      ["URI", "regex"],
    ],
  );
  const missing = nack(() =>
    cluster({
      name: "c",
      transportSocket: {
        name: "envoy.transport_sockets.tls",
        typedConfig: typed("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", {
          commonTlsContext: { validationContext: { trustedCa: { filename: join(dir, "nope.pem") } } },
        }),
      },
    }),
  );
  assert.equal(missing.code, ProxyConfigCodes.INVALID);
  assert.match(
    missing.message,
    /^Cluster "c": transport_socket\.typed_config\.common_tls_context\.validation_context\.trusted_ca\.filename: cannot read .*nope\.pem: ENOENT/,
  );
});

const tlsSocket = (type: "Upstream" | "Downstream", fields: object) => ({
  name: "envoy.transport_sockets.tls",
  typedConfig: typed(`envoy.extensions.transport_sockets.tls.v3.${type}TlsContext`, fields),
});

test("TLS settings the sidecar does not honour are NACKed with SKEIN_E_PROXY_CONFIG_TLS naming the field", () => {
  const cases: [Record<string, unknown>, string][] = [
    [
      {
        name: "c",
        transportSocket: tlsSocket("Upstream", { commonTlsContext: { tlsParams: { cipherSuites: ["X"] } } }),
      },
      'Cluster "c": transport_socket.typed_config.common_tls_context.tls_params.cipher_suites: not supported',
    ],
    [
      { name: "c", transportSocket: tlsSocket("Upstream", { allowRenegotiation: true }) },
      'Cluster "c": transport_socket.typed_config.allow_renegotiation: not supported',
    ],
    [
      {
        name: "c",
        transportSocket: tlsSocket("Upstream", {
          commonTlsContext: {
            tlsCertificateSdsSecretConfigs: [{ name: "kubernetes://my-cert", sdsConfig: { ads: {} } }],
          },
        }),
      },
      'Cluster "c": transport_socket.typed_config.common_tls_context.tls_certificate_sds_secret_configs[0].name: unknown secret "kubernetes://my-cert"',
    ],
    [
      {
        name: "c",
        transportSocket: tlsSocket("Upstream", {
          commonTlsContext: {
            validationContext: {
              trustedCa: { inlineString: "x" },
              matchTypedSubjectAltNames: [{ sanType: "EMAIL", matcher: { exact: "a@b" } }],
            },
          },
        }),
      },
      'Cluster "c": transport_socket.typed_config.common_tls_context.validation_context.match_typed_subject_alt_names[0].san_type: SAN type EMAIL is not supported',
    ],
    [
      {
        name: "c",
        transportSocketMatches: [
          {
            name: "m",
            match: {},
            transportSocket: {
              name: "alts",
              typedConfig: typed("envoy.extensions.transport_sockets.alts.v3.Alts"),
            },
          },
        ],
      },
      'Cluster "c": transport_socket_matches[0].transport_socket: unsupported transport socket alts',
    ],
  ];
  for (const [c, message] of cases) {
    const e = nack(() => cluster(c));
    assert.equal(e.code, ProxyConfigCodes.TLS, e.message);
    assert.ok(e.message.startsWith(message), `${e.message}\n  should start with\n${message}`);
  }
  const sni = nack(() =>
    listener({
      name: "l",
      address: { socketAddress: { address: "127.0.0.1", portValue: 1 } },
      filterChains: [
        { transportSocket: tlsSocket("Downstream", { requireSni: { value: true } }), filters: [HCM] },
      ],
    }),
  );
  assert.equal(sni.code, ProxyConfigCodes.TLS);
  assert.match(
    sni.message,
    /^Listener "l": filter_chains\[0\]\.transport_socket\.typed_config\.require_sni: not supported/,
  );
  const wrongSide = nack(() =>
    cluster({
      name: "c",
      transportSocket: { name: "envoy.transport_sockets.tls", typedConfig: downstreamTls() },
    }),
  );
  assert.equal(wrongSide.code, ProxyConfigCodes.INVALID);
  assert.match(wrongSide.message, /takes UpstreamTlsContext, not .*DownstreamTlsContext/);
  const noCert = nack(() =>
    listener({
      name: "l",
      address: { socketAddress: { address: "127.0.0.1", portValue: 1 } },
      filterChains: [{ transportSocket: tlsSocket("Downstream", { commonTlsContext: {} }), filters: [HCM] }],
    }),
  );
  assert.equal(noCert.code, ProxyConfigCodes.INVALID);
  assert.match(noCert.message, /a server needs a certificate/);
});

test("chains the sidecar cannot tell apart, or that differ in filters, are NACKed", () => {
  const base = { name: "l", address: { socketAddress: { address: "127.0.0.1", portValue: 1 } } };
  const other = {
    name: "envoy.filters.network.http_connection_manager",
    typedConfig: hcmTo({ "/": "other" }),
  };
  const differ = nack(() =>
    listener({
      ...base,
      listenerFilters: [TLS_INSPECTOR],
      filterChains: [
        {
          filterChainMatch: { transportProtocol: "tls" },
          transportSocket: { name: "envoy.transport_sockets.tls", typedConfig: downstreamTls() },
          filters: [HCM],
        },
        { filterChainMatch: { transportProtocol: "raw_buffer" }, filters: [other] },
      ],
    }),
  );
  assert.equal(differ.code, ProxyConfigCodes.UNSUPPORTED);
  assert.match(
    differ.message,
    /^Listener "l": filter_chains\[1\]\.filters: the filter chains of one listener must carry the same filters/,
  );
  const twice = nack(() =>
    listener({
      ...base,
      filterChains: [
        { filterChainMatch: { transportProtocol: "tls" }, filters: [HCM] },
        { filterChainMatch: { transportProtocol: "tls" }, filters: [HCM] },
      ],
    }),
  );
  assert.equal(twice.code, ProxyConfigCodes.UNSUPPORTED);
  assert.match(twice.message, /two match transport_protocol tls/);
  const alpn = nack(() =>
    listener({
      ...base,
      filterChains: [{ filterChainMatch: { applicationProtocols: ["istio"] }, filters: [HCM] }],
    }),
  );
  assert.match(alpn.message, /application_protocols: cannot evaluate/);
});
