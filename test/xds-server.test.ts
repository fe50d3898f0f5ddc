// src/xds/server.ts over a real gRPC connection on 127.0.0.1: state-of-the-world and delta ADS with a raw
// grpc-js client stream, asserting each response (and the absence of responses) the protocol calls for.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { SkeinError } from "../src/lib/diagnostics.js";
import { XdsCodes } from "../src/xds/codes.js";
import { CLUSTER, ENDPOINT, jsonToStruct, LISTENER, ROUTE, unpack } from "../src/xds/protos.js";
import { AdsServer, type NodeInfo } from "../src/xds/server.js";
import { type Resources, Snapshot, SnapshotCache } from "../src/xds/snapshot.js";
import {
  type DeltaClient,
  deltaClient,
  edsCluster,
  endpoints,
  route,
  type SotwClient,
  serviceResources,
  sotwClient,
} from "./xds-helpers.js";

// Long enough for a response the server should not send to have arrived on loopback.
const QUIET_MS = 300;

let cache: SnapshotCache;
let server: AdsServer;
let port: number;
const events: string[] = [];
const clients: (SotwClient | DeltaClient)[] = [];

function names(resources: { type_url: string; value: Buffer }[]): string[] {
  return resources.map((r) => {
    const m = unpack<{ name?: string; clusterName?: string }>(r, { defaults: false });
    return (m.name ?? m.clusterName) as string;
  });
}

function twoClusters(portA: number, portB: number): Resources {
  return {
    ...serviceResources("echo", [portA]),
    [CLUSTER]: new Map([
      ["echo-cluster", edsCluster("echo-cluster")],
      ["other", edsCluster("other")],
    ]),
    [ENDPOINT]: new Map([
      ["echo-cluster", endpoints("echo-cluster", [portA])],
      ["other", endpoints("other", [portB])],
    ]),
  };
}

function sotw(): SotwClient {
  const c = sotwClient(port);
  clients.push(c);
  return c;
}

function delta(): DeltaClient {
  const c = deltaClient(port);
  clients.push(c);
  return c;
}

before(async () => {
  cache = new SnapshotCache();
  server = new AdsServer({ cache, address: "127.0.0.1:0" });
  port = await server.listen();
  server.on("streamOpened", (id) => events.push(`open ${id}`));
  server.on("streamClosed", (id) => events.push(`close ${id}`));
  server.on("ack", (id, t, v) => events.push(`ack ${id} ${t.split(".").pop()} ${v}`));
  server.on("nack", (id, t, v, m) => events.push(`nack ${id} ${t.split(".").pop()} ${v} ${m}`));
  server.on("pushed", (id, t, v, n) => events.push(`pushed ${id} ${t.split(".").pop()} ${v} ${n}`));
});

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  events.length = 0;
});

after(async () => {
  await server.close();
});

describe("state of the world (StreamAggregatedResources)", () => {
  it("answers the initial request with a version and a nonce, and reports the node", async () => {
    cache.setSnapshot("n-initial", new Snapshot(serviceResources("echo", [1000])));
    const opened = new Promise<NodeInfo>((resolve) =>
      server.once("streamOpened", (_id, node) => resolve(node)),
    );
    const c = sotw();
    c.send({
      node: {
        id: "n-initial",
        cluster: "orders",
        metadata: jsonToStruct({ NAMESPACE: "default", LABELS: { app: "orders" } }),
        locality: { region: "eu", zone: "eu-1" },
        userAgentName: "test",
      },
      typeUrl: CLUSTER,
    });
    const res = await c.inbox.next();
    assert.equal(res.typeUrl, CLUSTER);
    assert.equal(res.versionInfo, cache.getSnapshot("n-initial")?.version(CLUSTER));
    assert.ok(res.nonce.length > 0);
    assert.deepEqual(names(res.resources), ["echo-cluster"]);
    const node = await opened;
    assert.equal(node.id, "n-initial");
    assert.equal(node.cluster, "orders");
    assert.deepEqual(node.metadata, { NAMESPACE: "default", LABELS: { app: "orders" } });
    assert.deepEqual(node.locality, { region: "eu", zone: "eu-1", subZone: "" });
    assert.ok(events.includes(`pushed n-initial Cluster ${res.versionInfo} 1`));
  });

  it("records an ACK", async () => {
    cache.setSnapshot("n-ack", new Snapshot(serviceResources("echo", [1000])));
    const c = sotw();
    c.send({ node: { id: "n-ack" }, typeUrl: LISTENER });
    const res = await c.inbox.next();
    const acked = new Promise<string>((resolve) => server.once("ack", (_n, _t, v) => resolve(v)));
    c.send({ typeUrl: LISTENER, versionInfo: res.versionInfo, responseNonce: res.nonce });
    assert.equal(await acked, res.versionInfo);
    const st = server.status().find((s) => s.nodeId === "n-ack");
    assert.equal(st?.protocol, "sotw");
    assert.equal(st?.types[LISTENER]?.ackedVersion, res.versionInfo);
    assert.equal(st?.types[LISTENER]?.sentVersion, res.versionInfo);
    assert.deepEqual(st?.types[LISTENER]?.subscribed, ["*"]);
    assert.deepEqual(await c.inbox.drain(QUIET_MS), [], "an ACK is not answered");
  });

  it("records a NACK and does not resend the rejected version", async () => {
    cache.setSnapshot("n-nack", new Snapshot(serviceResources("echo", [1000])));
    const c = sotw();
    c.send({ node: { id: "n-nack" }, typeUrl: CLUSTER });
    const res = await c.inbox.next();
    const nacked = new Promise<string[]>((resolve) =>
      server.once("nack", (_n, t, v, m) => resolve([t, v, m])),
    );
    c.send({
      typeUrl: CLUSTER,
      versionInfo: "",
      responseNonce: res.nonce,
      errorDetail: { code: grpc.status.INVALID_ARGUMENT, message: "cluster echo-cluster: bad lb policy" },
    });
    assert.deepEqual(await nacked, [CLUSTER, res.versionInfo, "cluster echo-cluster: bad lb policy"]);
    assert.deepEqual(await c.inbox.drain(QUIET_MS), [], "no resend loop after a NACK");
    const nack = server.status().find((s) => s.nodeId === "n-nack")?.types[CLUSTER]?.lastNack;
    assert.equal(nack?.version, res.versionInfo);
    assert.equal(nack?.nonce, res.nonce);
    assert.equal(nack?.code, grpc.status.INVALID_ARGUMENT);
    // A new version is still pushed after a NACK.
    cache.setSnapshot("n-nack", new Snapshot(twoClusters(1000, 2000)));
    const next = await c.inbox.next();
    assert.notEqual(next.versionInfo, res.versionInfo);
    assert.deepEqual(names(next.resources), ["echo-cluster", "other"]);
  });

  it("ignores a request with a stale nonce", async () => {
    cache.setSnapshot("n-stale", new Snapshot(twoClusters(1000, 2000)));
    const c = sotw();
    c.send({ node: { id: "n-stale" }, typeUrl: ENDPOINT, resourceNames: ["echo-cluster"] });
    const first = await c.inbox.next();
    assert.deepEqual(names(first.resources), ["echo-cluster"]);
    c.send({
      typeUrl: ENDPOINT,
      versionInfo: first.versionInfo,
      responseNonce: first.nonce,
      resourceNames: ["echo-cluster"],
    });
    cache.setSnapshot("n-stale", new Snapshot(twoClusters(1001, 2000)));
    const second = await c.inbox.next();
    assert.notEqual(second.nonce, first.nonce);
    // A request answering the superseded response (first nonce) changes nothing, even its subscription.
    c.send({
      typeUrl: ENDPOINT,
      versionInfo: first.versionInfo,
      responseNonce: first.nonce,
      resourceNames: ["echo-cluster", "other"],
    });
    assert.deepEqual(await c.inbox.drain(QUIET_MS), []);
    const st = server.status().find((s) => s.nodeId === "n-stale")?.types[ENDPOINT];
    assert.deepEqual(st?.subscribed, ["echo-cluster"]);
    assert.equal(st?.ackedVersion, first.versionInfo);
    // The same request with the current nonce is an ACK plus a subscription change: answered.
    c.send({
      typeUrl: ENDPOINT,
      versionInfo: second.versionInfo,
      responseNonce: second.nonce,
      resourceNames: ["echo-cluster", "other"],
    });
    const third = await c.inbox.next();
    assert.deepEqual(names(third.resources), ["echo-cluster", "other"]);
  });

  it("answers a subscription change immediately, filtered to the names", async () => {
    const resources = serviceResources("echo", [1000]);
    (resources[ROUTE] as Map<string, object>).set("r2", route("r2", "echo-cluster"));
    cache.setSnapshot("n-sub", new Snapshot(resources));
    const c = sotw();
    c.send({ node: { id: "n-sub" }, typeUrl: ROUTE, resourceNames: ["echo-route"] });
    const first = await c.inbox.next();
    assert.deepEqual(names(first.resources), ["echo-route"]);
    c.send({
      typeUrl: ROUTE,
      versionInfo: first.versionInfo,
      responseNonce: first.nonce,
      resourceNames: ["echo-route", "r2"],
    });
    const second = await c.inbox.next();
    assert.deepEqual(names(second.resources), ["echo-route", "r2"]);
    assert.equal(second.versionInfo, first.versionInfo, "same snapshot, same version");
    // Dropping every name is a change too, answered with nothing (RDS has no wildcard).
    c.send({
      typeUrl: ROUTE,
      versionInfo: second.versionInfo,
      responseNonce: second.nonce,
      resourceNames: [],
    });
    const third = await c.inbox.next();
    assert.deepEqual(third.resources, []);
  });

  it("pushes only the type whose version changed", async () => {
    cache.setSnapshot("n-push", new Snapshot(serviceResources("echo", [1000])));
    const c = sotw();
    const acked = new Map<string, string>();
    const subscribe: [string, string[]][] = [
      [CLUSTER, []],
      [ENDPOINT, ["echo-cluster"]],
      [LISTENER, []],
      [ROUTE, ["echo-route"]],
    ];
    for (const [typeUrl, resourceNames] of subscribe) {
      c.send({ node: { id: "n-push" }, typeUrl, resourceNames });
    }
    for (let i = 0; i < subscribe.length; i++) {
      const res = await c.inbox.next();
      acked.set(res.typeUrl, res.versionInfo);
      const resourceNames = subscribe.find(([t]) => t === res.typeUrl)?.[1] ?? [];
      c.send({ typeUrl: res.typeUrl, versionInfo: res.versionInfo, responseNonce: res.nonce, resourceNames });
    }
    assert.equal(acked.size, 4);
    events.length = 0;
    cache.setSnapshot("n-push", new Snapshot(serviceResources("echo", [1001]))); // only endpoints differ
    const pushed = await c.inbox.drain(QUIET_MS);
    assert.deepEqual(
      pushed.map((r) => r.typeUrl),
      [ENDPOINT],
    );
    assert.notEqual(pushed[0]?.versionInfo, acked.get(ENDPOINT));
    assert.deepEqual(
      events.filter((e) => e.startsWith("pushed")).map((e) => e.split(" ")[2]),
      ["ClusterLoadAssignment"],
    );
  });

  it("does not push an EDS change the stream is not subscribed to", async () => {
    cache.setSnapshot("n-filter", new Snapshot(twoClusters(1000, 2000)));
    const c = sotw();
    c.send({ node: { id: "n-filter" }, typeUrl: ENDPOINT, resourceNames: ["echo-cluster"] });
    const res = await c.inbox.next();
    c.send({
      typeUrl: ENDPOINT,
      versionInfo: res.versionInfo,
      responseNonce: res.nonce,
      resourceNames: ["echo-cluster"],
    });
    cache.setSnapshot("n-filter", new Snapshot(twoClusters(1000, 2001))); // only "other" changed
    assert.deepEqual(await c.inbox.drain(QUIET_MS), []);
  });

  it("keeps a node without a snapshot waiting until one is set", async () => {
    const c = sotw();
    c.send({ node: { id: "n-late" }, typeUrl: LISTENER });
    assert.deepEqual(await c.inbox.drain(QUIET_MS), []);
    assert.ok(server.status().some((s) => s.nodeId === "n-late"));
    cache.setSnapshot("n-late", new Snapshot(serviceResources("echo", [1000])));
    const res = await c.inbox.next();
    assert.deepEqual(names(res.resources), ["echo"]);
  });

  it("coalesces snapshot changes while a response is unacknowledged", async () => {
    cache.setSnapshot("n-slow", new Snapshot(serviceResources("echo", [1000])));
    const c = sotw();
    c.send({ node: { id: "n-slow" }, typeUrl: ENDPOINT, resourceNames: ["echo-cluster"] });
    const first = await c.inbox.next();
    for (let p = 1001; p <= 1020; p++)
      cache.setSnapshot("n-slow", new Snapshot(serviceResources("echo", [p])));
    assert.deepEqual(await c.inbox.drain(QUIET_MS), [], "nothing queues behind an unacknowledged response");
    c.send({
      typeUrl: ENDPOINT,
      versionInfo: first.versionInfo,
      responseNonce: first.nonce,
      resourceNames: ["echo-cluster"],
    });
    const latest = await c.inbox.next();
    assert.equal(latest.versionInfo, cache.getSnapshot("n-slow")?.version(ENDPOINT));
    const cla = unpack<{
      endpoints: { lbEndpoints: { endpoint: { address: { socketAddress: { portValue: number } } } }[] }[];
    }>(latest.resources[0] as { type_url: string; value: Buffer });
    assert.equal(cla.endpoints[0]?.lbEndpoints[0]?.endpoint.address.socketAddress.portValue, 1020);
    assert.deepEqual(await c.inbox.drain(QUIET_MS), []);
  });

  it("ends a malformed stream with INVALID_ARGUMENT and keeps serving others", async () => {
    const errors: string[] = [];
    server.on("streamError", (_n, m) => errors.push(m));
    const noNode = sotw();
    noNode.send({ typeUrl: LISTENER });
    assert.equal((await noNode.inbox.closed()).code, grpc.status.INVALID_ARGUMENT);
    const noType = sotw();
    noType.send({ node: { id: "n-bad" } });
    const status = await noType.inbox.closed();
    assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
    assert.match(status.details, /type_url/);
    assert.equal(errors.length, 2);
    // Bytes that are not a DiscoveryRequest at all: grpc-js fails that call, the server lives on.
    const raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const garbage = raw.makeBidiStreamRequest(
      "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    const garbageStatus = new Promise<grpc.StatusObject>((resolve) => garbage.on("status", resolve));
    garbage.on("error", () => {});
    garbage.write(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0xff]));
    assert.equal((await garbageStatus).code, grpc.status.INTERNAL);
    raw.close();
    cache.setSnapshot("n-fine", new Snapshot(serviceResources("echo", [1000])));
    const fine = sotw();
    fine.send({ node: { id: "n-fine" }, typeUrl: LISTENER });
    assert.equal((await fine.inbox.next()).typeUrl, LISTENER);
  });

  it("does not resend a wildcard type to a reconnecting client that already has its version", async () => {
    cache.setSnapshot("n-reconnect", new Snapshot(serviceResources("echo", [1000])));
    const version = cache.getSnapshot("n-reconnect")?.version(CLUSTER) as string;
    const c = sotw();
    c.send({ node: { id: "n-reconnect" }, typeUrl: CLUSTER, versionInfo: version });
    assert.deepEqual(await c.inbox.drain(QUIET_MS), []);
    assert.equal(
      server.status().find((s) => s.nodeId === "n-reconnect")?.types[CLUSTER]?.ackedVersion,
      version,
    );
    cache.setSnapshot("n-reconnect", new Snapshot(twoClusters(1000, 2000)));
    const res = await c.inbox.next();
    assert.deepEqual(names(res.resources), ["echo-cluster", "other"]);
  });

  it("stops writing when the transport is full and resumes on drain with the latest snapshot", async () => {
    // 20 resource types (any message type can be served) of 150 kB each, to a client that does not read.
    const kinds: [string, string][] = [
      ["envoy.config.route.v3.VirtualHost", "name"],
      ["envoy.config.route.v3.Route", "name"],
      ["envoy.config.listener.v3.Filter", "name"],
      ["envoy.config.listener.v3.FilterChain", "name"],
      ["envoy.config.core.v3.Node", "id"],
      ["envoy.config.core.v3.Locality", "region"],
      ["envoy.config.core.v3.SocketAddress", "address"],
      ["envoy.config.core.v3.Pipe", "path"],
      ["envoy.config.core.v3.HeaderValue", "key"],
      ["envoy.config.core.v3.DataSource", "filename"],
      ["envoy.config.core.v3.TypedExtensionConfig", "name"],
      ["envoy.config.core.v3.RuntimeFractionalPercent", "runtimeKey"],
      ["envoy.config.core.v3.KeyValue", "key"],
      ["envoy.config.core.v3.HttpUri", "uri"],
      ["envoy.config.route.v3.RouteMatch", "prefix"],
      ["envoy.config.route.v3.RedirectAction", "hostRedirect"],
      ["envoy.config.endpoint.v3.Endpoint", "hostname"],
      ["envoy.config.cluster.v3.Filter", "name"],
      ["envoy.config.route.v3.WeightedCluster.ClusterWeight", "name"],
      ["envoy.config.core.v3.HeaderValueOption", "appendAction"],
    ];
    const typeUrls = kinds.map(([k]) => `type.googleapis.com/${k}`);
    const big = (fill: string): Resources => {
      const r: Resources = {};
      for (const [k, field] of kinds) {
        const value = field === "appendAction" ? "OVERWRITE_IF_EXISTS_OR_ADD" : fill.repeat(150_000);
        r[`type.googleapis.com/${k}`] = new Map([["big", { [field]: value }]]);
      }
      return r;
    };
    cache.setSnapshot("n-pressure", new Snapshot(big("a")));
    let pushed = 0;
    const onPushed = (id: string) => {
      if (id === "n-pressure") pushed++;
    };
    server.on("pushed", onPushed);
    const c = sotw();
    c.stream.pause();
    for (const typeUrl of typeUrls) c.send({ node: { id: "n-pressure" }, typeUrl, resourceNames: ["big"] });
    await new Promise((r) => setTimeout(r, QUIET_MS));
    const beforeResume = pushed;
    assert.ok(
      beforeResume > 0 && beforeResume < typeUrls.length,
      `wrote ${beforeResume} of ${typeUrls.length}`,
    );
    cache.setSnapshot("n-pressure", new Snapshot(big("b"))); // arrives while blocked: coalesced
    c.stream.resume();
    const got: string[] = [];
    const latest = cache.getSnapshot("n-pressure") as Snapshot;
    let sawLatest = false;
    while (got.length < typeUrls.length) {
      const res = await c.inbox.next(5000);
      got.push(res.typeUrl);
      if (res.versionInfo === latest.version(res.typeUrl)) sawLatest = true;
    }
    server.off("pushed", onPushed);
    assert.deepEqual([...got].sort(), [...typeUrls].sort(), "each type exactly once");
    assert.ok(sawLatest, "types written after the drain carry the latest snapshot");
    assert.deepEqual(
      await c.inbox.drain(QUIET_MS),
      [],
      "nothing else is queued behind unacknowledged responses",
    );
  });

  it("reports streams that close", async () => {
    cache.setSnapshot("n-close", new Snapshot(serviceResources("echo", [1000])));
    const c = sotw();
    c.send({ node: { id: "n-close" }, typeUrl: LISTENER });
    await c.inbox.next();
    const closed = new Promise<string>((resolve) => server.once("streamClosed", (id) => resolve(id)));
    c.close();
    assert.equal(await closed, "n-close");
    assert.ok(!server.status().some((s) => s.nodeId === "n-close"));
  });
});

describe("incremental (DeltaAggregatedResources)", () => {
  it("sends everything on the initial wildcard request and records the ACK", async () => {
    cache.setSnapshot("d-initial", new Snapshot(twoClusters(1000, 2000)));
    const snap = cache.getSnapshot("d-initial") as Snapshot;
    const c = delta();
    c.send({ node: { id: "d-initial" }, typeUrl: CLUSTER });
    const res = await c.inbox.next();
    assert.equal(res.typeUrl, CLUSTER);
    assert.equal(res.systemVersionInfo, snap.version(CLUSTER));
    assert.ok(res.nonce);
    assert.deepEqual(
      res.resources.map((r) => [r.name, r.version]),
      [
        ["echo-cluster", snap.get(CLUSTER, "echo-cluster")?.version],
        ["other", snap.get(CLUSTER, "other")?.version],
      ],
    );
    assert.deepEqual(names(res.resources.map((r) => r.resource as { type_url: string; value: Buffer })), [
      "echo-cluster",
      "other",
    ]);
    assert.deepEqual(res.removedResources, []);
    const acked = new Promise<string>((resolve) => server.once("ack", (_n, _t, v) => resolve(v)));
    c.send({ typeUrl: CLUSTER, responseNonce: res.nonce });
    assert.equal(await acked, res.systemVersionInfo);
    const st = server.status().find((s) => s.nodeId === "d-initial");
    assert.equal(st?.protocol, "delta");
    assert.equal(st?.types[CLUSTER]?.ackedVersion, res.systemVersionInfo);
  });

  it("sends only the resource that changed, then the removal", async () => {
    cache.setSnapshot("d-update", new Snapshot(twoClusters(1000, 2000)));
    const c = delta();
    c.send({
      node: { id: "d-update" },
      typeUrl: ENDPOINT,
      resourceNamesSubscribe: ["echo-cluster", "other"],
    });
    const first = await c.inbox.next();
    assert.deepEqual(
      first.resources.map((r) => r.name),
      ["echo-cluster", "other"],
    );
    c.send({ typeUrl: ENDPOINT, responseNonce: first.nonce });

    cache.setSnapshot("d-update", new Snapshot(twoClusters(1000, 2001)));
    const update = await c.inbox.next();
    assert.deepEqual(
      update.resources.map((r) => r.name),
      ["other"],
    );
    assert.deepEqual(update.removedResources, []);
    c.send({ typeUrl: ENDPOINT, responseNonce: update.nonce });

    cache.setSnapshot("d-update", new Snapshot(serviceResources("echo", [1000])));
    const removal = await c.inbox.next();
    assert.deepEqual(removal.resources, []);
    assert.deepEqual(removal.removedResources, ["other"]);
    c.send({ typeUrl: ENDPOINT, responseNonce: removal.nonce });
    assert.deepEqual(await c.inbox.drain(QUIET_MS), []);
  });

  it("removes a wildcard resource that disappears from the snapshot", async () => {
    cache.setSnapshot("d-wild", new Snapshot(twoClusters(1000, 2000)));
    const c = delta();
    c.send({ node: { id: "d-wild" }, typeUrl: CLUSTER, resourceNamesSubscribe: ["*"] });
    const first = await c.inbox.next();
    assert.equal(first.resources.length, 2);
    c.send({ typeUrl: CLUSTER, responseNonce: first.nonce });
    cache.setSnapshot("d-wild", new Snapshot(serviceResources("echo", [1000])));
    const removal = await c.inbox.next();
    assert.deepEqual(removal.removedResources, ["other"]);
    assert.deepEqual(removal.resources, []);
  });

  it("honours initial_resource_versions: unchanged resources are not resent", async () => {
    cache.setSnapshot("d-resume", new Snapshot(twoClusters(1000, 2000)));
    const snap = cache.getSnapshot("d-resume") as Snapshot;
    const c = delta();
    c.send({
      node: { id: "d-resume" },
      typeUrl: CLUSTER,
      initialResourceVersions: {
        "echo-cluster": snap.get(CLUSTER, "echo-cluster")?.version as string, // current
        other: "0000000000000000", // outdated
        gone: "1111111111111111", // no longer exists
      },
    });
    const res = await c.inbox.next();
    assert.deepEqual(
      res.resources.map((r) => r.name),
      ["other"],
    );
    assert.deepEqual(res.removedResources, ["gone"]);
  });

  it("subscribes and unsubscribes names, reporting names that do not exist as removed", async () => {
    cache.setSnapshot("d-names", new Snapshot(twoClusters(1000, 2000)));
    const c = delta();
    c.send({ node: { id: "d-names" }, typeUrl: ENDPOINT, resourceNamesSubscribe: ["echo-cluster", "nope"] });
    const first = await c.inbox.next();
    assert.deepEqual(
      first.resources.map((r) => r.name),
      ["echo-cluster"],
    );
    assert.deepEqual(first.removedResources, ["nope"]);
    c.send({ typeUrl: ENDPOINT, responseNonce: first.nonce });
    // A new subscription is answered with just the new resource.
    c.send({ typeUrl: ENDPOINT, resourceNamesSubscribe: ["other"] });
    const second = await c.inbox.next();
    assert.deepEqual(
      second.resources.map((r) => r.name),
      ["other"],
    );
    c.send({ typeUrl: ENDPOINT, responseNonce: second.nonce });
    // Unsubscribing needs no response, and changes to that resource are no longer sent.
    c.send({ typeUrl: ENDPOINT, resourceNamesUnsubscribe: ["other"] });
    cache.setSnapshot("d-names", new Snapshot(twoClusters(1000, 2001)));
    assert.deepEqual(await c.inbox.drain(QUIET_MS), []);
    assert.deepEqual(server.status().find((s) => s.nodeId === "d-names")?.types[ENDPOINT]?.subscribed, [
      "echo-cluster",
      "nope",
    ]);
  });

  it("re-sends a resource unsubscribed by name while the wildcard still covers it", async () => {
    cache.setSnapshot("d-recheck", new Snapshot(twoClusters(1000, 2000)));
    const c = delta();
    c.send({ node: { id: "d-recheck" }, typeUrl: CLUSTER, resourceNamesSubscribe: ["*", "other", "ghost"] });
    const first = await c.inbox.next();
    assert.deepEqual(
      first.resources.map((r) => r.name),
      ["echo-cluster", "other"],
    );
    assert.deepEqual(first.removedResources, ["ghost"]);
    c.send({ typeUrl: CLUSTER, responseNonce: first.nonce });
    c.send({ typeUrl: CLUSTER, resourceNamesUnsubscribe: ["other", "ghost"] });
    const second = await c.inbox.next();
    assert.deepEqual(
      second.resources.map((r) => r.name),
      ["other"],
      "still covered by the wildcard",
    );
    assert.deepEqual(second.removedResources, ["ghost"], "not covered by the wildcard");
  });

  it("records a NACK and does not resend the rejected resources", async () => {
    cache.setSnapshot("d-nack", new Snapshot(twoClusters(1000, 2000)));
    const c = delta();
    c.send({ node: { id: "d-nack" }, typeUrl: CLUSTER });
    const res = await c.inbox.next();
    const nacked = new Promise<string>((resolve) => server.once("nack", (_n, _t, _v, m) => resolve(m)));
    c.send({ typeUrl: CLUSTER, responseNonce: res.nonce, errorDetail: { code: 3, message: "rejected" } });
    assert.equal(await nacked, "rejected");
    assert.deepEqual(await c.inbox.drain(QUIET_MS), []);
    assert.equal(
      server.status().find((s) => s.nodeId === "d-nack")?.types[CLUSTER]?.lastNack?.version,
      res.systemVersionInfo,
    );
  });
});

describe("AdsServer lifecycle", () => {
  it("validates options and reports a bind failure with a code", async () => {
    assert.throws(
      () => new AdsServer({} as never),
      (e: unknown) => e instanceof SkeinError && e.code === XdsCodes.OPTION,
    );
    const other = new AdsServer({ cache: new SnapshotCache(), address: `127.0.0.1:${port}` });
    grpc.setLogVerbosity(grpc.logVerbosity.NONE); // grpc-js logs the failed bind itself
    try {
      await assert.rejects(
        other.listen(),
        (e: unknown) => e instanceof SkeinError && e.code === XdsCodes.BIND,
      );
    } finally {
      grpc.setLogVerbosity(grpc.logVerbosity.ERROR);
    }
    await other.close();
  });

  it("ends open streams with UNAVAILABLE on close", async () => {
    const localCache = new SnapshotCache();
    const local = new AdsServer({ cache: localCache, address: "127.0.0.1:0" });
    const localPort = await local.listen();
    localCache.setSnapshot("n", new Snapshot(serviceResources("echo", [1000])));
    const c = sotwClient(localPort);
    c.send({ node: { id: "n" }, typeUrl: LISTENER });
    await c.inbox.next();
    await local.close();
    assert.equal((await c.inbox.closed()).code, grpc.status.UNAVAILABLE);
    c.close();
  });
});
