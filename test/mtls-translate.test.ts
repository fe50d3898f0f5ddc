// Mutual TLS in translation: PeerAuthentication's precedence (mesh < namespace < workload < port), the inbound
// filter chains each mode produces, automatic mTLS on outbound clusters (transport_socket_matches plus endpoint
// metadata, SANs from the service accounts behind the service), DestinationRule tls modes, and proxyless
// clients left plaintext.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkTexts } from "../src/model/check.js";
import type { MeshSnapshot, ProxyIdentity, WorkloadInstance } from "../src/model/snapshot.js";
import { translate } from "../src/translate/index.js";
import { effectiveMtlsMode } from "../src/translate/mtls.js";
import { plain } from "./helpers.js";

const SERVICES = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: orders, namespace: shop }
spec:
  selector: { app: orders }
  ports: [{ name: http, port: 8080 }, { name: grpc, port: 9090, protocol: GRPC }]
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: db, namespace: shop }
spec:
  selector: { app: db }
  ports: [{ name: tcp, port: 5432, protocol: TCP }]
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: legacy, namespace: shop }
spec:
  selector: { app: legacy }
  ports: [{ name: http, port: 8080 }]
`;

function wl(name: string, address: string, labels: Record<string, string>, sidecar = true): WorkloadInstance {
  return {
    id: `sidecar~${address}~${name}.shop`,
    name,
    namespace: "shop",
    labels,
    serviceAccount: labels.app ?? name,
    address,
    ports: {},
    origin: "proxy",
    healthy: true,
    tlsMode: sidecar ? "istio" : "disabled",
  };
}

const WORKLOADS = [
  wl("orders-v1", "127.0.3.1", { app: "orders", version: "v1" }),
  wl("orders-v2", "127.0.3.2", { app: "orders", version: "v2" }),
  wl("db", "127.0.3.3", { app: "db" }),
  wl("legacy", "127.0.3.4", { app: "legacy" }, false),
  wl("web", "127.0.3.5", { app: "web" }),
];

function snapshot(extra = ""): MeshSnapshot {
  const r = checkTexts([{ file: "mesh.yaml", text: SERVICES + extra }], { analyze: false });
  const problems = r.diagnostics.filter((d) => d.severity === "error");
  if (!r.model || problems.length) throw new Error(problems.map((d) => d.message).join("; "));
  return { version: "1", model: r.model, workloads: WORKLOADS };
}

const sidecar = (name: string): ProxyIdentity => {
  const workload = WORKLOADS.find((w) => w.name === name);
  return { id: workload?.id ?? name, kind: "sidecar", namespace: "shop", workload };
};

const pa = (ns: string, name: string, spec: string) => `---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: { name: ${name}, namespace: ${ns} }
spec: ${spec}
`;

// biome-ignore lint/suspicious/noExplicitAny: reading Envoy JSON in tests
type J = any;

function inbound(snap: MeshSnapshot, name: string, port: number): J {
  const w = WORKLOADS.find((x) => x.name === name) as WorkloadInstance;
  const l = plain(translate(snap, sidecar(name)).listeners).find(
    (x: J) => x.name === `${w.address}_${port}`,
  ) as J;
  assert.ok(l, `inbound listener ${w.address}_${port}`);
  return l;
}

const chainKinds = (l: J) =>
  (l.filterChains as J[]).map((c) => c.filterChainMatch?.transportProtocol ?? "any").join(",");

test("no PeerAuthentication: PERMISSIVE, TLS and plaintext chains told apart by the tls_inspector", () => {
  const l = inbound(snapshot(), "orders-v1", 8080);
  assert.equal(chainKinds(l), "tls,raw_buffer");
  assert.equal(l.listenerFilters[0].name, "envoy.filters.listener.tls_inspector");
  const tls = l.filterChains[0].transportSocket.typedConfig;
  assert.equal(
    tls["@type"],
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
  );
  assert.deepEqual(tls.requireClientCertificate, { value: true });
  assert.equal(tls.commonTlsContext.tlsCertificateSdsSecretConfigs[0].name, "default");
  assert.equal(
    tls.commonTlsContext.combinedValidationContext.validationContextSdsSecretConfig.name,
    "ROOTCA",
  );
  assert.deepEqual(tls.commonTlsContext.alpnProtocols, ["h2", "http/1.1"]);
  // The same connection manager behind both chains.
  assert.deepEqual(l.filterChains[0].filters, l.filterChains[1].filters);
});

test("precedence: mesh < namespace < workload selector < portLevelMtls; UNSET inherits", () => {
  const mesh = pa("istio-system", "default", "{ mtls: { mode: STRICT } }");
  const ns = pa("shop", "default", "{ mtls: { mode: PERMISSIVE } }");
  const selected = pa(
    "shop",
    "orders",
    "{ selector: { matchLabels: { app: orders } }, mtls: { mode: STRICT }, portLevelMtls: { 9090: { mode: DISABLE } } }",
  );
  const model = (t: string) => snapshot(t).model;
  const orders = WORKLOADS[0] as WorkloadInstance;
  const db = WORKLOADS[2] as WorkloadInstance;
  assert.equal(effectiveMtlsMode(model(""), orders, 8080), "PERMISSIVE");
  assert.equal(effectiveMtlsMode(model(mesh), db, 5432), "STRICT");
  assert.equal(effectiveMtlsMode(model(mesh + ns), db, 5432), "PERMISSIVE");
  assert.equal(effectiveMtlsMode(model(mesh + ns + selected), orders, 8080), "STRICT");
  assert.equal(effectiveMtlsMode(model(mesh + ns + selected), orders, 9090), "DISABLE");
  assert.equal(effectiveMtlsMode(model(mesh + ns + selected), db, 5432), "PERMISSIVE");
  const unsetNs = pa("shop", "default", "{ mtls: { mode: UNSET } }");
  assert.equal(effectiveMtlsMode(model(mesh + unsetNs), db, 5432), "STRICT");
  // A mesh-wide policy with a selector is not mesh-wide (Istio ignores such PeerAuthentications for others).
  const selectedInRoot = pa(
    "istio-system",
    "x",
    "{ selector: { matchLabels: { app: db } }, mtls: { mode: STRICT } }",
  );
  assert.equal(effectiveMtlsMode(model(selectedInRoot), db, 5432), "PERMISSIVE");
});

test("STRICT: only the TLS chain; DISABLE: one plaintext chain, no inspector; TCP ports get no ALPN", () => {
  const strict = snapshot(pa("shop", "default", "{ mtls: { mode: STRICT } }"));
  assert.equal(chainKinds(inbound(strict, "orders-v1", 8080)), "tls");
  const db = inbound(strict, "db", 5432);
  assert.equal(chainKinds(db), "tls");
  assert.equal(db.filterChains[0].transportSocket.typedConfig.commonTlsContext.alpnProtocols, undefined);
  assert.equal(db.filterChains[0].filters[0].name, "envoy.filters.network.tcp_proxy");
  const off = inbound(snapshot(pa("shop", "default", "{ mtls: { mode: DISABLE } }")), "orders-v1", 8080);
  assert.equal(chainKinds(off), "any");
  assert.equal(off.listenerFilters, undefined);
  assert.equal(off.filterChains[0].transportSocket, undefined);
});

function outbound(snap: MeshSnapshot, from: ProxyIdentity, cluster: string): { cluster: J; endpoints: J } {
  const r = plain(translate(snap, from));
  const c = r.clusters.find((x: J) => x.name === cluster) as J;
  const e = r.endpoints.find((x: J) => x.clusterName === cluster) as J;
  assert.ok(c, cluster);
  return { cluster: c, endpoints: e };
}

const lbEndpoints = (e: J): J[] => (e?.endpoints ?? []).flatMap((l: J) => l.lbEndpoints);

test("automatic mTLS: TLS to endpoints with a sidecar, verified against the service's identities", () => {
  const snap = snapshot();
  const { cluster, endpoints } = outbound(
    snap,
    sidecar("web"),
    "outbound|8080||orders.shop.svc.cluster.local",
  );
  assert.equal(cluster.transportSocket, undefined);
  const [istio, disabled] = cluster.transportSocketMatches;
  assert.equal(istio.name, "tlsMode-istio");
  assert.deepEqual(istio.match, { fields: { tlsMode: { stringValue: "istio" } } });
  const up = istio.transportSocket.typedConfig;
  assert.equal(
    up["@type"],
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
  );
  assert.equal(up.sni, "outbound_.8080_._.orders.shop.svc.cluster.local");
  assert.deepEqual(
    up.commonTlsContext.combinedValidationContext.defaultValidationContext.matchSubjectAltNames,
    [{ exact: "spiffe://cluster.local/ns/shop/sa/orders" }],
  );
  assert.equal(disabled.transportSocket.name, "envoy.transport_sockets.raw_buffer");
  for (const e of lbEndpoints(endpoints))
    assert.deepEqual(e.metadata.filterMetadata["envoy.transport_socket_match"], {
      fields: { tlsMode: { stringValue: "istio" } },
    });
  // gRPC port: HTTP/2 offered by ALPN.
  const grpc = outbound(snap, sidecar("web"), "outbound|9090||orders.shop.svc.cluster.local").cluster;
  assert.deepEqual(
    grpc.transportSocketMatches[0].transportSocket.typedConfig.commonTlsContext.alpnProtocols,
    ["h2"],
  );
});

test("no sidecar, or a sidecar that DISABLEs the port: the endpoint carries no tlsMode and gets plaintext", () => {
  const legacy = outbound(snapshot(), sidecar("web"), "outbound|8080||legacy.shop.svc.cluster.local");
  assert.equal(lbEndpoints(legacy.endpoints).length, 1);
  assert.equal(lbEndpoints(legacy.endpoints)[0].metadata, undefined);
  const disabled = snapshot(
    pa("shop", "v2-off", "{ selector: { matchLabels: { version: v2 } }, mtls: { mode: DISABLE } }"),
  );
  const { endpoints } = outbound(disabled, sidecar("web"), "outbound|8080||orders.shop.svc.cluster.local");
  const byAddress = new Map(lbEndpoints(endpoints).map((e) => [e.endpoint.address.socketAddress.address, e]));
  assert.ok(byAddress.get("127.0.3.1").metadata);
  assert.equal(byAddress.get("127.0.3.2").metadata, undefined);
});

test("DestinationRule tls: ISTIO_MUTUAL always, DISABLE never, SIMPLE with the operator's CA file", () => {
  const dr = (mode: string, extra = "") => `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: orders, namespace: shop }
spec:
  host: orders.shop.svc.cluster.local
  trafficPolicy: { tls: { mode: ${mode}${extra} } }
`;
  const name = "outbound|8080||orders.shop.svc.cluster.local";
  const mutual = outbound(snapshot(dr("ISTIO_MUTUAL")), sidecar("web"), name).cluster;
  assert.equal(mutual.transportSocketMatches, undefined);
  assert.equal(
    mutual.transportSocket.typedConfig.commonTlsContext.tlsCertificateSdsSecretConfigs[0].name,
    "default",
  );
  const off = outbound(snapshot(dr("DISABLE")), sidecar("web"), name).cluster;
  assert.equal(off.transportSocket, undefined);
  assert.equal(off.transportSocketMatches, undefined);
  const simple = outbound(
    snapshot(dr("SIMPLE", ", caCertificates: /etc/ca.pem, sni: orders.example.com")),
    sidecar("web"),
    name,
  ).cluster;
  const ctx = simple.transportSocket.typedConfig;
  assert.equal(ctx.sni, "orders.example.com");
  assert.deepEqual(ctx.commonTlsContext.validationContext.trustedCa, { filename: "/etc/ca.pem" });
  assert.equal(ctx.commonTlsContext.tlsCertificates, undefined);
});

test("proxyless gRPC clients get no transport sockets (gRPC NACKs transport_socket_matches)", () => {
  const client: ProxyIdentity = { id: "grpc~x", kind: "proxyless", namespace: "shop" };
  const r = plain(translate(snapshot(), client));
  for (const c of r.clusters as J[]) {
    assert.equal(c.transportSocket, undefined, c.name);
    assert.equal(c.transportSocketMatches, undefined, c.name);
  }
});
