// The example mesh (examples/) as a MeshSnapshot with a few static workloads at 127.0.1.x, and the
// proxies the translation tests look through; and a second, synthetic mesh (SHOP). Shared by the
// golden, simulation and wire tests.

import { checkPaths, checkTexts } from "../src/model/check.js";
import type { MeshSnapshot, ProxyIdentity, WorkloadInstance } from "../src/model/snapshot.js";
import type { MeshModel } from "../src/model/types.js";

const examples = new URL("../examples/", import.meta.url).pathname;

function workload(
  name: string,
  address: string,
  labels: Record<string, string>,
  extra: Partial<WorkloadInstance> = {},
): WorkloadInstance {
  return {
    id: `Workload production/${name}`,
    name,
    namespace: "production",
    labels,
    serviceAccount: labels.app ?? name,
    address,
    ports: {},
    origin: "static",
    healthy: true,
    ...extra,
  };
}

export const WORKLOADS: WorkloadInstance[] = [
  workload(
    "order-service-v1",
    "127.0.1.1",
    { app: "order-service", version: "v1" },
    {
      locality: { region: "local", zone: "a" },
      ports: { "app:http": 40001 },
    },
  ),
  workload(
    "order-service-v2",
    "127.0.1.2",
    { app: "order-service", version: "v2" },
    {
      locality: { region: "local", zone: "b" },
    },
  ),
  workload("payment-service", "127.0.1.3", { app: "payment-service", version: "v1" }),
  // A second payment instance that failed its readiness check: served as UNHEALTHY.
  workload("payment-service-2", "127.0.1.6", { app: "payment-service", version: "v1" }, { healthy: false }),
  workload("api-gateway", "127.0.1.4", { app: "api-gateway" }),
  workload("inventory-service", "127.0.1.5", { app: "inventory-service" }),
];

export async function exampleModel(): Promise<MeshModel> {
  const r = await checkPaths([examples], { analyze: false });
  if (!r.model) throw new Error(`examples did not load: ${r.diagnostics.map((d) => d.message).join("; ")}`);
  return r.model;
}

export async function exampleSnapshot(): Promise<MeshSnapshot> {
  return { version: "examples-1", model: await exampleModel(), workloads: WORKLOADS };
}

const byName = (name: string) => {
  const w = WORKLOADS.find((x) => x.name === name);
  if (!w) throw new Error(name);
  return w;
};

/** The api-gateway's sidecar: the shop's front door, calling order-service and friends. */
export const API_GATEWAY_SIDECAR: ProxyIdentity = {
  id: "sidecar~127.0.1.4~api-gateway.production",
  kind: "sidecar",
  namespace: "production",
  workload: byName("api-gateway"),
};

/** order-service v1's sidecar: an inbound side with an application port of its own. */
export const ORDER_V1_SIDECAR: ProxyIdentity = {
  id: "sidecar~127.0.1.1~order-service-v1.production",
  kind: "sidecar",
  namespace: "production",
  workload: byName("order-service-v1"),
};

/** A proxyless gRPC client in production with no workload of its own. */
export const PROXYLESS_CLIENT: ProxyIdentity = {
  id: "grpc-client~production",
  kind: "proxyless",
  namespace: "production",
};

// ── The shop: the rest of the routing surface ───────────────────────────────────────────────────────

/** A second mesh exercising the rest of the routing surface: matches, rewrites, mirrors, CORS, hashing, scopes, DNS, TCP. */
export const SHOP = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: shop, namespace: prod }
spec:
  selector: { app: shop }
  ports:
    - { name: http, port: 8080 }
    - { name: grpc-api, port: 9090 }
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: cart, namespace: prod }
spec:
  selector: { app: cart }
  ports: [{ name: http, port: 80 }]
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: secret, namespace: vault }
spec:
  selector: { app: secret }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: db, namespace: prod }
spec:
  selector: { app: db }
  ports: [{ name: tcp-pg, port: 5432, protocol: TCP }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: payments-api, namespace: prod }
spec:
  hosts: [api.payments.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{ number: 443, name: https, protocol: HTTPS }]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: { name: ledger, namespace: vault }
spec:
  hosts: [ledger.vault.internal]
  exportTo: ["."]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{ number: 7070, name: http, protocol: HTTP }]
  endpoints:
    - { address: 10.0.0.1, locality: eu/west-1/a }
    - { address: 10.0.0.2, locality: eu/west-1/b, weight: 3 }
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: shop, namespace: prod }
spec:
  hosts: [shop]
  http:
    - name: legacy
      match:
        - uri: { prefix: /OLD/ }
          ignoreUriCase: true
      redirect: { uri: /new/, redirectCode: 308 }
    - name: health
      match: [{ uri: { exact: /healthz } }]
      directResponse: { status: 200, body: { string: ok } }
    - name: search
      match:
        - uri: { regex: "/search/[a-z]+" }
          queryParams: { q: { exact: shoes } }
          method: { exact: GET }
      rewrite: { uri: /find }
      route: [{ destination: { host: shop, subset: v2 } }]
    - name: beta
      match:
        - headers: { x-beta: {} }
          withoutHeaders: { x-internal: { exact: "1" } }
      mirror: { host: shop, subset: v2 }
      mirrorPercentage: { value: 12.5 }
      corsPolicy:
        allowOrigins: [{ exact: "https://shop.example.com" }]
        allowMethods: [GET, POST]
        maxAge: 24h
      fault:
        abort: { percentage: { value: 12.5 }, grpcStatus: UNAVAILABLE }
      route:
        - destination: { host: shop, subset: v1, port: { number: 8080 } }
          weight: 75
          headers: { request: { set: { x-route: v1 } } }
        - destination: { host: shop, subset: v2, port: { number: 8080 } }
          weight: 25
    - name: fallback
      route: [{ destination: { host: shop } }]
      retries: { attempts: 0 }
      headers:
        response: { add: { x-served-by: shop } }
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: { name: shop, namespace: prod }
spec:
  host: shop
  trafficPolicy:
    loadBalancer:
      consistentHash: { httpHeaderName: x-user }
    outlierDetection:
      consecutive5xxErrors: 3
      interval: 10s
      baseEjectionTime: 30s
      maxEjectionPercent: 50
    portLevelSettings:
      - port: { number: 9090 }
        loadBalancer: { simple: ROUND_ROBIN }
  subsets:
    - name: v1
      labels: { version: v1 }
    - name: v2
      labels: { version: v2 }
      trafficPolicy:
        connectionPool:
          http: { maxRequestsPerConnection: 5 }
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: default, namespace: prod }
spec:
  egress:
    - hosts: ["./*", "istio-system/*"]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: narrow, namespace: prod }
spec:
  workloadSelector: { labels: { app: cart } }
  egress:
    - port: { number: 8080, protocol: HTTP, name: http }
      hosts: ["./shop.prod.svc.cluster.local"]
`;

function shopWorkload(
  name: string,
  address: string,
  labels: Record<string, string>,
  ports: Record<string, number> = {},
): WorkloadInstance {
  return {
    id: name,
    name,
    namespace: "prod",
    labels,
    serviceAccount: name,
    address,
    ports,
    origin: "static",
    healthy: true,
  };
}

const SHOP_WORKLOADS = [
  shopWorkload("shop-v1", "127.0.2.1", { app: "shop", version: "v1" }),
  shopWorkload("shop-v2", "127.0.2.2", { app: "shop", version: "v2" }, { "grpc-api": 19090 }),
  shopWorkload("cart", "127.0.2.3", { app: "cart" }),
  shopWorkload("web", "127.0.2.4", { app: "web" }),
  shopWorkload("db", "127.0.2.5", { app: "db" }),
];

export function shopSnapshot(): MeshSnapshot {
  const r = checkTexts([{ file: "shop.yaml", text: SHOP }], { analyze: false });
  const problems = r.diagnostics.filter((d) => d.severity !== "info");
  if (!r.model || problems.length) throw new Error(`shop mesh: ${problems.map((d) => d.message).join("; ")}`);
  return { version: "shop-1", model: r.model, workloads: SHOP_WORKLOADS };
}

export const shopSidecar = (name: string): ProxyIdentity => {
  const workload = SHOP_WORKLOADS.find((w) => w.name === name);
  return { id: `sidecar~${name}`, kind: "sidecar", namespace: "prod", workload };
};
