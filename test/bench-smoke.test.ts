// Smoke test of the benchmark harness's own pieces (not a benchmark: nothing here asserts speed): the
// open-loop load generator against a local origin for about a second at a low rate (counts and histogram
// sane, for each protocol), the saturation loop, one sidecar hop built the way bench/run.ts builds it (a real
// control plane and a real `skein proxy` process), and the mTLS scenario's two sidecars (certificates from the
// control plane's CA with bootstrap tokens, STRICT on the server). No apt installs.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import * as hdr from "hdr-histogram-js";
import { type Protocol, runAtRate, runSaturation } from "../bench/loadgen.js";
import {
  CLI,
  issueToken,
  MTLS_SERVER_SERVICE,
  NAMESPACE,
  SERVER_SERVICE,
  startControlPlane,
  startSidecar,
} from "../bench/mesh.js";
import { cpuSeconds, memory, sleep, stopAllChildren } from "../bench/procs.js";
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

test("the mTLS scenario as the harness builds it: two sidecars with CA certificates, STRICT, 1 s at 100 rps", {
  skip: existsSync(CLI) ? false : "dist/ is not built (npm run build)",
}, async () => {
  const origin = await startOrigin();
  try {
    const cp = await startControlPlane({ "mesh.yaml": SERVER_SERVICE, "mtls.yaml": MTLS_SERVER_SERVICE });
    const server = await startSidecar({
      name: "bench-server-mtls",
      address: "127.0.20.14",
      xds: cp.xds,
      labels: { app: "bench-server-mtls" },
      ports: { http: 8080 },
      appPorts: { http: origin.http1 },
      identity: { token: await issueToken(cp.http, "bench-server-mtls"), ca: cp.http },
    });
    const client = await startSidecar({
      name: "bench-client-mtls",
      address: "127.0.20.13",
      xds: cp.xds,
      labels: { app: "bench-client-mtls" },
      identity: { token: await issueToken(cp.http, "bench-client-mtls"), ca: cp.http },
    });
    const via = (host: string, port: number) => ({
      protocol: "http1" as const,
      host,
      port,
      authority: `bench-server-mtls.${NAMESPACE}:8080`,
      path: "/",
      payload,
      connections: 2,
    });
    // The client sidecar learns the server's endpoint once the server's sidecar has registered.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const probe = await runAtRate(via("127.0.20.13", 15001), { rate: 20, durationMs: 250, warmupMs: 0 });
      if (probe.errors === 0 && probe.completed > 0) break;
      assert.ok(Date.now() < deadline, `the mTLS path never answered: ${JSON.stringify(probe.errorKinds)}`);
      await sleep(250);
    }
    const cpu0 = [cpuSeconds(client.pid), cpuSeconds(server.pid)];
    const r = await runAtRate(via("127.0.20.13", 15001), { rate: 100, durationMs: 1000, warmupMs: 200 });
    assert.equal(r.errors, 0, JSON.stringify(r.errorKinds));
    assert.equal(r.completed, 100);
    assert.equal(r.responseBytes, 100 * PAYLOAD_BYTES);
    const cpu1 = [cpuSeconds(client.pid), cpuSeconds(server.pid)];
    for (const i of [0, 1]) assert.ok((cpu1[i] ?? -1) >= (cpu0[i] ?? 0), "CPU readable from /proc");
    // STRICT: the server sidecar's inbound refuses plaintext, so the requests above went over mTLS.
    const plain = await runAtRate(via("127.0.20.14", 8080), { rate: 20, durationMs: 250, warmupMs: 0 });
    assert.equal(plain.completed, 0, "plaintext straight to the STRICT inbound must not be answered");
    assert.ok(plain.errors > 0);
  } finally {
    await stopAllChildren();
    await origin.close();
  }
});
