// A simulated Envoy for control-plane benchmarks: one SotW ADS stream on its own connection that
// subscribes to everything (wildcard LDS/CDS, `*` for EDS/RDS) and ACKs each response as soon as it
// arrives. Unlike test/sim-proxy.ts it decodes only the envelope of a DiscoveryResponse (version, type,
// nonce, resource count), so a thousand of them in one process measure the control plane, not protobuf
// decoding in the client.
import * as grpc from "@grpc/grpc-js";
import { CLUSTER, ENDPOINT, encode, jsonToStruct, LISTENER, ROUTE } from "../src/xds/protos.js";

const ADS_METHOD = "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
const REQUEST = "envoy.service.discovery.v3.DiscoveryRequest";

export interface Envelope {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: number;
}

/** Reads DiscoveryResponse's top-level fields (1 version_info, 2 resources, 4 type_url, 5 nonce). */
export function parseEnvelope(b: Buffer): Envelope {
  const out: Envelope = { versionInfo: "", typeUrl: "", nonce: "", resources: 0 };
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const byte = b[i++] as number;
      v += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return v;
      shift += 7;
    }
  };
  while (i < b.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      varint();
      continue;
    }
    if (wire === 5) {
      i += 4;
      continue;
    }
    if (wire === 1) {
      i += 8;
      continue;
    }
    if (wire !== 2) throw new Error(`unexpected wire type ${wire}`);
    const len = varint();
    if (field === 1) out.versionInfo = b.toString("utf8", i, i + len);
    else if (field === 2) out.resources++;
    else if (field === 4) out.typeUrl = b.toString("utf8", i, i + len);
    else if (field === 5) out.nonce = b.toString("utf8", i, i + len);
    i += len;
  }
  return out;
}

const wildcard = (typeUrl: string) => (typeUrl === ENDPOINT || typeUrl === ROUTE ? ["*"] : []);

export class SimulatedProxy {
  readonly versions = new Map<string, string>();
  /** When each type last changed version (performance.now() milliseconds). */
  readonly changedAt = new Map<string, number>();
  private readonly client: grpc.Client;
  private readonly stream: grpc.ClientDuplexStream<Buffer, Envelope>;

  constructor(
    xds: string,
    readonly nodeId: string,
    metadata: Record<string, unknown>,
  ) {
    this.client = new grpc.Client(xds, grpc.credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
      "grpc.max_receive_message_length": -1,
    });
    this.stream = this.client.makeBidiStreamRequest(
      ADS_METHOD,
      (b: Buffer) => b,
      parseEnvelope,
    ) as grpc.ClientDuplexStream<Buffer, Envelope>;
    this.stream.on("data", (r: Envelope) => this.onResponse(r));
    this.stream.on("error", () => undefined);
    const node = {
      id: nodeId,
      cluster: "sim",
      metadata: jsonToStruct(metadata as Parameters<typeof jsonToStruct>[0]),
    };
    for (const typeUrl of [CLUSTER, ENDPOINT, LISTENER, ROUTE])
      this.stream.write(encode(REQUEST, { node, typeUrl, resourceNames: wildcard(typeUrl) }));
  }

  private onResponse(r: Envelope): void {
    if (this.versions.get(r.typeUrl) !== r.versionInfo) this.changedAt.set(r.typeUrl, performance.now());
    this.versions.set(r.typeUrl, r.versionInfo);
    this.stream.write(
      encode(REQUEST, {
        typeUrl: r.typeUrl,
        versionInfo: r.versionInfo,
        responseNonce: r.nonce,
        resourceNames: wildcard(r.typeUrl),
      }),
    );
  }

  close(): void {
    this.stream.cancel();
    this.client.close();
  }
}
