// Control-plane metrics on :15014/metrics, with Istio's names where Istio has one, so existing
// dashboards and alerts keep working.
import { Counter, Gauge, Histogram, Registry } from "prom-client";

export class ControlPlaneMetrics {
  readonly registry = new Registry();
  /** Connected xDS streams (Istio: pilot_xds). */
  readonly connected = new Gauge({
    name: "pilot_xds",
    help: "Number of endpoints connected to this pilot using XDS.",
    registers: [this.registry],
  });
  readonly pushes = new Counter({
    name: "pilot_xds_pushes",
    help: "Pilot build and send errors for lds, rds, cds and eds.",
    labelNames: ["type"] as const,
    registers: [this.registry],
  });
  readonly rejects = new Counter({
    name: "pilot_total_xds_rejects",
    help: "Total number of XDS responses from pilot rejected by proxy.",
    labelNames: ["type"] as const,
    registers: [this.registry],
  });
  readonly convergence = new Histogram({
    name: "pilot_proxy_convergence_time",
    help: "Delay in seconds between config change and a proxy receiving all required configuration.",
    // Istio's buckets (pilot/pkg/xds monitoring), so its dashboards' quantiles line up.
    buckets: [0.1, 0.5, 1, 3, 5, 10, 20, 30],
    registers: [this.registry],
  });
  readonly configRejected = new Counter({
    name: "skein_config_rejected_total",
    help: "Configuration changes rejected as a whole (the last good configuration stayed in force).",
    registers: [this.registry],
  });
  readonly configAccepted = new Counter({
    name: "skein_config_accepted_total",
    help: "Configuration changes accepted.",
    registers: [this.registry],
  });
  readonly pushDuration = new Histogram({
    name: "skein_push_build_seconds",
    help: "Time to translate and snapshot the configuration for every connected proxy.",
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly registryInstances = new Gauge({
    name: "skein_registry_workloads",
    help: "Workload instances in the registry.",
    labelNames: ["origin"] as const,
    registers: [this.registry],
  });
}

export const TYPE_LABEL: Record<string, string> = {
  "type.googleapis.com/envoy.config.listener.v3.Listener": "lds",
  "type.googleapis.com/envoy.config.route.v3.RouteConfiguration": "rds",
  "type.googleapis.com/envoy.config.cluster.v3.Cluster": "cds",
  "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment": "eds",
  "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret": "sds",
};
