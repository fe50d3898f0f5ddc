// Smoke test of the benchmark harness's own pieces (not a benchmark: nothing here asserts speed): the
// open-loop load generator against a local origin for about a second at a low rate (counts and histogram
// sane, for each protocol), the saturation loop, and one sidecar hop built the way bench/run.ts builds
// it (a real control plane and a real `skein proxy` process). No apt installs.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import * as hdr from "hdr-histogram-js";
import { type Protocol, runAtRate, runSaturation } from "../bench/loadgen.js";
import { CLI, NAMESPACE, SERVER_SERVICE, startControlPlane, startSidecar } from "../bench/mesh.js";
import { cpuSeconds, memory, stopAllChildren } from "../bench/procs.js";
import { GRPC_METHOD, PAYLOAD_BYTES, startOrigin } from "../bench/server.js";
import { parseEnvelope } from "../bench/sim-proxy.js";
import { encode } from "../src/xds/protos.js";

const payload = Buffer.alloc(PAYLOAD_BYTES, "q");

test("loadgen: open loop at 100 rps for 1 s over HTTP/1.1, h2c and gRPC: counts and histogram are sane", async () => {
  const origin = await startOrigin();
  try {
    for (const [protocol, port] of [
      ["http1", origin.http1],
      ["h2c", origin.h2c],
      ["grpc", origin.grpc],
    ] as [Protocol, number][]) {
      let measureStarted = 0;
      const r = await runAtRate(
        {
          protocol,
          host: "127.0.0.1",
          port,
          authority: `127.0.0.1:${port}`,
          path: protocol === "grpc" ? GRPC_METHOD : "/",
          payload,
          connections: 2,
        },
        { rate: 100, durationMs: 1000, warmupMs: 200, onMeasureStart: () => measureStarted++ },
      );
      assert.equal(measureStarted, 1, protocol);
      assert.equal(r.scheduled, 100, `${protocol}: 100 requests due in the measured second`);
      assert.equal(r.errors, 0, `${protocol}: ${JSON.stringify(r.errorKinds)}`);
      assert.equal(r.completed, 100, protocol);
      assert.equal(r.responseBytes, 100 * PAYLOAD_BYTES, `${protocol}: every response was 1 KiB`);
      const l = r.latencyUs;
      assert.equal(l.count, 100);
      // Percentiles are bucket values (3 significant digits), so p99.9 may sit a bucket above the exact max.
      assert.ok(
        l.p50 > 0 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.p999 && l.p999 <= l.max * 1.001 + 1,
        `${protocol}: ${JSON.stringify(l)}`,
      );
      // Loopback with nothing else running: anything near a second means the clock maths is wrong.
      assert.ok(l.p50 < 200_000, `${protocol}: p50 ${l.p50} µs`);
      const decoded = hdr.decodeFromCompressedBase64(r.histogram, 32, false);
      assert.equal(decoded.totalCount, 100, "the stored histogram decodes to the same count");
    }
    const s = await runSaturation(
      {
        protocol: "http1",
        host: "127.0.0.1",
        port: origin.http1,
        authority: "x",
        path: "/",
        payload,
        connections: 4,
      },
      { concurrency: 4, durationMs: 500, warmupMs: 100 },
    );
    assert.equal(s.errors, 0);
    assert.ok(s.completed > 10 && s.achievedRps > 0, `saturation completed ${s.completed}`);
  } finally {
    await origin.close();
  }
});

test("sim proxy envelope parser reads version, type, nonce and resource count", () => {
  const bytes = encode("envoy.service.discovery.v3.DiscoveryResponse", {
    versionInfo: "v7",
    typeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    nonce: "n1",
    resources: [
      { typeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster", value: Buffer.from([]) },
      { typeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster", value: Buffer.from([]) },
    ],
  });
  assert.deepEqual(parseEnvelope(bytes), {
    versionInfo: "v7",
    typeUrl: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    nonce: "n1",
    resources: 2,
  });
});

test("one sidecar hop as the harness builds it: control plane + skein proxy process, 1 s at 100 rps", {
  skip: existsSync(CLI) ? false : "dist/ is not built (npm run build)",
}, async () => {
  const origin = await startOrigin();
  try {
    const cp = await startControlPlane({ "mesh.yaml": SERVER_SERVICE });
    const sidecar = await startSidecar({
      name: "bench-server",
      address: "127.0.20.12",
      xds: cp.xds,
      labels: { app: "bench-server" },
      ports: { http: 8080, http2: 8081, grpc: 9090 },
      appPorts: { http: origin.http1, http2: origin.h2c, grpc: origin.grpc },
    });
    const cpu0 = cpuSeconds(sidecar.pid);
    const r = await runAtRate(
      {
        protocol: "http1",
        host: "127.0.20.12",
        port: 8080,
        authority: `bench-server.${NAMESPACE}:8080`,
        path: "/",
        payload,
        connections: 2,
      },
      { rate: 100, durationMs: 1000, warmupMs: 200 },
    );
    assert.equal(r.errors, 0, JSON.stringify(r.errorKinds));
    assert.equal(r.completed, 100);
    assert.equal(r.responseBytes, 100 * PAYLOAD_BYTES);
    const cpu1 = cpuSeconds(sidecar.pid);
    assert.ok(cpu0 !== undefined && cpu1 !== undefined && cpu1 >= cpu0, "CPU readable from /proc");
    const m = memory(sidecar.pid);
    assert.ok(m && m.rssKiB > 0 && m.hwmKiB >= m.rssKiB, "RSS readable from /proc");
  } finally {
    await stopAllChildren();
    await origin.close();
  }
});
