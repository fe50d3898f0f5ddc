// Retries and timeouts through a real sidecar to real upstreams: a host failing its first attempts, the
// num_retries bound, connect failures with previous-host avoidance, per-try and route timeouts (504 UT),
// request body replay and the buffer limit past which retries stop, the retry circuit breaker, gRPC
// statuses in headers and in trailers, and grpc-timeout.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer as createH2Server, type Http2Server, type ServerHttp2Stream } from "node:http2";
import { after, before, describe, it } from "node:test";
import type { RetryPolicy, Route } from "../src/proxy/config/types.js";
import { formatResponseFlags } from "../src/proxy/router/stream-info.js";
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
  retryPolicy,
  route,
  routeAction,
  routeTable,
  runtimeConfig,
  Sidecar,
  type Upstream,
  until,
  virtualHost,
} from "./proxy-router-fixtures.js";

const ADDR = "127.0.71.2";
const PORT = 15001;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("retries and timeouts", () => {
  const sidecar = new Sidecar();
  let flaky: Upstream;
  let failing: Upstream;
  let slow: Upstream;
  let healthy: Upstream;
  let bodyFlaky: Upstream;
  let grpcUpstream: Http2Server;
  let deadPort: number;
  /** Per test key (x-test header): how many attempts have been seen. */
  const attempts = new Map<string, number>();
  const count = (key: string) => {
    const n = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, n);
    return n;
  };

  before(async () => {
    // Fails the first two attempts of each x-test key with 503, then answers.
    flaky = await echoServer("flaky", (req, res) => {
      if (count(`flaky:${req.headers["x-test"]}`) <= 2) {
        res.writeHead(503, { "content-length": "4" });
        res.end("busy");
        return true;
      }
      return false;
    });
    failing = await echoServer("failing", (_req, res) => {
      res.writeHead(503, { "content-length": "4" });
      res.end("down");
      return true;
    });
    // The first attempt of each key hangs for a second; later ones answer at once.
    slow = await echoServer("slow", async (req) => {
      const n = count(`slow:${req.headers["x-test"]}`);
      if (n === 1 || req.headers["x-always-slow"]) await sleep(1000);
      return false;
    });
    healthy = await echoServer("healthy");
    bodyFlaky = await echoServer("body-flaky", (req, res) => {
      if (count(`body:${req.headers["x-test"]}`) === 1) {
        res.writeHead(503, { "content-length": "0" });
        res.end();
        return true;
      }
      return false;
    });
    // gRPC-shaped answers chosen by the x-test header: UNAVAILABLE (trailers-only or in trailers) twice, then OK.
    grpcUpstream = createH2Server();
    grpcUpstream.on("stream", (stream: ServerHttp2Stream, headers) => {
      const key = String(headers["x-test"]);
      const n = count(`grpc:${key}`);
      stream.resume();
      if (key.startsWith("hang")) return;
      const fail = n <= 2;
      if (fail && key.startsWith("headers")) {
        stream.respond(
          {
            ":status": 200,
            "content-type": "application/grpc",
            "grpc-status": "14",
            "grpc-message": "try again",
          },
          { endStream: true },
        );
        return;
      }
      stream.respond(
        { ":status": 200, "content-type": "application/grpc", "x-attempt": String(n) },
        { waitForTrailers: true },
      );
      stream.once("wantTrailers", () =>
        stream.sendTrailers(
          fail
            ? { "grpc-status": "14", "grpc-message": "later" }
            : { "grpc-status": "0", "x-trailer": "kept" },
        ),
      );
      // A gRPC message frame (uncompressed, 2 bytes) for the successful answer only.
      stream.end(fail ? undefined : Buffer.from([0, 0, 0, 0, 2, 0x08, 0x01]));
    });
    grpcUpstream.listen(0, "127.0.0.1");
    await once(grpcUpstream, "listening");
    deadPort = await freePort();

    const r = (
      name: string,
      path: string,
      clusterName: string,
      retry?: RetryPolicy,
      extra: Parameters<typeof routeAction>[1] = {},
    ): Route => route(name, prefixMatch(path), routeAction(clusterName, { retry, ...extra }));
    const table = routeTable("http_proxy", [
      virtualHost(
        "svc",
        ["svc"],
        [
          r("flaky-2", "/flaky2", "c-flaky", retryPolicy(["5xx"], 2)),
          r("flaky-1", "/flaky1", "c-flaky", retryPolicy(["5xx"], 1)),
          r("failing", "/failing", "c-failing", retryPolicy(["gateway-error"], 2)),
          r(
            "codes",
            "/codes",
            "c-failing",
            retryPolicy(["retriable-status-codes"], 1, { retriableStatusCodes: new Set([503]) }),
          ),
          r("no-retry-on-4xx", "/unmatched", "c-failing", retryPolicy(["retriable-4xx"], 3)),
          // Longer prefixes first: the first matching route wins.
          r("mixed-no-retry", "/mixed-plain", "c-mixed"),
          r(
            "dead-or-alive",
            "/mixed",
            "c-mixed",
            retryPolicy(["connect-failure"], 2, { avoidPreviousHosts: true }),
          ),
          r(
            "per-try-only",
            "/pertry-only",
            "c-slow",
            retryPolicy(["connect-failure"], 2, { perTryTimeoutMs: 150 }),
          ),
          r("per-try", "/pertry", "c-slow", retryPolicy(["5xx"], 2, { perTryTimeoutMs: 150 })),
          r("route-timeout", "/timeout", "c-slow", undefined, { timeoutMs: 150 }),
          r("max-duration", "/duration", "c-slow", undefined, { maxStreamDurationMs: 150 }),
          r("body", "/body", "c-body", retryPolicy(["5xx"], 2)),
          r("budget", "/budget", "c-budget", retryPolicy(["5xx"], 3)),
          r("grpc-retry", "/grpc.Retry/", "c-grpc", retryPolicy(["unavailable"], 2)),
          r("grpc-no-retry", "/grpc.NoRetry/", "c-grpc"),
          r("grpc-timeout", "/grpc.Hang/", "c-grpc", undefined, { grpcTimeoutHeaderMaxMs: 0 }),
          r("grpc-timeout-capped", "/grpc.Capped/", "c-grpc", undefined, { grpcTimeoutHeaderMaxMs: 100 }),
        ],
      ),
    ]);
    await sidecar.apply(
      runtimeConfig({
        listeners: [httpListener("virtualOutbound", ADDR, PORT, "http_proxy")],
        routes: [table],
        clusters: [
          cluster("c-flaky"),
          cluster("c-failing"),
          cluster("c-slow"),
          cluster("c-mixed"),
          cluster("c-body"),
          cluster("c-budget", {
            circuitBreakers: {
              maxConnections: 100,
              maxPendingRequests: 100,
              maxRequests: 100,
              maxRetries: 0,
            },
          }),
          cluster("c-grpc", { http2: true }),
        ],
        endpoints: {
          "c-flaky": [endpoint(flaky.port)],
          "c-failing": [endpoint(failing.port)],
          "c-slow": [endpoint(slow.port)],
          "c-mixed": [endpoint(deadPort), endpoint(healthy.port)],
          "c-body": [endpoint(bodyFlaky.port)],
          "c-budget": [endpoint(failing.port)],
          "c-grpc": [endpoint((grpcUpstream.address() as { port: number }).port)],
        },
      }),
    );
  });

  after(async () => {
    await sidecar.close();
    for (const u of [flaky, failing, slow, healthy, bodyFlaky]) await u.close();
    grpcUpstream.close();
  });

  const send = (
    path: string,
    test: string,
    extra: { headers?: Record<string, string>; body?: string } = {},
  ) =>
    request(ADDR, PORT, {
      path,
      headers: { host: "svc", "x-test": test, ...extra.headers },
      body: extra.body,
    });

  const lastInfo = async (before: number) => {
    await until(() => sidecar.completed.length > before);
    return sidecar.completed[sidecar.completed.length - 1] as (typeof sidecar.completed)[number];
  };

  it("succeeds when the upstream fails its first two attempts and two retries are allowed", async () => {
    const before = sidecar.completed.length;
    const r = await send("/flaky2", "a");
    assert.equal(r.status, 200);
    const e = JSON.parse(r.body) as Echo;
    assert.equal(e.headers["x-envoy-attempt-count"], "3");
    assert.equal(attempts.get("flaky:a"), 3);
    const info = await lastInfo(before);
    assert.equal(info.attempts, 3);
    assert.equal(formatResponseFlags(info.responseFlags), "-");
  });

  it("stops at num_retries and returns the last response (URX)", async () => {
    const before = sidecar.completed.length;
    const r = await send("/flaky1", "b");
    assert.equal(r.status, 503);
    assert.equal(r.body, "busy");
    assert.equal(attempts.get("flaky:b"), 2);
    const always = await send("/failing", "c");
    assert.equal(always.status, 503);
    assert.equal(failing.seen.filter((s) => s.headers["x-test"] === "c").length, 3);
    const info = await lastInfo(before + 1);
    assert.equal(formatResponseFlags(info.responseFlags), "URX");
    assert.equal(info.attempts, 3);
  });

  it("retries only the conditions asked for", async () => {
    await send("/codes", "d");
    assert.equal(failing.seen.filter((s) => s.headers["x-test"] === "d").length, 2);
    await send("/unmatched", "e");
    assert.equal(failing.seen.filter((s) => s.headers["x-test"] === "e").length, 1);
  });

  it("retries a connect failure on another host (previous_hosts), and without retries the failure shows", async () => {
    for (let i = 0; i < 10; i++) {
      const r = await send("/mixed", `f${i}`);
      assert.equal(r.status, 200, `request ${i}`);
    }
    const statuses = new Set<number>();
    for (let i = 0; i < 6; i++) statuses.add((await send("/mixed-plain", `g${i}`)).status);
    assert.deepEqual([...statuses].sort(), [200, 503]);
  });

  it("per-try timeout: a hung first attempt is abandoned and retried", async () => {
    const started = Date.now();
    const r = await send("/pertry", "h");
    assert.equal(r.status, 200);
    assert.ok(Date.now() - started < 900, "did not wait for the hung attempt");
    assert.equal(attempts.get("slow:h"), 2);
  });

  it("per-try timeout without a retry condition for it: 504 UT, `upstream request timeout`", async () => {
    const before = sidecar.completed.length;
    const r = await send("/pertry-only", "i");
    assert.equal(r.status, 504);
    assert.equal(r.body, "upstream request timeout");
    const info = await lastInfo(before);
    assert.equal(formatResponseFlags(info.responseFlags), "UT");
    assert.equal(info.responseCodeDetails, "upstream_per_try_timeout");
  });

  it("route timeout: 504 UT after the route's timeout, not the upstream's delay", async () => {
    const before = sidecar.completed.length;
    const started = Date.now();
    const r = await send("/timeout", "j", { headers: { "x-always-slow": "1" } });
    const took = Date.now() - started;
    assert.equal(r.status, 504);
    assert.equal(r.body, "upstream request timeout");
    assert.ok(took >= 140 && took < 900, `took ${took} ms`);
    const info = await lastInfo(before);
    assert.equal(formatResponseFlags(info.responseFlags), "UT");
    assert.equal(info.responseCodeDetails, "upstream_response_timeout");
  });

  it("max stream duration: 408 DT, `downstream duration timeout`", async () => {
    const before = sidecar.completed.length;
    const r = await send("/duration", "dt", { headers: { "x-always-slow": "1" } });
    assert.equal(r.status, 408);
    assert.equal(r.body, "downstream duration timeout");
    const info = await lastInfo(before);
    assert.equal(formatResponseFlags(info.responseFlags), "DT");
  });

  it("replays the request body on a retry", async () => {
    const body = "payload-".repeat(1000);
    const r = await send("/body", "k", { body });
    assert.equal(r.status, 200);
    const seen = bodyFlaky.seen.filter((s) => s.headers["x-test"] === "k");
    assert.equal(seen.length, 2);
    assert.equal(seen[0]?.body, body);
    assert.equal(seen[1]?.body, body);
  });

  it("does not retry once the body outgrew the retry buffer (64 KiB); the request still streams", async () => {
    const body = "z".repeat(200 * 1024);
    const r = await send("/body", "l", { body });
    assert.equal(r.status, 503);
    const seen = bodyFlaky.seen.filter((s) => s.headers["x-test"] === "l");
    assert.equal(seen.length, 1);
    assert.equal(seen[0]?.body.length, body.length);
  });

  it("the retry circuit breaker (max_retries 0) stops retries and counts the overflow", async () => {
    const r = await send("/budget", "m");
    assert.equal(r.status, 503);
    assert.equal(failing.seen.filter((s) => s.headers["x-test"] === "m").length, 1);
    assert.equal(sidecar.listeners.stats.counter("cluster.c-budget.upstream_rq_retry_overflow").value, 1);
  });

  it("retries gRPC UNAVAILABLE from trailers-only responses and from trailers", async () => {
    const s = await h2connect(ADDR, PORT);
    try {
      const grpc = {
        ":method": "POST",
        ":authority": "svc",
        "content-type": "application/grpc",
        te: "trailers",
      };
      const frame = Buffer.from([0, 0, 0, 0, 0]);
      const fromHeaders = await h2request(
        s,
        { ...grpc, ":path": "/grpc.Retry/Call", "x-test": "headers-n" },
        frame,
      );
      assert.equal(fromHeaders.headers[":status"], 200);
      assert.equal(fromHeaders.headers["x-attempt"], "3");
      assert.equal(fromHeaders.trailers?.["grpc-status"], "0");
      assert.equal(fromHeaders.trailers?.["x-trailer"], "kept");
      const fromTrailers = await h2request(
        s,
        { ...grpc, ":path": "/grpc.Retry/Call", "x-test": "trailers-o" },
        frame,
      );
      assert.equal(fromTrailers.headers["x-attempt"], "3");
      assert.equal(fromTrailers.trailers?.["grpc-status"], "0");
      // Without a retry policy the status reaches the client as the upstream sent it.
      const plain = await h2request(
        s,
        { ...grpc, ":path": "/grpc.NoRetry/Call", "x-test": "trailers-p" },
        frame,
      );
      assert.equal(plain.headers["x-attempt"], "1");
      assert.equal(plain.trailers?.["grpc-status"], "14");
      assert.equal(plain.trailers?.["grpc-message"], "later");
    } finally {
      s.close();
    }
  });

  it("honours grpc-timeout when the route allows it: DEADLINE_EXCEEDED, capped by the route's maximum", async () => {
    const s = await h2connect(ADDR, PORT);
    try {
      const grpc = {
        ":method": "POST",
        ":authority": "svc",
        "content-type": "application/grpc",
        te: "trailers",
      };
      const started = Date.now();
      const r = await h2request(
        s,
        { ...grpc, ":path": "/grpc.Hang/Call", "x-test": "hang-1", "grpc-timeout": "120m" },
        Buffer.alloc(5),
      );
      assert.equal(r.headers[":status"], 200);
      assert.equal(r.headers["grpc-status"], "4");
      assert.equal(r.headers["grpc-message"], "upstream request timeout");
      assert.ok(Date.now() - started < 1000);
      const capped = Date.now();
      const c = await h2request(
        s,
        { ...grpc, ":path": "/grpc.Capped/Call", "x-test": "hang-2", "grpc-timeout": "10S" },
        Buffer.alloc(5),
      );
      assert.equal(c.headers["grpc-status"], "4");
      assert.ok(Date.now() - capped < 1000, "capped at 100 ms, not 10 s");
    } finally {
      s.close();
    }
  });
});
