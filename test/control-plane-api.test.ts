// The control plane's HTTP API and metrics through the real CLI (dist/cli/main.js): apply, get, delete
// and proxy-status against a running control plane, with exit codes scripts can trust.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { createLogger } from "../src/lib/log.js";
import { ROUTE } from "../src/xds/protos.js";
import { SimulatedProxy } from "./sim-proxy.js";

const root = new URL("..", import.meta.url).pathname;
let cp: ControlPlane;
let url: string;
let work: string;

// Asynchronous on purpose: the control plane runs in this process and must keep answering.
function skein(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, "dist/cli/main.js"), ...args, "--control-plane", url], {
      cwd: root,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const service = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: order-service, namespace: production }
spec:
  selector: { app: order-service }
  ports: [{ name: http, port: 8080 }]
`;
const routes = (host: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: order-routes
  namespace: production
spec:
  hosts: [order-service]
  http:
    - route:
        - destination:
            host: ${host}
`;

before(async () => {
  const config = mkdtempSync(join(tmpdir(), "skein-api-"));
  work = mkdtempSync(join(tmpdir(), "skein-api-files-"));
  writeFileSync(join(config, "service.yaml"), service);
  cp = new ControlPlane({
    configDir: config,
    stateDir: mkdtempSync(join(tmpdir(), "skein-api-state-")),
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: createLogger("control-plane", "error"),
  });
  await cp.start();
  url = `http://127.0.0.1:${cp.ports.http}`;
});

after(async () => {
  await cp.stop();
});

test("apply: a good file is configured (0); a bad one is rejected (1) with its own file and line", async () => {
  const good = join(work, "routes.yaml");
  writeFileSync(good, routes("order-service"));
  const ok = await skein("apply", "-f", good);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /routes\.yaml: configured \(version [0-9a-f]+\)/);
  const version = cp.pipeline.current?.version;

  const bad = join(work, "bad.yaml");
  writeFileSync(bad, routes("billing").replace("order-routes", "other-routes"));
  const no = await skein("apply", "-f", bad);
  assert.equal(no.code, 1);
  assert.ok(
    no.stdout.includes(
      `Error [SKEIN_E_HOST_NOT_FOUND] (VirtualService production/other-routes) ${bad}:11:13`,
    ),
    no.stdout,
  );
  assert.equal(cp.pipeline.current?.version, version, "the last good configuration stays in force");

  const status = (await (await fetch(`${url}/api/v1/status`)).json()) as {
    rejections: number;
    lastRejection: { trigger: string };
  };
  assert.equal(status.rejections, 1);
  assert.equal(status.lastRejection.trigger, "apply bad.yaml");
});

test("get: table, yaml and json; unknown kinds are usage errors", async () => {
  const t = await skein("get", "virtualservices", "-n", "production");
  assert.equal(t.code, 0);
  assert.match(t.stdout, /^NAMESPACE\s+KIND\s+NAME\s+SOURCE\n/);
  assert.match(t.stdout, /production\s+VirtualService\s+order-routes\s+api:routes\.yaml:1/);
  const y = await skein("get", "vs", "order-routes", "-n", "production", "-o", "yaml");
  assert.match(y.stdout, /kind: VirtualService\n/);
  assert.match(y.stdout, /host: order-service/);
  const j = JSON.parse((await skein("get", "service", "-o", "json")).stdout) as {
    metadata: { name: string };
  }[];
  assert.deepEqual(
    j.map((x) => x.metadata.name),
    ["order-service"],
  );
  assert.equal((await skein("get", "vs", "nope")).code, 1);
  assert.equal((await skein("get", "frobs")).code, 2);
});

test("proxy-status shows a connected proxy SYNCED; config_dump and metrics report it", async () => {
  const proxy = new SimulatedProxy(
    cp.ports.xds,
    "sidecar~127.0.5.1~order-v1.production~production.svc.cluster.local",
    {
      LABELS: { app: "order-service", version: "v1" },
    },
  );
  try {
    await proxy.until((p) => p.versions.has(ROUTE));
    await new Promise((r) => setTimeout(r, 300));
    const ps = await skein("proxy-status");
    assert.equal(ps.code, 0, ps.stderr);
    assert.match(ps.stdout, /^NAME\s+TYPE\s+NAMESPACE\s+CDS\s+LDS\s+EDS\s+RDS\n/);
    assert.match(
      ps.stdout,
      /sidecar~127\.0\.5\.1~\S+\s+sidecar\s+production\s+SYNCED\s+SYNCED\s+SYNCED\s+SYNCED/,
    );

    const dump = (await (
      await fetch(`${url}/debug/config_dump?proxy=${encodeURIComponent(proxy.nodeId)}`)
    ).json()) as {
      cds: { name: string }[];
    };
    assert.ok(dump.cds.some((c) => c.name === "outbound|8080||order-service.production.svc.cluster.local"));
    const registry = (await (await fetch(`${url}/debug/registry`)).json()) as {
      workloads: { address: string }[];
    };
    assert.deepEqual(
      registry.workloads.map((w) => w.address),
      ["127.0.5.1"],
    );

    const metrics = await (await fetch(`http://127.0.0.1:${cp.ports.metrics}/metrics`)).text();
    assert.match(metrics, /^pilot_xds 1$/m);
    assert.match(metrics, /^pilot_xds_pushes\{type="rds"\} [1-9]/m);
    assert.match(metrics, /^skein_config_rejected_total 1$/m);
    assert.match(metrics, /^pilot_proxy_convergence_time_count [1-9]/m);
  } finally {
    proxy.close();
  }
});

test("delete: applied resources go; file-owned ones are refused with where to edit them", async () => {
  const del = await skein("delete", "VirtualService", "order-routes", "-n", "production");
  assert.equal(del.code, 0, del.stdout);
  assert.equal(cp.pipeline.current?.model.routeTables.length, 0);
  const owned = await skein("delete", "Service", "order-service", "-n", "production");
  assert.equal(owned.code, 1);
  assert.match(owned.stdout, /is defined in .*service\.yaml: edit or remove it there/);
});

test("an unreachable control plane exits 3", async () => {
  const r = await new Promise<number | null>((resolve) => {
    const c = spawn(process.execPath, [
      join(root, "dist/cli/main.js"),
      "get",
      "vs",
      "--control-plane",
      "http://127.0.0.1:1",
    ]);
    c.on("close", resolve);
  });
  assert.equal(r, 3);
});
