// `skein prometheus-config` without a running mesh: the jobs it writes for the sidecars and the control plane,
// how ServiceMonitors (the seed's, and one selecting workloads) shape them, and that Prometheus' own checker
// (promtool, when installed) accepts the result. Also the Grafana dashboard in deploy/: valid Grafana 10
// dashboard JSON with a Prometheus datasource variable, whose every query is valid PromQL over metrics the
// mesh exports.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { stringify } from "yaml";
import { metricsAddressFor, promDuration, prometheusConfig } from "../src/cli/prometheus-config.js";
import type { WorkloadInstance } from "../src/model/snapshot.js";
import { check } from "./helpers.js";

const root = new URL("..", import.meta.url).pathname;

function workload(
  address: string,
  app: string,
  version: string,
  origin: "proxy" | "static" = "proxy",
): WorkloadInstance {
  return {
    id: `sidecar~${address}~${app}-${version}.production~production.svc.cluster.local`,
    name: `${app}-${version}`,
    namespace: "production",
    labels: { app, version },
    serviceAccount: app,
    address,
    ports: {},
    origin,
    tlsMode: origin === "proxy" ? "istio" : undefined,
  } as unknown as WorkloadInstance;
}

const WORKLOADS = [
  workload("127.0.1.3", "order-service", "v1"),
  workload("127.0.1.4", "order-service", "v2"),
  workload("127.0.1.5", "api-gateway", "v1"),
  workload("10.0.0.9", "legacy-db", "v1", "static"),
];

// examples/mesh holds the seed's pattern 4 verbatim (the repository does not depend on ../shared).
const SEED = readFileSync(join(root, "examples", "mesh", "pattern4-observability.yaml"), "utf8");

function promtool(): string | undefined {
  try {
    return execFileSync("sh", ["-c", "command -v promtool"]).toString().trim();
  } catch {
    return undefined;
  }
}

type Job = { job_name: string; scrape_interval?: string; metrics_path: string; [k: string]: unknown };

test("one job for the sidecars, one for the control plane; the seed's istiod ServiceMonitor sets the latter", () => {
  const model = check(SEED).model;
  assert.ok(model, "the seed loads");
  const c = prometheusConfig(WORKLOADS, model.serviceMonitors, {
    controlPlaneMetrics: "127.0.0.1:15014",
  }) as {
    global: { scrape_interval: string };
    scrape_configs: (Job & { static_configs: { targets: string[]; labels: Record<string, string> }[] })[];
  };
  assert.equal(c.global.scrape_interval, "15s");
  const [sidecars, cp] = c.scrape_configs;
  assert.equal(sidecars?.job_name, "skein-sidecars");
  assert.equal(sidecars?.metrics_path, "/stats/prometheus");
  assert.deepEqual(
    sidecars?.static_configs.map((s) => s.targets[0]),
    ["127.0.1.3:15020", "127.0.1.4:15020", "127.0.1.5:15020"],
    "static workloads without a sidecar have no status port",
  );
  assert.deepEqual(sidecars?.static_configs[1]?.labels, {
    namespace: "production",
    app: "order-service",
    version: "v2",
    workload: "order-service-v2",
  });
  assert.equal(cp?.job_name, "skein-control-plane");
  assert.equal(cp?.metrics_path, "/metrics");
  assert.equal(cp?.scrape_interval, "15s", "from the seed's endpoint (interval: 15s)");
  assert.deepEqual(cp?.static_configs[0]?.targets, ["127.0.0.1:15014"]);
});

const ORDER_MONITOR = `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: orders
  namespace: production
spec:
  selector:
    matchLabels:
      app: order-service
  endpoints:
    - port: http-envoy-prom
      path: /stats/prometheus
      interval: 5s
      relabelings:
        - sourceLabels: [version]
          targetLabel: canary
          regex: v2
          replacement: "true"
          action: replace
`;

test("a ServiceMonitor that selects workloads gives them its own job: interval, path, relabelings", async (t) => {
  const model = check(`${SEED}\n---\n${ORDER_MONITOR}`).model;
  assert.ok(model);
  const c = prometheusConfig(WORKLOADS, model.serviceMonitors, {
    controlPlaneMetrics: "127.0.0.1:15014",
    scrapeIntervalMs: 1000,
  }) as {
    global: { scrape_interval: string };
    scrape_configs: (Job & { static_configs: { targets: string[] }[] })[];
  };
  assert.equal(c.global.scrape_interval, "1s");
  const names = c.scrape_configs.map((j) => j.job_name);
  assert.deepEqual(names, ["skein-sidecars", "serviceMonitor/production/orders/0", "skein-control-plane"]);
  const orders = c.scrape_configs[1];
  assert.equal(orders?.scrape_interval, "5s");
  assert.deepEqual(
    orders?.static_configs.map((s) => s.targets[0]),
    ["127.0.1.3:15020", "127.0.1.4:15020"],
  );
  assert.deepEqual(orders?.relabel_configs, [
    {
      action: "replace",
      source_labels: ["version"],
      target_label: "canary",
      regex: "v2",
      replacement: "true",
    },
  ]);
  assert.deepEqual(
    c.scrape_configs[0]?.static_configs.map((s) => s.targets[0]),
    ["127.0.1.5:15020"],
    "the rest stay in the default job",
  );
  const bin = promtool();
  if (!bin) {
    t.diagnostic("promtool not installed: Prometheus' own config check skipped");
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "skein-promcfg-"));
  try {
    writeFileSync(join(dir, "prometheus.yml"), stringify(c));
    const r = spawnSync(bin, ["check", "config", join(dir, "prometheus.yml")], { encoding: "utf8" });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    writeFileSync(
      join(dir, "bad.yml"),
      stringify({ scrape_configs: [{ job_name: "x", scrape_interval: "soon" }] }),
    );
    assert.notEqual(
      spawnSync(bin, ["check", "config", join(dir, "bad.yml")]).status,
      0,
      "promtool does reject",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("durations and the control plane's metrics address", () => {
  assert.equal(promDuration(15_000), "15s");
  assert.equal(promDuration(1500), "1500ms");
  assert.equal(metricsAddressFor("http://127.0.0.1:15080"), "127.0.0.1:15014");
  assert.equal(metricsAddressFor("http://127.0.0.1:17380"), "127.0.0.1:17314");
});

test("the CLI says which control plane it could not reach, with a stable code and exit code 3", () => {
  const r = spawnSync(
    process.execPath,
    [
      "--import",
      "tsx",
      join(root, "src/cli/main.ts"),
      "prometheus-config",
      "--control-plane",
      "http://127.0.0.1:9",
    ],
    { cwd: root, encoding: "utf8" },
  );
  assert.equal(r.status, 3, r.stderr);
  assert.match(
    r.stderr,
    /SKEIN_E_PROMETHEUS_CONFIG_UNREACHABLE: cannot get the workloads from http:\/\/127\.0\.0\.1:9/,
  );
  const bad = spawnSync(
    process.execPath,
    ["--import", "tsx", join(root, "src/cli/main.ts"), "prometheus-config", "--scrape-interval", "soon"],
    { cwd: root, encoding: "utf8" },
  );
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /SKEIN_E_PROMETHEUS_CONFIG_USAGE/);
});

interface Panel {
  type: string;
  title: string;
  datasource: { type: string; uid: string };
  targets: { expr: string; refId: string; datasource: { uid: string } }[];
}

test("the Grafana dashboard: Grafana 10 JSON, a Prometheus datasource variable, valid PromQL over our metrics", (t) => {
  const dash = JSON.parse(readFileSync(join(root, "deploy/grafana/skein-mesh.json"), "utf8")) as {
    schemaVersion: number;
    uid: string;
    title: string;
    panels: Panel[];
    templating: { list: { name: string; type: string; query: unknown }[] };
  };
  assert.ok(
    dash.schemaVersion >= 36 && dash.schemaVersion <= 39,
    `schemaVersion ${dash.schemaVersion} (Grafana 10)`,
  );
  assert.ok(dash.uid && dash.title);
  const ds = dash.templating.list.find((v) => v.type === "datasource");
  assert.equal(ds?.query, "prometheus");
  const ids = new Set<string>();
  const exprs: string[] = [];
  for (const p of dash.panels) {
    assert.deepEqual(p.datasource, { type: "prometheus", uid: `\${${ds?.name}}` }, p.title);
    assert.ok(p.targets.length > 0, p.title);
    for (const target of p.targets) {
      assert.equal(target.datasource.uid, `\${${ds?.name}}`);
      assert.ok(!ids.has(`${p.title}/${target.refId}`));
      ids.add(`${p.title}/${target.refId}`);
      exprs.push(target.expr);
    }
  }
  const exported =
    /^(istio_(requests_total|request_duration_milliseconds_bucket|request_bytes_sum|response_bytes_sum|tcp_(connections_opened|sent_bytes|received_bytes)_total)|envoy_cluster_(upstream_rq_retry|upstream_rq_pending_overflow|outlier_detection_ejections_total)|pilot_(xds|xds_pushes|proxy_convergence_time_bucket|total_xds_rejects))$/;
  for (const e of exprs)
    for (const m of e.matchAll(/\b([a-z_]+)(?=\{|\[)/g))
      assert.match(m[1] as string, exported, `${m[1]} in ${e}`);
  const bin = promtool();
  if (!bin) {
    t.diagnostic("promtool not installed: PromQL syntax not checked");
    return;
  }
  // promtool checks PromQL in rule files; Grafana's variables become what they expand to.
  const rules = {
    groups: [
      {
        name: "dashboard",
        rules: exprs.map((e, i) => ({
          record: `skein:dashboard_${i}`,
          expr: e
            .replaceAll("$__rate_interval", "1m")
            .replaceAll("$namespace", ".*")
            .replaceAll("$service", ".*"),
        })),
      },
    ],
  };
  const dir = mkdtempSync(join(tmpdir(), "skein-dash-"));
  try {
    writeFileSync(join(dir, "rules.yml"), stringify(rules));
    const r = spawnSync(bin, ["check", "rules", join(dir, "rules.yml")], { encoding: "utf8" });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
