// src/xds/snapshot.ts: content-hash versions, consistency checks (EDS and RDS references) and the cache.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SkeinError } from "../src/lib/diagnostics.js";
import { XdsCodes } from "../src/xds/codes.js";
import type { Listener } from "../src/xds/generated/envoy/config/listener/v3/Listener.js";
import { CLUSTER, ENDPOINT, HTTP_CONNECTION_MANAGER, LISTENER, pack, ROUTE } from "../src/xds/protos.js";
import { type Resources, Snapshot, SnapshotCache } from "../src/xds/snapshot.js";
import { apiListener, edsCluster, endpoints, ROUTER, route, serviceResources } from "./xds-helpers.js";

function filterChainListener(name: string, routeName: string): Listener {
  return {
    name,
    address: { socketAddress: { address: "127.0.0.1", portValue: 15001 } },
    filterChains: [
      {
        filters: [
          {
            name: "envoy.filters.network.http_connection_manager",
            typedConfig: pack(HTTP_CONNECTION_MANAGER, {
              statPrefix: "out",
              rds: { routeConfigName: routeName, configSource: { ads: {} } },
              httpFilters: [{ name: "router", typedConfig: pack(ROUTER, {}) }],
            }),
          },
        ],
      },
    ],
  };
}

describe("Snapshot", () => {
  it("versions each type by content: equal content, equal version", () => {
    const a = new Snapshot(serviceResources("echo", [1000]));
    const b = new Snapshot(serviceResources("echo", [1000]));
    const c = new Snapshot(serviceResources("echo", [1001]));
    assert.deepEqual(a.versions(), b.versions());
    assert.equal(a.version(LISTENER), c.version(LISTENER));
    assert.equal(a.version(CLUSTER), c.version(CLUSTER));
    assert.notEqual(a.version(ENDPOINT), c.version(ENDPOINT));
    assert.equal(a.version(ENDPOINT).length, 16);
    assert.equal(
      a.version("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"),
      Snapshot.EMPTY_VERSION,
    );
    const r = a.get(CLUSTER, "echo-cluster");
    assert.ok(r);
    assert.equal(r.any.type_url, CLUSTER);
    assert.notEqual(r.version, c.get(ENDPOINT, "echo-cluster")?.version);
  });

  it("is consistent when every EDS and RDS reference resolves", () => {
    assert.deepEqual(new Snapshot(serviceResources("echo", [1000])).consistencyErrors(), []);
    // eds_cluster_config.service_name names the ClusterLoadAssignment instead of the cluster name
    const byServiceName = new Snapshot({
      [CLUSTER]: new Map([["c", edsCluster("c", "svc")]]),
      [ENDPOINT]: new Map([["svc", endpoints("svc", [1])]]),
    });
    assert.deepEqual(byServiceName.consistencyErrors(), []);
    // STATIC clusters and inline route configs need nothing else
    const staticOnly = new Snapshot({
      [CLUSTER]: new Map([["s", { name: "s", type: "STATIC", loadAssignment: endpoints("s", [1]) }]]),
      [LISTENER]: new Map([
        [
          "l",
          {
            name: "l",
            apiListener: {
              apiListener: pack(HTTP_CONNECTION_MANAGER, {
                routeConfig: route("inline", "s"),
                httpFilters: [{ name: "router", typedConfig: pack(ROUTER, {}) }],
              }),
            },
          },
        ],
      ]),
    });
    assert.deepEqual(staticOnly.consistencyErrors(), []);
  });

  it("lists EDS clusters without endpoints and RDS names without routes", () => {
    const snap = new Snapshot({
      [LISTENER]: new Map([
        ["api", apiListener("api", "missing-api-route")],
        ["chain", filterChainListener("chain", "missing-chain-route")],
        ["ok", apiListener("ok", "present")],
      ]),
      [ROUTE]: new Map([["present", route("present", "c1")]]),
      [CLUSTER]: new Map([
        ["c1", edsCluster("c1")],
        ["c2", edsCluster("c2", "svc2")],
      ]),
      [ENDPOINT]: new Map([["c1", endpoints("c1", [1])]]),
    });
    const errors = snap.consistencyErrors().map((e) => `${e.name}->${e.missingName}`);
    assert.deepEqual(errors.sort(), ["api->missing-api-route", "c2->svc2", "chain->missing-chain-route"]);
  });

  it("refuses a resource stored under another name, and an invalid resource with its name", () => {
    assert.throws(
      () => new Snapshot({ [CLUSTER]: new Map([["a", edsCluster("b")]]) }),
      (e: SkeinError) => e.code === XdsCodes.NAME_MISMATCH,
    );
    assert.throws(
      () =>
        new Snapshot({ [CLUSTER]: new Map([["a", { name: "a", conectTimeout: { seconds: 1 } } as object]]) }),
      (e: SkeinError) =>
        e.code === XdsCodes.UNKNOWN_FIELD &&
        e.message.startsWith("Cluster a: Cluster.conectTimeout") &&
        e.diagnostics[0]?.resource === "Cluster a",
    );
  });
});

describe("SnapshotCache", () => {
  it("refuses an inconsistent snapshot and keeps the previous one", () => {
    const cache = new SnapshotCache();
    const good = new Snapshot(serviceResources("echo", [1000]));
    cache.setSnapshot("n1", good);
    const bad: Resources = { ...serviceResources("echo", [1000]), [ENDPOINT]: new Map() };
    assert.throws(
      () => cache.setSnapshot("n1", new Snapshot(bad)),
      (e: unknown) =>
        e instanceof SkeinError &&
        e.code === XdsCodes.INCONSISTENT &&
        e.message.includes("echo-cluster") &&
        e.diagnostics[0]?.code === XdsCodes.INCONSISTENT,
    );
    assert.equal(cache.getSnapshot("n1"), good);
  });

  it("notifies watchers of the node on change, not on an identical snapshot", () => {
    const cache = new SnapshotCache();
    const seen: (Snapshot | undefined)[] = [];
    const other: (Snapshot | undefined)[] = [];
    const stop = cache.watch("n1", (s) => seen.push(s));
    cache.watch("n2", (s) => other.push(s));
    const s1 = new Snapshot(serviceResources("echo", [1000]));
    cache.setSnapshot("n1", s1);
    cache.setSnapshot("n1", new Snapshot(serviceResources("echo", [1000]))); // same content
    const s2 = new Snapshot(serviceResources("echo", [1001]));
    cache.setSnapshot("n1", s2);
    assert.deepEqual(seen, [s1, s2]);
    assert.equal(cache.clearSnapshot("n1"), true);
    assert.equal(cache.getSnapshot("n1"), undefined);
    assert.deepEqual(seen, [s1, s2, undefined]);
    stop();
    cache.setSnapshot("n1", s1);
    assert.equal(seen.length, 3);
    assert.deepEqual(other, []);
    assert.deepEqual(cache.nodeIds(), ["n1"]);
  });
});
