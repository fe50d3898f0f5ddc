// Outlier detection in src/proxy/upstream against real servers: a host answering 5xx is ejected after the
// configured consecutive failures and returns after base_ejection_time (longer on a second ejection);
// max_ejection_percent caps ejections; local-origin failures have their own counter when split.
import assert from "node:assert/strict";
import http from "node:http";
import { after, describe, it } from "node:test";
import type { OutlierDetection } from "../src/proxy/config/types.js";
import { createClusterManager, type SkeinClusterManager } from "../src/proxy/upstream/cluster-manager.js";
import type { Host } from "../src/proxy/upstream/types.js";
import { apply, close, cluster, endpoint, listen, readAll, req, sleep } from "./proxy-upstream-helpers.js";

const managers: SkeinClusterManager[] = [];
const servers: http.Server[] = [];
after(async () => {
  for (const cm of managers) await cm.close(0);
  for (const s of servers) await close(s);
});

async function statusServer(status: number): Promise<number> {
  const s = http.createServer((_rq, rs) => {
    rs.statusCode = status;
    rs.end(String(status));
  });
  servers.push(s);
  return listen(s);
}

function detection(overrides: Partial<OutlierDetection> = {}): OutlierDetection {
  return {
    consecutive5xx: 3,
    intervalMs: 20,
    baseEjectionTimeMs: 300,
    maxEjectionPercent: 50,
    enforcingConsecutive5xx: 100,
    enforcingConsecutiveGatewayFailure: 0,
    ...overrides,
  };
}

/** Sends a request to `host` and reports its outcome, as the router does. */
async function attempt(host: Host): Promise<number> {
  const r = await host.request(req());
  await readAll(r.body);
  host.report({ kind: "response", status: r.status });
  return r.status;
}

describe("outlier detection", () => {
  it("ejects after 3 consecutive 5xx, routes around the host, and returns it after base_ejection_time", async (t) => {
    const bad = await statusServer(500);
    const good = await statusServer(200);
    const cm = createClusterManager();
    managers.push(cm);
    apply(cm, cluster("od", { outlierDetection: detection() }), [endpoint(bad), endpoint(good)]);
    const c = cm.get("od");
    assert.ok(c);
    const badHost = c.pick({ avoid: new Set([`127.0.0.1:${good}`]) });
    assert.equal(badHost?.port, bad);
    assert.ok(badHost);

    // Two failures, a success in between resets the count; then three in a row eject.
    await attempt(badHost);
    await attempt(badHost);
    badHost.report({ kind: "response", status: 200 });
    await attempt(badHost);
    await attempt(badHost);
    assert.equal(c.hosts()[0]?.ejected, false);
    await attempt(badHost);
    const ejectedAt = Date.now();
    assert.equal(c.hosts()[0]?.ejected, true);
    assert.equal(c.hosts()[0]?.ejections, 1);
    assert.equal(cm.stats().od?.ejectedHosts, 1);
    for (let i = 0; i < 100; i++) assert.equal(c.pick({})?.port, good);

    while (c.hosts()[0]?.ejected && Date.now() - ejectedAt < 3000) await sleep(10);
    const back = Date.now() - ejectedAt;
    assert.equal(c.hosts()[0]?.ejected, false, "returned");
    assert.ok(back >= 290, `returned after ${back} ms, base ejection time is 300 ms`);
    const picked = new Set(Array.from({ length: 10 }, () => c.pick({})?.port));
    assert.ok(picked.has(bad), "picked again");

    // Ejected again at once: this time for 2 × 300 ms.
    for (let i = 0; i < 3; i++) await attempt(badHost);
    const again = Date.now();
    assert.equal(c.hosts()[0]?.ejected, true);
    while (c.hosts()[0]?.ejected && Date.now() - again < 3000) await sleep(10);
    const second = Date.now() - again;
    assert.ok(second >= 590, `second ejection lasted ${second} ms, expected 600`);
    t.diagnostic(`returned after ${back} ms (base 300), then after ${second} ms (2 × 300)`);
    assert.equal(cm.stats().od?.ejectionsTotal, 2);
    assert.equal(cm.stats().od?.responses5xx, 8);
    assert.equal(cm.stats().od?.responses2xx, 1);
  });

  it("caps ejections at max_ejection_percent (but always allows one)", async () => {
    const bad = [await statusServer(503), await statusServer(503), await statusServer(503)];
    const good = await statusServer(200);
    const cm = createClusterManager();
    managers.push(cm);
    apply(
      cm,
      cluster("cap", { outlierDetection: detection({ maxEjectionPercent: 50, baseEjectionTimeMs: 10_000 }) }),
      [...bad.map((p) => endpoint(p)), endpoint(good)],
    );
    const c = cm.get("cap");
    assert.ok(c);
    for (const port of bad) {
      const host = c.pick({
        avoid: new Set(
          c
            .hosts()
            .filter((h) => !h.key.endsWith(`:${port}`))
            .map((h) => h.key),
        ),
      });
      assert.equal(host?.port, port);
      assert.ok(host);
      for (let i = 0; i < 3; i++) await attempt(host);
    }
    // 1 of 4 (25%) and 2 of 4 (50%) are allowed; a third (75%) is not.
    assert.equal(c.hosts().filter((h) => h.ejected).length, 2);

    const solo = await statusServer(500);
    apply(cm, cluster("one", { outlierDetection: detection({ maxEjectionPercent: 10 }) }), [
      endpoint(solo),
      endpoint(good),
    ]);
    const o = cm.get("one");
    const soloHost = o?.pick({ avoid: new Set([`127.0.0.1:${good}`]) });
    assert.ok(soloHost);
    for (let i = 0; i < 3; i++) await attempt(soloHost);
    assert.equal(o?.hosts()[0]?.ejected, true, "one ejection is allowed even above 10%");
  });

  it("counts local-origin failures separately when consecutive_local_origin_failure is set", async () => {
    const cm = createClusterManager();
    managers.push(cm);
    const good = await statusServer(200);
    apply(
      cm,
      cluster("local", {
        outlierDetection: detection({ consecutiveLocalOriginFailure: 2, consecutive5xx: 5 }),
      }),
      [endpoint(good), endpoint(good + 10_000 > 65_535 ? good - 10_000 : good + 10_000)],
    );
    const c = cm.get("local");
    assert.ok(c);
    const host = c.pick({ avoid: new Set([`127.0.0.1:${good}`]) });
    assert.ok(host);
    host.report({ kind: "response", status: 500 });
    host.report({ kind: "connect-failure" });
    assert.equal(c.hosts()[1]?.ejected, false, "a 5xx does not count toward local-origin failures");
    host.report({ kind: "reset" });
    assert.equal(c.hosts()[1]?.ejected, true);
    assert.equal(cm.stats().local?.failuresTotal, 3);
  });

  it("treats local-origin failures as gateway errors when not split (Envoy's default)", async () => {
    const cm = createClusterManager();
    managers.push(cm);
    apply(
      cm,
      cluster("gw", {
        outlierDetection: detection({
          consecutive5xx: undefined,
          consecutiveGatewayFailure: 2,
          enforcingConsecutiveGatewayFailure: 100,
        }),
      }),
      [endpoint(9001), endpoint(9002)],
    );
    const c = cm.get("gw");
    const host = c?.pick({ avoid: new Set(["127.0.0.1:9002"]) });
    assert.ok(c && host);
    host.report({ kind: "timeout" });
    host.report({ kind: "response", status: 500 }); // not a gateway error: resets the gateway count
    host.report({ kind: "connect-failure" });
    assert.equal(c.hosts()[0]?.ejected, false);
    host.report({ kind: "response", status: 502 });
    assert.equal(c.hosts()[0]?.ejected, true);
    assert.equal(cm.stats().gw?.timeoutsTotal, 1);
  });
});
