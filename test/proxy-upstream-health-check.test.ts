// Active health checks in src/proxy/upstream against real servers, with short intervals: HTTP/1.1 (path,
// Host, expected statuses), HTTP/2, TCP and gRPC (grpc.health.v1) checks; Envoy's first-check and threshold
// rules; hosts joining a checked cluster take no traffic until they pass; a passing check returns a host
// outlier detection ejected; turning checks off makes every host available again.
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { after, describe, it } from "node:test";
import type { HealthCheck } from "../src/proxy/config/types.js";
import { createClusterManager, type SkeinClusterManager } from "../src/proxy/upstream/cluster-manager.js";
import { servingStatus } from "../src/proxy/upstream/health-check.js";
import { apply, close, cluster, endpoint, listen, sleep } from "./proxy-upstream-helpers.js";

const managers: SkeinClusterManager[] = [];
const servers: (http.Server | http2.Http2Server | net.Server)[] = [];
after(async () => {
  for (const cm of managers) await cm.close(0);
  for (const s of servers) await close(s);
});

function manager(): SkeinClusterManager {
  const cm = createClusterManager();
  managers.push(cm);
  return cm;
}

/** An HTTP/1.1 server whose /health answers `state.status`; it records the checks' Host and User-Agent. */
async function healthServer(state: { status: number; hosts?: string[]; agents?: string[] }): Promise<number> {
  const s = http.createServer((rq, rs) => {
    if (rq.url === "/health") {
      state.hosts?.push(rq.headers.host ?? "");
      state.agents?.push(rq.headers["user-agent"] ?? "");
      rs.statusCode = state.status;
    }
    rs.end();
  });
  servers.push(s);
  return listen(s);
}

function check(overrides: Partial<HealthCheck> = {}): HealthCheck {
  return {
    kind: "http",
    path: "/health",
    timeoutMs: 200,
    intervalMs: 30,
    healthyThreshold: 2,
    unhealthyThreshold: 2,
    expectedStatuses: [[200, 300]],
    ...overrides,
  };
}

async function until(what: string, pred: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(5);
  }
}

/** Which ports `n` picks land on. */
function picks(cm: SkeinClusterManager, name: string, n: number): Set<number> {
  const out = new Set<number>();
  for (let i = 0; i < n; i++) {
    const h = cm.get(name)?.pick({});
    if (h) out.add(h.port);
  }
  return out;
}

describe("active health checks", () => {
  it("HTTP: a host failing its check takes no traffic, comes back after healthy_threshold passes, and leaves after unhealthy_threshold failures", async () => {
    const good = { status: 200, hosts: [] as string[], agents: [] as string[] };
    const bad = { status: 503 };
    const pGood = await healthServer(good);
    const pBad = await healthServer(bad);
    const cm = manager();
    apply(cm, cluster("c", { healthChecks: [check()] }), [endpoint(pGood), endpoint(pBad)]);
    const status = (port: number) =>
      cm
        .get("c")
        ?.hosts()
        .find((h) => h.key === `127.0.0.1:${port}`);
    assert.equal(status(pBad)?.activeHealthCheckPending, true, "new hosts wait for their first check");
    await until("first checks done", () => status(pGood)?.activeHealthCheckFailed === false);
    await until("the bad host failed", () => status(pBad)?.activeHealthCheckPending === false);
    assert.equal(status(pBad)?.activeHealthCheckFailed, true);
    assert.deepEqual(picks(cm, "c", 20), new Set([pGood]));
    assert.equal(good.hosts[0], "c", "the Host of a check is the cluster's name by default");
    assert.equal(good.agents[0], "Envoy/HC");

    bad.status = 200;
    const t0 = Date.now();
    await until("the bad host recovers", () => status(pBad)?.activeHealthCheckFailed === false);
    assert.ok(Date.now() - t0 >= 30, "two passes, an interval apart, were needed");
    assert.deepEqual(picks(cm, "c", 20), new Set([pGood, pBad]));

    good.status = 500;
    await until("the good host fails", () => status(pGood)?.activeHealthCheckFailed === true);
    assert.deepEqual(picks(cm, "c", 20), new Set([pBad]));
    assert.equal(cm.stats().c?.healthyHosts, 1);
  });

  it("expected statuses, an alternate port and a custom Host", async () => {
    const state = { status: 404, hosts: [] as string[] };
    const checkPort = await healthServer(state);
    const traffic = await healthServer({ status: 200 });
    const cm = manager();
    const hc = check({ port: checkPort, host: "orders.internal", expectedStatuses: [[404, 405]] });
    apply(cm, cluster("alt", { healthChecks: [hc] }), [endpoint(traffic)]);
    await until("checked on the alternate port", () => state.hosts.length > 0);
    assert.equal(state.hosts[0], "orders.internal");
    await until("404 counts as healthy here", () => cm.get("alt")?.pick({}) !== undefined);
  });

  it("TCP: a closed port fails, a listening one passes", async () => {
    const open = net.createServer((s) => s.end());
    servers.push(open);
    const pOpen = await listen(open);
    const closed = net.createServer();
    const pClosed = await listen(closed);
    await close(closed);
    const cm = manager();
    apply(cm, cluster("tcp", { healthChecks: [check({ kind: "tcp", path: undefined })] }), [
      endpoint(pOpen),
      endpoint(pClosed),
    ]);
    await until("both checked", () =>
      (cm.get("tcp")?.hosts() ?? []).every((h) => !h.activeHealthCheckPending),
    );
    assert.deepEqual(picks(cm, "tcp", 10), new Set([pOpen]));
  });

  it("HTTP/2 and gRPC (grpc.health.v1): SERVING passes, NOT_SERVING fails", async () => {
    const serving = new Map<string, number>([
      ["", 1],
      ["orders", 2],
    ]);
    const s = http2.createServer();
    s.on("stream", (stream, headers) => {
      if (headers[":path"] === "/ready") {
        stream.respond({ ":status": 200 });
        stream.end();
        return;
      }
      const chunks: Buffer[] = [];
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => {
        const body = Buffer.concat(chunks);
        const service = body.length > 7 ? body.subarray(7).toString() : "";
        const status = serving.get(service) ?? 0;
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(Buffer.from([0, 0, 0, 0, 2, 0x08, status]));
      });
    });
    servers.push(s);
    const port = await listen(s);
    // One manager per cluster: apply() sets a manager's whole cluster list.
    const checked = (hc: HealthCheck) => {
      const cm = manager();
      apply(cm, cluster("c", { healthChecks: [hc] }), [endpoint(port)]);
      return cm;
    };
    const h2 = checked(check({ http2: true, path: "/ready" }));
    const grpcOk = checked(check({ kind: "grpc", path: undefined, serviceName: "" }));
    const grpcNo = checked(check({ kind: "grpc", path: undefined, serviceName: "orders" }));
    const settled = (cm: SkeinClusterManager) =>
      (cm.get("c")?.hosts() ?? []).every((h) => !h.activeHealthCheckPending);
    await until("all checked", () => settled(h2) && settled(grpcOk) && settled(grpcNo));
    assert.ok(h2.get("c")?.pick({}));
    assert.ok(grpcOk.get("c")?.pick({}));
    assert.equal(grpcNo.get("c")?.hosts()[0]?.activeHealthCheckFailed, true, "NOT_SERVING");
    assert.equal(servingStatus(Buffer.from([0, 0, 0, 0, 2, 0x08, 1])), 1);
    assert.equal(servingStatus(Buffer.from([0, 0, 0, 0, 0])), 0);
  });

  it("a passing check returns a host outlier detection ejected; turning checks off frees every host", async () => {
    const pA = await healthServer({ status: 200 });
    const pB = await healthServer({ status: 200 });
    const cm = manager();
    const c = cluster("od", {
      healthChecks: [check({ intervalMs: 100 })],
      outlierDetection: {
        consecutive5xx: 1,
        intervalMs: 10_000,
        baseEjectionTimeMs: 60_000,
        maxEjectionPercent: 100,
        enforcingConsecutive5xx: 100,
        enforcingConsecutiveGatewayFailure: 0,
      },
    });
    apply(cm, c, [endpoint(pA), endpoint(pB)]);
    await until("checked", () => (cm.get("od")?.hosts() ?? []).every((h) => !h.activeHealthCheckFailed));
    const a = [...(cm.get("od")?.hostList ?? [])].find((h) => h.port === pA);
    a?.report({ kind: "response", status: 500 });
    assert.equal(a?.ejected, true, "ejected for 60 s");
    await until("the next passing check returns it", () => a?.ejected === false, 1000);

    const bad = await healthServer({ status: 500 });
    apply(cm, c, [endpoint(pA), endpoint(pB), endpoint(bad)]);
    await until("the new host fails", () =>
      Boolean(
        cm
          .get("od")
          ?.hosts()
          .find((h) => h.key.endsWith(`:${bad}`))?.activeHealthCheckFailed,
      ),
    );
    apply(cm, { ...c, healthChecks: undefined }, [endpoint(pA), endpoint(pB), endpoint(bad)]);
    assert.deepEqual(picks(cm, "od", 30), new Set([pA, pB, bad]));
  });
});
