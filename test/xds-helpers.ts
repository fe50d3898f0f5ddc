// Shared by the xDS tests: hand-built Envoy resources for a one-service mesh and a raw ADS client that
// queues what the server sends, so tests can assert on each response (or on the absence of one).
import type * as grpc from "@grpc/grpc-js";
import type { Cluster } from "../src/xds/generated/envoy/config/cluster/v3/Cluster.js";
import type { ClusterLoadAssignment } from "../src/xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js";
import type { Listener } from "../src/xds/generated/envoy/config/listener/v3/Listener.js";
import type { RouteConfiguration } from "../src/xds/generated/envoy/config/route/v3/RouteConfiguration.js";
import type { AggregatedDiscoveryServiceClient } from "../src/xds/generated/envoy/service/discovery/v3/AggregatedDiscoveryService.js";
import type { DeltaDiscoveryRequest } from "../src/xds/generated/envoy/service/discovery/v3/DeltaDiscoveryRequest.js";
import type { DeltaDiscoveryResponse__Output } from "../src/xds/generated/envoy/service/discovery/v3/DeltaDiscoveryResponse.js";
import type { DiscoveryRequest } from "../src/xds/generated/envoy/service/discovery/v3/DiscoveryRequest.js";
import type { DiscoveryResponse__Output } from "../src/xds/generated/envoy/service/discovery/v3/DiscoveryResponse.js";
import {
  CLUSTER,
  createAdsClient,
  ENDPOINT,
  HTTP_CONNECTION_MANAGER,
  LISTENER,
  pack,
  ROUTE,
} from "../src/xds/protos.js";
import type { Resources } from "../src/xds/snapshot.js";

export const ROUTER = "envoy.extensions.filters.http.router.v3.Router";

/** An api_listener Listener (what proxyless gRPC subscribes to) whose HttpConnectionManager uses RDS. */
export function apiListener(name: string, routeName: string): Listener {
  return {
    name,
    apiListener: {
      apiListener: pack(HTTP_CONNECTION_MANAGER, {
        rds: { routeConfigName: routeName, configSource: { ads: {} } },
        httpFilters: [{ name: "router", typedConfig: pack(ROUTER, {}) }],
      }),
    },
  };
}

export function route(name: string, cluster: string, domains: string[] = ["*"]): RouteConfiguration {
  return {
    name,
    virtualHosts: [{ name: `${name}-vh`, domains, routes: [{ match: { prefix: "" }, route: { cluster } }] }],
  };
}

export function edsCluster(name: string, serviceName?: string): Cluster {
  return {
    name,
    type: "EDS",
    lbPolicy: "ROUND_ROBIN",
    edsClusterConfig: { edsConfig: { ads: {} }, ...(serviceName ? { serviceName } : {}) },
    connectTimeout: { seconds: 1 },
  };
}

export function endpoints(
  clusterName: string,
  ports: number[],
  address = "127.0.0.1",
): ClusterLoadAssignment {
  return {
    clusterName,
    endpoints: [
      {
        locality: { region: "local", zone: "a" },
        // grpc-js-xds ignores localities without a weight.
        loadBalancingWeight: { value: 1 },
        lbEndpoints: ports.map((portValue) => ({
          endpoint: { address: { socketAddress: { address, portValue } } },
        })),
      },
    ],
  };
}

/** listener → route → EDS cluster → endpoints, all named after `service`. */
export function serviceResources(service: string, ports: number[], listenerName = service): Resources {
  return {
    [LISTENER]: new Map([[listenerName, apiListener(listenerName, `${service}-route`)]]),
    [ROUTE]: new Map([[`${service}-route`, route(`${service}-route`, `${service}-cluster`)]]),
    [CLUSTER]: new Map([[`${service}-cluster`, edsCluster(`${service}-cluster`)]]),
    [ENDPOINT]: new Map([[`${service}-cluster`, endpoints(`${service}-cluster`, ports)]]),
  };
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Queues the messages of a duplex stream; next() waits for one, drain(ms) returns what came in ms. */
export class Inbox<T> {
  private readonly queue: T[] = [];
  private waiter: (() => void) | undefined;
  status: grpc.StatusObject | undefined;
  error: (Error & { code?: number }) | undefined;
  ended = false;

  constructor(stream: NodeJS.EventEmitter) {
    stream.on("data", (m: T) => {
      this.queue.push(m);
      this.waiter?.();
    });
    stream.on("status", (s: grpc.StatusObject) => {
      this.status = s;
      this.waiter?.();
    });
    stream.on("error", (e: Error) => {
      this.error = e;
      this.waiter?.();
    });
    stream.on("end", () => {
      this.ended = true;
      this.waiter?.();
    });
  }

  async next(timeoutMs = 3000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      if (this.error) throw this.error;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift() as T;
  }

  /** Everything that arrives within `ms` (and was already queued). */
  async drain(ms: number): Promise<T[]> {
    await delay(ms);
    return this.queue.splice(0);
  }

  /** Waits until the call has a final status. */
  async closed(timeoutMs = 3000): Promise<grpc.StatusObject> {
    const deadline = Date.now() + timeoutMs;
    while (!this.status) {
      if (Date.now() > deadline) throw new Error(`stream not closed within ${timeoutMs} ms`);
      await delay(10);
    }
    return this.status;
  }
}

export interface SotwClient {
  client: AggregatedDiscoveryServiceClient;
  stream: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse__Output>;
  inbox: Inbox<DiscoveryResponse__Output>;
  send(req: DiscoveryRequest): void;
  close(): void;
}

export function sotwClient(port: number): SotwClient {
  const client = createAdsClient(`127.0.0.1:${port}`);
  const stream = client.StreamAggregatedResources();
  const inbox = new Inbox<DiscoveryResponse__Output>(stream);
  return {
    client,
    stream,
    inbox,
    send: (req) => stream.write(req),
    close: () => {
      stream.cancel();
      client.close();
    },
  };
}

export interface DeltaClient {
  client: AggregatedDiscoveryServiceClient;
  stream: grpc.ClientDuplexStream<DeltaDiscoveryRequest, DeltaDiscoveryResponse__Output>;
  inbox: Inbox<DeltaDiscoveryResponse__Output>;
  send(req: DeltaDiscoveryRequest): void;
  close(): void;
}

export function deltaClient(port: number): DeltaClient {
  const client = createAdsClient(`127.0.0.1:${port}`);
  const stream = client.DeltaAggregatedResources();
  const inbox = new Inbox<DeltaDiscoveryResponse__Output>(stream);
  return {
    client,
    stream,
    inbox,
    send: (req) => stream.write(req),
    close: () => {
      stream.cancel();
      client.close();
    },
  };
}
