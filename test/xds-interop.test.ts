// Interop: a real xDS client we did not write (@grpc/grpc-js-xds) resolves xds:///echo.test:50051 through our
// AdsServer (Listener → RouteConfiguration → EDS Cluster → ClusterLoadAssignment) and a unary call reaches the
// echo server those resources point at. Its own file: grpc-js-xds reads its bootstrap once per process.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { register } from "@grpc/grpc-js-xds";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from "../src/xds/protos.js";
import { AdsServer, type NodeInfo } from "../src/xds/server.js";
import { Snapshot, SnapshotCache } from "../src/xds/snapshot.js";
import { apiListener, delay, edsCluster, endpoints, route } from "./xds-helpers.js";

const TARGET = "echo.test:50051";
const NODE_ID = "skein-interop-client";
const ECHO_PATH = "/skein.test.Echo/Echo";

// A hand-made unary method with JSON bodies, so the echo server needs no .proto file.
const json = {
  serialize: (v: unknown) => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer) => JSON.parse(b.toString()) as { message: string; servedBy?: string },
};
const echoService: grpc.ServiceDefinition = {
  Echo: {
    path: ECHO_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

let echoServer: grpc.Server;
let echoPort: number;
let ads: AdsServer;
const cache = new SnapshotCache();
const acks: string[] = [];
let node: NodeInfo | undefined;

function bind(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
}

before(async () => {
  echoServer = new grpc.Server();
  echoServer.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<{ message: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
      cb(null, { message: call.request.message, servedBy: `127.0.0.1:${echoPort}` }),
  });
  echoPort = await bind(echoServer);

  ads = new AdsServer({ cache, address: "127.0.0.1:0" });
  const adsPort = await ads.listen();
  ads.on("ack", (_n, typeUrl) => acks.push(typeUrl));
  // The control plane's pattern: build the node's snapshot when its stream opens.
  ads.on("streamOpened", (id, info) => {
    node = info;
    cache.setSnapshot(
      id,
      new Snapshot({
        [LISTENER]: new Map([[TARGET, apiListener(TARGET, "echo-route")]]),
        [ROUTE]: new Map([["echo-route", route("echo-route", "echo-cluster", [TARGET])]]),
        [CLUSTER]: new Map([["echo-cluster", edsCluster("echo-cluster")]]),
        [ENDPOINT]: new Map([["echo-cluster", endpoints("echo-cluster", [echoPort])]]),
      }),
    );
  });

  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [
      {
        server_uri: `127.0.0.1:${adsPort}`,
        channel_creds: [{ type: "insecure" }],
        server_features: ["xds_v3"],
      },
    ],
    node: { id: NODE_ID, locality: {} },
  });
  register();
});

after(async () => {
  await ads.close();
  await new Promise<void>((resolve) => echoServer.tryShutdown(() => resolve()));
});

it("a grpc-js-xds client reaches the echo server through our ADS server", async () => {
  const client = new grpc.Client(`xds:///${TARGET}`, grpc.credentials.createInsecure());
  try {
    const reply = await new Promise<{ message: string; servedBy?: string }>((resolve, reject) => {
      client.makeUnaryRequest(
        ECHO_PATH,
        json.serialize,
        json.deserialize,
        { message: "hello through xDS" },
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
        (err, res) => (err || !res ? reject(err) : resolve(res)),
      );
    });
    assert.equal(reply.message, "hello through xDS");
    assert.equal(reply.servedBy, `127.0.0.1:${echoPort}`);
    assert.equal(node?.id, NODE_ID);
    // grpc-js-xds subscribes by name and ACKs every type it was sent (the last ACK may trail the call).
    const types = [LISTENER, ROUTE, CLUSTER, ENDPOINT];
    for (let i = 0; i < 100 && !types.every((t) => acks.includes(t)); i++) await delay(20);
    for (const t of types) assert.ok(acks.includes(t), `ACK for ${t}`);
    const status = ads.status().find((s) => s.nodeId === NODE_ID);
    assert.deepEqual(status?.types[LISTENER]?.subscribed, [TARGET]);
    for (const t of types) {
      assert.equal(status?.types[t]?.ackedVersion, cache.getSnapshot(NODE_ID)?.version(t));
      assert.equal(status?.types[t]?.lastNack, undefined);
    }
  } finally {
    client.close();
  }
});
