// Load-balancing behaviour of src/proxy/upstream through UpstreamCluster.pick: distributions with their
// sample sizes and tolerances, consistent hashing under host removal and ejection, panic mode, avoided
// hosts and the retry budget. Least request runs against real servers (one slow, one fast).
import assert from "node:assert/strict";
import http from "node:http";
import { after, describe, it } from "node:test";
import type { Cluster, Endpoint } from "../src/proxy/config/types.js";
import { createClusterManager, type SkeinClusterManager } from "../src/proxy/upstream/cluster-manager.js";
import { xxHash64 } from "../src/proxy/upstream/hash.js";
import { apply, close, cluster, endpoint, listen, readAll, req, sleep } from "./proxy-upstream-helpers.js";

const managers: SkeinClusterManager[] = [];
const servers: http.Server[] = [];
after(async () => {
  for (const cm of managers) await cm.close(0);
  for (const s of servers) await close(s);
});

/** A cluster over endpoints that are never contacted (picks only). */
function setup(c: Cluster, eps: Endpoint[]): SkeinClusterManager {
  const cm = createClusterManager();
  managers.push(cm);
  apply(cm, c, eps);
  return cm;
}

function counts(cm: SkeinClusterManager, name: string, n: number, ctx = {}): Map<number, number> {
  const out = new Map<number, number>();
  const c = cm.get(name);
  assert.ok(c);
  for (let i = 0; i < n; i++) {
    const h = c.pick(ctx);
    assert.ok(h);
    out.set(h.port, (out.get(h.port) ?? 0) + 1);
  }
  return out;
}

const ports = (n: number, from = 9001) => Array.from({ length: n }, (_, i) => from + i);

describe("load balancers", () => {
  it("ROUND_ROBIN: 4 equal hosts, n = 4000 picks, each gets 1000 ± 1", (t) => {
    const cm = setup(
      cluster("rr"),
      ports(4).map((p) => endpoint(p)),
    );
    const got = counts(cm, "rr", 4000);
    t.diagnostic(`counts ${[...got.values()].join(" ")}`);
    assert.equal(got.size, 4);
    for (const [port, k] of got) assert.ok(Math.abs(k - 1000) <= 1, `${port}: ${k}`);
  });

  it("ROUND_ROBIN weighted 3:1: n = 4000 picks split 3000/1000 ± 1, interleaved (no run longer than 3)", (t) => {
    const cm = setup(cluster("wrr"), [endpoint(9001, 3), endpoint(9002, 1)]);
    const c = cm.get("wrr");
    assert.ok(c);
    let heavy = 0;
    let run = 0;
    let longest = 0;
    for (let i = 0; i < 4000; i++) {
      const h = c.pick({});
      if (h?.port === 9001) {
        heavy++;
        longest = Math.max(longest, ++run);
      } else run = 0;
    }
    t.diagnostic(`heavy ${heavy}, light ${4000 - heavy}, longest run ${longest}`);
    assert.ok(Math.abs(heavy - 3000) <= 1, `heavy got ${heavy}`);
    assert.ok(longest <= 3, `longest run ${longest}`);
  });

  it("RANDOM: 4 equal hosts, n = 40000, chi-square (3 dof) below 16.27 (p = 0.001)", (t) => {
    const cm = setup(
      cluster("random", { lbPolicy: "RANDOM" }),
      ports(4).map((p) => endpoint(p)),
    );
    const n = 40_000;
    const got = counts(cm, "random", n);
    assert.equal(got.size, 4);
    let chi = 0;
    for (const k of got.values()) chi += (k - n / 4) ** 2 / (n / 4);
    t.diagnostic(`counts ${[...got.values()].join(" ")}, chi-square ${chi.toFixed(2)}`);
    assert.ok(chi < 16.27, `chi-square ${chi.toFixed(2)} for ${[...got.values()]}`);

    // Weights 3:1: the heavy host's share over n = 40000 is 30000 ± 500 (σ ≈ 87, so ± 5.8σ).
    const w = setup(cluster("wrandom", { lbPolicy: "RANDOM" }), [endpoint(9001, 3), endpoint(9002, 1)]);
    const heavy = counts(w, "wrandom", n).get(9001) ?? 0;
    t.diagnostic(`weighted 3:1: heavy ${heavy} of ${n}`);
    assert.ok(Math.abs(heavy - 30_000) <= 500, `heavy got ${heavy}`);
  });

  it("LEAST_REQUEST prefers the idle host: one slow (150 ms), one fast; 200 requests 2 ms apart, ≥ 80% to the fast one", async (t) => {
    const slow = http.createServer((_rq, rs) => setTimeout(() => rs.end("slow"), 150));
    const fast = http.createServer((_rq, rs) => rs.end("fast"));
    servers.push(slow, fast);
    const slowPort = await listen(slow);
    const fastPort = await listen(fast);
    const cm = setup(cluster("lr", { lbPolicy: "LEAST_REQUEST" }), [endpoint(slowPort), endpoint(fastPort)]);
    const c = cm.get("lr");
    assert.ok(c);
    let toFast = 0;
    const inflight: Promise<unknown>[] = [];
    for (let i = 0; i < 200; i++) {
      const h = c.pick({});
      assert.ok(h);
      if (h.port === fastPort) toFast++;
      inflight.push(h.request(req()).then((r) => readAll(r.body)));
      await sleep(2);
    }
    await Promise.all(inflight);
    t.diagnostic(`fast host got ${toFast} of 200`);
    // Round robin would send 50% to each; with two hosts, two choices always compare both.
    assert.ok(toFast / 200 >= 0.8, `fast host got ${toFast} of 200`);
  });

  for (const policy of ["RING_HASH", "MAGLEV"] as const) {
    it(`${policy}: a key always maps to the same host; removing 1 of 5 hosts moves about 1/5 of 10000 keys`, (t) => {
      const eps = ports(5).map((p) => endpoint(p));
      const c = cluster(`ch-${policy}`, { lbPolicy: policy });
      const cm = setup(c, eps);
      const cl = cm.get(c.name);
      assert.ok(cl);
      const N = 10_000;
      const keys = Array.from({ length: N }, (_, i) => xxHash64(`user-${i}`));
      const before = keys.map((hash) => cl.pick({ hash })?.port);
      // Stable: the same key picks the same host every time.
      for (let i = 0; i < N; i += 7) assert.equal(cl.pick({ hash: keys[i] })?.port, before[i]);
      const share = new Map<number, number>();
      for (const p of before) share.set(p as number, (share.get(p as number) ?? 0) + 1);
      for (const [port, k] of share) assert.ok(k / N > 0.1 && k / N < 0.3, `${port} owns ${k / N}`);

      const removed = 9003;
      apply(
        cm,
        c,
        eps.filter((e) => e.port !== removed),
      );
      let moved = 0;
      let betweenSurvivors = 0;
      for (let i = 0; i < N; i++) {
        const now = cl.pick({ hash: keys[i] })?.port;
        assert.notEqual(now, removed);
        if (now !== before[i]) {
          moved++;
          if (before[i] !== removed) betweenSurvivors++;
        }
      }
      const fraction = moved / N;
      t.diagnostic(
        `shares ${[...share.values()].map((k) => (k / N).toFixed(3)).join(" ")}; moved ${fraction}, ` +
          `between survivors ${betweenSurvivors}`,
      );
      assert.ok(fraction > 0.1 && fraction < 0.3, `moved ${fraction}`);
      if (policy === "RING_HASH") assert.equal(betweenSurvivors, 0, "no key moved between surviving hosts");
      // Maglev's table fill is only near-minimal: a few slots change hands among survivors (0.15% here).
      else assert.ok(betweenSurvivors / N < 0.01, `${betweenSurvivors} keys moved between survivors`);
    });
  }

  it("RING_HASH walks past an unhealthy host to the next one and returns its keys when it recovers", () => {
    const eps = ports(5).map((p) => endpoint(p));
    const c = cluster("ring-health", { lbPolicy: "RING_HASH" });
    const cm = setup(c, eps);
    const cl = cm.get("ring-health");
    assert.ok(cl);
    const keys = Array.from({ length: 2000 }, (_, i) => xxHash64(`k${i}`));
    const before = keys.map((hash) => cl.pick({ hash })?.port);
    apply(
      cm,
      c,
      eps.map((e) => (e.port === 9002 ? { ...e, healthy: false } : e)),
    );
    for (const [i, hash] of keys.entries()) {
      const now: number | undefined = cl.pick({ hash })?.port;
      if (before[i] === 9002) assert.notEqual(now, 9002);
      else assert.equal(now, before[i]);
    }
    apply(cm, c, eps);
    for (const [i, hash] of keys.entries()) assert.equal(cl.pick({ hash })?.port, before[i]);
  });

  it("uses every host in panic mode (healthy share below the threshold) and none without it", () => {
    const eps = ports(4).map((p, i) => endpoint(p, 1, "127.0.0.1", i === 0));
    const panicking = setup(cluster("panic", { panicThreshold: 50 }), eps);
    assert.equal(counts(panicking, "panic", 400).size, 4, "25% healthy < 50%: all four hosts");
    const strict = setup(cluster("nopanic", { panicThreshold: 0 }), eps);
    assert.deepEqual([...counts(strict, "nopanic", 400).keys()], [9001]);
    const none = setup(
      cluster("allbad", { panicThreshold: 0 }),
      eps.map((e) => ({ ...e, healthy: false })),
    );
    assert.equal(none.get("allbad")?.pick({}), undefined);
  });

  it("avoids previously tried hosts when it can, and falls back when it cannot", () => {
    for (const lbPolicy of ["ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH", "MAGLEV"] as const) {
      const cm = setup(
        cluster(`avoid-${lbPolicy}`, { lbPolicy }),
        ports(3).map((p) => endpoint(p)),
      );
      const avoid = new Set(["127.0.0.1:9001"]);
      for (let i = 0; i < 300; i++) {
        const h = cm.get(`avoid-${lbPolicy}`)?.pick({ avoid, hash: xxHash64(`k${i}`) });
        assert.ok(h && h.port !== 9001, `${lbPolicy} picked an avoided host`);
      }
      const all = new Set(["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"]);
      assert.ok(cm.get(`avoid-${lbPolicy}`)?.pick({ avoid: all }), `${lbPolicy} found no host`);
    }
  });

  it("enforces max_retries through tryRetry/retryDone", () => {
    const cm = setup(
      cluster("budget", {
        circuitBreakers: { maxConnections: 1, maxPendingRequests: 1, maxRequests: 1, maxRetries: 2 },
      }),
      [endpoint(9001)],
    );
    const c = cm.get("budget");
    assert.ok(c);
    assert.equal(c.tryRetry(), true);
    assert.equal(c.tryRetry(), true);
    assert.equal(c.tryRetry(), false);
    c.retryDone();
    assert.equal(c.tryRetry(), true);
    assert.equal(cm.stats().budget?.retryOverflowsTotal, 1);
    assert.equal(cm.stats().budget?.retriesActive, 2);
  });
});
