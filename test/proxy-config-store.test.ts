// ConfigStore: a response is validated as a whole and swapped in atomically; a NACK changes nothing; RDS and
// EDS names follow the accepted listeners and clusters, and what nothing refers to any more is dropped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigStore } from "../src/proxy/config/store.js";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from "../src/xds/protos.js";
import { cluster, hcm, listener, loadAssignment, routeConfiguration, wire } from "./proxy-config-fixtures.js";

function withRds(name: string, routeName: string, port: number): object {
  return listener(name, {
    address: { socketAddress: { address: "127.0.0.1", portValue: port } },
    filterChains: [
      {
        filters: [
          {
            name: "hcm",
            typedConfig: hcm({ rds: { routeConfigName: routeName, configSource: { ads: {} } } }),
          },
        ],
      },
    ],
  });
}

const decoded = (typeUrl: string, list: object[]) => list.map((x) => wire(typeUrl, x));

test("a response with one bad resource is NACKed as a whole and the previous config stays", () => {
  const store = new ConfigStore();
  assert.deepEqual(store.update(LISTENER, decoded(LISTENER, [withRds("a", "r1", 1001)]), "v1"), { ok: true });
  const before = store.config;
  const bad = listener("b", {
    address: { socketAddress: { address: "127.0.0.1", portValue: 1002 } },
    socketOptions: [{ level: "1", name: "2" }],
  });
  const result = store.update(LISTENER, decoded(LISTENER, [withRds("a2", "r2", 1003), bad]), "v2");
  assert.deepEqual(result, {
    ok: false,
    message: 'Listener "b": socket_options: not supported by the Skein sidecar',
  });
  assert.equal(store.config, before, "the very same config object is still in force");
  assert.deepEqual([...store.config.listeners.keys()], ["a"]);
  assert.equal(store.config.versions[LISTENER], "v1");
});

test("duplicate names and two listeners binding one address are NACKed", () => {
  const store = new ConfigStore();
  const dup = store.update(CLUSTER, decoded(CLUSTER, [cluster("c"), cluster("c")]), "1");
  assert.deepEqual(dup, { ok: false, message: 'Cluster "c": appears twice in one response' });
  const clash = store.update(
    LISTENER,
    decoded(LISTENER, [withRds("a", "r", 80), withRds("b", "r", 80)]),
    "1",
  );
  assert.deepEqual(clash, {
    ok: false,
    message: 'Listener "b": address 127.0.0.1:80 is already used by listener "a"',
  });
  // bind_to_port: false listeners only receive hand-offs, so they may share an address.
  const handOff = listener("c", {
    bindToPort: { value: false },
    address: { socketAddress: { address: "127.0.0.1", portValue: 80 } },
  });
  assert.deepEqual(store.update(LISTENER, decoded(LISTENER, [withRds("a", "r", 80), handOff]), "2"), {
    ok: true,
  });
});

test("RDS and EDS names follow the accepted listeners and clusters; unreferenced ones are dropped", () => {
  const store = new ConfigStore();
  const events: [string[], number][] = [];
  store.on("updated", (config, changed) => events.push([[...changed].sort(), config.routes.size]));
  const subscriptions: [string, string[]][] = [];
  store.bind({ subscribe: (typeUrl, names) => subscriptions.push([typeUrl, [...names]]) });
  assert.deepEqual(subscriptions, [
    [ROUTE, []],
    [ENDPOINT, []],
  ]);

  assert.equal(
    store.update(
      CLUSTER,
      decoded(CLUSTER, [cluster("c1"), cluster("c2", { edsClusterConfig: { serviceName: "eds-2" } })]),
      "1",
    ).ok,
    true,
  );
  assert.deepEqual(store.resourceNames(ENDPOINT), ["c1", "eds-2"]);
  assert.deepEqual(subscriptions.at(-1), [ENDPOINT, ["c1", "eds-2"]]);
  assert.equal(
    store.update(
      ENDPOINT,
      decoded(ENDPOINT, [loadAssignment("c1"), loadAssignment("eds-2"), loadAssignment("stray")]),
      "1",
    ).ok,
    true,
  );
  assert.deepEqual(
    [...store.config.endpoints.keys()].sort(),
    ["c1", "eds-2"],
    "a name nothing refers to is not kept",
  );

  assert.equal(
    store.update(LISTENER, decoded(LISTENER, [withRds("a", "r1", 1001), withRds("b", "r2", 1002)]), "1").ok,
    true,
  );
  assert.deepEqual(store.resourceNames(ROUTE), ["r1", "r2"]);
  assert.equal(
    store.update(ROUTE, decoded(ROUTE, [routeConfiguration("r1"), routeConfiguration("r2")]), "1").ok,
    true,
  );
  assert.equal(store.config.routes.size, 2);

  // Listener b goes away: its routes go with it, and RDS is re-subscribed without r2.
  assert.equal(store.update(LISTENER, decoded(LISTENER, [withRds("a", "r1", 1001)]), "2").ok, true);
  assert.deepEqual([...store.config.routes.keys()], ["r1"]);
  assert.deepEqual(subscriptions.at(-2), [ROUTE, ["r1"]]);
  assert.deepEqual(events.at(-1), [[LISTENER, ROUTE].sort(), 1]);
  assert.deepEqual([...store.resources(ROUTE).keys()], ["r1"]);

  // A cluster goes away: its endpoints go with it.
  assert.equal(store.update(CLUSTER, decoded(CLUSTER, [cluster("c1")]), "2").ok, true);
  assert.deepEqual([...store.config.endpoints.keys()], ["c1"]);
  assert.deepEqual(events.at(-1)?.[0], [CLUSTER, ENDPOINT].sort());
});

test("an RDS response updates the names it carries and keeps the others (state of the world is per name for RDS)", () => {
  const store = new ConfigStore();
  store.update(LISTENER, decoded(LISTENER, [withRds("a", "r1", 1001), withRds("b", "r2", 1002)]), "1");
  store.update(ROUTE, decoded(ROUTE, [routeConfiguration("r1"), routeConfiguration("r2")]), "1");
  const r2 = store.config.routes.get("r2");
  assert.equal(
    store.update(ROUTE, decoded(ROUTE, [routeConfiguration("r1", undefined, { domains: ["x"] })]), "2").ok,
    true,
  );
  assert.equal(store.config.routes.get("r2"), r2);
  assert.ok(store.config.routes.get("r1")?.exact.has("x"));
});

test("validate_clusters: an RDS route table that asks for it must only use clusters CDS has", () => {
  const store = new ConfigStore();
  store.update(CLUSTER, decoded(CLUSTER, [cluster("c1")]), "1");
  store.update(LISTENER, decoded(LISTENER, [withRds("a", "r1", 1001)]), "1");
  const strict = {
    ...routeConfiguration("r1", [{ match: { prefix: "/" }, route: { cluster: "nope" } }]),
    validateClusters: { value: true },
  };
  assert.deepEqual(store.update(ROUTE, decoded(ROUTE, [strict]), "1"), {
    ok: false,
    message:
      'RouteConfiguration "r1": routes to unknown cluster "nope" (validate_clusters is on: set it false to allow this)',
  });
  // By default (RDS) it is off: a route to a missing cluster answers 503 at request time, as in Envoy.
  const lax = routeConfiguration("r1", [{ match: { prefix: "/" }, route: { cluster: "nope" } }]);
  assert.equal(store.update(ROUTE, decoded(ROUTE, [lax]), "2").ok, true);
});

test("a resource type the sidecar does not use is NACKed", () => {
  const store = new ConfigStore();
  const r = store.update("type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", [], "1");
  assert.equal(r.ok, false);
});
