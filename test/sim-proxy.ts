// A simulated Envoy for control-plane tests: one SotW ADS stream that subscribes to everything
// (wildcard LDS/CDS, `*` for EDS/RDS), ACKs every response, and records versions with timestamps.
import type { DiscoveryResponse__Output } from "../src/xds/generated/envoy/service/discovery/v3/DiscoveryResponse.js";
import { CLUSTER, ENDPOINT, jsonToStruct, LISTENER, ROUTE } from "../src/xds/protos.js";
import { type SotwClient, sotwClient } from "./xds-helpers.js";

export class SimulatedProxy {
  readonly versions = new Map<string, string>();
  readonly updates: { typeUrl: string; version: string; at: number; count: number }[] = [];
  readonly nacks: string[] = [];
  private readonly c: SotwClient;

  constructor(
    port: number,
    readonly nodeId: string,
    metadata: Record<string, unknown>,
  ) {
    this.c = sotwClient(port);
    const node = {
      id: nodeId,
      cluster: "sim",
      metadata: jsonToStruct(metadata as Parameters<typeof jsonToStruct>[0]),
    };
    this.c.stream.on("data", (r: DiscoveryResponse__Output) => this.onResponse(r));
    this.c.stream.on("error", () => undefined);
    for (const typeUrl of [CLUSTER, ENDPOINT, LISTENER, ROUTE]) {
      this.c.send({ node, typeUrl, resourceNames: typeUrl === ENDPOINT || typeUrl === ROUTE ? ["*"] : [] });
    }
  }

  private onResponse(r: DiscoveryResponse__Output): void {
    this.versions.set(r.typeUrl, r.versionInfo);
    this.updates.push({
      typeUrl: r.typeUrl,
      version: r.versionInfo,
      at: Date.now(),
      count: r.resources.length,
    });
    this.c.send({
      typeUrl: r.typeUrl,
      versionInfo: r.versionInfo,
      responseNonce: r.nonce,
      resourceNames: r.typeUrl === ENDPOINT || r.typeUrl === ROUTE ? ["*"] : [],
    });
  }

  /** Resolves when `pred` holds, polling; rejects after `timeoutMs`. */
  async until(pred: (p: SimulatedProxy) => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this)) {
      if (Date.now() > deadline) throw new Error(`${this.nodeId}: condition not met within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  close(): void {
    this.c.close();
  }
}
