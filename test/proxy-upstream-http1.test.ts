// src/proxy/upstream over HTTP/1.1 against real node:http and net servers on 127.0.0.1: keep-alive reuse,
// streamed bodies with bounded buffering, trailers, the UF/UR/UO errors with their flags, aborts,
// connection limits and timeouts, EDS updates that keep a surviving host's socket, raw TCP, DNS clusters.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import type { Endpoint, EndpointSet } from "../src/proxy/config/types.js";
import { createClusterManager, type SkeinClusterManager } from "../src/proxy/upstream/cluster-manager.js";
import { UpstreamError } from "../src/proxy/upstream/types.js";
import {
  apply,
  close,
  cluster,
  deadPort,
  endpoint,
  listen,
  readAll,
  req,
  sleep,
} from "./proxy-upstream-helpers.js";

const managers: SkeinClusterManager[] = [];
const servers: (http.Server | net.Server)[] = [];
after(async () => {
  for (const cm of managers) await cm.close(0);
  for (const s of servers) await close(s);
});

function manager(): SkeinClusterManager {
  const cm = createClusterManager();
  managers.push(cm);
  return cm;
}

/** An HTTP server that records each connection's remote port. */
async function server(handler: http.RequestListener): Promise<{ port: number; sockets: number[] }> {
  const s = http.createServer(handler);
  const sockets: number[] = [];
  s.on("connection", (sock) => sockets.push(sock.remotePort as number));
  servers.push(s);
  return { port: await listen(s), sockets };
}

function isUpstreamError(code: string, flag: string, beforeRequest?: boolean) {
  return (e: unknown) => {
    assert.ok(e instanceof UpstreamError, `expected UpstreamError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.equal(e.flag, flag);
    if (beforeRequest !== undefined) assert.equal(e.beforeRequest, beforeRequest);
    return true;
  };
}

describe("HTTP/1.1 pool", () => {
  it("reuses one keep-alive connection for 50 sequential requests", async () => {
    const srv = await server((rq, rs) => rs.end(`you asked ${rq.url} for ${rq.headers.host}`));
    const cm = manager();
    apply(cm, cluster("reuse"), [endpoint(srv.port)]);
    const c = cm.get("reuse");
    assert.ok(c);
    for (let i = 0; i < 50; i++) {
      const host = c.pick({});
      assert.ok(host);
      const r = await host.request(req({ path: `/n/${i}`, authority: "reuse.mesh" }));
      assert.equal(r.status, 200);
      assert.equal((await readAll(r.body)).toString(), `you asked /n/${i} for reuse.mesh`);
    }
    assert.equal(srv.sockets.length, 1);
    const st = cm.stats().reuse;
    assert.equal(st?.connectionsTotal, 1);
    assert.equal(st?.requestsTotal, 50);
    assert.equal(st?.requestsActive, 0);
    assert.equal(c.hosts()[0]?.total, 50);
  });

  it("streams a 5 MB request and a 5 MB response without buffering them", async (t) => {
    const TOTAL = 5 * 1024 * 1024;
    const CHUNK = 64 * 1024;
    let written = 0;
    let serverPaused = true;
    const srv = await server(async (rq, rs) => {
      if (rq.url === "/download") {
        rs.writeHead(200, { "content-length": String(TOTAL) });
        const chunk = Buffer.alloc(CHUNK, 7);
        while (written < TOTAL) {
          written += CHUNK;
          if (!rs.write(chunk)) await new Promise((r) => rs.once("drain", r));
        }
        rs.end();
        return;
      }
      // Upload: do not read until the test says so, then hash what arrives.
      rq.pause();
      while (serverPaused) await sleep(10);
      const hash = createHash("sha256");
      let n = 0;
      for await (const c of rq) {
        hash.update(c);
        n += c.length;
      }
      rs.end(`${n} ${hash.digest("hex")}`);
    });
    const cm = manager();
    apply(cm, cluster("stream"), [endpoint(srv.port)]);
    const host = cm.get("stream")?.pick({});
    assert.ok(host);

    // Download: the consumer does not read for a while; the bytes queued inside our layer stay bounded and
    // the server is held back by backpressure (what it wrote beyond that sits in kernel socket buffers).
    const down = await host.request(req({ path: "/download" }));
    await sleep(300);
    const writtenAt300 = written;
    await sleep(200);
    const body = down.body as Readable;
    assert.equal(written, writtenAt300, "the server stalled while nobody read");
    assert.ok(written < TOTAL, `server wrote ${written} of ${TOTAL} bytes before any read`);
    const bufferedBeforeRead = body.readableLength;
    assert.ok(bufferedBeforeRead <= 256 * 1024, `buffered ${bufferedBeforeRead} bytes`);
    let maxBuffered = 0;
    let got = 0;
    for await (const c of body) {
      got += (c as Buffer).length;
      maxBuffered = Math.max(maxBuffered, body.readableLength);
    }
    assert.equal(got, TOTAL);
    assert.ok(maxBuffered <= 256 * 1024, `buffered up to ${maxBuffered} bytes`);
    t.diagnostic(
      `download: server wrote ${writtenAt300} bytes before the first read, ${bufferedBeforeRead} of them queued in our body stream`,
    );

    // Upload: a lazy producer; while the server does not read, production stalls well short of 5 MB.
    let produced = 0;
    const expected = createHash("sha256");
    const upload = new Readable({
      highWaterMark: CHUNK,
      read() {
        if (produced >= TOTAL) {
          this.push(null);
          return;
        }
        const chunk = Buffer.alloc(CHUNK, produced / CHUNK);
        expected.update(chunk);
        produced += CHUNK;
        this.push(chunk);
      },
    });
    const pending = host.request(
      req({ method: "POST", path: "/upload", body: upload, headers: { "content-length": String(TOTAL) } }),
    );
    await sleep(300);
    const producedAt300 = produced;
    await sleep(200);
    assert.equal(produced, producedAt300, "the producer stalled while the server did not read");
    assert.ok(produced < TOTAL, `produced ${produced} of ${TOTAL} before the server read`);
    assert.ok(upload.readableLength <= 2 * CHUNK);
    t.diagnostic(`upload: produced ${produced} bytes while the server did not read`);
    serverPaused = false;
    const up = await pending;
    assert.equal((await readAll(up.body)).toString(), `${TOTAL} ${expected.digest("hex")}`);
    assert.equal(srv.sockets.length, 1, "both transfers used the same keep-alive connection");
  });

  it("surfaces response trailers (chunked encoding) and resolves empty trailers when there are none", async () => {
    const srv = await server((rq, rs) => {
      if (rq.url === "/plain") {
        rs.end("no trailers");
        return;
      }
      rs.writeHead(200, { trailer: "x-checksum, x-count" });
      rs.write("part one, ");
      rs.write("part two");
      rs.addTrailers({ "x-checksum": "abc123", "x-count": "2" });
      rs.end();
    });
    const cm = manager();
    apply(cm, cluster("trailers"), [endpoint(srv.port)]);
    const host = cm.get("trailers")?.pick({});
    assert.ok(host);
    const r = await host.request(req({ path: "/t" }));
    assert.equal(r.headers.trailer, "x-checksum, x-count");
    assert.equal(r.headers["transfer-encoding"], undefined, "framing headers are the upstream connection's");
    assert.equal((await readAll(r.body)).toString(), "part one, part two");
    assert.deepEqual({ ...(await r.trailers) }, { "x-checksum": "abc123", "x-count": "2" });
    const plain = await host.request(req({ path: "/plain" }));
    await readAll(plain.body);
    assert.deepEqual({ ...(await plain.trailers) }, {});
  });

  it("fails with UF (beforeRequest) when nothing listens", async () => {
    const cm = manager();
    apply(cm, cluster("refused"), [endpoint(await deadPort())]);
    const host = cm.get("refused")?.pick({});
    assert.ok(host);
    await assert.rejects(
      host.request(req({ method: "POST", body: Buffer.from("x") })),
      isUpstreamError("SKEIN_E_UPSTREAM_CONNECT", "UF", true),
    );
    assert.equal(cm.stats().refused?.connectFailuresTotal, 1);
    assert.equal(cm.stats().refused?.connectionsActive, 0);
    assert.equal(cm.stats().refused?.requestsActive, 0);
  });

  it("fails with UF after connect_timeout when the peer never completes the handshake", async () => {
    // A listener with backlog 1 in a stopped process: once its queue is full, SYNs go unanswered.
    const child = spawn(
      process.execPath,
      [
        "-e",
        "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>console.log(s.address().port))",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    try {
      const port = await new Promise<number>((r) =>
        child.stdout.once("data", (d) => r(Number(String(d).trim()))),
      );
      process.kill(child.pid as number, "SIGSTOP");
      const fillers = [net.connect(port, "127.0.0.1"), net.connect(port, "127.0.0.1")];
      for (const f of fillers) f.on("error", () => {});
      await sleep(100);
      const cm = manager();
      apply(cm, cluster("blackhole", { connectTimeoutMs: 200 }), [endpoint(port)]);
      const host = cm.get("blackhole")?.pick({});
      assert.ok(host);
      const t0 = Date.now();
      await assert.rejects(host.request(req()), (e: unknown) => {
        isUpstreamError("SKEIN_E_UPSTREAM_CONNECT", "UF", true)(e);
        assert.match((e as Error).message, /connect timeout after 200 ms/);
        return true;
      });
      const elapsed = Date.now() - t0;
      assert.ok(elapsed >= 190 && elapsed < 2000, `failed after ${elapsed} ms`);
      for (const f of fillers) f.destroy();
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("fails with UR when the upstream resets after receiving the request, and mid-body", async () => {
    const srv = await server((rq, rs) => {
      if (rq.url === "/midway") {
        rs.writeHead(200, { "content-length": "100000" });
        rs.write(Buffer.alloc(1000));
        setTimeout(() => rq.socket.destroy(), 50);
        return;
      }
      rq.socket.destroy();
    });
    const cm = manager();
    apply(cm, cluster("reset"), [endpoint(srv.port)]);
    const host = cm.get("reset")?.pick({});
    assert.ok(host);
    await assert.rejects(host.request(req()), isUpstreamError("SKEIN_E_UPSTREAM_RESET", "UR", false));
    const r = await host.request(req({ path: "/midway" }));
    assert.equal(r.status, 200);
    await assert.rejects(readAll(r.body), isUpstreamError("SKEIN_E_UPSTREAM_RESET", "UR"));
    await assert.rejects(r.trailers, isUpstreamError("SKEIN_E_UPSTREAM_RESET", "UR"));
    assert.equal(cm.stats().reset?.resetsTotal, 2);
    assert.equal(cm.stats().reset?.requestsActive, 0);
  });

  it("overflows with UO at max_requests, and at max_pending_requests once max_connections is used", async () => {
    const held: http.ServerResponse[] = [];
    const srv = await server((_rq, rs) => held.push(rs));
    const cm = manager();
    apply(
      cm,
      cluster("limits", {
        circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1, maxRetries: 3 },
      }),
      [endpoint(srv.port)],
    );
    const host = cm.get("limits")?.pick({});
    assert.ok(host);
    const first = host.request(req());
    await assert.rejects(host.request(req()), isUpstreamError("SKEIN_E_UPSTREAM_OVERFLOW", "UO", true));
    while (held.length < 1) await sleep(5);
    held.shift()?.end("one");
    assert.equal((await readAll((await first).body)).toString(), "one");

    // One connection, one pending slot: the second request waits, the third overflows at once, and the
    // waiter then gets the first request's connection.
    apply(
      cm,
      cluster("limits", {
        circuitBreakers: { maxConnections: 1, maxPendingRequests: 1, maxRequests: 100, maxRetries: 3 },
      }),
      [endpoint(srv.port)],
    );
    const a = host.request(req({ path: "/a" }));
    while (held.length < 1) await sleep(5);
    const b = host.request(req({ path: "/b" }));
    assert.equal(cm.stats().limits?.requestsPending, 1);
    await assert.rejects(
      host.request(req({ path: "/c" })),
      isUpstreamError("SKEIN_E_UPSTREAM_OVERFLOW", "UO", true),
    );
    held.shift()?.end("a");
    assert.equal((await readAll((await a).body)).toString(), "a");
    while (held.length < 1) await sleep(5);
    held.shift()?.end("b");
    assert.equal((await readAll((await b).body)).toString(), "b");
    assert.equal(srv.sockets.length, 1);
    assert.equal(cm.stats().limits?.overflowsTotal, 2);
    assert.equal(cm.get("limits")?.hosts()[0]?.overflows, 2);
    assert.equal(cm.stats().limits?.requestsPending, 0);
  });

  it("aborts an in-flight request (the upstream sees the close) and a queued one", async () => {
    const closed: string[] = [];
    const srv = await server((rq) => {
      rq.socket.on("close", () => closed.push(rq.url as string));
    });
    const cm = manager();
    apply(
      cm,
      cluster("abort", {
        circuitBreakers: { maxConnections: 1, maxPendingRequests: 10, maxRequests: 10, maxRetries: 3 },
      }),
      [endpoint(srv.port)],
    );
    const host = cm.get("abort")?.pick({});
    assert.ok(host);
    const inflight = new AbortController();
    const queued = new AbortController();
    const p1 = host.request(req({ path: "/slow", signal: inflight.signal }));
    await sleep(50);
    const p2 = host.request(req({ path: "/queued", signal: queued.signal }));
    assert.equal(cm.stats().abort?.requestsPending, 1);
    const reason = new UpstreamError("SKEIN_E_UPSTREAM_TIMEOUT", "UT", "per-try timeout");
    queued.abort(reason);
    await assert.rejects(p2, (e) => e === reason);
    assert.equal(cm.stats().abort?.requestsPending, 0);
    inflight.abort(reason);
    await assert.rejects(p1, (e) => e === reason);
    for (let i = 0; i < 100 && closed.length === 0; i++) await sleep(10);
    assert.deepEqual(closed, ["/slow"]);
    assert.equal(cm.stats().abort?.requestsActive, 0);
    assert.equal(host.active, 0);
  });

  it("stops reading from the upstream when the consumer destroys the body, then serves the next request", async () => {
    const srv = await server((rq, rs) => {
      if (rq.url === "/big") {
        rs.writeHead(200);
        const timer = setInterval(() => rs.write(Buffer.alloc(16 * 1024)), 5);
        rs.on("close", () => clearInterval(timer));
        return;
      }
      rs.end("small");
    });
    const cm = manager();
    apply(cm, cluster("abandon"), [endpoint(srv.port)]);
    const host = cm.get("abandon")?.pick({});
    assert.ok(host);
    const r = await host.request(req({ path: "/big" }));
    const body = r.body as Readable;
    await new Promise((resolve) => body.once("data", resolve));
    body.destroy();
    await assert.rejects(r.trailers);
    for (let i = 0; i < 100 && host.active !== 0; i++) await sleep(5);
    assert.equal(host.active, 0);
    assert.equal(cm.stats().abandon?.resetsTotal, 0, "the consumer's choice is not an upstream reset");
    assert.equal((await readAll((await host.request(req())).body)).toString(), "small");
    assert.equal(srv.sockets.length, 2, "the abandoned connection was not reused");
  });

  it("honours max_requests_per_connection and idle_timeout", async () => {
    const srv = await server((_rq, rs) => rs.end("ok"));
    const cm = manager();
    apply(cm, cluster("perconn", { maxRequestsPerConnection: 2 }), [endpoint(srv.port)]);
    const host = cm.get("perconn")?.pick({});
    assert.ok(host);
    for (let i = 0; i < 4; i++) await readAll((await host.request(req())).body);
    assert.equal(srv.sockets.length, 2, "4 requests at 2 per connection");

    const srv2 = await server((_rq, rs) => rs.end("ok"));
    apply(cm, cluster("idle", { idleTimeoutMs: 100 }), [endpoint(srv2.port)]);
    const h2 = cm.get("idle")?.pick({});
    assert.ok(h2);
    await readAll((await h2.request(req())).body);
    assert.equal(cm.stats().idle?.connectionsActive, 1);
    for (let i = 0; i < 100 && cm.stats().idle?.connectionsActive !== 0; i++) await sleep(10);
    assert.equal(cm.stats().idle?.connectionsActive, 0, "the idle connection closed");
    await readAll((await h2.request(req())).body);
    assert.equal(srv2.sockets.length, 2);
  });

  it("keeps a surviving host's socket across an EDS update and drains a removed host gracefully", async () => {
    const a = await server((_rq, rs) => rs.end("a"));
    const held: http.ServerResponse[] = [];
    const b = await server((_rq, rs) => held.push(rs));
    const c = await server((_rq, rs) => rs.end("c"));
    const cm = manager();
    const cfg = cluster("eds");
    apply(cm, cfg, [endpoint(a.port), endpoint(b.port)]);
    const cl = cm.get("eds");
    assert.ok(cl);
    const hostA = cl.pick({ avoid: new Set([`127.0.0.1:${b.port}`]) });
    const hostB = cl.pick({ avoid: new Set([`127.0.0.1:${a.port}`]) });
    assert.equal(hostA?.port, a.port);
    assert.equal(hostB?.port, b.port);
    assert.ok(hostA && hostB);
    await readAll((await hostA.request(req())).body);
    const inflight = hostB.request(req());
    while (held.length < 1) await sleep(5);

    // B leaves, C arrives; A stays.
    apply(cm, cfg, [endpoint(a.port, 1), endpoint(c.port, 1)]);
    assert.deepEqual(
      cl.hosts().map((h) => h.key),
      [`127.0.0.1:${a.port}`, `127.0.0.1:${c.port}`],
    );
    const againA = cl.pick({ avoid: new Set([`127.0.0.1:${c.port}`]) });
    assert.equal(againA, hostA, "the same host object, with its pool");
    await readAll((await hostA.request(req())).body);
    assert.equal(a.sockets.length, 1, "the surviving host reused its socket");
    assert.equal(cl.hosts()[0]?.total, 2, "and kept its counters");

    // A CDS change (new policy, new limits) applies in place: same cluster, same hosts, same sockets.
    apply(cm, cluster("eds", { lbPolicy: "LEAST_REQUEST", connectTimeoutMs: 500 }), [
      endpoint(a.port),
      endpoint(c.port),
    ]);
    assert.equal(cm.get("eds"), cl);
    assert.equal(cl.config.lbPolicy, "LEAST_REQUEST");
    assert.equal(cl.pick({ avoid: new Set([`127.0.0.1:${c.port}`]) }), hostA);
    await readAll((await hostA.request(req())).body);
    assert.equal(a.sockets.length, 1);

    // The removed host's in-flight request still completes; then its connection closes.
    let bClosed = false;
    held[0]?.socket?.on("close", () => {
      bClosed = true;
    });
    held.shift()?.end("b-late");
    assert.equal((await readAll((await inflight).body)).toString(), "b-late");
    for (let i = 0; i < 100 && !bClosed; i++) await sleep(10);
    assert.ok(bClosed, "the drained host's connection was closed");
  });

  it("drains a removed cluster: in-flight requests finish, the cluster is gone at once", async () => {
    const held: http.ServerResponse[] = [];
    const srv = await server((_rq, rs) => held.push(rs));
    const cm = manager();
    apply(cm, cluster("gone"), [endpoint(srv.port)]);
    const host = cm.get("gone")?.pick({});
    assert.ok(host);
    const inflight = host.request(req());
    while (held.length < 1) await sleep(5);
    cm.update(new Map(), new Map<string, EndpointSet>());
    assert.equal(cm.get("gone"), undefined);
    assert.equal(cm.stats().gone, undefined);
    held.shift()?.end("finished");
    assert.equal((await readAll((await inflight).body)).toString(), "finished");
  });

  it("opens raw TCP connections (UF when refused, UO over max_connections)", async () => {
    const echo = net.createServer((s) => s.pipe(s));
    servers.push(echo);
    const port = await listen(echo);
    const cm = manager();
    apply(
      cm,
      cluster("tcp", {
        circuitBreakers: { maxConnections: 1, maxPendingRequests: 1, maxRequests: 1, maxRetries: 1 },
      }),
      [endpoint(port)],
    );
    const host = cm.get("tcp")?.pick({});
    assert.ok(host);
    const sock = await host.connect(new AbortController().signal);
    sock.write("ping");
    const [data] = (await Promise.race([
      new Promise((r) => sock.once("data", (d) => r([d]))),
      sleep(2000).then(() => [undefined]),
    ])) as [Buffer | undefined];
    assert.equal(String(data), "ping");
    assert.equal(host.active, 1);
    await assert.rejects(
      host.connect(new AbortController().signal),
      isUpstreamError("SKEIN_E_UPSTREAM_OVERFLOW", "UO"),
    );
    sock.destroy();
    await sleep(20);
    assert.equal(cm.stats().tcp?.connectionsActive, 0);
    assert.equal(host.active, 0);

    apply(cm, cluster("tcp-dead"), [endpoint(await deadPort())]);
    const dead = cm.get("tcp-dead")?.pick({});
    assert.ok(dead);
    await assert.rejects(
      dead.connect(new AbortController().signal),
      isUpstreamError("SKEIN_E_UPSTREAM_CONNECT", "UF", true),
    );
  });

  it("resolves STRICT_DNS names to IPv4 hosts and connects LOGICAL_DNS clusters to the name", async () => {
    const srv = await server((_rq, rs) => rs.end("dns"));
    const cm = manager();
    const la = (name: string, eps: Endpoint[]): EndpointSet => ({ clusterName: name, endpoints: eps });
    cm.update(
      new Map([
        [
          "strict",
          cluster("strict", {
            type: "STRICT_DNS",
            loadAssignment: la("strict", [endpoint(srv.port, 1, "localhost")]),
          }),
        ],
        [
          "logical",
          cluster("logical", {
            type: "LOGICAL_DNS",
            loadAssignment: la("logical", [endpoint(srv.port, 1, "localhost")]),
          }),
        ],
        ["static", cluster("static", { type: "STATIC", loadAssignment: la("static", [endpoint(srv.port)]) })],
      ]),
      new Map(),
    );
    for (let i = 0; i < 100 && (cm.get("strict")?.hosts().length ?? 0) === 0; i++) await sleep(10);
    assert.deepEqual(
      cm
        .get("strict")
        ?.hosts()
        .map((h) => h.key),
      [`127.0.0.1:${srv.port}`],
    );
    assert.deepEqual(
      cm
        .get("logical")
        ?.hosts()
        .map((h) => h.key),
      [`localhost:${srv.port}`],
    );
    for (const name of ["strict", "logical", "static"]) {
      const host = cm.get(name)?.pick({});
      assert.ok(host, name);
      assert.equal((await readAll((await host.request(req())).body)).toString(), "dns");
    }
  });
});
