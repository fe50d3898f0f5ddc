// Translation shares outbound clusters, routes and endpoints between proxies that see the mesh alike
// (src/translate/shared.ts). Whatever order proxies are translated in, each must get exactly what translating it
// alone gives; proxies told apart by a label that configuration selects by must not share.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkTexts } from "../src/model/check.js";
import type { MeshSnapshot, ProxyIdentity, WorkloadInstance } from "../src/model/snapshot.js";
import { translate } from "../src/translate/index.js";
import { proxySelectingLabelKeys, viewKey } from "../src/translate/shared.js";
import { plain } from "./helpers.js";
import { SHOP, shopSidecar, shopSnapshot } from "./translate-fixture.js";

// Configuration that depends on who is asking: a route by source labels, a DestinationRule and a Sidecar by
// workload selector, a Telemetry (tracing) rule by selector.
const SELECTIVE = `---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: cart-by-caller, namespace: prod }
spec:
  hosts: [cart]
  http:
    - match: [{ sourceLabels: { tier: canary } }]
      route: [{ destination: { host: cart }, weight: 100 }]
      timeout: 3s
    - route: [{ destination: { host: cart } }]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: cart-for-batch, namespace: prod }
spec:
  host: cart
  workloadSelector: { matchLabels: { role: batch } }
  trafficPolicy: { connectionPool: { tcp: { maxConnections: 7 } } }
`;

function snapshot(): MeshSnapshot {
  const base = shopSnapshot();
  const r = checkTexts([{ file: "shop.yaml", text: SHOP + SELECTIVE }], { analyze: false });
  const errors = r.diagnostics.filter((d) => d.severity === "error");
  if (!r.model || errors.length) throw new Error(errors.map((d) => d.message).join("; "));
  return { ...base, version: "shared-test", model: r.model };
}

function client(name: string, labels: Record<string, string>, address: string): ProxyIdentity {
  const workload: WorkloadInstance = {
    id: `sidecar~${address}~${name}.prod`,
    name,
    namespace: "prod",
    labels,
    serviceAccount: name,
    address,
    ports: {},
    origin: "proxy",
    healthy: true,
    tlsMode: "istio",
  };
  return { id: workload.id, kind: "sidecar", namespace: "prod", workload };
}

test("the labels configuration selects proxies by are what tells views apart", () => {
  const snap = snapshot();
  const keys = proxySelectingLabelKeys(snap.model);
  for (const k of ["tier", "role", "app"]) assert.ok(keys.includes(k), `${k} in ${keys.join(",")}`);
  const a = client("a", { app: "web", tier: "canary", unrelated: "1" }, "127.0.9.1");
  const b = client("b", { app: "web", tier: "canary", unrelated: "2" }, "127.0.9.2");
  const c = client("c", { app: "web", tier: "stable" }, "127.0.9.3");
  assert.equal(viewKey(snap.model, a), viewKey(snap.model, b));
  assert.notEqual(viewKey(snap.model, a), viewKey(snap.model, c));
});

test("shared translation equals translating each proxy alone, in any order", () => {
  const proxies: ProxyIdentity[] = [
    client("plain-1", { app: "web" }, "127.0.9.10"),
    client("canary-1", { app: "web", tier: "canary" }, "127.0.9.11"),
    client("batch-1", { app: "web", role: "batch" }, "127.0.9.12"),
    client("plain-2", { app: "web" }, "127.0.9.13"),
    client("canary-2", { app: "web", tier: "canary" }, "127.0.9.14"),
    shopSidecar("cart"),
    shopSidecar("shop-v1"),
    shopSidecar("web"),
    { id: "grpc~prod", kind: "proxyless", namespace: "prod" },
    { id: "sidecar~other-ns", kind: "sidecar", namespace: "vault" },
  ];
  for (const order of [proxies, [...proxies].reverse()]) {
    const snap = snapshot(); // a fresh snapshot object: a fresh cache
    for (const p of order)
      assert.deepEqual(
        plain(translate(snap, p)),
        plain(translate(snap, p, { shared: false })),
        `proxy ${p.id}`,
      );
  }
  // And the selective config really differs between the views it separates.
  const snap = snapshot();
  const cart = (p: ProxyIdentity) =>
    plain(translate(snap, p)).clusters.find((c) => c.name === "outbound|80||cart.prod.svc.cluster.local");
  assert.equal(cart(proxies[2] as ProxyIdentity)?.circuitBreakers?.thresholds?.[0]?.maxConnections?.value, 7);
  assert.notEqual(
    cart(proxies[0] as ProxyIdentity)?.circuitBreakers?.thresholds?.[0]?.maxConnections?.value,
    7,
  );
});
