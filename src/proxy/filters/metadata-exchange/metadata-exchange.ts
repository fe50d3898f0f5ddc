// Istio's HTTP peer-metadata exchange (istio.metadata_exchange, config io.istio.http.peer_metadata.Config):
// sidecars tell each other which workload they front, in x-envoy-peer-metadata(-id) headers, so metrics
// can name both ends. Outbound, the filter adds this workload's metadata to the request and reads the
// answering sidecar's from the response; inbound, it reads the caller's from the request and adds its own
// to the response. The peer's headers are always removed before the application (or the downstream) sees
// them, and are believed only when they came over mutual TLS from the identity they claim: over plaintext
// anyone can write a header, so a forged one must not name a source in the metrics.
import type { PeerMetadataConfig } from "../../config/types.js";
import type { LocalNode } from "../../node.js";
import { Continue, type FilterContext, type FilterStatus, type StreamFilter } from "../../router/chain.js";
import type { DownstreamRequest } from "../../router/downstream.js";
import { first, type HeaderRecord } from "../../router/headers.js";
import {
  encodePeerMetadata,
  PEER_METADATA_HEADER,
  PEER_METADATA_ID_HEADER,
  type PeerMetadata,
  PeerMetadataCache,
} from "../../telemetry/peer-metadata.js";

export const PEER_METADATA_FILTER = "istio.metadata_exchange";

/** The filter factory (one cache of decoded peers per chain). */
export function createPeerMetadataFilter(config: unknown, _name: string, ctx: FilterContext): StreamFilter {
  return new PeerMetadataFilter(config as PeerMetadataConfig, ctx.node);
}

/**
 * A peer's metadata is believed only when it agrees with the SPIFFE identity its certificate proved
 * (`spiffe://<td>/ns/<namespace>/sa/<service account>`): a workload with a valid certificate still cannot
 * claim to be another namespace's or service account's.
 */
export function matchesPrincipal(peer: PeerMetadata, principal: string): boolean {
  const m = /^spiffe:\/\/[^/]+\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
  return m !== null && m[1] === peer.namespace && m[2] === peer.serviceAccount;
}

export class PeerMetadataFilter implements StreamFilter {
  private readonly id: string;
  private readonly metadata: string;
  private readonly cache = new PeerMetadataCache();

  constructor(
    private readonly config: PeerMetadataConfig,
    node: LocalNode,
  ) {
    this.id = node.id;
    // Encoded once per chain: the same bytes go on every request.
    this.metadata = encodePeerMetadata(node);
  }

  decodeHeaders(req: DownstreamRequest): FilterStatus {
    // node:http and node:http2 hand over plain objects; removing in place avoids a copy per request.
    const headers = req.headers as Record<string, string | string[] | undefined>;
    const value = headers[PEER_METADATA_HEADER];
    const id = headers[PEER_METADATA_ID_HEADER];
    if (value !== undefined || id !== undefined) {
      delete headers[PEER_METADATA_HEADER];
      delete headers[PEER_METADATA_ID_HEADER];
    }
    const principal = req.connection?.peerPrincipal;
    if (this.config.downstreamDiscovery && principal !== undefined)
      req.info.peer = this.trusted(first(value), first(id), principal);
    if (this.config.upstreamPropagation) {
      headers[PEER_METADATA_ID_HEADER] = this.id;
      headers[PEER_METADATA_HEADER] = this.metadata;
    }
    return Continue;
  }

  encodeHeaders(req: DownstreamRequest, _status: number, headers: HeaderRecord): void {
    const value = headers[PEER_METADATA_HEADER];
    const id = headers[PEER_METADATA_ID_HEADER];
    if (value !== undefined || id !== undefined) {
      delete headers[PEER_METADATA_HEADER];
      delete headers[PEER_METADATA_ID_HEADER];
    }
    const principal = req.info.upstreamPeerPrincipal;
    if (this.config.upstreamDiscovery && principal !== undefined)
      req.info.peer = this.trusted(first(value), first(id), principal);
    if (this.config.downstreamPropagation) {
      headers[PEER_METADATA_ID_HEADER] = this.id;
      headers[PEER_METADATA_HEADER] = this.metadata;
    }
  }

  private trusted(
    value: string | undefined,
    id: string | undefined,
    principal: string,
  ): PeerMetadata | undefined {
    const peer = this.cache.get(value, id);
    return peer !== undefined && matchesPrincipal(peer, principal) ? peer : undefined;
  }
}
