// The router through a real sidecar outbound listener to real upstream servers: routing by every kind of
// match, header mutations, rewrites, redirects, direct responses, a weighted split, request decoration,
// and the local replies (404 NR, 503 UH, 503 UF, 503 NC, gRPC-shaped).
import assert from "node:assert/strict";
import { once } from "node:events";
import { Agent } from "node:http";
import { createServer as createH2Server, type Http2Server } from "node:http2";
import { after, before, describe, it } from "node:test";
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
  route,
  routeAction,
  routeTable,
  runtimeConfig,
  Sidecar,
  type Upstream,
  until,
  virtualHost,
} from "./proxy-router-fixtures.js";

const ADDR = "127.0.71.1";
const PORT = 15001;
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const mut = (add: [string, string, boolean?][], remove: string[] = []) => ({
  add: add.map(([name, value, append]) => ({ name, value, append: append ?? false })),
  remove,
});

describe("router over a real outbound listener", () => {
  const sidecar = new Sidecar();
  const upstreams: Record<string, Upstream> = {};
  let h2Upstream: Http2Server;
  let deadPort: number;
  const agent = new Agent({ keepAlive: true, maxSockets: 16 });

  const echo = (r: { body: string }): Echo => JSON.parse(r.body) as Echo;
  const get = (authority: string, path = "/", headers: Record<string, string> = {}) =>
    request(ADDR, PORT, { path, headers: { host: authority, ...headers }, agent });

  before(async () => {
    for (const name of [
      "default",
      "exact",
      "regex",
      "header",
      "query",
      "v1",
      "v2",
      "rewrite",
      "mutate",
      "wild",
      "prefix",
      "any",
    ]) {
      upstreams[name] = await echoServer(name);
    }
    h2Upstream = createH2Server();
    h2Upstream.on("stream", (stream, headers) => {
      stream.respond(
        { ":status": 200, "content-type": "text/plain", "x-path": String(headers[":path"]) },
        { waitForTrailers: true },
      );
      stream.once("wantTrailers", () => stream.sendTrailers({ "x-checksum": "abc123", "x-count": "3" }));
      stream.end("one two three");
    });
    h2Upstream.listen(0, "127.0.0.1");
    await once(h2Upstream, "listening");
    deadPort = await freePort();

    const c = (name: string) => routeAction(`c-${name}`);
    const shop = virtualHost(
      "shop",
      ["shop.production:8080", "shop"],
      [
        route(
          "exact",
          { ...prefixMatch(), path: { kind: "path", value: "/exact", caseSensitive: true } },
          c("exact"),
        ),
        route("regex", { ...prefixMatch(), path: { kind: "regex", regex: /^\/items\/[0-9]+$/ } }, c("regex")),
        route(
          "header",
          prefixMatch("/", {
            headers: [
              { name: "x-canary", match: { kind: "exact", value: "true", ignoreCase: false }, invert: false },
            ],
          }),
          c("header"),
        ),
        route(
          "query",
          prefixMatch("/", {
            queryParameters: [{ name: "tier", match: { kind: "exact", value: "gold", ignoreCase: false } }],
          }),
          c("query"),
        ),
        route(
          "split",
          prefixMatch("/split"),
          routeAction([
            { name: "c-v1", weight: 90 },
            { name: "c-v2", weight: 10 },
          ]),
        ),
        route(
          "rewrite",
          prefixMatch("/api/v1/"),
          routeAction("c-rewrite", { prefixRewrite: "/v1/", hostRewrite: "backend.internal" }),
        ),
        route(
          "regex-rewrite",
          prefixMatch("/users/"),
          routeAction("c-rewrite", {
            regexRewrite: { regex: /^\/users\/([0-9]+)\/profile$/g, substitution: "/profiles/$1" },
          }),
        ),
        route(
          "mutate",
          prefixMatch("/mutate"),
          routeAction([
            {
              name: "c-mutate",
              weight: 1,
              requestHeaders: mut([
                ["x-level", "cluster"],
                ["x-cluster", "yes"],
              ]),
              responseHeaders: mut([["x-resp-cluster", "yes"]]),
            },
          ]),
          {
            requestHeaders: mut(
              [
                ["x-level", "route"],
                ["x-route", "yes"],
              ],
              ["x-secret"],
            ),
            responseHeaders: mut(
              [
                ["x-resp-route", "yes"],
                ["x-multi", "route", true],
              ],
              ["x-upstream"],
            ),
          },
        ),
        route("redirect", prefixMatch("/old/"), {
          kind: "redirect",
          status: 301,
          prefixRewrite: "/new/",
          stripQuery: false,
        }),
        route(
          "direct",
          prefixMatch("/health"),
          { kind: "direct", status: 200, body: "healthy\n" },
          {
            responseHeaders: mut([["x-direct", "yes"]]),
          },
        ),
        route("no-healthy", prefixMatch("/nohealthy"), c("empty")),
        route("dead", prefixMatch("/dead"), c("dead")),
        route("unknown-cluster", prefixMatch("/nocluster"), c("missing")),
        route("h2", prefixMatch("/h2"), c("h2")),
        route("default", prefixMatch("/"), c("default")),
      ],
      {
        requestHeaders: mut([
          ["x-level", "vhost"],
          ["x-vhost", "yes"],
        ]),
        responseHeaders: mut([["x-multi", "vhost", true]]),
      },
    );
    const table = routeTable(
      "http_proxy",
      [
        shop,
        virtualHost("wild", ["*.example.com"], [route("wild", prefixMatch(), c("wild"))]),
        virtualHost("prefix", ["api.*"], [route("prefix", prefixMatch(), c("prefix"))]),
        virtualHost(
          "nothing-under-slash",
          ["narrow.local"],
          [route("only-x", prefixMatch("/x"), c("default"))],
        ),
        virtualHost("any", ["*"], [route("any", prefixMatch("/any"), c("any"))]),
      ],
      {
        requestHeaders: mut([
          ["x-level", "table"],
          ["x-table", "yes"],
        ]),
      },
    );
    const names = Object.keys(upstreams);
    await sidecar.apply(
      runtimeConfig({
        listeners: [httpListener("virtualOutbound", ADDR, PORT, "http_proxy")],
        routes: [table],
        clusters: [
          ...names.map((n) => cluster(`c-${n}`)),
          cluster("c-empty"),
          cluster("c-dead"),
          cluster("c-h2", { http2: true }),
        ],
        endpoints: {
          ...Object.fromEntries(names.map((n) => [`c-${n}`, [endpoint((upstreams[n] as Upstream).port)]])),
          "c-empty": [],
          "c-dead": [endpoint(deadPort)],
          "c-h2": [endpoint((h2Upstream.address() as { port: number }).port)],
        },
      }),
    );
  });

  after(async () => {
    agent.destroy();
    await sidecar.close();
    for (const u of Object.values(upstreams)) await u.close();
    h2Upstream.close();
  });

  it("routes by exact path, regex, header, query parameter, then the fallback", async () => {
    assert.equal(echo(await get("shop.production:8080", "/exact")).name, "exact");
    assert.equal(echo(await get("shop.production:8080", "/exact/more")).name, "default");
    assert.equal(echo(await get("shop", "/items/17")).name, "regex");
    assert.equal(echo(await get("shop", "/items/17x")).name, "default");
    assert.equal(echo(await get("shop:8080", "/anything", { "x-canary": "true" })).name, "header");
    assert.equal(echo(await get("shop:8080", "/anything?tier=gold")).name, "query");
    assert.equal(echo(await get("shop:8080", "/anything?tier=silver")).name, "default");
  });

  it("routes by domain: exact with port, wildcard suffix and prefix, catch-all", async () => {
    assert.equal(echo(await get("shop.production:8080")).name, "default");
    assert.equal(echo(await get("cart.example.com:80")).name, "wild");
    assert.equal(echo(await get("api.anything")).name, "prefix");
    assert.equal(echo(await get("somewhere-else:9090", "/any/thing")).name, "any");
  });

  it("accepts absolute-form targets (HTTP_PROXY clients) and routes by their authority", async () => {
    const r = await request(ADDR, PORT, {
      path: "http://shop.production:8080/items/9?x=1",
      headers: { host: "not-used" },
      agent,
    });
    const e = echo(r);
    assert.equal(e.name, "regex");
    assert.equal(e.url, "/items/9?x=1");
    assert.equal(e.headers.host, "shop.production:8080");
  });

  it("decorates the upstream request: x-request-id (UUID v4, kept when given), x-forwarded-proto, attempt count; drops hop-by-hop headers", async () => {
    const e = echo(
      await get("shop", "/", {
        connection: "keep-alive, x-private",
        "x-private": "secret",
        "keep-alive": "timeout=5",
      }),
    );
    assert.match(String(e.headers["x-request-id"]), UUID_V4);
    assert.equal(e.headers["x-forwarded-proto"], "http");
    assert.equal(e.headers["x-envoy-attempt-count"], "1");
    assert.equal(e.headers["x-private"], undefined);
    assert.equal(e.headers["keep-alive"], undefined);
    const given = echo(await get("shop", "/", { "x-request-id": "abc-123" }));
    assert.equal(given.headers["x-request-id"], "abc-123");
  });

  it("applies header mutations of weighted cluster, route, virtual host and table, the table's last", async () => {
    const r = await get("shop", "/mutate", { "x-secret": "s3cr3t" });
    const e = echo(r);
    assert.equal(e.headers["x-level"], "table");
    for (const h of ["x-cluster", "x-route", "x-vhost", "x-table"]) assert.equal(e.headers[h], "yes", h);
    assert.equal(e.headers["x-secret"], undefined);
    assert.equal(r.headers["x-resp-cluster"], "yes");
    assert.equal(r.headers["x-resp-route"], "yes");
    assert.equal(r.headers["x-upstream"], undefined);
    assert.equal(r.headers["x-multi"], "route, vhost");
    assert.match(String(r.headers["x-envoy-upstream-service-time"]), /^\d+$/);
  });

  it("rewrites the prefix and the host, or the path by regex", async () => {
    const e = echo(await get("shop", "/api/v1/users?limit=2"));
    assert.equal(e.name, "rewrite");
    assert.equal(e.url, "/v1/users?limit=2");
    assert.equal(e.headers.host, "backend.internal");
    const r = echo(await get("shop", "/users/42/profile?x=1"));
    assert.equal(r.url, "/profiles/42?x=1");
    assert.equal(r.headers.host, "shop");
  });

  it("answers redirects and direct responses itself", async () => {
    const r = await get("shop:8080", "/old/page?id=1");
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, "http://shop:8080/new/page?id=1");
    const d = await get("shop", "/health");
    assert.equal(d.status, 200);
    assert.equal(d.body, "healthy\n");
    assert.equal(d.headers["x-direct"], "yes");
  });

  it("splits 90/10 by weight (n = 2000, v2 share within 0.10 ± 0.025, > 3.5 standard deviations)", async () => {
    const n = 2000;
    let v2 = 0;
    const batch = 50;
    for (let i = 0; i < n; i += batch) {
      const replies = await Promise.all(Array.from({ length: batch }, () => get("shop", "/split")));
      for (const r of replies) if (echo(r).name === "v2") v2++;
    }
    const share = v2 / n;
    assert.ok(Math.abs(share - 0.1) <= 0.025, `v2 share ${share}`);
  });

  it("404 NR when no virtual host or no route matches", async () => {
    const before = sidecar.completed.length;
    const noVhost = await request(ADDR, PORT, { headers: { host: "narrow.local" }, path: "/y", agent });
    assert.equal(noVhost.status, 404);
    assert.equal(noVhost.body, "");
    const noRoute = await get("other.host", "/not-any");
    assert.equal(noRoute.status, 404);
    await until(() => sidecar.completed.length >= before + 2);
    const flags = sidecar.completed.slice(before).map((i) => formatResponseFlags(i.responseFlags));
    assert.deepEqual(flags, ["NR", "NR"]);
  });

  it("503 UH when the cluster has no healthy host, 503 UF when the host refuses, 503 NC for an unknown cluster", async () => {
    const before = sidecar.completed.length;
    const uh = await get("shop", "/nohealthy");
    assert.equal(uh.status, 503);
    assert.equal(uh.body, "no healthy upstream");
    const uf = await get("shop", "/dead");
    assert.equal(uf.status, 503);
    assert.equal(
      uf.body,
      "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
    );
    const nc = await get("shop", "/nocluster");
    assert.equal(nc.status, 503);
    await until(() => sidecar.completed.length >= before + 3);
    const infos = sidecar.completed.slice(before);
    assert.deepEqual(
      infos.map((i) => formatResponseFlags(i.responseFlags)),
      ["UH", "UF", "NC"],
    );
    assert.equal(infos[1]?.upstreamHost, `127.0.0.1:${deadPort}`);
  });

  it("gives gRPC requests gRPC-shaped local replies (HTTP 200, trailers-only grpc-status)", async () => {
    const s = await h2connect(ADDR, PORT);
    try {
      const grpc = { ":method": "POST", "content-type": "application/grpc", te: "trailers" };
      const nr = await h2request(
        s,
        { ...grpc, ":path": "/pkg.Svc/Method", ":authority": "narrow.local" },
        Buffer.alloc(5),
      );
      assert.equal(nr.headers[":status"], 200);
      assert.equal(nr.headers["grpc-status"], "12");
      assert.equal(nr.trailers, undefined);
      const uh = await h2request(
        s,
        { ...grpc, ":path": "/nohealthy", ":authority": "shop" },
        Buffer.alloc(5),
      );
      assert.equal(uh.headers["grpc-status"], "14");
      assert.equal(uh.headers["grpc-message"], "no healthy upstream");
    } finally {
      s.close();
    }
  });

  it("forwards response trailers to HTTP/2 clients (h2c upstream)", async () => {
    const s = await h2connect(ADDR, PORT);
    try {
      const r = await h2request(s, { ":path": "/h2/stream", ":authority": "shop" });
      assert.equal(r.headers[":status"], 200);
      assert.equal(r.headers["x-path"], "/h2/stream");
      assert.equal(r.body, "one two three");
      assert.equal(r.trailers?.["x-checksum"], "abc123");
      assert.equal(r.trailers?.["x-count"], "3");
    } finally {
      s.close();
    }
  });

  it("streams large request and response bodies both ways", async () => {
    const big = "x".repeat(3 * 1024 * 1024);
    const r = await request(ADDR, PORT, { path: "/", headers: { host: "shop" }, body: big, agent });
    const e = echo(r);
    assert.equal(e.body.length, big.length);
    assert.equal(e.method, "POST");
  });

  it("records the request on its StreamInfo", async () => {
    const before = sidecar.completed.length;
    await get("shop", "/exact");
    await until(() => sidecar.completed.length > before);
    const info = sidecar.completed[before];
    assert.ok(info);
    assert.equal(info.responseCode, 200);
    assert.equal(info.responseFlags, 0);
    assert.equal(info.cluster, "c-exact");
    assert.equal(info.routeName, "exact");
    assert.equal(info.virtualHost, "shop");
    assert.equal(info.attempts, 1);
    assert.equal(info.protocol, "HTTP/1.1");
    assert.equal(info.responseCodeDetails, "via_upstream");
    assert.ok(info.upstreamResponseStart >= info.upstreamRequestStart);
    assert.ok(info.durationMs >= info.upstreamResponseStart);
  });
});
