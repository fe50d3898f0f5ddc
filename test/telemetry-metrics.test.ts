// Istio's standard metrics from the sidecar: label derivation for HTTP and TCP on both reporters, what a
// peer's metadata may and may not change, Istio's histogram buckets, the Envoy-named internals, and that
// the exposition text parses (promtool, Prometheus' own checker, when the system has it; our own grammar
// check always).
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { test } from "node:test";
import { Registry } from "prom-client";
import { localNodeFrom } from "../src/proxy/node.js";
import type { ConnectionInfo } from "../src/proxy/router/connection.js";
import { Stats } from "../src/proxy/router/stats.js";
import { ResponseFlag, StreamInfo } from "../src/proxy/router/stream-info.js";
import {
  HTTP_LABELS,
  httpLabels,
  ISTIO_BUCKETS,
  IstioMetrics,
  serviceOfCluster,
  TCP_LABELS,
  tcpLabels,
} from "../src/proxy/telemetry/istio-metrics.js";
import type { PeerMetadata } from "../src/proxy/telemetry/peer-metadata.js";
import { envoyStat, ProxyStatsCollector } from "../src/proxy/telemetry/proxy-metrics.js";
import { SidecarTelemetry } from "../src/proxy/telemetry/sidecar-telemetry.js";
import type { ClusterManager, ClusterStats } from "../src/proxy/upstream/types.js";

const node = localNodeFrom({
  id: "sidecar~127.0.1.4~order-service-v2.production~production.svc.cluster.local",
  metadata: {
    NAMESPACE: "production",
    WORKLOAD_NAME: "order-service-v2",
    SERVICE_ACCOUNT: "order-service",
    LABELS: { app: "order-service", version: "v2" },
  },
});

const gateway: PeerMetadata = {
  id: "sidecar~127.0.1.5~api-gateway-v1.production~production.svc.cluster.local",
  workloadName: "api-gateway-v1",
  namespace: "production",
  app: "api-gateway",
  version: "v1",
  serviceAccount: "api-gateway",
  clusterId: "Kubernetes",
};

function conn(peerPrincipal?: string): ConnectionInfo {
  return {
    tls: peerPrincipal !== undefined,
    peerPrincipal,
    localPrincipal: peerPrincipal ? node.principal : undefined,
    sni: undefined,
    alpn: undefined,
    sourceAddress: "127.0.1.5",
    sourcePort: 40000,
    localAddress: "127.0.1.4",
    localPort: 8080,
  };
}

function httpInfo(listener = "127.0.1.4_8080"): StreamInfo {
  const info = new StreamInfo(listener, "HTTP/1.1", "GET", "order-service:8080", "/x", "127.0.1.5");
  info.responseCode = 200;
  info.bytesReceived = 12;
  info.bytesSent = 700;
  info.downstreamResponseEnd = 42;
  return info;
}

test("Istio's histogram buckets: Envoy's defaults, 0.5 ms to one hour", () => {
  assert.deepEqual(
    [...ISTIO_BUCKETS],
    [
      0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
      3600000,
    ],
  );
});

test("the standard label names, HTTP and TCP", () => {
  for (const l of [
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_service_name",
    "destination_service_namespace",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
  ])
    assert.ok((HTTP_LABELS as readonly string[]).includes(l), l);
  assert.ok(!(TCP_LABELS as readonly string[]).includes("response_code" as never));
});

test("reporter=destination over mutual TLS: the caller from its trusted metadata, the server from the node", () => {
  const info = httpInfo();
  info.connection = conn("spiffe://cluster.local/ns/production/sa/api-gateway");
  info.peer = gateway;
  const l = httpLabels(info, "destination", node);
  assert.equal(l.reporter, "destination");
  assert.equal(l.source_workload, "api-gateway-v1");
  assert.equal(l.source_workload_namespace, "production");
  assert.equal(l.source_app, "api-gateway");
  assert.equal(l.source_version, "v1");
  assert.equal(l.source_principal, "spiffe://cluster.local/ns/production/sa/api-gateway");
  assert.equal(l.destination_workload, "order-service-v2");
  assert.equal(l.destination_app, "order-service");
  assert.equal(l.destination_version, "v2");
  assert.equal(l.destination_principal, "spiffe://cluster.local/ns/production/sa/order-service");
  assert.equal(l.destination_service, "order-service.production.svc.cluster.local");
  assert.equal(l.destination_service_name, "order-service");
  assert.equal(l.destination_service_namespace, "production");
  assert.equal(l.connection_security_policy, "mutual_tls");
  assert.equal(l.request_protocol, "http");
  assert.equal(l.response_code, "200");
  assert.equal(l.grpc_response_status, "");
  assert.equal(l.response_flags, "-");
});

test("reporter=destination over plaintext: the caller is unknown and the policy none", () => {
  const info = httpInfo();
  info.connection = conn();
  const l = httpLabels(info, "destination", node);
  assert.equal(l.source_workload, "unknown");
  assert.equal(l.source_principal, "unknown");
  assert.equal(l.destination_principal, "unknown");
  assert.equal(l.connection_security_policy, "none");
  assert.equal(l.destination_version, "v2");
});

test("reporter=source: the service from the cluster name, the server from its metadata, gRPC status", () => {
  const info = httpInfo("virtualOutbound");
  info.cluster = "outbound|8080|canary|order-service.production.svc.cluster.local";
  info.grpcStatus = 14;
  info.setFlag(ResponseFlag.UpstreamConnectionFailure);
  info.setFlag(ResponseFlag.UpstreamRetryLimitExceeded);
  info.responseCode = 503;
  const gw = localNodeFrom({
    id: "gw",
    metadata: { NAMESPACE: "production", WORKLOAD_NAME: "api-gateway-v1", LABELS: { app: "api-gateway" } },
  });
  let l = httpLabels(info, "source", gw);
  assert.equal(l.reporter, "source");
  assert.equal(l.source_workload, "api-gateway-v1");
  assert.equal(l.source_version, "unknown");
  assert.equal(l.destination_service, "order-service.production.svc.cluster.local");
  assert.equal(l.destination_service_name, "order-service");
  assert.equal(l.destination_service_namespace, "production");
  assert.equal(l.destination_workload, "unknown", "no metadata without upstream mTLS");
  assert.equal(l.connection_security_policy, "unknown");
  assert.equal(l.request_protocol, "grpc");
  assert.equal(l.grpc_response_status, "14");
  assert.equal(l.response_code, "503");
  assert.equal(l.response_flags, "UF,URX");
  info.upstreamPeerPrincipal = "spiffe://cluster.local/ns/production/sa/order-service";
  info.peer = { ...gateway, workloadName: "order-service-v2", app: "order-service", version: "v2" };
  l = httpLabels(info, "source", gw);
  assert.equal(l.destination_workload, "order-service-v2");
  assert.equal(l.destination_version, "v2");
  assert.equal(l.destination_principal, "spiffe://cluster.local/ns/production/sa/order-service");
  assert.equal(l.source_principal, gw.principal);
});

test("cluster names that are not outbound services give unknown, never free text", () => {
  assert.deepEqual(serviceOfCluster("inbound|8080||"), {
    host: "unknown",
    name: "unknown",
    namespace: "unknown",
  });
  assert.deepEqual(serviceOfCluster(undefined), { host: "unknown", name: "unknown", namespace: "unknown" });
  assert.deepEqual(serviceOfCluster("outbound|443||api.example.com"), {
    host: "api.example.com",
    name: "api.example.com",
    namespace: "unknown",
  });
});

test("out-of-range codes are clamped so a broken peer cannot mint label values", () => {
  const info = httpInfo();
  info.responseCode = 12345;
  info.grpcStatus = 99;
  const l = httpLabels(info, "destination", node);
  assert.equal(l.response_code, "0");
  assert.equal(l.grpc_response_status, "0");
});

test("TCP: protocol tcp, no response code, opened/closed/bytes counted per connection", async () => {
  const registry = new Registry();
  const m = new IstioMetrics(registry, node);
  const info = new StreamInfo("127.0.1.4_9000", "TCP", "", "", "", "127.0.1.5");
  info.cluster = "inbound|9000||";
  info.bytesReceived = 100;
  info.bytesSent = 250;
  const l = tcpLabels(info, "destination", node);
  assert.equal(l.request_protocol, "tcp");
  assert.ok(!("response_code" in l));
  m.record(info, "inbound");
  m.record(info, "inbound");
  const text = await registry.metrics();
  const line = (name: string) =>
    new RegExp(`^${name}\\{reporter="destination",[^}]*\\} (\\d+)$`, "m").exec(text)?.[1];
  assert.equal(line("istio_tcp_connections_opened_total"), "2");
  assert.equal(line("istio_tcp_connections_closed_total"), "2");
  assert.equal(line("istio_tcp_received_bytes_total"), "200");
  assert.equal(line("istio_tcp_sent_bytes_total"), "500");
  assert.doesNotMatch(text, /^istio_requests_total\{/m);
});

test("requests are counted by reporter; listeners of no direction are not counted", async () => {
  const registry = new Registry();
  const m = new IstioMetrics(registry, node);
  m.record(httpInfo(), "inbound");
  m.record(httpInfo(), "inbound");
  m.record(httpInfo("virtualOutbound"), "outbound");
  m.record(httpInfo("admin"), "unspecified");
  m.record(httpInfo("admin"), undefined);
  const text = await registry.metrics();
  const count = (reporter: string) =>
    Number(
      new RegExp(`^istio_requests_total\\{reporter="${reporter}",[^}]*\\} (\\d+)$`, "m").exec(text)?.[1],
    );
  assert.equal(count("destination"), 2);
  assert.equal(count("source"), 1);
  // The duration histogram's buckets are exactly Istio's, with +Inf.
  const les = [
    ...text.matchAll(/^istio_request_duration_milliseconds_bucket\{le="([^"]+)",reporter="destination"/gm),
  ].map((x) => x[1]);
  assert.deepEqual(les, [...ISTIO_BUCKETS.map(String), "+Inf"]);
  // 42 ms falls in le=50 and not in le=25.
  const bucket = (le: string) =>
    Number(
      new RegExp(
        `^istio_request_duration_milliseconds_bucket\\{le="${le}",reporter="destination"[^}]*\\} (\\d+)$`,
        "m",
      ).exec(text)?.[1],
    );
  assert.equal(bucket("25"), 0);
  assert.equal(bucket("50"), 2);
  assert.match(text, /^istio_response_bytes_sum\{reporter="destination"[^}]*\} 1400$/m);
  assert.match(text, /^istio_request_bytes_sum\{reporter="destination"[^}]*\} 24$/m);
});

test("Envoy stat names become Envoy's Prometheus names and tags", () => {
  assert.deepEqual(envoyStat("cluster.outbound|8080||a.b.svc.cluster.local.upstream_rq_retry"), {
    family: "envoy_cluster_upstream_rq_retry",
    labels: { envoy_cluster_name: "outbound|8080||a.b.svc.cluster.local" },
  });
  assert.deepEqual(envoyStat("http.inbound_127.0.1.4_8080.downstream_rq_5xx"), {
    family: "envoy_http_downstream_rq_xx",
    labels: { envoy_http_conn_manager_prefix: "inbound_127.0.1.4_8080", envoy_response_code_class: "5" },
  });
  assert.deepEqual(envoyStat("http.inbound_127.0.1.4_8080.fault.aborts_injected"), {
    family: "envoy_http_fault_aborts_injected",
    labels: { envoy_http_conn_manager_prefix: "inbound_127.0.1.4_8080" },
  });
  assert.deepEqual(envoyStat("tcp.inbound|9000||.downstream_cx_total"), {
    family: "envoy_tcp_downstream_cx_total",
    labels: { envoy_tcp_prefix: "inbound|9000||" },
  });
  // Listener stats carry the listener as a label (a bounded set), never in the family name.
  assert.deepEqual(envoyStat("listener.127.0.1.5_8080.no_filter_chain_match"), {
    family: "envoy_listener_no_filter_chain_match",
    labels: { envoy_listener_address: "127.0.1.5_8080" },
  });
  assert.deepEqual(envoyStat("listener.127.0.1.5_8080.ssl.connection_error"), {
    family: "envoy_listener_ssl_connection_error",
    labels: { envoy_listener_address: "127.0.1.5_8080" },
  });
});

function clusterStats(over: Partial<ClusterStats>): ClusterStats {
  const zero = {
    hosts: 0,
    healthyHosts: 0,
    ejectedHosts: 0,
    requestsTotal: 0,
    requestsActive: 0,
    requestsPending: 0,
    responses2xx: 0,
    responses3xx: 0,
    responses4xx: 0,
    responses5xx: 0,
    failuresTotal: 0,
    connectFailuresTotal: 0,
    resetsTotal: 0,
    timeoutsTotal: 0,
    overflowsTotal: 0,
    retryOverflowsTotal: 0,
    retriesActive: 0,
    connectionsActive: 0,
    connectionsTotal: 0,
    ejectionsTotal: 0,
  };
  return { ...zero, ...over };
}

test("proxy internals per cluster; a removed cluster's series go away", async () => {
  let clusters: Record<string, ClusterStats> = {
    "outbound|8080|v1|order-service.production.svc.cluster.local": clusterStats({
      requestsTotal: 9,
      responses2xx: 8,
      responses5xx: 1,
      overflowsTotal: 2,
      ejectionsTotal: 1,
      hosts: 2,
      healthyHosts: 1,
      connectionsActive: 3,
    }),
  };
  const stats = new Stats();
  stats.cluster("outbound|8080|v1|order-service.production.svc.cluster.local").retry.value = 4;
  const registry = new Registry();
  const collector = new ProxyStatsCollector(registry, {
    stats,
    clusters: { stats: () => clusters } as unknown as ClusterManager,
  });
  collector.refresh();
  const text = await registry.metrics();
  const name = 'envoy_cluster_name="outbound|8080|v1|order-service.production.svc.cluster.local"';
  assert.match(text, new RegExp(`^envoy_cluster_upstream_rq_total\\{${esc(name)}\\} 9$`, "m"));
  assert.match(
    text,
    new RegExp(`^envoy_cluster_upstream_rq_xx\\{${esc(name)},envoy_response_code_class="5"\\} 1$`, "m"),
  );
  assert.match(text, new RegExp(`^envoy_cluster_upstream_rq_pending_overflow\\{${esc(name)}\\} 2$`, "m"));
  assert.match(
    text,
    new RegExp(`^envoy_cluster_outlier_detection_ejections_total\\{${esc(name)}\\} 1$`, "m"),
  );
  assert.match(text, new RegExp(`^envoy_cluster_membership_healthy\\{${esc(name)}\\} 1$`, "m"));
  assert.match(text, new RegExp(`^envoy_cluster_upstream_cx_active\\{${esc(name)}\\} 3$`, "m"));
  assert.match(text, new RegExp(`^envoy_cluster_upstream_rq_retry\\{${esc(name)}\\} 4$`, "m"));
  assert.match(text, /^# TYPE envoy_cluster_upstream_rq_total counter$/m);
  assert.match(text, /^# TYPE envoy_cluster_upstream_cx_active gauge$/m);
  clusters = {};
  collector.refresh();
  assert.doesNotMatch(await registry.metrics(), /envoy_cluster_membership_total/);
});

function esc(s: string): string {
  return s.replace(/[|.]/g, (c) => `\\${c}`);
}

/** The text exposition format's grammar, line by line (Prometheus' text format 0.0.4). */
function checkExposition(text: string): void {
  const typed = new Map<string, string>();
  const metricName = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      assert.match(meta[2] as string, metricName, line);
      if (meta[1] === "TYPE") {
        assert.ok(["counter", "gauge", "histogram", "summary", "untyped"].includes(meta[3] as string), line);
        typed.set(meta[2] as string, meta[3] as string);
      }
      continue;
    }
    const m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (\S+)$/.exec(line);
    assert.ok(m, `not a sample line: ${line}`);
    // Go's ParseFloat, which Prometheus uses, takes NaN in any case (prom-client prints "Nan").
    const value = m[3] as string;
    assert.ok(
      /^nan$/i.test(value) || !Number.isNaN(Number(value.replace(/^([+-])?Inf$/, "$1Infinity"))),
      line,
    );
    const base = (m[1] as string).replace(/_(bucket|sum|count)$/, "");
    assert.ok(typed.has(m[1] as string) || typed.has(base), `sample before its TYPE: ${line}`);
  }
}

test("the /stats/prometheus text parses (our grammar check, and promtool when installed)", async (t) => {
  const stats = new Stats();
  stats.http("inbound_127.0.1.4_8080").rqTotal.value = 3;
  const telemetry = new SidecarTelemetry({
    node,
    stats,
    clusters: {
      stats: () => ({ "outbound|8080||x.y.svc.cluster.local": clusterStats({ requestsTotal: 1 }) }),
    } as unknown as ClusterManager,
  });
  const info = httpInfo();
  info.connection = conn("spiffe://cluster.local/ns/production/sa/api-gateway");
  info.peer = { ...gateway, workloadName: 'we"ird\\name' };
  telemetry.record(info, "inbound");
  const text = await telemetry.metrics();
  assert.match(text, /^process_cpu_seconds_total /m);
  assert.match(
    text,
    /^envoy_http_downstream_rq_total\{envoy_http_conn_manager_prefix="inbound_127\.0\.1\.4_8080"\} 3$/m,
  );
  checkExposition(text);
  let promtool = "";
  try {
    promtool = execFileSync("sh", ["-c", "command -v promtool"]).toString().trim();
  } catch {
    t.diagnostic("promtool not installed: grammar check only");
    return;
  }
  // promtool exits 1 on a parse error and 3 on lint findings only: Envoy's and Istio's own names break its
  // naming advice (milliseconds, counters without _total), which is the point of keeping them.
  const r = spawnSync(promtool, ["check", "metrics"], { input: text, encoding: "utf8" });
  assert.ok(r.status === 0 || r.status === 3, `promtool: ${r.status} ${r.stderr}`);
  assert.doesNotMatch(`${r.stdout}${r.stderr}`, /parsing error/);
});
