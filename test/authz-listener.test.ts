// RBAC through real listeners (no control plane): an HTTP listener with path normalisation and compiled DENY
// and ALLOW RBAC filters before the router, reached over HTTP/1.1 and HTTP/2, and a TCP listener with network
// RBAC filters before tcp_proxy. The peers are plaintext here, so the policies key on what a plaintext
// connection has (source address, method, path); principals are covered with ConnectionInfo in
// authz-filter.test.ts.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createNetServer, type Server as NetServer, connect as netConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import { At } from "../src/proxy/config/fields.js";
import {
  compileHttpRbac,
  compileNetworkRbac,
  HTTP_RBAC_TYPE,
  NETWORK_RBAC_TYPE,
} from "../src/proxy/config/rbac.js";
import type { Listener, TcpListenerConfig } from "../src/proxy/config/types.js";
import { wire } from "./proxy-config-fixtures.js";
import {
  cluster,
  type Echo,
  echoServer,
  endpoint,
  freePort,
  h2connect,
  h2request,
  httpListener,
  prefixMatch,
  request,
  route,
  routeAction,
  routeTable,
  runtimeConfig,
  Sidecar,
  tcpListener,
  type Upstream,
  virtualHost,
} from "./proxy-router-fixtures.js";

const ADDR = "127.0.73.1";
const at = new At("test");
const loopback = { addressPrefix: "127.0.0.0", prefixLen: { value: 8 } };

/** DENY anything under /admin; ALLOW GET of /api/v1/* from loopback peers; the rest is refused. */
const DENY = compileHttpRbac(
  wire(HTTP_RBAC_TYPE, {
    rules: {
      action: "DENY",
      policies: {
        "ns[shop]-policy[no-admin]-rule[0]": {
          permissions: [{ urlPath: { path: { prefix: "/admin" } } }],
          principals: [{ any: true }],
        },
      },
    },
  }),
  at,
);
const ALLOW = compileHttpRbac(
  wire(HTTP_RBAC_TYPE, {
    rules: {
      action: "ALLOW",
      policies: {
        "ns[shop]-policy[api]-rule[0]": {
          permissions: [
            {
              andRules: {
                rules: [
                  { header: { name: ":method", stringMatch: { exact: "GET" } } },
                  { urlPath: { path: { prefix: "/api/v1/" } } },
                ],
              },
            },
          ],
          principals: [{ directRemoteIp: loopback }],
        },
      },
    },
  }),
  at,
);

function networkRbac(action: "ALLOW" | "DENY") {
  return compileNetworkRbac(
    wire(NETWORK_RBAC_TYPE, {
      statPrefix: "tcp.",
      rules: {
        action,
        policies: { loopback: { permissions: [{ any: true }], principals: [{ directRemoteIp: loopback }] } },
      },
    }),
    at,
  );
}

function withRbac(l: Listener, action: "ALLOW" | "DENY"): Listener {
  return { ...l, config: { ...(l.config as TcpListenerConfig), rbac: [networkRbac(action)] } };
}

describe("RBAC on real listeners", () => {
  let sidecar: Sidecar;
  let web: Upstream;
  let tcpEcho: NetServer;
  let tcpAccepted = 0;
  let httpPort = 0;
  let allowPort = 0;
  let denyPort = 0;

  before(async () => {
    web = await echoServer("web");
    tcpEcho = createNetServer((s) => {
      tcpAccepted++;
      s.pipe(s);
    });
    tcpEcho.listen(0, "127.0.0.1");
    await once(tcpEcho, "listening");
    const tcpPort = (tcpEcho.address() as { port: number }).port;
    [httpPort, allowPort, denyPort] = [await freePort(ADDR), await freePort(ADDR), await freePort(ADDR)];
    sidecar = new Sidecar();
    const table = routeTable("inbound", [
      virtualHost("all", ["*"], [route("default", prefixMatch("/"), routeAction("c-web"))]),
    ]);
    await sidecar.apply(
      runtimeConfig({
        listeners: [
          httpListener(
            "inbound_http",
            ADDR,
            httpPort,
            table,
            {
              pathNormalization: {
                normalizePath: true,
                mergeSlashes: true,
                escapedSlashes: "REJECT_REQUEST",
              },
              upgrades: new Set(["websocket"]),
            },
            [
              { name: "istio.authorization.deny", config: DENY },
              { name: "istio.authorization.allow", config: ALLOW },
              { name: "envoy.filters.http.router", config: { kind: "router", suppressEnvoyHeaders: false } },
            ],
          ),
          withRbac(tcpListener("tcp_allow", ADDR, allowPort, [{ name: "c-tcp", weight: 1 }]), "ALLOW"),
          withRbac(tcpListener("tcp_deny", ADDR, denyPort, [{ name: "c-tcp", weight: 1 }]), "DENY"),
        ],
        clusters: [cluster("c-web"), cluster("c-tcp")],
        endpoints: { "c-web": [endpoint(web.port)], "c-tcp": [endpoint(tcpPort)] },
      }),
    );
  });

  after(async () => {
    await sidecar.close();
    await web.close();
    tcpEcho.close();
  });

  it("HTTP/1.1: allowed requests reach the app with the normalised path; refused ones get 403", async () => {
    const ok = await request(ADDR, httpPort, { path: "/api/v1/items//7/./x?q=1" });
    assert.equal(ok.status, 200);
    assert.equal((JSON.parse(ok.body) as Echo).url, "/api/v1/items/7/x?q=1");
    const seenBefore = web.seen.length;
    for (const [method, path, policy] of [
      ["POST", "/api/v1/items", "none"],
      ["GET", "/api/v2/items", "none"],
      ["GET", "/admin", "ns[shop]-policy[no-admin]-rule[0]"],
      ["GET", "//admin", "ns[shop]-policy[no-admin]-rule[0]"],
      ["GET", "/api/v1/../admin", "none"],
      ["GET", "/api/v1/../../admin", "ns[shop]-policy[no-admin]-rule[0]"],
      ["GET", "/api/v1/%2e%2e/%2E%2E/admin/users", "ns[shop]-policy[no-admin]-rule[0]"],
      ["GET", "/admin#frag", "ns[shop]-policy[no-admin]-rule[0]"],
      ["GET", "/admin?x=/api/v1/", "ns[shop]-policy[no-admin]-rule[0]"],
      ["GET", "/API/V1/items", "none"],
    ] as const) {
      const r = await request(ADDR, httpPort, { method, path });
      assert.equal(r.status, 403, `${method} ${path}`);
      assert.equal(r.body, "RBAC: access denied");
      assert.equal(r.headers["content-type"], "text/plain");
      assert.equal(r.headers["content-length"], String("RBAC: access denied".length));
      const info = sidecar.completed.at(-1);
      assert.equal(info?.responseCodeDetails, `rbac_access_denied_matched_policy[${policy}]`, path);
    }
    const escaped = await request(ADDR, httpPort, { path: "/api/v1/..%2Fadmin" });
    assert.equal(escaped.status, 400);
    assert.equal(web.seen.length, seenBefore, "no refused request reached the application");
    const stats = new Map(sidecar.listeners.stats.entries().map(([k, v]) => [k, v.value]));
    assert.ok((stats.get("http.inbound_http.rbac.denied") ?? 0) >= 10);
    assert.ok((stats.get("http.inbound_http.rbac.allowed") ?? 0) >= 1);
  });

  it("HTTP/2: the same 403 with body and headers; gRPC callers get PERMISSION_DENIED", async () => {
    const session = await h2connect(ADDR, httpPort);
    try {
      const denied = await h2request(session, { ":method": "GET", ":path": "/api/v1/%2e%2e/admin" });
      assert.equal(denied.headers[":status"], 403);
      assert.equal(denied.body, "RBAC: access denied");
      assert.equal(denied.headers["content-type"], "text/plain");
      const ok = await h2request(session, { ":method": "GET", ":path": "/api/v1/a/../b" });
      assert.equal(ok.headers[":status"], 200);
      assert.equal((JSON.parse(ok.body) as Echo).url, "/api/v1/b");
      const grpc = await h2request(session, {
        ":method": "POST",
        ":path": "/admin.Service/Call",
        "content-type": "application/grpc",
      });
      assert.equal(grpc.headers[":status"], 200);
      assert.equal(grpc.headers["grpc-status"] ?? grpc.trailers?.["grpc-status"], "7");
    } finally {
      session.close();
    }
  });

  it("an Upgrade (WebSocket) request, which skips the filter chain, is authorized all the same", async () => {
    const seen = web.seen.length;
    for (const path of ["/admin/ws", "/api/v1/%2e%2e/%2e%2e/admin/ws"]) {
      const s = netConnect({ host: ADDR, port: httpPort });
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => chunks.push(c));
      s.on("error", () => {});
      s.write(`GET ${path} HTTP/1.1\r\nHost: shop\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`);
      await once(s, "close");
      const text = Buffer.concat(chunks).toString();
      assert.match(text, /^HTTP\/1\.1 403 /, path);
      assert.match(text, /RBAC: access denied$/);
    }
    assert.equal(web.seen.length, seen);
  });

  it("TCP: a refused connection is closed unproxied; an allowed one is proxied", async () => {
    const before = tcpAccepted;
    const refused = netConnect({ host: ADDR, port: denyPort });
    const chunks: Buffer[] = [];
    refused.on("data", (c: Buffer) => chunks.push(c));
    refused.on("error", () => {});
    refused.write("hello?");
    await once(refused, "close");
    assert.equal(Buffer.concat(chunks).length, 0);
    assert.equal(tcpAccepted, before, "the upstream never saw the refused connection");

    const allowed = netConnect({ host: ADDR, port: allowPort });
    const got: Buffer[] = [];
    allowed.on("data", (c: Buffer) => got.push(c));
    allowed.end("ping");
    await once(allowed, "end");
    allowed.destroy();
    assert.equal(Buffer.concat(got).toString(), "ping");
    assert.equal(tcpAccepted, before + 1);
    const stats = new Map(sidecar.listeners.stats.entries().map(([k, v]) => [k, v.value]));
    assert.equal(stats.get("tcp.rbac.denied"), 1);
    assert.equal(stats.get("tcp.rbac.allowed"), 1);
  });
});
