// `skein control-plane`: wiring only. Config sources feed the pipeline; accepted config and the registry
// feed a debounced push that translates per proxy and sets xDS snapshots; the ADS server serves them.
// The logic lives in src/model, src/translate and src/xds.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { isIP } from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { formatDiagnostic } from "../lib/format.js";
import { createLogger, type Logger } from "../lib/log.js";
import { spiffeId } from "../lib/spiffe.js";
import { DEFAULT_TRUST_DOMAIN, emptyModel } from "../model/builder.js";
import { selectorMatches } from "../model/hosts.js";
import type { MeshSnapshot, ProxyIdentity } from "../model/snapshot.js";
import type { MeshModel } from "../model/types.js";
import { translate } from "../translate/index.js";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET } from "../xds/protos.js";
import { AdsServer, type NodeInfo } from "../xds/server.js";
import { Snapshot, SnapshotCache } from "../xds/snapshot.js";
import { AddressAllocator, listeningLoopbackAddresses } from "./addresses.js";
import { CertificateAuthority } from "./ca/authority.js";
import { WorkloadCertificates } from "./ca/issuer.js";
import { ROOT_CA_SECRET } from "./ca/sds.js";
import { BootstrapTokens } from "./ca/tokens.js";
import { ConfigPipeline } from "./config.js";
import { createDashboard } from "./dashboard.js";
import { Debouncer } from "./debounce.js";
import { createHttpApi, listen, type ProxyStatusRow } from "./http-api.js";
import { ControlPlaneMetrics, TYPE_LABEL } from "./metrics.js";
import { identify, Registry } from "./registry.js";
import { AppliedStore, DirectorySource } from "./sources.js";
import { TelemetryScraper } from "./telemetry.js";

export interface ControlPlaneOptions {
  /** Directory of YAML files to watch (optional: everything may come through the API). */
  configDir?: string;
  /** Where API-applied resources persist; none: kept in memory only. */
  stateDir?: string;
  host: string;
  xdsPort: number;
  httpPort: number;
  metricsPort: number;
  /** How long a disconnected proxy's workload stays registered. */
  graceMs?: number;
  debounceMs?: number;
  maxDebounceMs?: number;
  logger?: Logger;
  /** An Istio cacerts directory (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem); none: a generated root. */
  caDir?: string;
  /** Lifetime of workload certificates when a request names none (default 24 h). */
  certTtlMs?: number;
  /** How long an unused bootstrap token lives (default 1 h). */
  bootstrapTokenIdleMs?: number;
  /**
   * xDS over TLS (Istio's 15012): proxies present their workload certificate and may only ask for config as the
   * identity it proves. Undefined: not served. 0: a free port.
   */
  xdsTlsPort?: number;
  /** How often the dashboard's telemetry scrapes each sidecar's :15020/stats/prometheus (default 3 s). */
  telemetryIntervalMs?: number;
}

interface ProxyState {
  identity: ProxyIdentity;
  connectedAt: Date;
  streams: Set<number>;
  /** When the snapshot now in the cache was set, and the versions it carries, until all are ACKed. */
  pending?: { at: number; versions: Record<string, string> };
}

const TYPES = [LISTENER, ROUTE, CLUSTER, ENDPOINT];
// Secrets are dumped but not part of convergence: a proxy that does not use SDS never ACKs them.
const DUMP_TYPES = [...TYPES, SECRET];

export class ControlPlane {
  readonly pipeline: ConfigPipeline;
  readonly registry: Registry;
  readonly cache = new SnapshotCache();
  readonly ads: AdsServer;
  readonly metrics = new ControlPlaneMetrics();
  readonly ports = { xds: 0, http: 0, metrics: 0, xdsTls: 0 };
  private readonly proxies = new Map<string, ProxyState>();
  private readonly directory?: DirectorySource;
  private readonly debouncer: Debouncer;
  private readonly log: Logger;
  private http?: Server;
  private metricsServer?: Server;
  /** The CA, bootstrap tokens and signing; there from start() on. */
  certificates?: WorkloadCertificates;
  readonly addresses = new AddressAllocator(() => [
    ...this.registry.instances().map((w) => w.address),
    ...listeningLoopbackAddresses(),
  ]);
  /** Sidecar metrics for the dashboard: every connected sidecar with a workload address. */
  readonly telemetry: TelemetryScraper;
  /** Identifies the pushed state; changes when config or registry do. */
  meshVersion = "";

  constructor(readonly options: ControlPlaneOptions) {
    this.log = options.logger ?? createLogger("control-plane");
    this.directory = options.configDir ? new DirectorySource(options.configDir) : undefined;
    this.pipeline = new ConfigPipeline(this.directory, new AppliedStore(options.stateDir));
    this.registry = new Registry(options.graceMs ?? 5000);
    this.ads = new AdsServer({
      cache: this.cache,
      address: `${options.host}:${options.xdsPort}`,
      authenticate: (node, auth) => this.authenticateProxy(node, auth),
    });
    this.debouncer = new Debouncer(
      (reasons) => this.push(reasons),
      options.debounceMs ?? 100,
      options.maxDebounceMs ?? 1000,
    );
    this.telemetry = new TelemetryScraper({
      targets: () =>
        [...this.proxies.values()].flatMap((p) =>
          p.identity.kind === "sidecar" && p.identity.workload
            ? [{ id: p.identity.id, address: p.identity.workload.address }]
            : [],
        ),
      intervalMs: options.telemetryIntervalMs,
      logger: this.log,
    });
    this.wire();
  }

  private wire(): void {
    this.pipeline.on("accepted", (c) => {
      this.metrics.configAccepted.inc();
      this.log.info("config accepted", {
        version: c.version,
        resources: c.resources.length,
        warnings: c.diagnostics.length,
      });
      for (const d of c.diagnostics) {
        if (d.severity === "warning") this.log.warn(formatDiagnostic(d, false));
        else this.log.info(formatDiagnostic(d, false));
      }
      this.registry.setStatic(c.model);
    });
    this.pipeline.on("rejected", (r) => {
      this.metrics.configRejected.inc();
      this.log.error("config rejected; the last good configuration stays in force", {
        trigger: r.trigger,
        errors: r.diagnostics.filter((d) => d.severity === "error").length,
        version: this.pipeline.current?.version,
      });
      for (const d of r.diagnostics) if (d.severity === "error") this.log.error(formatDiagnostic(d, false));
    });
    this.registry.on("changed", () => {
      const counts = { proxy: 0, static: 0 };
      for (const i of this.registry.instances()) counts[i.origin]++;
      this.metrics.registryInstances.set({ origin: "proxy" }, counts.proxy);
      this.metrics.registryInstances.set({ origin: "static" }, counts.static);
      this.debouncer.trigger("registry");
    });

    this.ads.on("streamOpened", (nodeId, node, streamId) => {
      const identity = this.registry.connect(node);
      const state = this.proxies.get(nodeId) ?? {
        identity,
        connectedAt: new Date(),
        streams: new Set<number>(),
      };
      state.identity = identity;
      state.streams.add(streamId);
      this.proxies.set(nodeId, state);
      this.metrics.connected.set(this.proxies.size);
      this.log.info("proxy connected", { node: nodeId, kind: identity.kind, namespace: identity.namespace });
      // A new proxy needs its own snapshot now, not after the debounce.
      this.pushTo(state, Date.now());
    });
    this.ads.on("streamClosed", (nodeId, streamId) => {
      const state = this.proxies.get(nodeId);
      if (!state) return;
      state.streams.delete(streamId);
      if (state.streams.size > 0) return;
      this.proxies.delete(nodeId);
      this.cache.clearSnapshot(nodeId);
      this.registry.disconnect(nodeId);
      this.metrics.connected.set(this.proxies.size);
      this.log.info("proxy disconnected", { node: nodeId });
    });
    this.ads.on("pushed", (_node, typeUrl) =>
      this.metrics.pushes.inc({ type: TYPE_LABEL[typeUrl] ?? typeUrl }),
    );
    this.ads.on("nack", (nodeId, typeUrl, version, message) => {
      this.metrics.rejects.inc({ type: TYPE_LABEL[typeUrl] ?? typeUrl });
      this.log.warn("proxy rejected config (NACK); it keeps its last good config", {
        node: nodeId,
        type: TYPE_LABEL[typeUrl],
        version,
        message,
      });
    });
    this.ads.on("ack", (nodeId, typeUrl, version) => {
      const state = this.proxies.get(nodeId);
      const pending = state?.pending;
      if (!state || !pending || pending.versions[typeUrl] !== version) return;
      delete pending.versions[typeUrl];
      if (Object.keys(pending.versions).length === 0) {
        this.metrics.convergence.observe((Date.now() - pending.at) / 1000);
        state.pending = undefined;
      }
    });
  }

  /** The snapshot translation reads: accepted model (or an empty one) and the registry's workloads. */
  meshSnapshot(): MeshSnapshot {
    const workloads = this.registry.instances();
    const configVersion = this.pipeline.current?.version ?? "none";
    const h = createHash("sha256").update(configVersion);
    for (const w of workloads) h.update(JSON.stringify(w));
    return {
      version: h.digest("hex").slice(0, 12),
      model: this.pipeline.current?.model ?? emptyModel(),
      workloads,
    };
  }

  private current?: MeshSnapshot;
  /** What the last push to every proxy was built from: the model, and the workloads behind services. */
  private pushed?: { model: MeshModel; signature: string };

  private pushTo(state: ProxyState, at: number): void {
    this.current ??= this.meshSnapshot();
    const id = state.identity.id;
    try {
      const r = translate(this.current, state.identity);
      const byName = <T extends { name?: string; clusterName?: string }>(list: T[]) =>
        new Map(list.map((x) => [(x.name ?? x.clusterName) as string, x]));
      const snapshot = new Snapshot({
        [LISTENER]: byName(r.listeners),
        [ROUTE]: byName(r.routes),
        [CLUSTER]: byName(r.clusters),
        [ENDPOINT]: byName(r.endpoints),
        // Only the trust bundle: a workload's own certificate and key are held by its sidecar (docs/security.md).
        [SECRET]: new Map(this.certificates ? [[ROOT_CA_SECRET, this.certificates.rootCaSecret()]] : []),
      });
      const before = this.cache.getSnapshot(id)?.versions();
      this.cache.setSnapshot(id, snapshot);
      const versions = Object.fromEntries(
        TYPES.filter((t) => before?.[t] !== snapshot.version(t)).map((t) => [t, snapshot.version(t)]),
      );
      if (Object.keys(versions).length > 0)
        state.pending = { at, versions: { ...state.pending?.versions, ...versions } };
    } catch (err) {
      // An inconsistent or unencodable snapshot is a bug in translation: keep the proxy on its last good one.
      this.log.error("cannot build this proxy's config; it keeps its last good one", {
        node: id,
        error: (err as Error).message,
      });
    }
  }

  /** Translates for every connected proxy; the ADS server sends each only the types that changed. */
  push(reasons: string[] = ["manual"]): void {
    const started = Date.now();
    this.current = this.meshSnapshot();
    this.meshVersion = this.current.version;
    // A workload that came or went behind no service changes nobody else's config (its own proxy got its
    // snapshot when it connected): skip translating for every proxy, which is what made connecting a large
    // fleet slower than linear.
    const signature = endpointSignature(this.current);
    const onlyRegistry = reasons.every((r) => r === "registry");
    if (onlyRegistry && this.current.model === this.pushed?.model && signature === this.pushed.signature) {
      this.log.debug("registry change behind no service: nothing to push", { proxies: this.proxies.size });
      return;
    }
    this.pushed = { model: this.current.model, signature };
    for (const state of this.proxies.values()) {
      // The registry may know the proxy's workload better now (labels from config, a reconnect).
      this.pushTo(state, started);
    }
    this.metrics.pushDuration.observe((Date.now() - started) / 1000);
    this.log.debug("pushed", {
      reasons: reasons.join(","),
      proxies: this.proxies.size,
      version: this.meshVersion,
    });
  }

  proxyStatus(): ProxyStatusRow[] {
    const rows: ProxyStatusRow[] = [];
    for (const s of this.ads.status()) {
      const state = this.proxies.get(s.nodeId);
      const types: ProxyStatusRow["types"] = {};
      for (const [url, t] of Object.entries(s.types)) {
        types[TYPE_LABEL[url] ?? url] = {
          sent: t.sentVersion,
          acked: t.ackedVersion,
          nack: t.lastNack && {
            version: t.lastNack.version,
            message: t.lastNack.message,
            at: t.lastNack.at.toISOString(),
          },
        };
      }
      rows.push({
        id: s.nodeId,
        kind: state?.identity.kind ?? "sidecar",
        namespace: state?.identity.namespace ?? "",
        workload: state?.identity.workload?.name,
        connectedAt: s.openedAt.toISOString(),
        types,
      });
    }
    return rows.sort((a, b) => a.id.localeCompare(b.id));
  }

  configDump(proxyId: string): unknown | undefined {
    const snap = this.cache.getSnapshot(proxyId);
    if (!snap) return undefined;
    const out: Record<string, unknown> = { node: proxyId, versions: snap.versions() };
    for (const t of DUMP_TYPES)
      out[TYPE_LABEL[t] ?? t] = [...snap.resources(t).values()].map((r) => r.resource);
    return out;
  }

  async start(): Promise<void> {
    await this.pipeline.applied.load();
    const first = await this.pipeline.reload("start");
    if (!first.accepted)
      this.log.warn(
        "starting without configuration: fix the errors above; changes are picked up as they are saved",
      );
    // Before anything listens or watches: a CA that cannot load stops the start with its SKEIN_E_CA_* error.
    const certificates = await this.loadCertificates();
    this.certificates = certificates;
    this.directory?.watch(() => void this.pipeline.reload());
    // After the first config: pushes follow accepted config from now on.
    this.pipeline.on("accepted", () => this.debouncer.trigger("config"));
    this.ports.xds = await this.ads.listen();
    if (this.options.xdsTlsPort !== undefined) this.ports.xdsTls = await this.listenXdsTls(certificates);
    this.http = createHttpApi({
      pipeline: this.pipeline,
      registry: this.registry,
      allocateAddress: () => this.addresses.allocate(),
      xdsAddress: () => `${this.options.host}:${this.ports.xds}`,
      xdsTlsAddress: () => (this.ports.xdsTls ? `${this.options.host}:${this.ports.xdsTls}` : undefined),
      proxies: () => this.proxyStatus(),
      configDump: (id) => this.configDump(id),
      certificates,
      dashboard: createDashboard({
        model: () => this.pipeline.current?.model,
        workloads: () => this.registry.instances(),
        telemetry: this.telemetry,
      }),
    });
    this.telemetry.start();
    this.ports.http = await listen(this.http, this.options.httpPort, this.options.host);
    this.metricsServer = createServer((req, res) => {
      if (req.url?.split("?")[0] !== "/metrics") {
        res.writeHead(404).end();
        return;
      }
      this.metrics.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": this.metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(err.message),
      );
    });
    this.ports.metrics = await listen(this.metricsServer, this.options.metricsPort, this.options.host);
    this.log.info("control plane ready", {
      xds: `${this.options.host}:${this.ports.xds}`,
      api: `http://${this.options.host}:${this.ports.http}`,
      metrics: `http://${this.options.host}:${this.ports.metrics}/metrics`,
      config: this.options.configDir,
    });
  }

  /** The mesh's trust domain: the accepted meshConfig's, cluster.local before any. */
  /** Binds xDS over TLS with a serving certificate from the mesh's own CA; client certificates required. */
  private async listenXdsTls(certificates: WorkloadCertificates): Promise<number> {
    const host = this.options.host;
    const serving = await certificates.ca.issueServingCertificate({
      uri: spiffeId({ trustDomain: this.trustDomain(), namespace: "istio-system", serviceAccount: "skein" }),
      dns: ["localhost", "skein-control-plane", ...(isIP(host) ? [] : [host])],
      ips: [...new Set(["127.0.0.1", ...(isIP(host) && host !== "0.0.0.0" ? [host] : [])])],
    });
    const credentials = grpc.ServerCredentials.createSsl(
      Buffer.from(serving.rootCert),
      [{ cert_chain: Buffer.from(serving.certificateChain), private_key: Buffer.from(serving.key) }],
      true,
    );
    return this.ads.listen(`${host}:${this.options.xdsTlsPort}`, credentials);
  }

  /**
   * A proxy on the TLS port proved an identity with its certificate: it may only ask as that identity (its node's
   * namespace and service account). Plaintext streams (15010, loopback) are not authenticated, as Istio's.
   */
  private authenticateProxy(
    node: NodeInfo,
    auth: { transportSecurityType?: string; sslPeerCertificate?: { subjectaltname?: string } },
  ): string | undefined {
    if (auth.transportSecurityType !== "ssl") return undefined;
    const san = auth.sslPeerCertificate?.subjectaltname ?? "";
    const proven = san
      .split(", ")
      .find((n) => n.startsWith("URI:spiffe://"))
      ?.slice(4);
    if (!proven) return "xDS over TLS needs a workload certificate with a SPIFFE ID";
    const { identity, instance } = identify(node);
    const claimed = spiffeId({
      trustDomain: this.trustDomain(),
      namespace: identity.namespace,
      serviceAccount: instance?.serviceAccount ?? "default",
    });
    if (proven !== claimed)
      return `the proxy's certificate proves ${proven} but its node claims ${claimed}; a proxy may only ask for its own identity's config`;
    return undefined;
  }

  trustDomain(): string {
    return this.pipeline.current?.model.meshConfig.trustDomain ?? DEFAULT_TRUST_DOMAIN;
  }

  private async loadCertificates(): Promise<WorkloadCertificates> {
    const { stateDir, caDir, certTtlMs, bootstrapTokenIdleMs } = this.options;
    const ca = await CertificateAuthority.load({
      stateDir,
      caDir,
      trustDomain: this.trustDomain(),
      defaultTtlMs: certTtlMs,
      logger: this.log,
    });
    const tokens = new BootstrapTokens({
      idleMs: bootstrapTokenIdleMs,
      file: stateDir ? join(stateDir, "ca", "bootstrap-tokens.json") : undefined,
      logger: this.log,
    });
    await tokens.load();
    return new WorkloadCertificates(ca, tokens, () => this.trustDomain(), this.log);
  }

  async stop(): Promise<void> {
    this.debouncer.cancel();
    this.directory?.close();
    this.registry.close();
    await this.telemetry.stop();
    await this.ads.close();
    await Promise.all(
      [this.http, this.metricsServer].map(
        (s) =>
          new Promise<void>((resolve) => {
            if (!s) return resolve();
            s.close(() => resolve());
            s.closeAllConnections();
          }),
      ),
    );
  }
}

/**
 * The workloads other proxies' configuration can depend on: those some service selects (endpoints, the
 * identities clients verify, their PeerAuthentication), with everything translation reads of them.
 */
export function endpointSignature(snapshot: MeshSnapshot): string {
  const byNamespace = new Map<string, Record<string, string>[]>();
  for (const s of snapshot.model.services) {
    if (!s.selector) continue;
    const list = byNamespace.get(s.namespace) ?? [];
    list.push(s.selector);
    byNamespace.set(s.namespace, list);
  }
  const h = createHash("sha256");
  for (const w of snapshot.workloads) {
    const selectors = byNamespace.get(w.namespace);
    if (!selectors?.some((sel) => selectorMatches(sel, w.labels))) continue;
    h.update(JSON.stringify(w));
  }
  return h.digest("hex");
}
