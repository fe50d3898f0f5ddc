// Istio's standard metrics, as the sidecar exports them on :15020/stats/prometheus: the same names, types,
// histogram buckets and labels as Istio's stats filter, so Istio's dashboards and alerts work unchanged.
// One record() per finished request or TCP connection (from StreamInfo). Every label value comes from a
// bounded set by construction: this sidecar's own node, cluster names from the config, a peer that proved
// its identity over mutual TLS, or small enumerations (status code, gRPC status, response flags).
import { Counter, Histogram, type Registry } from "prom-client";
import type { LocalNode } from "../node.js";
import { connectionSecurityPolicy } from "../router/connection.js";
import { formatResponseFlags, type StreamInfo } from "../router/stream-info.js";
import { type PeerMetadata, UNKNOWN_PEER } from "./peer-metadata.js";

/**
 * Envoy's default histogram buckets, which Istio's histograms use (milliseconds for durations, bytes for
 * sizes): `le` values 0.5 … 3600000.
 */
export const ISTIO_BUCKETS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];

const PEER_LABELS = [
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
  "response_flags",
  "connection_security_policy",
] as const;

/** The labels of istio_requests_total and the HTTP histograms. */
export const HTTP_LABELS = [...PEER_LABELS, "response_code", "grpc_response_status"] as const;
/** The labels of the istio_tcp_* counters (Istio's TCP metrics have no response code). */
export const TCP_LABELS = PEER_LABELS;

export type HttpLabels = Record<(typeof HTTP_LABELS)[number], string>;
export type TcpLabels = Record<(typeof TCP_LABELS)[number], string>;

const UNKNOWN = "unknown";
const CLUSTER_DOMAIN = ".svc.cluster.local";

/** The service a request went to: `outbound|8080|v1|order-service.production.svc.cluster.local` → parts. */
export function serviceOfCluster(cluster: string | undefined): {
  host: string;
  name: string;
  namespace: string;
} {
  const parts = cluster?.split("|");
  if (parts?.length !== 4 || parts[0] !== "outbound" || !parts[3])
    return { host: UNKNOWN, name: UNKNOWN, namespace: UNKNOWN };
  return serviceOfHost(parts[3]);
}

function serviceOfHost(host: string): { host: string; name: string; namespace: string } {
  if (host.endsWith(CLUSTER_DOMAIN)) {
    const [name, namespace] = host.slice(0, -CLUSTER_DOMAIN.length).split(".");
    if (name && namespace) return { host, name, namespace };
  }
  // Not a Kubernetes-style name (a ServiceEntry host, an App Mesh alias): Istio then names the host.
  return { host, name: host, namespace: UNKNOWN };
}

/** The service a workload serves, as the server side names it: its app label in its namespace. */
function ownService(node: LocalNode): { host: string; name: string; namespace: string } {
  if (node.app === UNKNOWN) return { host: UNKNOWN, name: UNKNOWN, namespace: UNKNOWN };
  return {
    host: `${node.app}.${node.namespace}${CLUSTER_DOMAIN}`,
    name: node.app,
    namespace: node.namespace,
  };
}

/** Clamps a number to its range so a broken upstream cannot mint new label values. */
function code(n: number, max: number): string {
  return Number.isInteger(n) && n >= 0 && n <= max ? String(n) : "0";
}

export type Reporter = "source" | "destination";

/**
 * The labels both kinds of metric share. `reporter` is `destination` on inbound listeners (this workload
 * served the request) and `source` on outbound ones (this workload made it).
 */
function peerLabels(info: StreamInfo, reporter: Reporter, node: LocalNode): TcpLabels {
  const peer: PeerMetadata = info.peer ?? UNKNOWN_PEER;
  const tcp = info.protocol === "TCP";
  const protocol = tcp ? "tcp" : info.grpcStatus !== undefined ? "grpc" : "http";
  if (reporter === "destination") {
    const mtls = info.connection?.peerPrincipal !== undefined;
    const service = ownService(node);
    return {
      reporter,
      source_workload: peer.workloadName,
      source_workload_namespace: peer.namespace,
      source_principal: info.connection?.peerPrincipal ?? UNKNOWN,
      source_app: peer.app,
      source_version: peer.version,
      destination_workload: node.workloadName,
      destination_workload_namespace: node.namespace,
      destination_principal: mtls ? node.principal : UNKNOWN,
      destination_app: node.app,
      destination_version: node.version,
      destination_service: service.host,
      destination_service_name: service.name,
      destination_service_namespace: service.namespace,
      request_protocol: protocol,
      response_flags: formatResponseFlags(info.responseFlags),
      connection_security_policy: connectionSecurityPolicy(info.connection),
    };
  }
  const mtls = info.upstreamPeerPrincipal !== undefined;
  const service = serviceOfCluster(info.cluster);
  return {
    reporter,
    source_workload: node.workloadName,
    source_workload_namespace: node.namespace,
    source_principal: mtls ? node.principal : UNKNOWN,
    source_app: node.app,
    source_version: node.version,
    destination_workload: peer.workloadName,
    destination_workload_namespace: peer.namespace,
    destination_principal: info.upstreamPeerPrincipal ?? UNKNOWN,
    destination_app: peer.app,
    destination_version: peer.version,
    destination_service: service.host,
    destination_service_name: service.name,
    destination_service_namespace: service.namespace,
    request_protocol: protocol,
    response_flags: formatResponseFlags(info.responseFlags),
    // Istio's client side does not know how the server authenticated it.
    connection_security_policy: UNKNOWN,
  };
}

/** The labels of one finished HTTP request. */
export function httpLabels(info: StreamInfo, reporter: Reporter, node: LocalNode): HttpLabels {
  return {
    ...peerLabels(info, reporter, node),
    response_code: code(info.responseCode, 999),
    grpc_response_status: info.grpcStatus === undefined ? "" : code(info.grpcStatus, 16),
  };
}

/** The labels of one TCP connection. */
export function tcpLabels(info: StreamInfo, reporter: Reporter, node: LocalNode): TcpLabels {
  return peerLabels(info, reporter, node);
}

/** Istio's eight standard metrics in a prom-client registry. */
export class IstioMetrics {
  readonly requests: Counter<(typeof HTTP_LABELS)[number]>;
  readonly duration: Histogram<(typeof HTTP_LABELS)[number]>;
  readonly requestBytes: Histogram<(typeof HTTP_LABELS)[number]>;
  readonly responseBytes: Histogram<(typeof HTTP_LABELS)[number]>;
  readonly tcpSent: Counter<(typeof TCP_LABELS)[number]>;
  readonly tcpReceived: Counter<(typeof TCP_LABELS)[number]>;
  readonly tcpOpened: Counter<(typeof TCP_LABELS)[number]>;
  readonly tcpClosed: Counter<(typeof TCP_LABELS)[number]>;

  constructor(
    registry: Registry,
    private readonly node: LocalNode,
  ) {
    const registers = [registry];
    const http = { labelNames: HTTP_LABELS, registers };
    const tcp = { labelNames: TCP_LABELS, registers };
    const buckets = [...ISTIO_BUCKETS];
    this.requests = new Counter({
      name: "istio_requests_total",
      help: "Requests handled by the proxy.",
      ...http,
    });
    this.duration = new Histogram({
      name: "istio_request_duration_milliseconds",
      help: "Request duration in milliseconds.",
      buckets,
      ...http,
    });
    this.requestBytes = new Histogram({
      name: "istio_request_bytes",
      help: "HTTP request body sizes in bytes.",
      buckets,
      ...http,
    });
    this.responseBytes = new Histogram({
      name: "istio_response_bytes",
      help: "HTTP response body sizes in bytes.",
      buckets,
      ...http,
    });
    this.tcpSent = new Counter({
      name: "istio_tcp_sent_bytes_total",
      help: "Bytes sent during response in a TCP connection.",
      ...tcp,
    });
    this.tcpReceived = new Counter({
      name: "istio_tcp_received_bytes_total",
      help: "Bytes received during request in a TCP connection.",
      ...tcp,
    });
    this.tcpOpened = new Counter({
      name: "istio_tcp_connections_opened_total",
      help: "TCP connections opened.",
      ...tcp,
    });
    this.tcpClosed = new Counter({
      name: "istio_tcp_connections_closed_total",
      help: "TCP connections closed.",
      ...tcp,
    });
  }

  /**
   * Counts one finished request or TCP connection. Listeners that are neither inbound nor outbound
   * (`unspecified`) are not the mesh's traffic and are not counted.
   */
  record(info: StreamInfo, direction: "inbound" | "outbound" | "unspecified" | undefined): void {
    if (direction !== "inbound" && direction !== "outbound") return;
    const reporter: Reporter = direction === "inbound" ? "destination" : "source";
    if (info.protocol === "TCP") {
      const labels = tcpLabels(info, reporter, this.node);
      // A connection is reported when it ends, so opened and closed move together.
      this.tcpOpened.inc(labels);
      this.tcpClosed.inc(labels);
      if (info.bytesSent > 0) this.tcpSent.inc(labels, info.bytesSent);
      if (info.bytesReceived > 0) this.tcpReceived.inc(labels, info.bytesReceived);
      return;
    }
    const labels = httpLabels(info, reporter, this.node);
    this.requests.inc(labels);
    this.duration.observe(labels, info.durationMs);
    this.requestBytes.observe(labels, info.bytesReceived);
    this.responseBytes.observe(labels, info.bytesSent);
  }
}
