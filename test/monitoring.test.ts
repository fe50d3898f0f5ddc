import assert from "node:assert/strict";
import { test } from "node:test";
import { parsePrometheusDuration } from "../src/api/monitoring.js";
import { check, codes, plain } from "./helpers.js";

/** 1-based line of the first line containing `marker`. */
function lineOf(text: string, marker: string): number {
  const i = text.split("\n").findIndex((l) => l.includes(marker));
  assert.ok(i >= 0, `marker ${marker} not found`);
  return i + 1;
}

test("Prometheus durations: whole numbers, units largest first; Go-style fractions are not accepted", () => {
  assert.equal(parsePrometheusDuration("15s"), 15_000);
  assert.equal(parsePrometheusDuration("1m"), 60_000);
  assert.equal(parsePrometheusDuration("1m30s"), 90_000);
  assert.equal(parsePrometheusDuration("500ms"), 500);
  assert.equal(parsePrometheusDuration("1h1ms"), 3_600_001);
  assert.equal(parsePrometheusDuration("2d"), 172_800_000);
  assert.equal(parsePrometheusDuration("1w"), 604_800_000);
  assert.equal(parsePrometheusDuration("1y"), 31_536_000_000);
  assert.equal(parsePrometheusDuration("0"), 0);
  for (const bad of ["", "10x", "1.5s", "30s1m", "s", "15", "-1s", " 15s"])
    assert.equal(parsePrometheusDuration(bad), undefined, bad);
});

test("ServiceMonitor: every carried field lowers; relabel actions and scheme are normalised", () => {
  const r = check(`apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: orders
  namespace: monitoring
  labels: { release: prometheus }
spec:
  jobLabel: app.kubernetes.io/name
  targetLabels: [team]
  podTargetLabels: [version]
  sampleLimit: 10000
  targetLimit: 50
  selector:
    matchLabels: { app: orders }
    matchExpressions:
      - { key: tier, operator: NotIn, values: [batch] }
      - { key: canary, operator: DoesNotExist }
  namespaceSelector:
    any: true
  endpoints:
    - port: http-metrics
      path: /stats/prometheus
      scheme: HTTPS
      interval: 30s
      scrapeTimeout: 10s
      params: { format: [prometheus] }
      honorLabels: true
      honorTimestamps: false
      followRedirects: true
      enableHttp2: false
      tlsConfig:
        serverName: orders.monitoring.svc
        insecureSkipVerify: false
        ca: { secret: { name: orders-tls, key: ca.crt } }
        cert: { configMap: { name: orders-client, key: tls.crt } }
        keySecret: { name: orders-tls, key: tls.key }
        minVersion: TLS12
      bearerTokenSecret: { name: scrape-token, key: token }
      relabelings:
        - sourceLabels: [__meta_kubernetes_pod_node_name]
          targetLabel: node
          action: Replace
        - action: labeldrop
          regex: "pod_template_hash"
      metricRelabelings:
        - sourceLabels: [__name__]
          regex: "go_.*"
          action: drop
    - targetPort: 9090
      interval: 1m
`);
  assert.deepEqual(codes(r.diagnostics, "all"), []);
  assert.deepEqual(plain(r.model?.serviceMonitors), [
    {
      name: "orders",
      namespace: "monitoring",
      labels: { release: "prometheus" },
      selector: {
        matchLabels: { app: "orders" },
        matchExpressions: [
          { key: "tier", operator: "NotIn", values: ["batch"] },
          { key: "canary", operator: "DoesNotExist", values: [] },
        ],
      },
      namespaceSelector: { any: true, matchNames: [] },
      endpoints: [
        {
          port: "http-metrics",
          intervalMs: 30_000,
          scrapeTimeoutMs: 10_000,
          scheme: "https",
          params: { format: ["prometheus"] },
          honorLabels: true,
          honorTimestamps: false,
          relabelings: [
            { sourceLabels: ["__meta_kubernetes_pod_node_name"], targetLabel: "node", action: "replace" },
            { sourceLabels: [], regex: "pod_template_hash", action: "labeldrop" },
          ],
          metricRelabelings: [{ sourceLabels: ["__name__"], regex: "go_.*", action: "drop" }],
          tlsConfig: {
            serverName: "orders.monitoring.svc",
            insecureSkipVerify: false,
            ca: { secret: { name: "orders-tls", key: "ca.crt" } },
            cert: { configMap: { name: "orders-client", key: "tls.crt" } },
            keySecret: { name: "orders-tls", key: "tls.key" },
            minVersion: "TLS12",
          },
          bearerTokenSecret: { name: "scrape-token", key: "token" },
          followRedirects: true,
          enableHttp2: false,
        },
        { targetPort: 9090, intervalMs: 60_000, relabelings: [], metricRelabelings: [] },
      ],
      jobLabel: "app.kubernetes.io/name",
      targetLabels: ["team"],
      podTargetLabels: ["version"],
      sampleLimit: 10000,
      targetLimit: 50,
    },
  ]);
  // plain() strips every `path` key (document paths), so the metrics path is checked on its own.
  assert.equal(r.model?.serviceMonitors[0]?.endpoints[0]?.path, "/stats/prometheus");
});

test("ServiceMonitor: bad durations, timeout above interval, bad selector operators, relabel mistakes", () => {
  const text = `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: { name: broken, namespace: monitoring }
spec:
  selector:
    matchExpressions:
      - { key: app, operator: in, values: [orders] }
      - { key: tier, operator: In }
      - { key: canary, operator: Exists, values: ["true"] }
  endpoints:
    - port: http
      interval: 10x
    - port: http
      interval: 1.5s
    - port: http
      interval: 15s
      scrapeTimeout: 30s
    - port: http
      relabelings:
        - action: repalce
          targetLabel: x
        - action: hashmod
          sourceLabels: [a]
          targetLabel: shard
        - action: replace
          regex: "(unclosed"
    - port: http
      intervall: 15s
    - targetPort: 70000
      path: metrics
      scheme: ftp
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_ENUM@${lineOf(text, "operator: in,")}`,
    `SKEIN_E_REQUIRED@${lineOf(text, "operator: In }")}`,
    `SKEIN_E_INVALID@${lineOf(text, 'values: ["true"]')}`,
    `SKEIN_E_DURATION@${lineOf(text, "10x")}`,
    `SKEIN_E_DURATION@${lineOf(text, "1.5s")}`,
    `SKEIN_E_RANGE@${lineOf(text, "scrapeTimeout: 30s")}`,
    `SKEIN_E_ENUM@${lineOf(text, "repalce")}`,
    `SKEIN_E_REQUIRED@${lineOf(text, "action: hashmod")}`,
    `SKEIN_E_REGEX@${lineOf(text, "(unclosed")}`,
    `SKEIN_E_UNKNOWN_FIELD@${lineOf(text, "intervall")}`,
    `SKEIN_E_RANGE@${lineOf(text, "70000")}`,
    `SKEIN_E_INVALID@${lineOf(text, "path: metrics")}`,
    `SKEIN_E_ENUM@${lineOf(text, "ftp")}`,
  ]);
  const at = (m: string) => r.diagnostics.find((d) => d.line === lineOf(text, m));
  assert.match(at("operator: in,")?.message ?? "", /did you mean "In"/);
  assert.match(at("repalce")?.message ?? "", /did you mean "replace"/);
  assert.match(at("intervall")?.message ?? "", /did you mean "interval"/);
  assert.match(at("1.5s")?.hint ?? "", /whole numbers/);
  assert.equal(at("10x")?.path, "spec.endpoints[0].interval");
});

test("ServiceMonitor: a missing selector and wrong types", () => {
  const text = `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: { name: broken, namespace: monitoring }
spec:
  endpoints:
    - port: 8080
      honorLabels: "yes"
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics), [
    `SKEIN_E_REQUIRED@${lineOf(text, "spec:")}`,
    `SKEIN_E_TYPE@${lineOf(text, "port: 8080")}`,
    `SKEIN_E_TYPE@${lineOf(text, "honorLabels")}`,
  ]);
  assert.match(r.diagnostics[0]?.message ?? "", /"selector" is missing/);
});

test("ServiceMonitor: accepted fields without effect, no endpoints, and port with targetPort warn", () => {
  const text = `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: { name: partial, namespace: monitoring }
spec:
  selector: {}
  scrapeClass: default
  namespaceSelector: { any: true, matchNames: [a] }
  endpoints:
    - port: http
      targetPort: 8080
      basicAuth: { username: { name: s, key: u } }
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: { name: empty, namespace: monitoring }
spec:
  selector: { matchLabels: { app: x } }
`;
  const r = check(text);
  assert.deepEqual(codes(r.diagnostics, "all"), [
    `SKEIN_W_NO_EFFECT@${lineOf(text, "scrapeClass")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "matchNames: [a]")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "targetPort: 8080")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "basicAuth")}`,
    `SKEIN_W_NO_EFFECT@${lineOf(text, "app: x") - 1}`,
  ]);
  assert.equal(r.model?.serviceMonitors.length, 2);
});
