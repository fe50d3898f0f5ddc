// The listeners' protocols with real clients: HTTP/1.1 keep-alive, HTTP/2 (h2c on the same port), gRPC
// through @grpc/grpc-js with metadata and trailers intact, WebSocket upgrade tunnelled to the upstream,
// CONNECT refused or tunnelled, and TCP proxying with half-close and an idle timeout.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { Agent, createServer as createHttpServer, type Server as HttpServer } from "node:http";
import {
  createServer as createNetServer,
  type Server as NetServer,
  connect as netConnect,
  type Socket,
} from "node:net";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
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

const ADDR = "127.0.72.1";
const HTTP_PORT = 15001;
const NO_UPGRADE_PORT = 15002;
const TCP_PORT = 15003;
const IDLE_TCP_PORT = 15004;
const IDLE_HTTP_PORT = 15005;
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const raw = (b: Buffer) => b;

/** Reads from a socket until `pred` holds for what arrived so far. */
function readUntil(socket: Socket, pred: (data: Buffer) => boolean, timeoutMs = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out; got ${JSON.stringify(data.toString("latin1"))}`));
    }, timeoutMs);
    const onData = (c: Buffer) => {
      data = Buffer.concat([data, c]);
      if (pred(data)) {
        cleanup();
        resolve(data);
      }
    };
    const onEnd = () => {
      cleanup();
      if (pred(data)) resolve(data);
      else reject(new Error(`ended; got ${JSON.stringify(data.toString("latin1"))}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
    };
    socket.on("data", onData);
    socket.once("end", onEnd);
  });
}

async function connectTo(address: string, port: number): Promise<Socket> {
  const s = netConnect({ host: address, port });
  await once(s, "connect");
  return s;
}

/** A client WebSocket text frame (masked, short payload). */
function clientFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

/** Decodes one short frame, masked (from a client) or not (from a server). */
function decodeFrame(frame: Buffer): string {
  const len = (frame[1] as number) & 0x7f;
  if (((frame[1] as number) & 0x80) === 0) return frame.subarray(2, 2 + len).toString();
  const mask = frame.subarray(2, 6);
  return Buffer.from(frame.subarray(6, 6 + len).map((b, i) => b ^ (mask[i % 4] as number))).toString();
}

describe("listener protocols", () => {
  const sidecar = new Sidecar();
  let web: Upstream;
  let wsServer: HttpServer;
  let tcpEcho: NetServer;
  let grpcServer: grpc.Server;
  let grpcPort: number;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });

  before(async () => {
    web = await echoServer("web");

    // A WebSocket echo server: the RFC 6455 handshake, then each text frame sent back.
    wsServer = createHttpServer((_req, res) => res.end("not a websocket request"));
    wsServer.on("upgrade", (req, socket: Socket) => {
      const accept = createHash("sha1")
        .update(`${req.headers["sec-websocket-key"]}${WS_GUID}`)
        .digest("base64");
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nx-seen-path: ${req.url}\r\n\r\n`,
      );
      socket.on("data", (frame: Buffer) => {
        const text = decodeFrame(frame);
        socket.write(Buffer.concat([Buffer.from([0x81, text.length]), Buffer.from(text)]));
      });
    });
    wsServer.listen(0, "127.0.0.1");
    await once(wsServer, "listening");

    // A TCP echo server that answers once more after the client's FIN, then closes: proves half-close.
    tcpEcho = createNetServer({ allowHalfOpen: true }, (s) => {
      s.on("data", (d) => s.write(d));
      s.on("end", () => setTimeout(() => s.end("|after-fin"), 50));
    });
    tcpEcho.listen(0, "127.0.0.1");
    await once(tcpEcho, "listening");

    grpcServer = new grpc.Server();
    grpcServer.addService(
      {
        reverse: {
          path: "/test.Echo/Reverse",
          requestStream: false,
          responseStream: false,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
        fail: {
          path: "/test.Echo/Fail",
          requestStream: false,
          responseStream: false,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
        count: {
          path: "/test.Echo/Count",
          requestStream: false,
          responseStream: true,
          requestSerialize: raw,
          requestDeserialize: raw,
          responseSerialize: raw,
          responseDeserialize: raw,
        },
      },
      {
        reverse: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          const initial = new grpc.Metadata();
          initial.set("x-initial", `saw-${call.metadata.get("x-client")[0]}`);
          call.sendMetadata(initial);
          const trailing = new grpc.Metadata();
          trailing.set("x-trailing", "bye");
          cb(null, Buffer.from([...call.request].reverse()), trailing);
        },
        fail: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          const md = new grpc.Metadata();
          md.set("x-why", "because");
          cb({ code: grpc.status.NOT_FOUND, details: "no such thing", metadata: md });
        },
        count: (call: grpc.ServerWritableStream<Buffer, Buffer>) => {
          for (let i = 1; i <= 3; i++) call.write(Buffer.from(String(i)));
          call.end();
        },
      },
    );
    grpcPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );

    const table = routeTable("http_proxy", [
      virtualHost("web", ["web"], [route("web", prefixMatch(), routeAction("c-web"))]),
      virtualHost(
        "chat",
        ["chat", "chat:80"],
        [route("chat", prefixMatch("/room/"), routeAction("c-ws", { prefixRewrite: "/ws/" }))],
      ),
      virtualHost(
        "greeter",
        ["greeter.production:50051"],
        [route("grpc", prefixMatch("/test.Echo/"), routeAction("c-grpc"))],
      ),
      virtualHost("tunnel", ["tcp-echo:9000"], [route("tunnel", prefixMatch(), routeAction("c-tcp"))]),
    ]);
    await sidecar.apply(
      runtimeConfig({
        listeners: [
          httpListener("virtualOutbound", ADDR, HTTP_PORT, "http_proxy", {
            upgrades: new Set(["websocket", "connect"]),
          }),
          httpListener("no-upgrades", ADDR, NO_UPGRADE_PORT, "http_proxy"),
          tcpListener("tcp", ADDR, TCP_PORT, [{ name: "c-tcp", weight: 1 }]),
          tcpListener("tcp-idle", ADDR, IDLE_TCP_PORT, [{ name: "c-tcp", weight: 1 }], 150),
          httpListener("http-idle", ADDR, IDLE_HTTP_PORT, "http_proxy", { idleTimeoutMs: 150 }),
        ],
        routes: [table],
        clusters: [cluster("c-web"), cluster("c-ws"), cluster("c-grpc", { http2: true }), cluster("c-tcp")],
        endpoints: {
          "c-web": [endpoint(web.port)],
          "c-ws": [endpoint((wsServer.address() as { port: number }).port)],
          "c-grpc": [endpoint(grpcPort)],
          "c-tcp": [endpoint((tcpEcho.address() as { port: number }).port)],
        },
      }),
    );
  });

  after(async () => {
    agent.destroy();
    await sidecar.close();
    await web.close();
    wsServer.closeAllConnections();
    wsServer.close();
    tcpEcho.close();
    grpcServer.forceShutdown();
  });

  it("HTTP/1.1 keep-alive: sequential requests share one downstream connection", async () => {
    const cx = sidecar.listeners.stats.counter("http.virtualOutbound.downstream_cx_http1_total");
    const before = cx.value;
    for (let i = 0; i < 5; i++) {
      const r = await request(ADDR, HTTP_PORT, { path: `/n/${i}`, headers: { host: "web" }, agent });
      assert.equal(r.status, 200);
      assert.equal((JSON.parse(r.body) as Echo).url, `/n/${i}`);
      assert.equal(r.headers.connection, "keep-alive");
    }
    assert.equal(cx.value - before, 1);
  });

  it("HTTP/2 (h2c prior knowledge) on the same port: concurrent streams over one connection", async () => {
    const s = await h2connect(ADDR, HTTP_PORT);
    try {
      const replies = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          h2request(s, { ":path": `/h2/${i}`, ":authority": "web", "x-n": String(i) }),
        ),
      );
      replies.forEach((r, i) => {
        assert.equal(r.headers[":status"], 200);
        const e = JSON.parse(r.body) as Echo;
        assert.equal(e.url, `/h2/${i}`);
        assert.equal(e.headers["x-n"], String(i));
        assert.equal(e.headers.host, "web");
      });
      const post = await h2request(
        s,
        { ":method": "POST", ":path": "/upload", ":authority": "web" },
        "h2 body",
      );
      assert.equal((JSON.parse(post.body) as Echo).body, "h2 body");
    } finally {
      s.close();
    }
  });

  it("an h2c upgrade offer is ignored and the request answered over HTTP/1.1, as Envoy does", async () => {
    const s = await connectTo(ADDR, HTTP_PORT);
    try {
      s.write(
        "POST /offer HTTP/1.1\r\nHost: web\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n" +
          "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nContent-Length: 11\r\n\r\nhello",
      );
      setTimeout(() => s.write(" world"), 20);
      // The connection closes after the answer.
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => chunks.push(c));
      await once(s, "end");
      const text = Buffer.concat(chunks).toString();
      assert.match(text, /HTTP\/1\.1 200 /);
      const echoed = JSON.parse(text.slice(text.indexOf("{"), text.lastIndexOf("}") + 1)) as Echo;
      assert.equal(echoed.body, "hello world");
      assert.equal(echoed.url, "/offer");
      assert.equal(echoed.headers.upgrade, undefined);
      assert.doesNotMatch(text, /http2-settings/i);
    } finally {
      s.destroy();
    }
  });

  it("idle timeout: HTTP/1.1 keep-alive and HTTP/2 connections without requests close", async () => {
    const idleAgent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      await request(ADDR, IDLE_HTTP_PORT, { headers: { host: "web" }, agent: idleAgent });
      await until(() => Object.keys(idleAgent.freeSockets).length === 0, 2000);
    } finally {
      idleAgent.destroy();
    }
    const s = await h2connect(ADDR, IDLE_HTTP_PORT);
    const started = Date.now();
    await h2request(s, { ":path": "/", ":authority": "web" });
    await once(s, "close");
    assert.ok(
      Date.now() - started >= 140,
      "stayed open while a request was in flight and after it for the timeout",
    );
  });

  describe("gRPC through the sidecar (@grpc/grpc-js)", () => {
    let client: grpc.Client;
    before(() => {
      client = new grpc.Client(`${ADDR}:${HTTP_PORT}`, grpc.credentials.createInsecure(), {
        "grpc.default_authority": "greeter.production:50051",
      });
    });
    after(() => client.close());

    it("unary call: response, initial and trailing metadata, OK status", async () => {
      const md = new grpc.Metadata();
      md.set("x-client", "tester");
      const got = await new Promise<{ value: Buffer; initial: grpc.Metadata; status: grpc.StatusObject }>(
        (resolve, reject) => {
          let initial: grpc.Metadata | undefined;
          let value: Buffer | undefined;
          const call = client.makeUnaryRequest(
            "/test.Echo/Reverse",
            raw,
            raw,
            Buffer.from("abc"),
            md,
            (err, v) => {
              if (err) reject(err);
              else value = v;
            },
          );
          call.on("metadata", (m) => {
            initial = m;
          });
          call.on("status", (status) => {
            if (value && initial) resolve({ value, initial, status });
            else if (status.code !== grpc.status.OK) reject(new Error(status.details));
          });
        },
      );
      assert.equal(got.value.toString(), "cba");
      assert.deepEqual(got.initial.get("x-initial"), ["saw-tester"]);
      assert.equal(got.status.code, grpc.status.OK);
      assert.deepEqual(got.status.metadata.get("x-trailing"), ["bye"]);
    });

    it("error status: code, details and trailing metadata reach the client intact", async () => {
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        client.makeUnaryRequest("/test.Echo/Fail", raw, raw, Buffer.from("x"), (e) =>
          resolve(e as grpc.ServiceError),
        );
      });
      assert.equal(err.code, grpc.status.NOT_FOUND);
      assert.equal(err.details, "no such thing");
      assert.deepEqual(err.metadata.get("x-why"), ["because"]);
    });

    it("server streaming: every message, then OK", async () => {
      const call = client.makeServerStreamRequest("/test.Echo/Count", raw, raw, Buffer.alloc(0));
      const got: string[] = [];
      call.on("data", (b: Buffer) => got.push(b.toString()));
      const [status] = (await once(call, "status")) as [grpc.StatusObject];
      assert.deepEqual(got, ["1", "2", "3"]);
      assert.equal(status.code, grpc.status.OK);
    });

    it("a method no route knows: UNIMPLEMENTED from the sidecar", async () => {
      const err = await new Promise<grpc.ServiceError>((resolve) => {
        client.makeUnaryRequest("/other.Service/Nope", raw, raw, Buffer.from("x"), (e) =>
          resolve(e as grpc.ServiceError),
        );
      });
      assert.equal(err.code, grpc.status.UNIMPLEMENTED);
    });
  });

  it("WebSocket: the upgrade is tunnelled to the chosen host (path rewritten) and frames echo both ways", async () => {
    const s = await connectTo(ADDR, HTTP_PORT);
    try {
      const key = Buffer.from("0123456789abcdef").toString("base64");
      s.write(
        `GET /room/lobby HTTP/1.1\r\nHost: chat\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
      const head = (await readUntil(s, (d) => d.includes("\r\n\r\n"))).toString("latin1");
      assert.match(head, /^HTTP\/1\.1 101 /);
      const accept = createHash("sha1").update(`${key}${WS_GUID}`).digest("base64");
      assert.match(head, new RegExp(`sec-websocket-accept: ${accept.replace(/[+/]/g, "\\$&")}`, "i"));
      assert.match(head, /x-seen-path: \/ws\/lobby/);
      for (const text of ["hello", "second frame"]) {
        s.write(clientFrame(text));
        const frame = await readUntil(s, (d) => d.length >= 2 && d.length >= 2 + ((d[1] as number) & 0x7f));
        assert.equal(decodeFrame(frame), text);
      }
    } finally {
      s.destroy();
    }
  });

  it("an upgrade the listener does not allow: 403", async () => {
    const s = await connectTo(ADDR, NO_UPGRADE_PORT);
    try {
      s.write(
        "GET /room/x HTTP/1.1\r\nHost: chat\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: a2V5\r\nSec-WebSocket-Version: 13\r\n\r\n",
      );
      const head = (await readUntil(s, (d) => d.includes("\r\n\r\n"))).toString("latin1");
      assert.match(head, /^HTTP\/1\.1 403 /);
    } finally {
      s.destroy();
    }
  });

  it("CONNECT: 405 unless the listener allows it; then a raw tunnel to the route's cluster", async () => {
    const refused = await connectTo(ADDR, NO_UPGRADE_PORT);
    try {
      refused.write("CONNECT tcp-echo:9000 HTTP/1.1\r\nHost: tcp-echo:9000\r\n\r\n");
      const head = (await readUntil(refused, (d) => d.includes("\r\n\r\n"))).toString("latin1");
      assert.match(head, /^HTTP\/1\.1 405 /);
    } finally {
      refused.destroy();
    }
    const s = await connectTo(ADDR, HTTP_PORT);
    try {
      s.write("CONNECT tcp-echo:9000 HTTP/1.1\r\nHost: tcp-echo:9000\r\n\r\n");
      const head = (await readUntil(s, (d) => d.includes("\r\n\r\n"))).toString("latin1");
      assert.match(head, /^HTTP\/1\.1 200 /);
      s.write("through the tunnel");
      const echoed = await readUntil(s, (d) => d.toString() === "through the tunnel");
      assert.equal(echoed.toString(), "through the tunnel");
    } finally {
      s.destroy();
    }
  });

  it("TCP proxy: bytes both ways, and half-close (the upstream still answers after the client's FIN)", async () => {
    const s = await connectTo(ADDR, TCP_PORT);
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.write("ping ");
    s.write("pong");
    s.end();
    await once(s, "end");
    assert.equal(Buffer.concat(chunks).toString(), "ping pong|after-fin");
    await once(s, "close");
  });

  it("TCP proxy: many connections at once, each gets its own bytes back", async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const s = await connectTo(ADDR, TCP_PORT);
        const chunks: Buffer[] = [];
        s.on("data", (c: Buffer) => chunks.push(c));
        s.end(`conn-${i}-${"y".repeat(100_000)}`);
        await once(s, "end");
        s.destroy();
        return Buffer.concat(chunks).toString();
      }),
    );
    for (const [i, r] of results.entries()) assert.equal(r, `conn-${i}-${"y".repeat(100_000)}|after-fin`);
  });

  it("TCP proxy: an idle connection is closed after the idle timeout", async () => {
    const s = await connectTo(ADDR, IDLE_TCP_PORT);
    const started = Date.now();
    s.write("x");
    await readUntil(s, (d) => d.toString() === "x");
    await once(s, "close");
    const took = Date.now() - started;
    assert.ok(took >= 140 && took < 2000, `closed after ${took} ms`);
  });
});
