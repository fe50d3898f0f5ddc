// The dashboard's telemetry: the Prometheus text parser, histogram_quantile as Prometheus computes it,
// per-edge rates from the last two scrapes (destination reports preferred, counter resets, new series),
// recent errors, and the scraper against real local HTTP servers (timeouts and bad bodies included).
import assert from "node:assert/strict";
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, test } from "node:test";
import {
  counterDelta,
  type EdgeTraffic,
  histogramQuantile,
  joinHalfEdges,
  parsePrometheusText,
  seriesKey,
  summarize,
  TelemetryCodes,
  TelemetryScraper,
  TelemetryWindow,
} from "../src/control-plane/telemetry.js";
import { allUnder, metricsText, type Peer, type SeriesSpec } from "./dashboard-fixtures.js";

const NS = "production";
const gateway: Peer = { ns: NS, workload: "api-gateway-v1", version: "v1" };
const orderV1: Peer = { ns: NS, workload: "order-service-v1", version: "v1" };
const payment: Peer = { ns: NS, workload: "payment-service-v1", version: "v1" };

test("parses the exposition format: comments, escapes, +Inf/NaN, timestamps, labels-free samples", () => {
  const samples = parsePrometheusText(
    [
      "# HELP x_total A counter.",
      "# TYPE x_total counter",
      'x_total{path="/a \\"b\\"",note="line1\\nline2",back="c:\\\\d"} 12 1700000000000',
      "up 1",
      'h_bucket{le="+Inf"} +Inf',
      'g{a="1",} NaN',
      "  ",
      "neg -3.5e2\r",
    ].join("\n"),
  );
  assert.equal(samples.length, 5);
  assert.deepEqual(samples[0], {
    name: "x_total",
    labels: { path: '/a "b"', note: "line1\nline2", back: "c:\\d" },
    value: 12,
  });
  assert.deepEqual(samples[1], { name: "up", labels: {}, value: 1 });
  assert.equal(samples[2]?.value, Number.POSITIVE_INFINITY);
  assert.ok(Number.isNaN(samples[3]?.value));
  assert.deepEqual(samples[3]?.labels, { a: "1" });
  assert.equal(samples[4]?.value, -350);
});

test("a malformed line is SKEIN_E_TELEMETRY_PARSE naming its line", () => {
  for (const [text, line] of [
    ["ok 1\nbad{a=1} 2", 2],
    ['ok 1\n\nx{a="unterminated} 1', 3],
    ["x_total{} abc", 1],
    ['{a="b"} 1', 1],
    ["x 1 2 3", 1],
  ] as const) {
    assert.throws(
      () => parsePrometheusText(text),
      (err: Error & { code?: string }) =>
        err.code === TelemetryCodes.PARSE && err.message.startsWith(`line ${line}:`),
      text,
    );
  }
});

test("histogram_quantile: interpolates inside the bucket, +Inf answers the highest finite bound", () => {
  const b = (o: Record<string, number>) =>
    new Map(Object.entries(o).map(([k, v]) => [k === "+Inf" ? Number.POSITIVE_INFINITY : Number(k), v]));
  // rank 99 of 100 falls in (50, 100] holding 20 (80..100): 50 + 50 · 19/20.
  assert.equal(histogramQuantile(0.99, b({ 10: 0, 25: 40, 50: 80, 100: 100, "+Inf": 100 })), 97.5);
  // The median: rank 50 in (25, 50] holding 40 (40..80): 25 + 25 · 10/40.
  assert.equal(histogramQuantile(0.5, b({ 10: 0, 25: 40, 50: 80, 100: 100, "+Inf": 100 })), 31.25);
  // In the first bucket: lower bound 0.
  assert.equal(histogramQuantile(0.5, b({ 10: 100, "+Inf": 100 })), 5);
  assert.equal(histogramQuantile(0.99, b({ 10: 90, "+Inf": 100 })), 10);
  assert.equal(histogramQuantile(0.99, b({ 10: 0, "+Inf": 0 })), null);
  assert.equal(histogramQuantile(0.99, b({ 10: 5, 20: 7 })), null, "no +Inf bucket");
});

test("counter deltas: increase, restart (drop) counts from zero, a new series counts whole", () => {
  assert.equal(counterDelta(100, 130), 30);
  assert.equal(counterDelta(500, 20), 20);
  assert.equal(counterDelta(undefined, 7), 7);
  assert.equal(counterDelta(3, Number.NaN), 0);
});

function scrape(w: TelemetryWindow, target: string, at: number, series: SeriesSpec[]): void {
  w.record(target, at, parsePrometheusText(metricsText(series)));
}

test("edges over the window: destination reports win, rates per second, 5xx share, p99 from bucket deltas", () => {
  const w = new TelemetryWindow();
  const t0 = 1_000_000;
  const t1 = t0 + 10_000;
  const ok = (count: number, buckets: Record<number, number>): SeriesSpec => ({
    reporter: "destination",
    src: gateway,
    dst: orderV1,
    service: "order-service",
    mtls: true,
    count,
    buckets,
  });
  // order-service v1's sidecar: 100 → 150 OK (40 more under 25 ms, 10 in (100, 250]), 0 → 5 503s.
  scrape(w, "order-v1", t0, [ok(100, allUnder(25, 100))]);
  const later = allUnder(25, 140);
  for (const le of [250, 500, 1000, 2500, 5000, 10000]) later[le] = 150;
  scrape(w, "order-v1", t1, [ok(150, later), { ...ok(5, {}), code: "503", buckets: undefined }]);
  // The gateway's sidecar saw the same edge differently (its numbers must not count) and calls payment,
  // whose sidecar is not scraped: that edge comes from the source report.
  const fromGateway = (dst: Peer, service: string, count: number): SeriesSpec => ({
    reporter: "source",
    src: gateway,
    dst,
    service,
    count,
  });
  scrape(w, "gateway", t0, [
    fromGateway(orderV1, "order-service", 100),
    fromGateway(payment, "payment-service", 10),
  ]);
  scrape(w, "gateway", t1, [
    fromGateway(orderV1, "order-service", 200),
    fromGateway(payment, "payment-service", 30),
  ]);

  assert.equal(w.windowSeconds(), 10);
  const edges = w.edges();
  assert.equal(edges.length, 2);
  const toOrder = edges.find((e) => e.destination.workload === "order-service-v1");
  assert.ok(toOrder);
  assert.equal(toOrder.reporter, "destination");
  const s = summarize([toOrder]);
  assert.equal(s.rps, 5.5);
  assert.equal(s.errorRate, 5 / 55);
  assert.equal(s.mtlsShare, 1);
  // 50 observations in the window: rank 49.5 lands in (100, 250] holding 10 (40..50): 100 + 150 · 9.5/10.
  assert.ok(Math.abs((s.p99Ms ?? 0) - 242.5) < 1e-9, `p99 ${s.p99Ms}`);

  const toPayment = edges.find((e) => e.destination.workload === "payment-service-v1");
  assert.ok(toPayment);
  assert.equal(toPayment.reporter, "source");
  assert.equal(summarize([toPayment]).rps, 2);
  assert.equal(summarize([toPayment]).p99Ms, null);
});

test("replicas add up; a restarted sidecar counts from zero; forgotten targets drop out", () => {
  const w = new TelemetryWindow();
  const series = (count: number): SeriesSpec[] => [
    { reporter: "destination", src: gateway, dst: orderV1, service: "order-service", count },
  ];
  scrape(w, "a", 0, series(100));
  scrape(w, "a", 5000, series(150)); // 10 rps
  scrape(w, "b", 0, series(500));
  scrape(w, "b", 4000, series(20)); // restarted: 20 in 4 s = 5 rps
  assert.equal(summarize(w.edges()).rps, 15);
  w.retain(new Set(["a"]));
  assert.equal(summarize(w.edges()).rps, 10);
  // One scrape only: no window yet, the edge is known with no rate.
  const fresh = new TelemetryWindow();
  scrape(fresh, "a", 0, series(100));
  assert.equal(fresh.windowSeconds(), undefined);
  assert.equal(summarize(fresh.edges()).rps, 0);
});

test("recent errors: what the destination saw, plus errors the source's proxy made itself", () => {
  const w = new TelemetryWindow();
  const base: SeriesSpec = {
    reporter: "destination",
    src: gateway,
    dst: orderV1,
    service: "order-service",
    count: 0,
  };
  const at = (n: number, flagged: number, plain: number): SeriesSpec[] => [
    { ...base, code: "500", count: n },
    { ...base, reporter: "source", code: "503", flags: "UF", count: flagged },
    { ...base, reporter: "source", code: "500", count: plain },
    { ...base, code: "404", count: n * 10 },
  ];
  scrape(w, "x", 0, at(1, 0, 1));
  scrape(w, "x", 3000, at(4, 2, 4));
  const errors = w.recentErrors();
  assert.deepEqual(errors.map((e) => [e.reporter, e.responseCode, e.responseFlags, e.count]).sort(), [
    ["destination", "500", undefined, 3],
    ["source", "503", "UF", 2],
  ]);
  assert.equal(errors[0]?.at, 3000);
  // No new errors in the next window: the list keeps the old ones.
  scrape(w, "x", 6000, at(4, 2, 4));
  assert.equal(w.recentErrors().length, 2);
});

test("seriesKey ignores label order", () => {
  assert.equal(seriesKey("a", { x: "1", y: "2" }), seriesKey("a", { y: "2", x: "1" }));
  assert.notEqual(seriesKey("a", { x: "1" }), seriesKey("a", { x: "2" }));
});

const servers: Server[] = [];
after(() => {
  for (const s of servers) s.closeAllConnections();
  for (const s of servers) s.close();
});

async function serve(handler: RequestListener): Promise<number> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as AddressInfo).port;
}

test("the scraper reads /stats/prometheus from each target; slow and broken targets are failures, bounded", async () => {
  let count = 100;
  const port = await serve((req, res) => {
    if (req.url !== "/stats/prometheus") return res.writeHead(404).end();
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(
      metricsText([{ reporter: "destination", src: gateway, dst: orderV1, service: "order-service", count }]),
    );
  });
  const scraper = new TelemetryScraper({ targets: () => [{ id: "p1", address: "127.0.0.1" }], port });
  await scraper.scrapeOnce();
  count = 130;
  await new Promise((r) => setTimeout(r, 50));
  await scraper.scrapeOnce();
  const dt = scraper.window.windowSeconds();
  assert.ok(dt && dt > 0);
  const rps = summarize(scraper.window.edges()).rps;
  assert.ok(Math.abs(rps * dt - 30) < 1e-6, `rps ${rps} over ${dt} s`);
  assert.deepEqual(scraper.health().failures, []);
  assert.equal(scraper.health().ok, 1);

  // A target that never answers and one that answers garbage: both fail, the round ends.
  const hang = await serve(() => undefined);
  const slow = new TelemetryScraper({
    targets: () => [{ id: "hang", address: "127.0.0.1" }],
    port: hang,
    timeoutMs: 300,
  });
  const started = Date.now();
  await slow.scrapeOnce();
  assert.ok(Date.now() - started < 5000);
  assert.equal(slow.health().ok, 0);
  assert.equal(slow.health().failures[0]?.target, "hang");

  const garbage = await serve((_req, res) => res.end("this is { not metrics\n"));
  const bad = new TelemetryScraper({ targets: () => [{ id: "g", address: "127.0.0.1" }], port: garbage });
  await bad.scrapeOnce();
  assert.match(bad.health().failures[0]?.error ?? "", /^line 1:/);
});

test("without peer metadata the halves join: sources' calls spread over the service's workloads by what they saw", () => {
  const w = new TelemetryWindow();
  const unknownPeer: Peer = { ns: "unknown", workload: "unknown", version: "unknown" };
  const orderV2: Peer = { ns: NS, workload: "order-service-v2", version: "v2" };
  // What the sidecars report today without metadata exchange: destinations see `unknown` callers, sources
  // see only the service. Gateway: 10 rps to order-service (1 rps failing at its own proxy, flag UF); order
  // v1 saw 6 rps, v2 saw 3 rps (8% 5xx) and 1 rps more from outside the mesh (v1 + v2 = 10 = 9 + 1).
  const at = (k: number): [string, SeriesSpec[]][] => [
    [
      "gateway",
      [
        {
          reporter: "source",
          src: gateway,
          dst: unknownPeer,
          service: "order-service",
          serviceNs: NS,
          count: 90 * k,
        },
        {
          reporter: "source",
          src: gateway,
          dst: unknownPeer,
          service: "order-service",
          serviceNs: NS,
          code: "503",
          flags: "UF",
          count: 10 * k,
        },
      ],
    ],
    [
      "v1",
      [
        {
          reporter: "destination",
          src: unknownPeer,
          dst: orderV1,
          service: "order-service",
          count: 60 * k,
          buckets: allUnder(5, 60 * k),
        },
      ],
    ],
    [
      "v2",
      [
        {
          reporter: "destination",
          src: unknownPeer,
          dst: orderV2,
          service: "order-service",
          count: 37 * k,
          buckets: allUnder(50, 37 * k),
        },
        {
          reporter: "destination",
          src: unknownPeer,
          dst: orderV2,
          service: "order-service",
          code: "500",
          count: 3 * k,
        },
      ],
    ],
  ];
  for (const [target, series] of at(1)) scrape(w, target, 0, series);
  for (const [target, series] of at(2)) scrape(w, target, 10_000, series);
  const joined = joinHalfEdges(w.edges());
  const find = (src: string, dst: string) =>
    joined.filter((e) => e.source.workload === src && e.destination.workload === dst);
  const toV1 = summarize(find("api-gateway-v1", "order-service-v1"));
  const toV2 = summarize(find("api-gateway-v1", "order-service-v2"));
  // 10 rps from the gateway, spread 6 : 4.
  assert.ok(Math.abs(toV1.rps - 6) < 1e-9 && Math.abs(toV2.rps - 4) < 1e-9, `${toV1.rps} ${toV2.rps}`);
  // 5xx: the larger of the gateway's own 10% and the workload's (v1 0%, v2 7.5%).
  assert.ok(Math.abs(toV1.errorRate - 0.1) < 1e-9);
  assert.ok(Math.abs(toV2.errorRate - 0.1) < 1e-9);
  // Latency from the workload's own buckets.
  assert.ok((toV1.p99Ms ?? 99) <= 5 && (toV2.p99Ms ?? 0) > 25, `${toV1.p99Ms} ${toV2.p99Ms}`);
  // 10 seen, 10 sent by known sources: no `unknown` callers left over (0 ≤ noise).
  assert.deepEqual(find("unknown", "order-service-v1"), []);

  // With only 5 rps from the gateway against 10 seen, half of each workload's traffic is from outside.
  const half = joinHalfEdges(
    w.edges().map((e) => (e.reporter === "source" ? { ...e, rps: e.rps / 2, errorRps: e.errorRps / 2 } : e)),
  );
  const outside = summarize(
    half.filter((e) => e.source.workload === "unknown" && e.destination.workload === "order-service-v1"),
  );
  assert.ok(Math.abs(outside.rps - 3) < 1e-9, `outside ${outside.rps}`);
  // Complete edges (metadata exchanged) pass through untouched.
  const complete = {
    ...(w.edges()[0] as EdgeTraffic),
    source: { namespace: gateway.ns, workload: gateway.workload, version: gateway.version },
    destination: { namespace: orderV1.ns, workload: orderV1.workload, version: orderV1.version },
    reporter: "destination" as const,
  };
  assert.deepEqual(joinHalfEdges([complete]), [complete]);
});

test("peers read the canonical service, else the app label; `unknown` is no name", () => {
  const w = new TelemetryWindow();
  const text = metricsText([
    { reporter: "destination", src: gateway, dst: orderV1, service: "order-service", count: 1 },
  ])
    .replace('source_workload="api-gateway-v1"', 'source_workload="api-gateway-v1",source_app="api-gateway"')
    .replace(
      'destination_workload="order-service-v1"',
      'destination_workload="order-service-v1",destination_app="unknown"',
    );
  w.record("x", 0, parsePrometheusText(text));
  const [e] = w.edges();
  assert.equal(e?.source.canonicalService, "api-gateway");
  assert.equal(e?.destination.canonicalService, undefined);
});
