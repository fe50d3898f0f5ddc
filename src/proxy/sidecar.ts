// `skein proxy`: wiring only. The ADS client feeds the config store; each accepted update goes to the
// cluster manager (clusters and endpoints first, so new routes find their clusters) and then to the
// listener manager; the admin server reports readiness and state. The logic lives in the folders below.
import { createLogger, type Logger } from "../lib/log.js";
import { AdsClient, type AdsClientNode } from "../xds/client.js";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from "../xds/protos.js";
import { AdminServer } from "./admin/server.js";
import { ConfigStore } from "./config/store.js";
import { ListenerManager } from "./listeners/manager.js";
import { type LocalNode, localNodeFrom } from "./node.js";
import type { StreamInfo } from "./router/stream-info.js";
import { createClusterManager } from "./upstream/cluster-manager.js";

export interface SidecarOptions {
  /** Control plane xDS address, host:port. */
  xds: string;
  node: AdsClientNode;
  adminAddress: string;
  adminPort: number;
  /** How long draining waits for in-flight requests on SIGTERM. */
  drainMs: number;
  logger?: Logger;
  /** Called once per finished request or TCP connection (access logs, tests); must not throw. */
  onRequestComplete?: (info: StreamInfo) => void;
}

export class Sidecar {
  readonly store = new ConfigStore();
  readonly clusters = createClusterManager();
  readonly listeners: ListenerManager;
  readonly admin: AdminServer;
  readonly client: AdsClient;
  /** This sidecar's workload, from the node it announces. */
  readonly node: LocalNode;
  private readonly log: Logger;
  private applying: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly skippedLogged = new Set<string>();

  constructor(readonly options: SidecarOptions) {
    this.log = options.logger ?? createLogger("proxy");
    this.node = localNodeFrom(options.node);
    this.listeners = new ListenerManager({
      clusters: this.clusters,
      onRequestComplete: options.onRequestComplete,
      node: this.node,
    });
    this.client = new AdsClient({ address: options.xds, node: options.node, validate: this.store.validate });
    this.store.bind(this.client);
    this.admin = new AdminServer({
      address: options.adminAddress,
      port: options.adminPort,
      config: () => this.store.config,
      clusters: this.clusters,
      stats: this.listeners.stats,
      ready: () => this.ready(),
      draining: () => this.listeners.draining,
      listeners: () => this.listeners.listeners(),
      onQuit: () => void this.stop(),
    });
    this.wire();
  }

  private wire(): void {
    this.store.on("updated", (config) => {
      // One apply at a time, in order; the cluster manager first so routes find new clusters.
      this.applying = this.applying.then(async () => {
        this.clusters.update(config.clusters, config.endpoints);
        const r = await this.listeners.apply(config);
        for (const f of r.failed)
          this.log.error("listener not applied", { listener: f.listener, code: f.code, error: f.message });
        for (const s of r.skippedFilters) {
          const key = `${s.listener}\u0000${s.filters.join(",")}`;
          if (this.skippedLogged.has(key)) continue;
          this.skippedLogged.add(key);
          this.log.warn("http filters not available in this sidecar yet, skipped", {
            listener: s.listener,
            filters: s.filters.join(","),
          });
        }
      });
    });
    this.client.on("connected", () =>
      this.log.info("connected to the control plane", { xds: this.options.xds }),
    );
    this.client.on("disconnected", (reason, retryInMs) =>
      this.log.warn("control plane unreachable; serving the last good config", { reason, retryInMs }),
    );
    this.client.on("nack", (typeUrl, message) =>
      this.log.error("rejected config (NACK); keeping the last good one", { typeUrl, message }),
    );
  }

  /** Ready once the first LDS and CDS and everything they reference have arrived and listeners are bound. */
  ready(): boolean {
    const c = this.store.config;
    if (!c.versions[LISTENER] || !c.versions[CLUSTER] || !this.listeners.ready || this.listeners.draining)
      return false;
    return (
      this.store.resourceNames(ROUTE).every((n) => c.routes.has(n)) &&
      this.store.resourceNames(ENDPOINT).every((n) => c.endpoints.has(n))
    );
  }

  async start(): Promise<number> {
    const { port } = await this.admin.listen();
    this.log.info("admin listening", {
      admin: `http://${this.options.adminAddress}:${port}`,
      node: this.options.node.id,
    });
    return port;
  }

  /** Drains (stop accepting, finish in-flight within drainMs), then closes everything. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.log.info("draining", { ms: this.options.drainMs });
    this.client.close();
    await this.listeners.drain(this.options.drainMs);
    await this.clusters.close(1000);
    await this.admin.close();
  }
}
