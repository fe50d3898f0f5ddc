// src/proxy/upstream over HTTP/2 cleartext (prior knowledge) against real node:http2 servers on 127.0.0.1:
// multiplexed streams on one session, streamed bodies, trailers (gRPC framing and trailers-only errors),
// resets (UR, with REFUSED_STREAM safe to retry), GOAWAY and reconnects, UF, UO.
import assert from "node:assert/strict";
import http2 from "node:http2";
import { Readable } from "node:stream";
import { after, describe, it } from "node:test";
import { createClusterManager, type SkeinClusterManager } from "../src/proxy/upstream/cluster-manager.js";
import { UpstreamError, type UpstreamResponse } from "../src/proxy/upstream/types.js";
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
const servers: http2.Http2Server[] = [];
const sessions = new Set<http2.ServerHttp2Session>();
after(async () => {
  for (const cm of managers) await cm.close(0);
  for (const s of sessions) s.destroy();
  for (const s of servers) await close(s);
});

async function h2server(
  onStream: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): Promise<{ port: number; sessions: () => number }> {
  const s = http2.createServer();
  let count = 0;
  s.on("session", (sess) => {
    count++;
    sessions.add(sess);
  });
  s.on("stream", (stream, headers) => {
    stream.on("error", () => {}); // resets the tests provoke also surface on the server's side
    onStream(stream, headers);
  });
  servers.push(s);
  return { port: await listen(s), sessions: () => count };
}

function manager(): SkeinClusterManager {
  const cm = createClusterManager();
  managers.push(cm);
  return cm;
}

/** gRPC's length-prefixed message framing. */
function grpcFrame(payload: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}

describe("HTTP/2 (h2c prior knowledge)", () => {
  it("multiplexes concurrent streams over one session and streams bodies both ways", async () => {
    const srv = await h2server((stream, headers) => {
      stream.respond({
        ":status": 200,
        "x-path": headers[":path"] as string,
        "x-authority": headers[":authority"] as string,
      });
      stream.pipe(stream); // echo the request body
    });
    const cm = manager();
    apply(cm, cluster("h2", { http2: true }), [endpoint(srv.port)]);
    const host = cm.get("h2")?.pick({});
    assert.ok(host);
    const bodies = Array.from({ length: 10 }, (_, i) => Buffer.alloc(200_000 + i, i));
    const responses = await Promise.all(
      bodies.map((b, i) =>
        host.request(
          req({
            http2: true,
            method: "POST",
            path: `/echo/${i}`,
            authority: "grpc.mesh",
            body: Readable.from([b.subarray(0, 1000), b.subarray(1000)]),
          }),
        ),
      ),
    );
    for (const [i, r] of responses.entries()) {
      assert.equal(r.status, 200);
      assert.equal(r.headers["x-path"], `/echo/${i}`);
      assert.equal(r.headers["x-authority"], "grpc.mesh");
      assert.equal(r.headers[":status"], undefined, "pseudo-headers are not response headers");
      assert.ok((await readAll(r.body)).equals(bodies[i] as Buffer));
      assert.deepEqual({ ...(await r.trailers) }, {});
    }
    assert.equal(srv.sessions(), 1);
    assert.equal(cm.stats().h2?.connectionsTotal, 1);
    // A stream stops counting as active at its 'close', a tick after its body ended.
    for (let i = 0; i < 100 && cm.stats().h2?.requestsActive !== 0; i++) await sleep(5);
    assert.equal(cm.stats().h2?.requestsActive, 0);
  });

  it("keeps gRPC trailers intact, and trailers-only error responses in the headers", async () => {
    const srv = await h2server((stream, headers) => {
      if (headers[":path"] === "/pkg.Svc/Fail") {
        stream.respond(
          {
            ":status": 200,
            "content-type": "application/grpc",
            "grpc-status": "5",
            "grpc-message": "not%20found",
          },
          { endStream: true },
        );
        return;
      }
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () =>
        stream.sendTrailers({ "grpc-status": "0", "grpc-message": "", "x-server-trailer": "t1" }),
      );
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const reqMsg = Buffer.concat(chunks).subarray(5).toString();
        stream.end(grpcFrame(Buffer.from(`hello ${reqMsg}`)));
      });
    });
    const cm = manager();
    apply(cm, cluster("grpc", { http2: true }), [endpoint(srv.port)]);
    const host = cm.get("grpc")?.pick({});
    assert.ok(host);
    const grpcReq = (path: string, body: Buffer) =>
      req({
        http2: true,
        method: "POST",
        path,
        headers: { "content-type": "application/grpc", te: "trailers", "grpc-timeout": "5S" },
        body,
      });
    const r = await host.request(grpcReq("/pkg.Svc/Hello", grpcFrame(Buffer.from("mesh"))));
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/grpc");
    const data = await readAll(r.body);
    assert.equal(data.readUInt32BE(1), data.length - 5);
    assert.equal(data.subarray(5).toString(), "hello mesh");
    assert.deepEqual(
      { ...(await r.trailers) },
      { "grpc-status": "0", "grpc-message": "", "x-server-trailer": "t1" },
    );

    const fail = await host.request(grpcReq("/pkg.Svc/Fail", grpcFrame(Buffer.alloc(0))));
    assert.equal(fail.headers["grpc-status"], "5");
    assert.equal(fail.headers["grpc-message"], "not%20found");
    assert.equal((await readAll(fail.body)).length, 0);
    assert.deepEqual({ ...(await fail.trailers) }, {});
  });

  it("maps a stream reset to UR; REFUSED_STREAM is marked safe to retry", async () => {
    const srv = await h2server((stream, headers) => {
      if (headers[":path"] === "/refuse") stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
      else if (headers[":path"] === "/midway") {
        stream.respond({ ":status": 200 });
        stream.write(Buffer.alloc(1000));
        // close(code) after a write would end the stream cleanly first; destroy sends RST_STREAM at once.
        setTimeout(() => stream.destroy(new Error("upstream crashed")), 30);
      } else stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
    });
    const cm = manager();
    apply(cm, cluster("h2reset", { http2: true }), [endpoint(srv.port)]);
    const host = cm.get("h2reset")?.pick({});
    assert.ok(host);
    const is = (before: boolean) => (e: unknown) => {
      assert.ok(e instanceof UpstreamError);
      assert.equal(e.code, "SKEIN_E_UPSTREAM_RESET");
      assert.equal(e.flag, "UR");
      assert.equal(e.beforeRequest, before);
      return true;
    };
    await assert.rejects(host.request(req({ http2: true, path: "/boom" })), is(false));
    await assert.rejects(host.request(req({ http2: true, path: "/refuse" })), is(true));
    const r = await host.request(req({ http2: true, path: "/midway" }));
    // The body is the http2 stream itself, so its error is Node's; the trailers carry the UpstreamError.
    await assert.rejects(readAll(r.body), { code: "ERR_HTTP2_STREAM_ERROR" });
    await assert.rejects(r.trailers, is(false));
    assert.equal(srv.sessions(), 1, "a stream reset does not cost the session");
    for (let i = 0; i < 100 && cm.stats().h2reset?.requestsActive !== 0; i++) await sleep(5);
    assert.equal(cm.stats().h2reset?.requestsActive, 0);
  });

  it("opens a new session after GOAWAY, after max_requests_per_connection and after idle_timeout", async () => {
    let n = 0;
    const srv = await h2server((stream) => {
      n++;
      stream.respond({ ":status": 200 });
      stream.end(`r${n}`);
      if (n === 2) stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR);
    });
    const cm = manager();
    apply(cm, cluster("goaway", { http2: true }), [endpoint(srv.port)]);
    const host = cm.get("goaway")?.pick({});
    assert.ok(host);
    for (let i = 1; i <= 4; i++) {
      const r: UpstreamResponse = await host.request(req({ http2: true }));
      assert.equal((await readAll(r.body)).toString(), `r${i}`);
      await sleep(20);
    }
    assert.equal(srv.sessions(), 2);

    let m = 0;
    const srv2 = await h2server((stream) => {
      stream.respond({ ":status": 200 });
      stream.end(`m${++m}`);
    });
    apply(cm, cluster("perconn2", { http2: true, maxRequestsPerConnection: 3 }), [endpoint(srv2.port)]);
    const h = cm.get("perconn2")?.pick({});
    assert.ok(h);
    for (let i = 0; i < 7; i++) await readAll((await h.request(req({ http2: true }))).body);
    assert.equal(srv2.sessions(), 3, "7 requests at 3 per session");
    for (let i = 0; i < 100 && (cm.stats().perconn2?.connectionsActive ?? 0) > 1; i++) await sleep(10);
    assert.equal(cm.stats().perconn2?.connectionsActive, 1, "the retired sessions closed");

    // idle_timeout closes a session without streams; the next request opens another.
    apply(cm, cluster("h2idle", { http2: true, idleTimeoutMs: 100 }), [endpoint(srv2.port)]);
    const hi = cm.get("h2idle")?.pick({});
    assert.ok(hi);
    await readAll((await hi.request(req({ http2: true }))).body);
    await readAll((await hi.request(req({ http2: true }))).body);
    assert.equal(cm.stats().h2idle?.connectionsActive, 1);
    for (let i = 0; i < 100 && cm.stats().h2idle?.connectionsActive !== 0; i++) await sleep(10);
    assert.equal(cm.stats().h2idle?.connectionsActive, 0, "the idle session closed");
    await readAll((await hi.request(req({ http2: true }))).body);
    assert.equal(cm.stats().h2idle?.connectionsTotal, 2);
  });

  it("fails with UF when nothing listens and with UO at max_requests", async () => {
    const cm = manager();
    apply(cm, cluster("h2dead", { http2: true }), [endpoint(await deadPort())]);
    const dead = cm.get("h2dead")?.pick({});
    assert.ok(dead);
    await assert.rejects(dead.request(req({ http2: true })), (e: unknown) => {
      assert.ok(e instanceof UpstreamError);
      assert.equal(e.flag, "UF");
      assert.equal(e.code, "SKEIN_E_UPSTREAM_CONNECT");
      assert.equal(e.beforeRequest, true);
      return true;
    });
    assert.equal(cm.stats().h2dead?.requestsPending, 0);
    assert.equal(cm.stats().h2dead?.connectionsActive, 0);

    const held: http2.ServerHttp2Stream[] = [];
    const srv = await h2server((stream) => held.push(stream));
    apply(
      cm,
      cluster("h2limit", {
        http2: true,
        circuitBreakers: { maxConnections: 10, maxPendingRequests: 10, maxRequests: 2, maxRetries: 1 },
      }),
      [endpoint(srv.port)],
    );
    const host = cm.get("h2limit")?.pick({});
    assert.ok(host);
    const a = host.request(req({ http2: true }));
    const b = host.request(req({ http2: true }));
    await assert.rejects(
      host.request(req({ http2: true })),
      (e: unknown) => e instanceof UpstreamError && e.flag === "UO",
    );
    while (held.length < 2) await sleep(5);
    for (const s of held) {
      s.respond({ ":status": 204 }, { endStream: true });
    }
    assert.equal((await a).status, 204);
    assert.equal((await b).status, 204);
  });

  it("aborts a stream through the request's signal", async () => {
    let serverSawReset = false;
    const srv = await h2server((stream) => {
      stream.on("close", () => {
        serverSawReset = stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR;
      });
    });
    const cm = manager();
    apply(cm, cluster("h2abort", { http2: true }), [endpoint(srv.port)]);
    const host = cm.get("h2abort")?.pick({});
    assert.ok(host);
    const ac = new AbortController();
    const p = host.request(req({ http2: true, signal: ac.signal }));
    await sleep(50);
    const reason = new Error("downstream went away");
    ac.abort(reason);
    await assert.rejects(p, (e) => e === reason);
    for (let i = 0; i < 100 && !serverSawReset; i++) await sleep(10);
    assert.ok(serverSawReset);
    assert.equal(cm.stats().h2abort?.requestsActive, 0);
  });
});
