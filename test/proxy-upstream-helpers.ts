// Shared pieces of the upstream tests: cluster and endpoint configs with Envoy's defaults, servers on
// 127.0.0.1 on ephemeral ports, and requests in the shape the router hands to the upstream layer.
import type { Server } from "node:http";
import type { Http2Server } from "node:http2";
import type { AddressInfo, Server as NetServer } from "node:net";
import type { Cluster, Endpoint, EndpointSet } from "../src/proxy/config/types.js";
import type { SkeinClusterManager } from "../src/proxy/upstream/cluster-manager.js";
import type { UpstreamRequest } from "../src/proxy/upstream/types.js";

export function cluster(name: string, overrides: Partial<Cluster> = {}): Cluster {
  return {
    name,
    type: "EDS",
    edsServiceName: name,
    lbPolicy: "ROUND_ROBIN",
    connectTimeoutMs: 1000,
    http2: false,
    useDownstreamProtocol: false,
    maxRequestsPerConnection: 0,
    idleTimeoutMs: 3_600_000,
    circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
    panicThreshold: 50,
    ...overrides,
  };
}

export function endpoint(port: number, weight = 1, address = "127.0.0.1", healthy = true): Endpoint {
  return { address, port, weight, healthy, locality: "", priority: 0 };
}

/** Applies one cluster with its EDS endpoints. */
export function apply(cm: SkeinClusterManager, c: Cluster, endpoints: Endpoint[]): void {
  const eds = new Map<string, EndpointSet>([
    [c.edsServiceName, { clusterName: c.edsServiceName, endpoints }],
  ]);
  cm.update(new Map([[c.name, c]]), eds);
}

export async function listen(server: Server | Http2Server | NetServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

export function close(server: Server | Http2Server | NetServer): Promise<void> {
  (server as Server).closeAllConnections?.();
  return new Promise((resolve) => server.close(() => resolve()));
}

export function req(overrides: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return {
    method: "GET",
    path: "/",
    authority: "svc.local",
    scheme: "http",
    headers: {},
    body: null,
    signal: new AbortController().signal,
    http2: false,
    ...overrides,
  };
}

export async function readAll(body: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A port nothing listens on: bind one, note it, close it. */
export async function deadPort(): Promise<number> {
  const { createServer } = await import("node:net");
  const s = createServer();
  const port = await listen(s);
  await close(s);
  return port;
}
