// The sidecar's xDS client with its ConfigStore, against real servers on ephemeral ports: a ControlPlane
// (subscribe, ACK everything, survive a control-plane restart on the same port), and an AdsServer fed by
// hand (a resource the sidecar cannot run is NACKed once, with its message, and the last good config stays).
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { SkeinError } from "../src/lib/diagnostics.js";
import { createLogger } from "../src/lib/log.js";
import { ConfigStore } from "../src/proxy/config/store.js";
import { AdsClient, type AdsClientNode, backoffDelay } from "../src/xds/client.js";
import { XdsCodes } from "../src/xds/codes.js";
import type { DiscoveryRequest } from "../src/xds/generated/envoy/service/discovery/v3/DiscoveryRequest.js";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, TYPE_URL_PREFIX } from "../src/xds/protos.js";
import { AdsServer } from "../src/xds/server.js";
import { type Resources, Snapshot, SnapshotCache } from "../src/xds/snapshot.js";
import { cluster, hcm, listener, loadAssignment, routeConfiguration } from "./proxy-config-fixtures.js";

const NODE: AdsClientNode = {
  id: "sidecar~127.0.3.1~order-service-v1.production~production.svc.cluster.local",
  cluster: "order-service",
  metadata: {
    NAMESPACE: "production",
    LABELS: { app: "order-service", version: "v1" },
    SERVICE_ACCOUNT: "order-service",
    INSTANCE_IPS: "127.0.3.1",
    WORKLOAD_NAME: "order-service-v1",
  },
  locality: { region: "local", zone: "a" },
};

const MESH = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: order-service, namespace: production }
spec:
  selector: { app: order-service }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: payment-service, namespace: production }
spec:
  selector: { app: payment-service }
  ports: [{ name: http, port: 8080 }]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: { name: payment-service, namespace: production }
spec:
  hosts: [payment-service]
  http:
    - route: [{ destination: { host: payment-service } }]
      timeout: 3s
      retries: { attempts: 2, retryOn: 5xx }
`;

async function until(what: string, pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

function controlPlane(dir: string, xdsPort = 0): ControlPlane {
  return new ControlPlane({
    configDir: dir,
    host: "127.0.0.1",
    xdsPort,
    httpPort: 0,
    metricsPort: 0,
    debounceMs: 10,
    logger: createLogger("control-plane", "error"),
  });
}

/** Every type the control plane sent this node is ACKed at the version sent, with no NACK. */
function allAcked(cp: ControlPlane): boolean {
  const row = cp.proxyStatus().find((r) => r.id === NODE.id);
  if (!row) return false;
  const types = ["lds", "rds", "cds", "eds"].map((t) => row.types[t]);
  return types.every((t) => t?.sent !== undefined && t.acked === t.sent && !t.nack);
}

test("backoffDelay: full jitter under an exponential ceiling capped at max", () => {
  assert.equal(
    backoffDelay(0, 200, 15_000, () => 0.999),
    199,
  );
  assert.equal(
    backoffDelay(3, 200, 15_000, () => 0.5),
    800,
  );
  assert.equal(
    backoffDelay(20, 200, 15_000, () => 0.999),
    14_985,
  );
  assert.equal(
    backoffDelay(1000, 200, 15_000, () => 0),
    0,
  );
});

test("AdsClient options are checked at construction", () => {
  const validate = () => ({ ok: true }) as const;
  for (const bad of [
    { address: "", node: NODE, validate },
    { address: "127.0.0.1:1", node: { id: "" }, validate },
    { address: "127.0.0.1:1", node: NODE, validate, backoff: { baseMs: 100, maxMs: 10 } },
  ]) {
    assert.throws(
      () => new AdsClient(bad),
      (e: unknown) => e instanceof SkeinError && e.code === XdsCodes.OPTION,
    );
  }
});

test("against a real control plane: LDS/CDS by wildcard, RDS/EDS by the names they refer to, all ACKed; a restart on the same port is survived", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "skein-xds-client-"));
  writeFileSync(join(dir, "mesh.yaml"), MESH);
  let cp = controlPlane(dir);
  await cp.start();
  const port = cp.ports.xds;
  const store = new ConfigStore();
  const client = new AdsClient({
    address: `127.0.0.1:${port}`,
    node: NODE,
    validate: store.validate,
    // Fixed jitter so the back-off sequence is predictable: ceilings 20, 40, 80, 160, 200 → half of each.
    backoff: { baseMs: 20, maxMs: 200, random: () => 0.5 },
  });
  store.bind(client);
  const events: string[] = [];
  const retries: number[] = [];
  const nacks: string[] = [];
  client.on("connected", () => events.push("connected"));
  client.on("disconnected", (_reason, retryInMs) => {
    events.push("disconnected");
    retries.push(retryInMs);
  });
  client.on("nack", (_t, message) => nacks.push(message));
  const first: DiscoveryRequest[] = [];
  client.on("request", (r) => first.push(r));
  try {
    await until("every type ACKed", () => allAcked(cp) && store.config.routes.size > 0);
    assert.deepEqual(nacks, []);
    assert.equal(events[0], "connected");

    // The node went out once, on the first request, with the identity the registry reads.
    assert.equal(first[0]?.node?.id, NODE.id);
    assert.equal(first[0]?.node?.userAgentName, "skein");
    assert.ok(first.slice(1).every((r) => r.node === undefined));
    const row = cp.proxyStatus().find((r) => r.id === NODE.id);
    assert.equal(row?.workload, "order-service-v1");
    assert.equal(row?.namespace, "production");

    // What it holds is what the control plane has for it.
    const snapshot = cp.cache.getSnapshot(NODE.id);
    assert.ok(snapshot);
    for (const typeUrl of [LISTENER, ROUTE, CLUSTER, ENDPOINT])
      assert.equal(store.config.versions[typeUrl], snapshot.version(typeUrl), typeUrl);
    assert.deepEqual([...store.config.listeners.keys()].sort(), ["127.0.3.1_8080", "virtualOutbound"]);
    const status = client.status();
    assert.equal(status[LISTENER]?.subscribed, "*");
    assert.equal(status[CLUSTER]?.subscribed, "*");
    assert.deepEqual(status[ROUTE]?.subscribed, ["http_proxy"]);
    assert.deepEqual(status[ENDPOINT]?.subscribed, [...snapshot.resources(ENDPOINT).keys()].sort());
    assert.deepEqual(status[ENDPOINT]?.subscribed, store.resourceNames(ENDPOINT));
    const payment = store.config.routes.get("http_proxy")?.exact.get("payment-service:8080")
      ?.routes[0]?.action;
    assert.ok(payment?.kind === "route");
    assert.equal(payment.timeoutMs, 3000);

    // The control plane goes away: the client keeps its config and retries with growing back-off.
    const before = store.config;
    await cp.stop();
    await until("the disconnect", () => events.includes("disconnected"));
    await until("a few failed attempts", () => retries.length >= 4, 5000);
    assert.equal(store.config, before, "the last config stays in force while disconnected");
    assert.deepEqual(retries.slice(0, 4), [10, 20, 40, 80]);
    assert.ok(retries.every((r) => r <= 200));

    // Back on the same port: reconnect, resend subscriptions with the versions held, resynchronise.
    const connectedBefore = events.filter((e) => e === "connected").length;
    const requestsBefore = first.length;
    cp = controlPlane(dir, port);
    await cp.start();
    await until("a reconnect", () => events.filter((e) => e === "connected").length > connectedBefore);
    await until("every type ACKed again", () => allAcked(cp));
    // The new stream opened with the node and every subscription, each carrying the version already held.
    const resent = first.slice(requestsBefore);
    const opening = resent.findIndex((r) => r.node?.id === NODE.id);
    assert.ok(opening >= 0, "the new stream announced the node");
    const resubscribed = new Map(resent.slice(opening, opening + 4).map((r) => [r.typeUrl, r]));
    for (const typeUrl of [LISTENER, ROUTE, CLUSTER, ENDPOINT]) {
      assert.equal(resubscribed.get(typeUrl)?.versionInfo, before.versions[typeUrl], typeUrl);
      assert.equal(resubscribed.get(typeUrl)?.responseNonce, "", "nonces belong to the old stream");
    }
    assert.deepEqual(resubscribed.get(ROUTE)?.resourceNames, ["http_proxy"]);
    const again = cp.cache.getSnapshot(NODE.id);
    assert.ok(again);
    for (const typeUrl of [LISTENER, ROUTE, CLUSTER, ENDPOINT])
      assert.equal(store.config.versions[typeUrl], again.version(typeUrl), typeUrl);
    assert.deepEqual(nacks, []);
    t.diagnostic(`back-off delays while the control plane was down: ${retries.join(", ")} ms`);
  } finally {
    client.close();
    await cp.stop();
  }
});

function goodResources(statPrefix = "outbound"): Resources {
  return {
    [LISTENER]: new Map([
      [
        "outbound",
        listener("outbound", {
          filterChains: [{ filters: [{ name: "hcm", typedConfig: hcm({ statPrefix }) }] }],
        }),
      ],
    ]),
    [ROUTE]: new Map([["r1", routeConfiguration("r1")]]),
    [CLUSTER]: new Map([["c1", cluster("c1")]]),
    [ENDPOINT]: new Map([["c1", loadAssignment("c1")]]),
  } as Resources;
}

test("a resource the sidecar cannot run is NACKed once with its message; the last good config stays; a fix is ACKed", async () => {
  const cache = new SnapshotCache();
  const server = new AdsServer({ cache, address: "127.0.0.1:0" });
  const port = await server.listen();
  const serverNacks: string[] = [];
  const serverAcks: string[] = [];
  server.on("nack", (_node, typeUrl, _version, message) => serverNacks.push(`${typeUrl} ${message}`));
  server.on("ack", (_node, typeUrl) => serverAcks.push(typeUrl));
  cache.setSnapshot(NODE.id, new Snapshot(goodResources()));

  const store = new ConfigStore();
  const client = new AdsClient({ address: `127.0.0.1:${port}`, node: NODE, validate: store.validate });
  store.bind(client);
  const requests: DiscoveryRequest[] = [];
  const nacks: [string, string][] = [];
  client.on("request", (r) => requests.push(r));
  client.on("nack", (typeUrl, message) => nacks.push([typeUrl, message]));
  try {
    await until(
      "the good config",
      () => Object.keys(store.config.versions).length === 4 && store.config.routes.size === 1,
    );
    const good = store.config;
    const goodListener = good.listeners.get("outbound");

    // Consistent for the cache (nothing dangles), but not something the sidecar can run.
    const bad = goodResources();
    (bad as Record<string, Map<string, object>>)[LISTENER] = new Map([
      [
        "outbound",
        listener("outbound", {
          filterChains: [
            {
              filters: [
                {
                  name: "envoy.filters.network.redis_proxy",
                  typedConfig: {
                    type_url: `${TYPE_URL_PREFIX}envoy.extensions.filters.network.redis_proxy.v3.RedisProxy`,
                    value: Buffer.alloc(0),
                  },
                },
              ],
            },
          ],
        }),
      ],
    ]);
    const requestsBefore = requests.length;
    const badSnapshot = new Snapshot(bad);
    cache.setSnapshot(NODE.id, badSnapshot);
    await until("the NACK", () => nacks.length === 1 && serverNacks.length === 1);
    const message =
      'Listener "outbound": filter_chains[0].filters[0]: unsupported filter envoy.filters.network.redis_proxy';
    assert.deepEqual(nacks, [[LISTENER, message]]);
    assert.deepEqual(serverNacks, [`${LISTENER} ${message}`]);
    assert.equal(store.config, good, "the NACKed response changed nothing");
    assert.equal(store.config.listeners.get("outbound"), goodListener);

    // The NACK went out once, with the last accepted version, and nothing is re-requested afterwards.
    const nackRequest = requests.slice(requestsBefore).filter((r) => r.typeUrl === LISTENER);
    assert.equal(nackRequest.length, 1);
    assert.equal(nackRequest[0]?.errorDetail?.code, 3);
    assert.equal(nackRequest[0]?.errorDetail?.message, message);
    assert.equal(nackRequest[0]?.versionInfo, good.versions[LISTENER]);
    const count = requests.length;
    const acks = serverAcks.length;
    await delay(500);
    assert.equal(requests.length, count, "no request in the 500 ms after a NACK");
    assert.equal(serverNacks.length, 1);
    assert.equal(serverAcks.length, acks);
    const lds = server.status()[0]?.types[LISTENER];
    assert.equal(lds?.lastNack?.message, message);
    assert.equal(lds?.ackedVersion, good.versions[LISTENER]);
    assert.equal(client.status()[LISTENER]?.lastNack?.version, badSnapshot.version(LISTENER));

    // A corrected listener is accepted and applied.
    const fixed = new Snapshot(goodResources("fixed"));
    cache.setSnapshot(NODE.id, fixed);
    await until("the fix", () => store.config.versions[LISTENER] === fixed.version(LISTENER));
    const config = store.config.listeners.get("outbound")?.config;
    assert.equal(config?.statPrefix, "fixed");
    assert.equal(server.status()[0]?.types[LISTENER]?.ackedVersion, fixed.version(LISTENER));
  } finally {
    client.close();
    await server.close();
  }
});
