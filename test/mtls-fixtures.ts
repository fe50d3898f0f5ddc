// Shared by the sidecar mTLS tests: the Envoy config of the mTLS contract (inbound listeners per
// PeerAuthentication mode, outbound clusters with transport socket matches, endpoint metadata) as the control
// plane sends it, compiled through the sidecar's real config layer; certificates signed by the real CA; and a
// sidecar data path (listener and cluster managers sharing one SecretManager).
import { once } from "node:events";
import { createServer as createNetServer, type Server as NetServer } from "node:net";
import { CertificateAuthority } from "../src/control-plane/ca/authority.js";
import { createLogger } from "../src/lib/log.js";
import { compileCluster } from "../src/proxy/config/cluster.js";
import { compileClusterLoadAssignment } from "../src/proxy/config/endpoint.js";
import { compileListener } from "../src/proxy/config/listener.js";
import type { Cluster, EndpointSet, Listener, RuntimeConfig } from "../src/proxy/config/types.js";
import { SecretManager, type WorkloadSecret } from "../src/proxy/identity/secrets.js";
import { ListenerManager } from "../src/proxy/listeners/manager.js";
import type { StreamInfo } from "../src/proxy/router/stream-info.js";
import { createClusterManager, type SkeinClusterManager } from "../src/proxy/upstream/cluster-manager.js";
import { CLUSTER, ENDPOINT, LISTENER } from "../src/xds/protos.js";
import { csrPem, keyPair, pkcs8Pem } from "./ca-fixtures.js";
import { HCM_TYPE, routerFilter, typed, wire } from "./proxy-config-fixtures.js";

export const quiet = createLogger("test", "error");

const sds = (name: string) => ({ name, sdsConfig: { ads: {}, resourceApiVersion: "V3" } });

/** The DownstreamTlsContext of the contract (Istio's inbound mTLS). */
export function downstreamTls(alpn: string[] = ["h2", "http/1.1"]): Record<string, unknown> {
  return typed("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", {
    requireClientCertificate: { value: true },
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [sds("default")],
      combinedValidationContext: {
        defaultValidationContext: {},
        validationContextSdsSecretConfig: sds("ROOTCA"),
      },
      ...(alpn.length > 0 && { alpnProtocols: alpn }),
    },
  });
}

/** The UpstreamTlsContext of the contract (Istio's outbound mTLS to `sans`). */
export function upstreamTls(sni: string, sans: string[], alpn: string[]): Record<string, unknown> {
  return typed("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", {
    sni,
    commonTlsContext: {
      tlsCertificateSdsSecretConfigs: [sds("default")],
      combinedValidationContext: {
        defaultValidationContext: { matchSubjectAltNames: sans.map((exact) => ({ exact })) },
        validationContextSdsSecretConfig: sds("ROOTCA"),
      },
      ...(alpn.length > 0 && { alpnProtocols: alpn }),
    },
  });
}

export const TLS_INSPECTOR = {
  name: "envoy.filters.listener.tls_inspector",
  typedConfig: typed("envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector"),
};

/** An HTTP connection manager with inline routes: path prefix → cluster. */
export function hcmTo(routes: Record<string, string>, statPrefix = "inbound"): Record<string, unknown> {
  return typed(HCM_TYPE, {
    statPrefix,
    routeConfig: {
      name: "local",
      virtualHosts: [
        {
          name: "all",
          domains: ["*"],
          routes: Object.entries(routes).map(([prefix, cluster]) => ({
            match: { prefix },
            route: { cluster },
          })),
        },
      ],
      validateClusters: { value: false },
    },
    httpFilters: [routerFilter()],
  });
}

export function tcpProxyTo(cluster: string): Record<string, unknown> {
  return typed("envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", { statPrefix: cluster, cluster });
}

/** An inbound listener in the shape the control plane gives PeerAuthentication `mode`. */
export function inboundListener(
  name: string,
  address: string,
  port: number,
  mode: "STRICT" | "PERMISSIVE" | "DISABLE",
  terminal: { name: string; typedConfig: Record<string, unknown> },
  alpn?: string[],
): Record<string, unknown> {
  const filters = [terminal];
  const base = {
    name,
    address: { socketAddress: { address, portValue: port } },
    trafficDirection: "INBOUND",
  };
  if (mode === "DISABLE") return { ...base, filterChains: [{ filters }] };
  const tlsChain = {
    filterChainMatch: { transportProtocol: "tls" },
    transportSocket: { name: "envoy.transport_sockets.tls", typedConfig: downstreamTls(alpn) },
    filters,
  };
  const chains =
    mode === "STRICT"
      ? [tlsChain]
      : [tlsChain, { filterChainMatch: { transportProtocol: "raw_buffer" }, filters }];
  return { ...base, listenerFilters: [TLS_INSPECTOR], filterChains: chains };
}

/** An outbound cluster with the contract's transport socket matches (`http2`: h2 upstream, ALPN h2). */
export function meshCluster(
  name: string,
  sans: string[],
  protocol: "http1" | "http2" | "tcp",
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const alpn = protocol === "http2" ? ["h2"] : protocol === "http1" ? ["http/1.1"] : [];
  return {
    name,
    type: "EDS",
    edsClusterConfig: { edsConfig: { ads: {} } },
    connectTimeout: { seconds: 2 },
    transportSocketMatches: [
      {
        name: "tlsMode-istio",
        match: { fields: { tlsMode: { stringValue: "istio" } } },
        transportSocket: {
          name: "envoy.transport_sockets.tls",
          typedConfig: upstreamTls(`outbound_.80_._.${name}.svc.cluster.local`, sans, alpn),
        },
      },
      {
        name: "tlsMode-disabled",
        match: { fields: {} },
        transportSocket: {
          name: "envoy.transport_sockets.raw_buffer",
          typedConfig: typed("envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"),
        },
      },
    ],
    ...(protocol === "http2" && {
      typedExtensionProtocolOptions: {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": typed(
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
          { explicitHttpConfig: { http2ProtocolOptions: {} } },
        ),
      },
    }),
    ...extra,
  };
}

/** A plaintext STATIC-like EDS cluster (the local application behind an inbound listener). */
export function plainCluster(name: string): Record<string, unknown> {
  return { name, type: "EDS", edsClusterConfig: { edsConfig: { ads: {} } }, connectTimeout: { seconds: 2 } };
}

/** A ClusterLoadAssignment; `istio` endpoints carry the tlsMode metadata of a sidecar-injected workload. */
export function assignment(
  name: string,
  endpoints: { address: string; port: number; istio: boolean }[],
): Record<string, unknown> {
  return {
    clusterName: name,
    endpoints: [
      {
        lbEndpoints: endpoints.map((e) => ({
          endpoint: { address: { socketAddress: { address: e.address, portValue: e.port } } },
          ...(e.istio && {
            metadata: {
              filterMetadata: {
                "envoy.transport_socket_match": { fields: { tlsMode: { stringValue: "istio" } } },
              },
            },
          }),
        })),
      },
    ],
  };
}

/** Compiles contract resources as the sidecar's config store would. */
export function compiled(parts: {
  listeners: Record<string, unknown>[];
  clusters: Record<string, unknown>[];
  assignments: Record<string, unknown>[];
}): RuntimeConfig {
  const clusters = new Map<string, Cluster>(
    parts.clusters.map((c) => {
      const compiledCluster = compileCluster(wire(CLUSTER, c));
      return [compiledCluster.name, compiledCluster];
    }),
  );
  const listeners = new Map<string, Listener>(
    parts.listeners.map((l) => {
      const compiledListener = compileListener(wire(LISTENER, l), { clusters });
      return [compiledListener.name, compiledListener];
    }),
  );
  const endpoints = new Map<string, EndpointSet>(
    parts.assignments.map((a) => {
      const set = compileClusterLoadAssignment(wire(ENDPOINT, a));
      return [set.clusterName, set];
    }),
  );
  return { listeners, routes: new Map(), clusters, endpoints, versions: {} };
}

/** A sidecar data path with its own secrets. */
export class TlsSidecar {
  readonly secrets = new SecretManager({ logger: quiet });
  readonly clusters: SkeinClusterManager;
  readonly listeners: ListenerManager;
  readonly completed: StreamInfo[] = [];

  constructor() {
    this.clusters = createClusterManager({ secrets: this.secrets });
    this.listeners = new ListenerManager({
      clusters: this.clusters,
      secrets: this.secrets,
      onRequestComplete: (info) => this.completed.push(info),
    });
  }

  async apply(config: RuntimeConfig): Promise<void> {
    this.clusters.update(config.clusters, config.endpoints);
    const r = await this.listeners.apply(config);
    if (r.failed.length > 0) throw new Error(r.failed.map((f) => f.message).join("; "));
  }

  async close(): Promise<void> {
    await this.listeners.close();
    await this.clusters.close(100);
  }
}

/** A CA as the control plane runs it, with a clock tests can move (for expired certificates). */
export class TestCa {
  skewMs = 0;
  private constructor(readonly ca: CertificateAuthority) {}

  static async create(): Promise<TestCa> {
    let self: TestCa | undefined;
    const ca = await CertificateAuthority.load({
      logger: quiet,
      now: () => Date.now() + (self?.skewMs ?? 0),
    });
    self = new TestCa(ca);
    return self;
  }

  get root(): string {
    return this.ca.rootCert;
  }

  /** A workload certificate for ns/sa (the key made here, as the sidecar makes its own). */
  async issue(namespace: string, serviceAccount: string, ttlMs = 3600_000): Promise<WorkloadSecret> {
    const keys = await keyPair();
    const issued = await this.ca.sign(
      await csrPem(keys),
      { trustDomain: "cluster.local", namespace, serviceAccount },
      ttlMs,
    );
    return {
      chain: issued.certificateChain,
      key: pkcs8Pem(keys.privateKey),
      spiffeId: issued.spiffeId,
      expiresAt: issued.expiresAt,
    };
  }
}

/** A TCP server on 127.0.0.1 that answers every chunk with "echo:" + the chunk. */
export async function tcpEcho(): Promise<{ port: number; server: NetServer }> {
  const server = createNetServer((s) => {
    s.on("data", (d) => s.write(`echo:${d.toString()}`));
    s.on("error", () => undefined);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { port: (server.address() as { port: number }).port, server };
}
