// Everything one sidecar exports on :15020/stats/prometheus, in one prom-client registry of its own
// (several sidecars may share a process in tests): Istio's standard metrics, the proxy's internals under
// Envoy's names, and the Node.js process metrics.
import { collectDefaultMetrics, Registry } from "prom-client";
import type { LocalNode } from "../node.js";
import type { StreamInfo } from "../router/stream-info.js";
import { IstioMetrics } from "./istio-metrics.js";
import { ProxyStatsCollector, type ProxyStatsSources } from "./proxy-metrics.js";

export interface SidecarTelemetryOptions extends ProxyStatsSources {
  node: LocalNode;
  /** Add process_* and nodejs_* metrics (default true). */
  processMetrics?: boolean;
}

export class SidecarTelemetry {
  readonly registry = new Registry();
  readonly istio: IstioMetrics;
  private readonly proxy: ProxyStatsCollector;

  constructor(options: SidecarTelemetryOptions) {
    this.istio = new IstioMetrics(this.registry, options.node);
    this.proxy = new ProxyStatsCollector(this.registry, options);
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Counts one finished request or TCP connection of a listener with this direction. */
  record(info: StreamInfo, direction: "inbound" | "outbound" | "unspecified" | undefined): void {
    this.istio.record(info, direction);
  }

  /** The Prometheus text exposition of everything, internals read now. */
  metrics(): Promise<string> {
    this.proxy.refresh();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
