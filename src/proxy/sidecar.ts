// `skein proxy`: wiring only. The ADS client feeds the config store; each accepted update goes to the
// cluster manager (clusters and endpoints first, so new routes find their clusters) and then to the
// listener manager; the admin server reports readiness and state. The logic lives in the folders below.
import * as grpc from "@grpc/grpc-js";
import { SkeinError } from "../lib/diagnostics.js";
import { createLogger, type Logger } from "../lib/log.js";
import { AdsClient, type AdsClientNode } from "../xds/client.js";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from "../xds/protos.js";
import { flushAccessLogs } from "./access-log/writer.js";
import { AdminServer } from "./admin/server.js";
import { TapHub } from "./admin/tap.js";
import { ConfigStore } from "./config/store.js";
import { SecretManager } from "./identity/secrets.js";
import { CaSecretSource, FileSecretSource, type SecretSource } from "./identity/sources.js";
import { ListenerManager } from "./listeners/manager.js";
import { type LocalNode, localNodeFrom } from "./node.js";
import type { StreamInfo } from "./router/stream-info.js";
import { StatusServer } from "./status/server.js";
import { SidecarTelemetry } from "./telemetry/sidecar-telemetry.js";
import { shutdownTracing } from "./telemetry/tracing.js";
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
  /** Serve /stats/prometheus and /healthz/ready on adminAddress:statusPort (15020; 0: any); absent: not served. */
  statusPort?: number;
  /** The workload's bootstrap token: certificates come from the control plane's CA (`ca`). */
  token?: string;
  /** The control plane's HTTP API for certificates; default `http://<xds host>:15080`. */
  ca?: string;
  /** Requested certificate lifetime (the CA's default when absent). */
  certTtlMs?: number;
  /** Or: a directory with cert-chain.pem, key.pem and root-cert.pem, re-read when they change. */
  certDir?: string;
  /**
   * `xds` is the control plane's TLS port (15012): connect with the workload certificate, verifying the control
   * plane against the trust bundle. The stream starts once the identity is there; renewals apply from the next
   * (re)connection.
   */
  xdsTls?: boolean;
}

/** The control plane's HTTP API next to its xDS address: same host, port 15080. */
export function defaultCaUrl(xds: string): string {
  const i = xds.lastIndexOf(":");
  const host = i > 0 ? xds.slice(0, i) : xds;
  return `http://${host}:15080`;
}

export class Sidecar {
  readonly store = new ConfigStore();
  /** The `default` and `ROOTCA` secrets TLS configs name. */
  readonly secrets: SecretManager;
  readonly clusters: ReturnType<typeof createClusterManager>;
  /** Where the secrets come from, when configured (the CA with a token, or a certificate directory). */
  readonly identity: SecretSource | undefined;
  readonly listeners: ListenerManager;
  readonly admin: AdminServer;
  readonly client: AdsClient;
  /** This sidecar's workload, from the node it announces. */
  readonly node: LocalNode;
  private readonly log: Logger;
  private applying: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private readonly skippedLogged = new Set<string>();
  /** Istio's standard metrics and the proxy's internals, for the status port. */
  readonly telemetry: SidecarTelemetry;
  private status: StatusServer | undefined;
  /** Clients of the admin `/tap` stream (skein tap). */
  readonly tap = new TapHub();

  constructor(readonly options: SidecarOptions) {
    this.log = options.logger ?? createLogger("proxy");
    this.node = localNodeFrom(options.node);
    if (options.token && options.certDir)
      throw new SkeinError(
        "SKEIN_E_PROXY_IDENTITY_CONFLICT",
        "give a bootstrap token (certificates from the control plane) or a certificate directory, not both",
      );
    this.secrets = new SecretManager({ logger: this.log });
    if (options.token)
      this.identity = new CaSecretSource(this.secrets, {
        controlPlane: options.ca ?? defaultCaUrl(options.xds),
        token: options.token,
        logger: this.log,
        ...(options.certTtlMs !== undefined && { ttlMs: options.certTtlMs }),
      });
    else if (options.certDir)
      this.identity = new FileSecretSource(this.secrets, options.certDir, { logger: this.log });
    this.clusters = createClusterManager({ secrets: this.secrets });
    this.listeners = new ListenerManager({
      secrets: this.secrets,
      clusters: this.clusters,
      onRequestComplete: (info) => this.requestComplete(info),
      node: this.node,
    });
    this.telemetry = new SidecarTelemetry({
      node: this.node,
      stats: this.listeners.stats,
      clusters: this.clusters,
    });
    if (options.xdsTls && !this.identity)
      throw new SkeinError(
        "SKEIN_E_PROXY_XDS_TLS_IDENTITY",
        "xDS over TLS needs the workload's identity: give --token (and --ca) or --cert-dir",
      );
    this.client = new AdsClient({
      address: options.xds,
      node: options.node,
      validate: this.store.validate,
      ...(options.xdsTls && { credentials: () => this.xdsCredentials(), autoStart: false }),
    });
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
      tap: this.tap,
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

  /**
   * Ready once the first LDS and CDS and everything they reference have arrived and listeners are bound, and,
   * with an identity source, once the workload certificate and the trust bundle are in.
   */
  ready(): boolean {
    if (!this.secrets.ready()) return false;
    const c = this.store.config;
    if (!c.versions[LISTENER] || !c.versions[CLUSTER] || !this.listeners.ready || this.listeners.draining)
      return false;
    return (
      this.store.resourceNames(ROUTE).every((n) => c.routes.has(n)) &&
      this.store.resourceNames(ENDPOINT).every((n) => c.endpoints.has(n))
    );
  }

  /** The channel credentials for xDS over TLS: the workload certificate, the control plane checked against ROOTCA. */
  private xdsCredentials(): grpc.ChannelCredentials {
    const w = this.secrets.workload;
    const roots = this.secrets.roots;
    if (!w || !roots) throw new Error("no workload certificate yet");
    return grpc.credentials.createSsl(Buffer.from(roots), Buffer.from(w.key), Buffer.from(w.chain));
  }

  async start(): Promise<number> {
    this.identity?.start();
    if (this.options.xdsTls) {
      const begin = () => {
        if (!this.secrets.workload || !this.secrets.roots) return;
        this.secrets.off("updated", begin);
        this.client.start();
      };
      this.secrets.on("updated", begin);
      begin();
    }
    const { port } = await this.admin.listen();
    this.log.info("admin listening", {
      admin: `http://${this.options.adminAddress}:${port}`,
      node: this.options.node.id,
    });
    if (this.options.statusPort !== undefined) {
      const status = new StatusServer({
        address: this.options.adminAddress,
        port: this.options.statusPort,
        metrics: () => this.telemetry.metrics(),
        contentType: this.telemetry.contentType,
        ready: () => this.ready(),
      });
      const bound = await status.listen();
      this.status = status;
      this.log.info("status listening", {
        metrics: `http://${bound.address}:${bound.port}/stats/prometheus`,
      });
    }
    return port;
  }

  /** The status port actually bound (statusPort 0 picks one); undefined when not served. */
  statusAddress(): { address: string; port: number } | undefined {
    return this.status?.address();
  }

  /** Metrics first (they must see every request), then the caller's hook. */
  private requestComplete(info: StreamInfo): void {
    this.telemetry.record(info, this.store.config.listeners.get(info.listener)?.direction);
    if (this.tap.active)
      this.tap.publish(info, this.store.config.listeners.get(info.listener)?.direction, this.node);
    this.options.onRequestComplete?.(info);
  }

  /** Drains (stop accepting, finish in-flight within drainMs), then closes everything. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.log.info("draining", { ms: this.options.drainMs });
    this.client.close();
    this.identity?.stop();
    await this.listeners.drain(this.options.drainMs);
    // Spans of the requests just drained go out before the collector cluster closes.
    await shutdownTracing(this.node.id).catch(() => undefined);
    flushAccessLogs();
    await this.clusters.close(1000);
    await this.admin.close();
    await this.status?.close();
  }
}
