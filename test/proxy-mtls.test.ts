// Mutual TLS between two sidecars, end to end with real sockets and certificates from the real CA: the
// contract's config (inbound chains per PeerAuthentication mode, outbound transport socket matches) compiled by
// the sidecar's config layer; HTTP/1.1, HTTP/2 (h2c from the app, h2 over TLS between sidecars) and TCP; the
// server sees the client's SPIFFE ID; STRICT refuses plaintext, PERMISSIVE takes both; foreign-CA and expired
// client certificates are refused, and so is a server whose identity is not the expected one.
import assert from "node:assert/strict";
import { once } from "node:events";
import { connect as netConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import { connect as tlsConnect } from "node:tls";
import { IdentityProxyCodes, SecretManager } from "../src/proxy/identity/secrets.js";
import { ResponseFlag } from "../src/proxy/router/stream-info.js";
import { createClusterManager } from "../src/proxy/upstream/cluster-manager.js";
import {
  assignment,
  compiled,
  hcmTo,
  inboundListener,
  meshCluster,
  plainCluster,
  TestCa,
  TlsSidecar,
  tcpEcho,
  tcpProxyTo,
} from "./mtls-fixtures.js";
import { echoServer, h2connect, h2request, request, type Upstream, until } from "./proxy-router-fixtures.js";

const SERVER = "127.0.91.1";
const CLIENT = "127.0.91.2";
const STRICT = 15006;
const PERMISSIVE = 15007;
const TCP_STRICT = 15008;
const OUT_HTTP = 15001;
const OUT_TCP = 15003;
const SERVER_ID = "spiffe://cluster.local/ns/production/sa/server";
const CLIENT_ID = "spiffe://cluster.local/ns/production/sa/client";
const HCM = "envoy.filters.network.http_connection_manager";

let ca: TestCa;
let app: Upstream;
let echo: Awaited<ReturnType<typeof tcpEcho>>;
const server = new TlsSidecar();
const client = new TlsSidecar();

before(async () => {
  ca = await TestCa.create();
  app = await echoServer("app");
  echo = await tcpEcho();
  server.secrets.attachSource();
  server.secrets.set(await ca.issue("production", "server"), ca.root);
  client.secrets.set(await ca.issue("production", "client"), ca.root);
  await server.apply(
    compiled({
      listeners: [
        inboundListener("strict", SERVER, STRICT, "STRICT", {
          name: HCM,
          typedConfig: hcmTo({ "/": "app" }),
        }),
        inboundListener("permissive", SERVER, PERMISSIVE, "PERMISSIVE", {
          name: HCM,
          typedConfig: hcmTo({ "/": "app" }),
        }),
        inboundListener(
          "tcp",
          SERVER,
          TCP_STRICT,
          "STRICT",
          { name: "envoy.filters.network.tcp_proxy", typedConfig: tcpProxyTo("echo") },
          [],
        ),
      ],
      clusters: [plainCluster("app"), plainCluster("echo")],
      assignments: [
        assignment("app", [{ address: "127.0.0.1", port: app.port, istio: false }]),
        assignment("echo", [{ address: "127.0.0.1", port: echo.port, istio: false }]),
      ],
    }),
  );
  const at = (port: number, istio = true) => [{ address: SERVER, port, istio }];
  await client.apply(
    compiled({
      listeners: [
        {
          name: "outbound",
          address: { socketAddress: { address: CLIENT, portValue: OUT_HTTP } },
          filterChains: [
            {
              filters: [
                {
                  name: HCM,
                  typedConfig: hcmTo(
                    {
                      "/h1": "h1",
                      "/h2": "h2",
                      "/wrong-san": "wrong-san",
                      "/plain-to-strict": "plain-to-strict",
                      "/to-permissive": "to-permissive",
                    },
                    "outbound",
                  ),
                },
              ],
            },
          ],
        },
        {
          name: "outbound-tcp",
          address: { socketAddress: { address: CLIENT, portValue: OUT_TCP } },
          filterChains: [
            { filters: [{ name: "envoy.filters.network.tcp_proxy", typedConfig: tcpProxyTo("tcp") }] },
          ],
        },
      ],
      clusters: [
        meshCluster("h1", [SERVER_ID], "http1"),
        meshCluster("h2", [SERVER_ID], "http2"),
        meshCluster("tcp", [SERVER_ID], "tcp"),
        meshCluster("wrong-san", ["spiffe://cluster.local/ns/production/sa/other"], "http1"),
        meshCluster("plain-to-strict", [SERVER_ID], "http1"),
        meshCluster("to-permissive", [SERVER_ID], "http1"),
      ],
      assignments: [
        assignment("h1", at(STRICT)),
        assignment("h2", at(STRICT)),
        assignment("tcp", at(TCP_STRICT)),
        assignment("wrong-san", at(STRICT)),
        // No tlsMode metadata: the raw_buffer match applies, as for a workload without a sidecar.
        assignment("plain-to-strict", at(STRICT, false)),
        assignment("to-permissive", at(PERMISSIVE)),
      ],
    }),
  );
});

after(async () => {
  await client.close();
  await server.close();
  await app.close();
  echo.server.close();
});

/** The server sidecar's record of the request to `path` (the last one). */
function serverSaw(path: string) {
  const info = [...server.completed].reverse().find((i) => i.path === path);
  assert.ok(info, `the server sidecar saw ${path}`);
  return info;
}

describe("sidecar to sidecar over mTLS", () => {
  it("HTTP/1.1: the server verifies the client's identity, the client the server's", async () => {
    const r = await request(CLIENT, OUT_HTTP, { path: "/h1/a", headers: { host: "server" } });
    assert.equal(r.status, 200, r.body);
    const s = serverSaw("/h1/a");
    assert.equal(s.connection?.tls, true);
    assert.equal(s.connection?.peerPrincipal, CLIENT_ID);
    assert.equal(s.connection?.localPrincipal, SERVER_ID);
    assert.equal(s.connection?.alpn, "http/1.1");
    assert.equal(s.connection?.sni, "outbound_.80_._.h1.svc.cluster.local");
    assert.equal(s.protocol, "HTTP/1.1");
    await until(() => client.completed.some((i) => i.path === "/h1/a"));
    const c = client.completed.find((i) => i.path === "/h1/a");
    assert.equal(c?.upstreamPeerPrincipal, SERVER_ID);
  });

  it("HTTP/2: h2c from the application, h2 (ALPN h2) between the sidecars", async () => {
    const session = await h2connect(CLIENT, OUT_HTTP);
    try {
      const r = await h2request(session, { ":path": "/h2/b", ":authority": "server", ":method": "GET" });
      assert.equal(r.headers[":status"], 200, r.body);
    } finally {
      session.close();
    }
    const s = serverSaw("/h2/b");
    assert.equal(s.protocol, "HTTP/2");
    assert.equal(s.connection?.alpn, "h2");
    assert.equal(s.connection?.peerPrincipal, CLIENT_ID);
  });

  it("TCP: bytes pass through the TLS tunnel and the server knows the client", async () => {
    const sock = netConnect({ host: CLIENT, port: OUT_TCP });
    await once(sock, "connect");
    sock.write("ping");
    const [data] = (await once(sock, "data")) as [Buffer];
    assert.equal(data.toString(), "echo:ping");
    sock.end();
    await until(() => server.completed.some((i) => i.listener === "tcp"));
    const s = server.completed.find((i) => i.listener === "tcp");
    assert.equal(s?.connection?.tls, true);
    assert.equal(s?.connection?.peerPrincipal, CLIENT_ID);
    assert.equal(s?.connection?.alpn, undefined);
  });
});

/** Resolves with how a plaintext or TLS exchange ended: "ok <status>" or the error. */
async function outcome(p: Promise<{ status: number }>): Promise<string> {
  try {
    return `ok ${(await p).status}`;
  } catch (e) {
    return `error ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
}

describe("PeerAuthentication modes on the server", () => {
  it("STRICT closes a plaintext connection (no filter chain matches), directly or from a sidecar", async () => {
    const before = app.seen.length;
    const direct = await outcome(request(SERVER, STRICT, { path: "/direct", headers: { host: "server" } }));
    assert.match(direct, /^error /);
    const viaSidecar = await request(CLIENT, OUT_HTTP, {
      path: "/plain-to-strict",
      headers: { host: "server" },
    });
    assert.equal(viaSidecar.status, 503);
    assert.equal(app.seen.length, before, "the application saw none of them");
  });

  it("PERMISSIVE serves plaintext and mTLS on the same port", async () => {
    const plain = await request(SERVER, PERMISSIVE, { path: "/plain", headers: { host: "server" } });
    assert.equal(plain.status, 200);
    const p = serverSaw("/plain");
    assert.equal(p.connection?.tls, false);
    assert.equal(p.connection?.peerPrincipal, undefined);
    const mtls = await request(CLIENT, OUT_HTTP, { path: "/to-permissive", headers: { host: "server" } });
    assert.equal(mtls.status, 200);
    const m = serverSaw("/to-permissive");
    assert.equal(m.connection?.tls, true);
    assert.equal(m.connection?.peerPrincipal, CLIENT_ID);
  });
});

/** An HTTP/1.1 GET over TLS straight to the server sidecar with the given client certificate. */
function tlsGet(cert: { chain: string; key: string } | undefined, path: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({
      host: SERVER,
      port: STRICT,
      ca: ca.root,
      ...(cert && { cert: cert.chain, key: cert.key }),
      ALPNProtocols: ["http/1.1"],
      checkServerIdentity: () => undefined,
    });
    let data = "";
    s.on("secureConnect", () => s.write(`GET ${path} HTTP/1.1\r\nhost: server\r\nconnection: close\r\n\r\n`));
    s.on("data", (d: Buffer) => {
      data += d.toString();
    });
    s.on("error", reject);
    s.on("close", () => {
      const m = /^HTTP\/1\.1 (\d+)/.exec(data);
      if (m) resolve({ status: Number(m[1]) });
      else reject(new Error("closed without a response"));
    });
  });
}

describe("refused peers", () => {
  it("a client certificate of the mesh's CA passes (the control case for the refusals below)", async () => {
    const r = await tlsGet(await ca.issue("production", "client"), "/direct-ok");
    assert.equal(r.status, 200);
    assert.equal(serverSaw("/direct-ok").connection?.peerPrincipal, CLIENT_ID);
  });

  it("a client certificate from another CA, an expired one, or none is refused", async () => {
    const before = app.seen.length;
    const other = await TestCa.create();
    const foreign = await outcome(tlsGet(await other.issue("production", "client"), "/foreign"));
    assert.match(foreign, /^error /);
    ca.skewMs = -3600_000;
    const expiredCert = await ca.issue("production", "client", 60_000);
    ca.skewMs = 0;
    assert.ok((expiredCert.expiresAt as Date).getTime() < Date.now(), "the fixture is expired");
    const expired = await outcome(tlsGet(expiredCert, "/expired"));
    assert.match(expired, /^error /);
    const none = await outcome(tlsGet(undefined, "/none"));
    assert.match(none, /^error /);
    assert.equal(app.seen.length, before, "the application saw none of them");
    assert.ok(server.completed.every((i) => !["/foreign", "/expired", "/none"].includes(i.path)));
  });

  it("the client refuses a server whose identity is not the expected one (UF, saying why)", async () => {
    const r = await request(CLIENT, OUT_HTTP, { path: "/wrong-san", headers: { host: "server" } });
    assert.equal(r.status, 503);
    const info = [...client.completed].reverse().find((i) => i.path === "/wrong-san");
    assert.equal(info?.hasFlag(ResponseFlag.UpstreamConnectionFailure), true, `flags ${info?.responseFlags}`);
    const host = client.clusters.get("wrong-san")?.pick({});
    assert.ok(host);
    await assert.rejects(host.connect(new AbortController().signal), (err: Error & { flag?: string }) => {
      assert.equal(err.flag, "UF");
      assert.match(
        err.message,
        /server presented spiffe:\/\/cluster\.local\/ns\/production\/sa\/server, expected spiffe:\/\/cluster\.local\/ns\/production\/sa\/other/,
      );
      return true;
    });
  });
});

describe("without an identity", () => {
  it("TLS endpoints fail with SKEIN_E_PROXY_NO_IDENTITY while plaintext keeps working", async () => {
    const bare = createClusterManager({ secrets: new SecretManager() });
    const config = compiled({
      listeners: [],
      clusters: [meshCluster("h1", [SERVER_ID], "http1"), meshCluster("plain", [SERVER_ID], "http1")],
      assignments: [
        assignment("h1", [{ address: SERVER, port: STRICT, istio: true }]),
        assignment("plain", [{ address: SERVER, port: PERMISSIVE, istio: false }]),
      ],
    });
    bare.update(config.clusters, config.endpoints);
    try {
      const tlsHost = bare.get("h1")?.pick({});
      assert.ok(tlsHost);
      await assert.rejects(tlsHost.connect(new AbortController().signal), (err: Error) => {
        assert.match(err.message, new RegExp(IdentityProxyCodes.NO_IDENTITY));
        assert.match(err.message, /no identity source/);
        return true;
      });
      const plainHost = bare.get("plain")?.pick({});
      assert.ok(plainHost);
      const sock = await plainHost.connect(new AbortController().signal);
      sock.destroy();
    } finally {
      await bare.close(100);
    }
  });
});
