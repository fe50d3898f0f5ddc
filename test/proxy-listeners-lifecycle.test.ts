// Listener lifecycle under LDS updates (in-place swaps keep sockets and connections; removals, re-adds,
// kind changes, bind failures and conflicts), the graceful drain (no in-flight request lost), and the
// admin endpoint (/ready, /config_dump, /clusters, /stats, /quitquitquit).
import assert from "node:assert/strict";
import { once } from "node:events";
import { Agent } from "node:http";
import { createServer as createNetServer, type Server as NetServer, connect as netConnect } from "node:net";
import { after, before, describe, it } from "node:test";
import { AdminServer } from "../src/proxy/admin/server.js";
import type { RuntimeConfig } from "../src/proxy/config/types.js";
import { ListenerCodes } from "../src/proxy/listeners/manager.js";
import {
  cluster,
  type Echo,
  echoServer,
  endpoint,
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
  until,
  virtualHost,
} from "./proxy-router-fixtures.js";

const PORT = 15001;

function refused(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = netConnect({ host: address, port });
    s.once("connect", () => {
      s.destroy();
      resolve(false);
    });
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code === "ECONNREFUSED"));
  });
}

/** One HTTP listener on address:15001 sending everything to `clusterName`. */
function simpleConfig(
  address: string,
  clusterName: string,
  ports: Record<string, number>,
  name = "virtualOutbound",
): RuntimeConfig {
  const table = routeTable("http_proxy", [
    virtualHost("all", ["*"], [route("all", prefixMatch(), routeAction(clusterName))]),
  ]);
  return runtimeConfig({
    listeners: [httpListener(name, address, PORT, "http_proxy")],
    routes: [table],
    clusters: Object.keys(ports).map((c) => cluster(c)),
    endpoints: Object.fromEntries(Object.entries(ports).map(([c, p]) => [c, [endpoint(p)]])),
  });
}

describe("listener lifecycle", () => {
  let a: Upstream;
  let b: Upstream;
  let slow: Upstream;
  let tcpEcho: NetServer;
  let ports: Record<string, number>;

  before(async () => {
    a = await echoServer("a");
    b = await echoServer("b");
    slow = await echoServer("slow", async () => {
      await new Promise((r) => setTimeout(r, 300));
      return false;
    });
    tcpEcho = createNetServer((s) => s.pipe(s));
    tcpEcho.listen(0, "127.0.0.1");
    await once(tcpEcho, "listening");
    ports = {
      "c-a": a.port,
      "c-b": b.port,
      "c-slow": slow.port,
      "c-tcp": (tcpEcho.address() as { port: number }).port,
    };
  });

  after(async () => {
    await a.close();
    await b.close();
    await slow.close();
    tcpEcho.close();
  });

  it("a config swap keeps the socket and open connections; the next request uses the new routes", async () => {
    const addr = "127.0.73.1";
    const sidecar = new Sidecar();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await sidecar.apply(simpleConfig(addr, "c-a", ports));
      assert.deepEqual(first.added, ["virtualOutbound"]);
      const cx = sidecar.listeners.stats.counter("http.virtualOutbound.downstream_cx_total");
      const r1 = await request(addr, PORT, { headers: { host: "x" }, agent });
      assert.equal((JSON.parse(r1.body) as Echo).name, "a");
      const second = await sidecar.apply(simpleConfig(addr, "c-b", ports));
      assert.deepEqual(second.updated, ["virtualOutbound"]);
      assert.deepEqual(second.added, []);
      const r2 = await request(addr, PORT, { headers: { host: "x" }, agent });
      assert.equal((JSON.parse(r2.body) as Echo).name, "b");
      assert.equal(cx.value, 1, "one downstream connection served both");
    } finally {
      agent.destroy();
      await sidecar.close();
    }
  });

  it("RDS-only updates reach a bound listener", async () => {
    const addr = "127.0.73.2";
    const sidecar = new Sidecar();
    try {
      const config = simpleConfig(addr, "c-a", ports);
      await sidecar.apply(config);
      const table = routeTable("http_proxy", [
        virtualHost("all", ["*"], [route("all", prefixMatch(), routeAction("c-b"))]),
      ]);
      await sidecar.apply({ ...config, routes: new Map([["http_proxy", table]]) });
      const r = await request(addr, PORT, { headers: { host: "x" } });
      assert.equal((JSON.parse(r.body) as Echo).name, "b");
    } finally {
      await sidecar.close();
    }
  });

  it("removing a listener closes its port; adding it back binds again; a kind change rebinds as TCP", async () => {
    const addr = "127.0.73.3";
    const sidecar = new Sidecar({ removedListenerDrainMs: 200 });
    try {
      const config = simpleConfig(addr, "c-a", ports);
      await sidecar.apply(config);
      const removed = await sidecar.apply({ ...config, listeners: new Map() });
      assert.deepEqual(removed.removed, ["virtualOutbound"]);
      assert.equal(await refused(addr, PORT), true);
      await sidecar.apply(config);
      assert.equal((await request(addr, PORT, { headers: { host: "x" } })).status, 200);
      const tcp = tcpListener("virtualOutbound", addr, PORT, [{ name: "c-tcp", weight: 1 }]);
      const changed = await sidecar.apply({ ...config, listeners: new Map([[tcp.name, tcp]]) });
      assert.deepEqual(changed.removed, ["virtualOutbound"]);
      assert.deepEqual(changed.added, ["virtualOutbound"]);
      const s = netConnect({ host: addr, port: PORT });
      s.end("raw bytes");
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => chunks.push(c));
      await once(s, "close");
      assert.equal(Buffer.concat(chunks).toString(), "raw bytes");
    } finally {
      await sidecar.close();
    }
  });

  it("reports a port it cannot bind and two listeners on one port, with stable codes", async () => {
    const addr = "127.0.73.4";
    const squatter = createNetServer();
    squatter.listen(PORT, addr);
    await once(squatter, "listening");
    const sidecar = new Sidecar();
    try {
      const config = simpleConfig(addr, "c-a", ports);
      sidecar.clusters.update(config.clusters, config.endpoints);
      const r = await sidecar.listeners.apply(config);
      assert.equal(r.failed.length, 1);
      assert.equal(r.failed[0]?.code, ListenerCodes.BIND);
      assert.equal(r.failed[0]?.code, "SKEIN_E_LISTENER_BIND");
      assert.match(r.failed[0]?.message ?? "", /EADDRINUSE/);
      const l1 = httpListener("one", "127.0.73.5", PORT, "http_proxy");
      const l2 = httpListener("two", "127.0.73.5", PORT, "http_proxy");
      const c = await sidecar.listeners.apply({
        ...config,
        listeners: new Map([
          ["one", l1],
          ["two", l2],
        ]),
      });
      assert.deepEqual(c.added, ["one"]);
      assert.equal(c.failed[0]?.code, "SKEIN_E_LISTENER_CONFLICT");
    } finally {
      squatter.close();
      await sidecar.close();
    }
  });

  it("drain: in-flight HTTP/1.1 and HTTP/2 requests all finish; clients are told to go (Connection: close, GOAWAY); no new connections", async () => {
    const addr = "127.0.73.6";
    const sidecar = new Sidecar();
    const idleAgent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await sidecar.apply(simpleConfig(addr, "c-slow", ports));
      // An idle keep-alive connection, closed as soon as the drain starts.
      await request(addr, PORT, { headers: { host: "idle" }, agent: idleAgent });
      const seenBefore = slow.seen.length;
      const h1 = Array.from({ length: 10 }, (_, i) =>
        request(addr, PORT, { path: `/h1/${i}`, headers: { host: "x" } }),
      );
      const session = await h2connect(addr, PORT);
      let goaway = false;
      session.on("goaway", () => {
        goaway = true;
      });
      session.on("error", () => undefined);
      const h2 = Array.from({ length: 10 }, (_, i) =>
        h2request(session, { ":path": `/h2/${i}`, ":authority": "x" }),
      );
      await until(() => slow.seen.length - seenBefore >= 20);
      const started = Date.now();
      const drained = sidecar.listeners.drain(5000);
      assert.equal(sidecar.listeners.ready, false);
      await until(() => goaway);
      await until(() => Object.keys(idleAgent.freeSockets).length === 0);
      assert.equal(await refused(addr, PORT), true, "no new connections while draining");
      const h1Replies = await Promise.all(h1);
      const h2Replies = await Promise.all(h2);
      for (const r of h1Replies) {
        assert.equal(r.status, 200);
        assert.equal(r.headers.connection, "close");
      }
      for (const r of h2Replies) assert.equal(r.headers[":status"], 200);
      await drained;
      assert.ok(Date.now() - started < 4000, "drain ended when the last request did, not at the deadline");
      session.destroy();
    } finally {
      idleAgent.destroy();
      await sidecar.close();
    }
  });

  it("drain: what is still open at the deadline is closed", async () => {
    const addr = "127.0.73.7";
    const sidecar = new Sidecar();
    try {
      const config = simpleConfig(addr, "c-a", ports);
      const tcp = tcpListener("tcp", addr, 15002, [{ name: "c-tcp", weight: 1 }]);
      await sidecar.apply({ ...config, listeners: new Map([...config.listeners, [tcp.name, tcp]]) });
      const s = netConnect({ host: addr, port: 15002 });
      await once(s, "connect");
      s.on("error", () => undefined);
      const started = Date.now();
      await sidecar.listeners.drain(200);
      await once(s, "close");
      const took = Date.now() - started;
      assert.ok(took >= 190 && took < 2000, `closed after ${took} ms`);
    } finally {
      await sidecar.close();
    }
  });
});

describe("admin endpoint", () => {
  let upstream: Upstream;
  const sidecar = new Sidecar();
  let admin: AdminServer;
  let adminPort: number;
  let quits = 0;
  const addr = "127.0.73.8";

  const adminGet = (path: string, method = "GET") => request("127.0.0.1", adminPort, { path, method });

  before(async () => {
    upstream = await echoServer("u");
    admin = new AdminServer({
      port: 0,
      config: () => sidecar.config,
      clusters: sidecar.clusters,
      stats: sidecar.listeners.stats,
      ready: () => sidecar.listeners.ready,
      draining: () => sidecar.listeners.draining,
      listeners: () => sidecar.listeners.listeners(),
      onQuit: () => {
        quits++;
        void sidecar.listeners.drain(1000);
      },
    });
    adminPort = (await admin.listen()).port;
  });

  after(async () => {
    await admin.close();
    await sidecar.close();
    await upstream.close();
  });

  it("/ready is 503 until the first config's listeners are up, then 200", async () => {
    const early = await adminGet("/ready");
    assert.equal(early.status, 503);
    assert.equal(early.body, "PRE_INITIALIZING\n");
    const table = routeTable("http_proxy", [
      virtualHost(
        "all",
        ["*"],
        [
          route(
            "items",
            { ...prefixMatch(), path: { kind: "regex", regex: /^\/items\/[0-9]+$/i } },
            routeAction("c-u"),
          ),
          route("all", prefixMatch(), routeAction("c-u")),
        ],
      ),
    ]);
    await sidecar.apply(
      runtimeConfig({
        listeners: [
          httpListener("virtualOutbound", addr, PORT, "http_proxy", { upgrades: new Set(["websocket"]) }),
        ],
        routes: [table],
        clusters: [cluster("c-u")],
        endpoints: { "c-u": [endpoint(upstream.port)] },
      }),
    );
    const ready = await adminGet("/ready");
    assert.equal(ready.status, 200);
    assert.equal(ready.body, "LIVE\n");
  });

  it("/config_dump is the runtime config as JSON, regexes as strings", async () => {
    const r = await adminGet("/config_dump");
    assert.equal(r.status, 200);
    const dump = JSON.parse(r.body) as {
      listeners: { name: string; config: { upgrades: string[] } }[];
      routes: {
        name: string;
        exact?: unknown;
        virtualHosts: { routes: { match: { path: { regex?: string } } }[] }[];
      }[];
      clusters: { name: string }[];
      endpoints: { clusterName: string; endpoints: { port: number }[] }[];
    };
    assert.equal(dump.listeners[0]?.name, "virtualOutbound");
    assert.deepEqual(dump.listeners[0]?.config.upgrades, ["websocket"]);
    assert.equal(dump.routes[0]?.virtualHosts[0]?.routes[0]?.match.path.regex, "(?i)^\\/items\\/[0-9]+$");
    assert.equal(dump.routes[0]?.exact, undefined);
    assert.equal(dump.clusters[0]?.name, "c-u");
    assert.equal(dump.endpoints[0]?.endpoints[0]?.port, upstream.port);
  });

  it("/clusters, /listeners and /stats show what is there and count what went through", async () => {
    for (let i = 0; i < 3; i++)
      assert.equal((await request(addr, PORT, { headers: { host: "x" } })).status, 200);
    const clusters = (await adminGet("/clusters")).body;
    const host = `c-u::127.0.0.1:${upstream.port}::`;
    assert.match(clusters, /^c-u::default_priority::max_retries::3$/m);
    assert.ok(clusters.includes(`${host}rq_total::3\n`), clusters);
    assert.ok(clusters.includes(`${host}health_flags::healthy\n`), clusters);
    assert.equal((await adminGet("/listeners")).body, `virtualOutbound::${addr}:${PORT}\n`);
    const stats = (await adminGet("/stats")).body;
    assert.match(stats, /^http\.virtualOutbound\.downstream_rq_total: 3$/m);
    assert.match(stats, /^http\.virtualOutbound\.downstream_rq_2xx: 3$/m);
    assert.match(stats, /^cluster\.c-u\.upstream_rq_total: 3$/m);
  });

  it("/quitquitquit takes POST only, then starts draining: /ready says DRAINING", async () => {
    assert.equal((await adminGet("/quitquitquit")).status, 405);
    assert.equal(quits, 0);
    const r = await adminGet("/quitquitquit", "POST");
    assert.equal(r.status, 200);
    assert.equal(quits, 1);
    const ready = await adminGet("/ready");
    assert.equal(ready.status, 503);
    assert.equal(ready.body, "DRAINING\n");
    assert.equal(await refused(addr, PORT), true);
  });
});
