// Active health checks over the host's transport, with real sockets and certificates from the real CA: STRICT
// (mTLS-only) upstreams answering HTTP/1.1, HTTP/2, gRPC and TCP checks are marked healthy only through TLS
// that presents the sidecar's certificate with the cluster's SNI and ALPN; a server whose identity is not the
// expected SAN leaves the host unhealthy (a plaintext TCP connect would have passed); plaintext endpoints are
// still checked in plaintext; transport_socket_match_criteria picks the TLS match for a plaintext endpoint.
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import tls, { type TLSSocket } from "node:tls";
import type { WorkloadSecret } from "../src/proxy/identity/secrets.js";
import { assignment, compiled, meshCluster, TestCa, TlsSidecar } from "./mtls-fixtures.js";
import { until } from "./proxy-router-fixtures.js";
import { close, listen } from "./proxy-upstream-helpers.js";

const SERVER_ID = "spiffe://cluster.local/ns/production/sa/server";
const CLIENT_ID = "spiffe://cluster.local/ns/production/sa/client";
const OTHER_ID = "spiffe://cluster.local/ns/production/sa/other";

/** What a STRICT server saw of one health check: the client's SANs, the SNI and the ALPN protocol. */
interface Seen {
  san: string;
  sni: string | false | null;
  alpn: string | false | null;
}

function seenOf(socket: TLSSocket): Seen {
  return {
    san: socket.getPeerCertificate().subjectaltname ?? "",
    sni: socket.servername,
    alpn: socket.alpnProtocol,
  };
}

let ca: TestCa;
let serverCert: WorkloadSecret;
const sidecar = new TlsSidecar();
const sockets = new Set<Socket>();
const closers: (() => Promise<void>)[] = [];
const h1Seen: Seen[] = [];
const h2Seen: Seen[] = [];
const grpcSeen: Seen[] = [];
const tcpSeen: Seen[] = [];
const plainSeen: string[] = [];
const ports = { h1: 0, h2: 0, tcp: 0, plain: 0 };

/** Server options of a STRICT inbound: our chain, and a client certificate from the mesh CA required. */
function strict(): tls.TlsOptions {
  return {
    key: serverCert.key,
    cert: serverCert.chain,
    ca: ca.root,
    requestCert: true,
    rejectUnauthorized: true,
  };
}

function track(socket: Socket): void {
  sockets.add(socket);
  socket.once("close", () => sockets.delete(socket));
}

/** A gRPC frame carrying HealthCheckResponse { status: SERVING }. */
const SERVING_FRAME = Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]);

function hc(kind: "http" | "http2" | "grpc" | "tcp", extra: Record<string, unknown> = {}) {
  const checker =
    kind === "tcp"
      ? { tcpHealthCheck: {} }
      : kind === "grpc"
        ? { grpcHealthCheck: {} }
        : { httpHealthCheck: { path: "/health", ...(kind === "http2" && { codecClientType: "HTTP2" }) } };
  return {
    timeout: { seconds: 2 },
    interval: { nanos: 50_000_000 },
    healthyThreshold: { value: 1 },
    unhealthyThreshold: { value: 1 },
    ...checker,
    ...extra,
  };
}

before(async () => {
  ca = await TestCa.create();
  serverCert = await ca.issue("production", "server");
  sidecar.secrets.set(await ca.issue("production", "client"), ca.root);

  const h1 = https.createServer(strict(), (rq, rs) => {
    if (rq.url === "/health") h1Seen.push(seenOf(rq.socket as TLSSocket));
    rs.end();
  });
  h1.on("secureConnection", track);
  ports.h1 = await listen(h1);
  closers.push(() => close(h1));

  const h2 = http2.createSecureServer({ ...strict(), ALPNProtocols: ["h2"] });
  h2.on("secureConnection", track);
  h2.on("stream", (stream, headers) => {
    const seen = seenOf(stream.session?.socket as TLSSocket);
    if (headers[":path"] === "/health") {
      h2Seen.push(seen);
      stream.respond({ ":status": 200 });
      stream.end();
    } else if (headers[":path"] === "/grpc.health.v1.Health/Check") {
      grpcSeen.push(seen);
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.resume();
      stream.on("end", () => stream.end(SERVING_FRAME));
    } else {
      stream.respond({ ":status": 404 });
      stream.end();
    }
  });
  ports.h2 = await listen(h2);
  closers.push(() => close(h2));

  // TLS 1.2 here: a TCP check closes as soon as its handshake completes, and under TLS 1.3 the client
  // completes before the server has processed its certificate, so the server could miss the check.
  const tcp = tls.createServer({ ...strict(), maxVersion: "TLSv1.2" }, (s) => {
    track(s);
    tcpSeen.push(seenOf(s));
    s.on("error", () => undefined);
    s.end();
  });
  tcp.on("tlsClientError", () => undefined);
  ports.tcp = await listen(tcp);
  closers.push(() => close(tcp));

  const plain = http.createServer((rq, rs) => {
    if (rq.url === "/health") plainSeen.push(rq.headers["user-agent"] ?? "");
    rs.end();
  });
  ports.plain = await listen(plain);
  closers.push(() => close(plain));

  const at = (port: number, istio = true) => [{ address: "127.0.0.1", port, istio }];
  const checked = (name: string, sans: string[], protocol: "http1" | "http2" | "tcp", checks: unknown[]) =>
    meshCluster(name, sans, protocol, { healthChecks: checks });
  await sidecar.apply(
    compiled({
      listeners: [],
      clusters: [
        checked("h1", [SERVER_ID], "http1", [hc("http")]),
        checked("h2", [SERVER_ID], "http2", [hc("http2"), hc("grpc")]),
        checked("tcp", [SERVER_ID], "tcp", [hc("tcp")]),
        checked("h1-wrong-san", [OTHER_ID], "http1", [hc("http")]),
        checked("tcp-wrong-san", [OTHER_ID], "tcp", [hc("tcp")]),
        checked("plain", [SERVER_ID], "http1", [hc("http")]),
        checked("criteria", [SERVER_ID], "http1", [
          hc("http", { transportSocketMatchCriteria: { fields: { tlsMode: { stringValue: "istio" } } } }),
        ]),
      ],
      assignments: [
        assignment("h1", at(ports.h1)),
        assignment("h2", at(ports.h2)),
        assignment("tcp", at(ports.tcp)),
        assignment("h1-wrong-san", at(ports.h1)),
        assignment("tcp-wrong-san", at(ports.tcp)),
        // No tlsMode metadata: traffic and checks are plaintext (the raw_buffer match).
        assignment("plain", at(ports.plain, false)),
        // Plaintext for traffic, but the check's criteria select the TLS match.
        assignment("criteria", at(ports.h1, false)),
      ],
    }),
  );
});

after(async () => {
  await sidecar.close();
  for (const s of sockets) s.destroy();
  for (const c of closers) await c();
});

/** The one host of `cluster`, as its status reports it. */
function host(cluster: string) {
  const list = sidecar.clusters.get(cluster)?.hosts() ?? [];
  assert.equal(list.length, 1, `${cluster} has one host`);
  return list[0] as NonNullable<(typeof list)[0]>;
}

async function healthy(cluster: string): Promise<void> {
  // Every check of the host must have passed once (each starts failed, as the host does).
  await until(() => host(cluster).activeHealthCheckFailed === false, 8000);
  assert.equal(host(cluster).activeHealthCheckPending, false);
  assert.ok(sidecar.clusters.get(cluster)?.pick({}) !== undefined, `${cluster} takes traffic`);
}

function assertMtls(seen: Seen[], what: string, sni: string, alpn: string | false): void {
  assert.ok(seen.length > 0, `${what}: the STRICT server answered a check`);
  const first = seen[0] as Seen;
  assert.ok(first.san.includes(`URI:${CLIENT_ID}`), `${what}: the check presented the sidecar's identity`);
  assert.equal(first.sni, sni, `${what}: the cluster's SNI`);
  assert.equal(first.alpn, alpn, `${what}: the ALPN of the check's protocol`);
}

const sniOf = (cluster: string) => `outbound_.80_._.${cluster}.svc.cluster.local`;

describe("active health checks over mTLS", () => {
  it("HTTP/1.1: a STRICT upstream is checked over TLS with the sidecar's certificate, SNI and ALPN", async () => {
    await healthy("h1");
    assertMtls(h1Seen, "HTTP/1.1", sniOf("h1"), "http/1.1");
  });

  it("HTTP/2 and gRPC: checked over h2 on TLS", async () => {
    await healthy("h2");
    await until(() => h2Seen.length > 0 && grpcSeen.length > 0, 8000);
    assertMtls(h2Seen, "HTTP/2", sniOf("h2"), "h2");
    assertMtls(grpcSeen, "gRPC", sniOf("h2"), "h2");
  });

  it("TCP: healthy only once the TLS handshake with the sidecar's certificate completes", async () => {
    await healthy("tcp");
    // No ALPN configured for a TCP cluster: none offered.
    assertMtls(tcpSeen, "TCP", sniOf("tcp"), false);
  });

  it("a server that is not the expected SAN leaves the host unhealthy (HTTP/1.1 and TCP checks)", async () => {
    const before = { h1: h1Seen.length };
    for (const name of ["h1-wrong-san", "tcp-wrong-san"]) {
      await until(() => host(name).activeHealthCheckPending === false, 8000);
      assert.equal(host(name).activeHealthCheckFailed, true, `${name} fails its checks`);
      assert.equal(sidecar.clusters.stats()[name]?.healthyHosts, 0, `${name} has no healthy host`);
    }
    // Let a few more intervals pass: the verdict stays, and the mismatched checks never reached the app.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(host("h1-wrong-san").activeHealthCheckFailed, true);
    assert.equal(host("tcp-wrong-san").activeHealthCheckFailed, true);
    const fromWrong = h1Seen.slice(before.h1).filter((s) => s.sni === sniOf("h1-wrong-san"));
    assert.equal(fromWrong.length, 0, "no request was sent to a server with the wrong identity");
  });

  it("plaintext endpoints are still checked in plaintext", async () => {
    await healthy("plain");
    assert.ok(plainSeen.length > 0);
    assert.equal(plainSeen[0], "Envoy/HC");
  });

  it("transport_socket_match_criteria select the TLS match for a plaintext endpoint's checks", async () => {
    await healthy("criteria");
    assertMtls(
      h1Seen.filter((s) => s.sni === sniOf("criteria")),
      "criteria",
      sniOf("criteria"),
      "http/1.1",
    );
  });
});
