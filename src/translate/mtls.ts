// Mutual TLS between sidecars, in Istio's shapes so Envoy-compatible proxies read it unchanged:
// - Server side: PeerAuthentication's effective mode per workload port (workload selector over namespace
//   over mesh-wide, `portLevelMtls` last, UNSET inherits, PERMISSIVE by default) decides the inbound
//   listener's filter chains: STRICT one chain matching transport_protocol "tls"; PERMISSIVE that chain plus
//   one for "raw_buffer" on the same port (the tls_inspector listener filter tells them apart); DISABLE one
//   plaintext chain.
// - Client side: DestinationRule `tls.mode` when set (ISTIO_MUTUAL, MUTUAL, SIMPLE, DISABLE); otherwise
//   automatic mTLS: the cluster's transport_socket_matches send TLS to endpoints labelled
//   `envoy.transport_socket_match: {tlsMode: istio}` (those with a sidecar whose own PeerAuthentication
//   does not DISABLE the port) and plaintext to the rest, verifying the server's SPIFFE identity against
//   the service accounts behind the service.
// - Certificates are SDS secrets by name: `default` (the workload's own chain and key) and `ROOTCA` (the
//   trust bundle); the sidecar resolves them in-process (its key never leaves it), as Istio's agent does.
// Proxyless gRPC clients get none of this (gRPC NACKs transport_socket_matches): they talk plaintext, so a
// STRICT workload refuses them.

import { selectorMatches } from "../model/hosts.js";
import type { WorkloadInstance } from "../model/snapshot.js";
import type { ClientTls, MeshModel, MtlsMode, Service } from "../model/types.js";
import type { Cluster } from "../xds/generated/envoy/config/cluster/v3/Cluster.js";
import type { TransportSocket } from "../xds/generated/envoy/config/core/v3/TransportSocket.js";
import type { CommonTlsContext } from "../xds/generated/envoy/extensions/transport_sockets/tls/v3/CommonTlsContext.js";
import type { DownstreamTlsContext } from "../xds/generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.js";
import type { SdsSecretConfig } from "../xds/generated/envoy/extensions/transport_sockets/tls/v3/SdsSecretConfig.js";
import type { UpstreamTlsContext } from "../xds/generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.js";
import type { ProxyView } from "./scope.js";
import { serviceWorkloads } from "./scope.js";
import { FILTER, typed } from "./typed.js";
import { adsConfigSource, compare } from "./values.js";

/** SDS secret names, as Istio's agent serves them. */
export const WORKLOAD_SECRET = "default";
export const ROOT_CA_SECRET = "ROOTCA";
/** Endpoint metadata namespace Envoy's transport_socket_matches read. */
export const TRANSPORT_SOCKET_MATCH = "envoy.transport_socket_match";

export type EffectiveMtls = Exclude<MtlsMode, "UNSET">;

/** A workload's identity as peers verify it: `spiffe://<trust domain>/ns/<namespace>/sa/<service account>`. */
export function spiffeUri(trustDomain: string, namespace: string, serviceAccount: string): string {
  return `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`;
}

const byName = <T extends { name: string }>(a: T, b: T) => compare(a.name, b.name);

/**
 * The PeerAuthentication mode in force for a workload on one of its ports (the port the workload listens
 * on, as `portLevelMtls` keys are). Several policies at one level: the first by name wins (Istio takes the
 * oldest; Skein has no creation times, so it is deterministic instead, and the analyzer warns).
 */
export function effectiveMtlsMode(
  model: MeshModel,
  workload: { namespace: string; labels: Record<string, string> },
  port: number,
): EffectiveMtls {
  const root = model.meshConfig.rootNamespace;
  const pas = model.peerAuthentications;
  const mesh = pas.filter((p) => p.namespace === root && !p.selector).sort(byName)[0];
  const ns =
    workload.namespace === root
      ? undefined
      : pas.filter((p) => p.namespace === workload.namespace && !p.selector).sort(byName)[0];
  const selected = pas
    .filter(
      (p) => p.namespace === workload.namespace && p.selector && selectorMatches(p.selector, workload.labels),
    )
    .sort(byName)[0];
  let mode: EffectiveMtls = "PERMISSIVE";
  for (const p of [mesh, ns, selected]) if (p && p.mode !== "UNSET") mode = p.mode;
  const portMode = selected?.portLevel[port];
  if (portMode && portMode !== "UNSET") mode = portMode;
  return mode;
}

function sds(name: string): SdsSecretConfig {
  return { name, sdsConfig: adsConfigSource() };
}

function istioCommonTls(alpn: string[], sans: readonly string[]): CommonTlsContext {
  return {
    tlsCertificateSdsSecretConfigs: [sds(WORKLOAD_SECRET)],
    combinedValidationContext: {
      defaultValidationContext:
        sans.length > 0 ? { matchSubjectAltNames: sans.map((exact) => ({ exact })) } : {},
      validationContextSdsSecretConfig: sds(ROOT_CA_SECRET),
    },
    ...(alpn.length > 0 && { alpnProtocols: alpn }),
  };
}

/** The server side of Istio mTLS: the workload's certificate, a client certificate required, any mesh identity. */
export function downstreamIstioTls(http: boolean): TransportSocket {
  const context: DownstreamTlsContext = {
    requireClientCertificate: { value: true },
    commonTlsContext: istioCommonTls(http ? ["h2", "http/1.1"] : [], []),
  };
  return {
    name: FILTER.tlsTransportSocket,
    typedConfig: typed("envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext", context),
  };
}

/** The listener filter that lets filter chains match on transport_protocol. */
export function tlsInspector() {
  return {
    name: FILTER.tlsInspector,
    typedConfig: typed("envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector", {}),
  };
}

/** Istio's SNI for a cluster: `outbound_.<port>_.<subset>_.<hostname>`. */
export function istioSni(port: number, subset: string | undefined, hostname: string): string {
  return `outbound_.${port}_.${subset ?? ""}_.${hostname}`;
}

function upstreamIstioTls(sni: string, sans: readonly string[], http2: boolean | undefined): TransportSocket {
  const alpn = http2 === undefined ? [] : http2 ? ["h2"] : ["http/1.1"];
  const context: UpstreamTlsContext = { sni, commonTlsContext: istioCommonTls(alpn, sans) };
  return {
    name: FILTER.tlsTransportSocket,
    typedConfig: typed("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", context),
  };
}

/** DestinationRule SIMPLE / MUTUAL: the operator's files, verified against their CA and SANs. */
function upstreamFileTls(
  tls: ClientTls,
  sni: string | undefined,
  http2: boolean | undefined,
): TransportSocket {
  const alpn = http2 === undefined ? [] : http2 ? ["h2"] : ["http/1.1"];
  const common: CommonTlsContext = {
    ...(tls.mode === "MUTUAL" &&
      tls.clientCertificate &&
      tls.privateKey && {
        tlsCertificates: [
          {
            certificateChain: { filename: tls.clientCertificate },
            privateKey: { filename: tls.privateKey },
          },
        ],
      }),
    ...(!tls.insecureSkipVerify &&
      tls.caCertificates && {
        validationContext: {
          trustedCa: { filename: tls.caCertificates },
          ...(tls.subjectAltNames.length > 0 && {
            matchSubjectAltNames: tls.subjectAltNames.map((exact) => ({ exact })),
          }),
        },
      }),
    ...(alpn.length > 0 && { alpnProtocols: alpn }),
  };
  const context: UpstreamTlsContext = { ...(sni && { sni }), commonTlsContext: common };
  return {
    name: FILTER.tlsTransportSocket,
    typedConfig: typed("envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext", context),
  };
}

/** Whether peers should send this workload mTLS on `port`: it has a sidecar and does not DISABLE the port. */
export function acceptsIstioMtls(model: MeshModel, w: WorkloadInstance, port: number): boolean {
  return w.tlsMode === "istio" && effectiveMtlsMode(model, w, port) !== "DISABLE";
}

/** The identities behind a service (or one subset): what a client verifies the server's certificate against. */
export function serviceIdentities(
  view: ProxyView,
  service: Service,
  subsetLabels: Record<string, string> | undefined,
): string[] {
  const td = view.model.meshConfig.trustDomain;
  const ids = new Set<string>();
  for (const w of serviceWorkloads(view.workloads, service, subsetLabels))
    if (w.tlsMode === "istio") ids.add(spiffeUri(td, w.namespace, w.serviceAccount));
  return [...ids].sort(compare);
}

/**
 * The transport socket fields of an outbound cluster. `http2` picks the ALPN offered (undefined: TCP, none).
 * Proxyless clients get nothing: gRPC would NACK transport_socket_matches.
 */
export function clusterTransport(
  view: ProxyView,
  service: Service,
  port: number,
  subset: string | undefined,
  subsetLabels: Record<string, string> | undefined,
  tls: ClientTls | undefined,
  http2: boolean | undefined,
): Pick<Cluster, "transportSocket" | "transportSocketMatches"> {
  if (view.proxy.kind === "proxyless") return {};
  const sni = istioSni(port, subset, service.hostname);
  if (tls) {
    switch (tls.mode) {
      case "DISABLE":
        return {};
      case "ISTIO_MUTUAL":
        return {
          transportSocket: upstreamIstioTls(
            tls.sni ?? sni,
            [...serviceIdentities(view, service, subsetLabels), ...tls.subjectAltNames],
            http2,
          ),
        };
      case "SIMPLE":
      case "MUTUAL":
        return { transportSocket: upstreamFileTls(tls, tls.sni, http2) };
    }
  }
  if (service.location === "MESH_EXTERNAL") return {};
  return {
    transportSocketMatches: [
      {
        name: "tlsMode-istio",
        match: { fields: { tlsMode: { stringValue: "istio" } } },
        transportSocket: upstreamIstioTls(sni, serviceIdentities(view, service, subsetLabels), http2),
      },
      {
        name: "tlsMode-disabled",
        match: { fields: {} },
        transportSocket: {
          name: FILTER.rawBufferTransportSocket,
          typedConfig: typed("envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer", {}),
        },
      },
    ],
  };
}

/** EDS endpoint metadata for a workload that takes Istio mTLS on this port. */
export function endpointTlsMetadata() {
  return { filterMetadata: { [TRANSPORT_SOCKET_MATCH]: { fields: { tlsMode: { stringValue: "istio" } } } } };
}
