// The benchmark's origin server: reads a request body and answers 1 KiB, over HTTP/1.1, h2c and gRPC
// (unary /skein.bench.Echo/Echo with raw bytes). Run as its own process by the harness (it prints its
// ports as one JSON line), or in-process by the smoke test.
import { createServer as createHttpServer, type Server } from "node:http";
import { createServer as createHttp2Server, type Http2Server } from "node:http2";
import * as grpc from "@grpc/grpc-js";

export const PAYLOAD_BYTES = 1024;
export const RESPONSE = Buffer.alloc(PAYLOAD_BYTES, "r");
export const GRPC_METHOD = "/skein.bench.Echo/Echo";

const identity = (b: Buffer) => b;

/** A gRPC service definition over raw bytes, so no .proto is needed on either side. */
export const echoService: grpc.ServiceDefinition = {
  Echo: {
    path: GRPC_METHOD,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

export interface Origin {
  http1: number;
  h2c: number;
  grpc: number;
  close(): Promise<void>;
}

export async function startOrigin(host = "127.0.0.1"): Promise<Origin> {
  const h1: Server = createHttpServer({ keepAliveTimeout: 60_000, noDelay: true }, (req, res) => {
    req.on("data", () => undefined);
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": PAYLOAD_BYTES });
      res.end(RESPONSE);
    });
  });
  const h2: Http2Server = createHttp2Server((req, res) => {
    req.on("data", () => undefined);
    req.on("end", () => {
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": PAYLOAD_BYTES });
      res.end(RESPONSE);
    });
  });
  const g = new grpc.Server();
  g.addService(echoService, {
    Echo: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, RESPONSE),
  });
  const listen = (s: Server | Http2Server) =>
    new Promise<number>((resolve) =>
      s.listen(0, host, () => resolve((s.address() as { port: number }).port)),
    );
  const http1 = await listen(h1);
  const h2c = await listen(h2);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    g.bindAsync(`${host}:0`, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  return {
    http1,
    h2c,
    grpc: grpcPort,
    close: async () => {
      h1.closeAllConnections();
      await new Promise((r) => h1.close(r));
      await new Promise((r) => h2.close(r));
      g.forceShutdown();
    },
  };
}

// As a process: print the ports, serve until SIGTERM.
if (import.meta.url === `file://${process.argv[1]}`) {
  const origin = await startOrigin(process.argv[2] ?? "127.0.0.1");
  process.stdout.write(`${JSON.stringify({ http1: origin.http1, h2c: origin.h2c, grpc: origin.grpc })}\n`);
  process.once("SIGTERM", () => void origin.close().then(() => process.exit(0)));
}
