// The ADS server: serves SnapshotCache contents to Envoy and proxyless gRPC clients over the
// AggregatedDiscoveryService, both state of the world (StreamAggregatedResources) and incremental
// (DeltaAggregatedResources). It holds per-stream protocol state only; what to serve comes from the cache.
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { SkeinError } from "../lib/diagnostics.js";
import { XdsCodes } from "./codes.js";
import type { Node__Output } from "./generated/envoy/config/core/v3/Node.js";
import type { DeltaDiscoveryRequest__Output } from "./generated/envoy/service/discovery/v3/DeltaDiscoveryRequest.js";
import type { DeltaDiscoveryResponse } from "./generated/envoy/service/discovery/v3/DeltaDiscoveryResponse.js";
import type { DiscoveryRequest__Output } from "./generated/envoy/service/discovery/v3/DiscoveryRequest.js";
import type { DiscoveryResponse } from "./generated/envoy/service/discovery/v3/DiscoveryResponse.js";
import type { Status__Output } from "./generated/google/rpc/Status.js";
import {
  adsServiceDefinition,
  CLUSTER,
  ENDPOINT,
  type JsonObject,
  LISTENER,
  ROUTE,
  SECRET,
  structToJson,
} from "./protos.js";
import type { Snapshot, SnapshotCache, SnapshotResource } from "./snapshot.js";

/** What a server call knows of its transport (grpc-js exports the type only from the call's signature). */
type AuthContext = ReturnType<grpc.ServerDuplexStream<unknown, unknown>["getAuthContext"]>;

/** The control plane's plaintext xDS address (DESIGN.md, well-known ports). */
export const DEFAULT_ADS_ADDRESS = "127.0.0.1:15010";

/** Who is on the other end of a stream: the Envoy Node from its first request. */
export interface NodeInfo {
  id: string;
  cluster: string;
  /** node.metadata (a google.protobuf.Struct) as plain JSON. */
  metadata: JsonObject;
  locality: { region: string; zone: string; subZone: string };
  userAgentName: string;
  userAgentVersion: string;
  clientFeatures: string[];
}

export interface NackRecord {
  /** The version the client rejected. */
  version: string;
  nonce: string;
  message: string;
  /** google.rpc.Status code the client gave. */
  code: number;
  at: Date;
}

export interface TypeStatus {
  /** `*` when subscribed by wildcard, plus any names subscribed explicitly. */
  subscribed: string[];
  sentVersion?: string;
  sentNonce?: string;
  ackedVersion?: string;
  lastNack?: NackRecord;
  /** A response is out and its ACK/NACK has not arrived. */
  awaitingAck: boolean;
}

export interface StreamStatus {
  streamId: number;
  nodeId: string;
  node: NodeInfo;
  protocol: "sotw" | "delta";
  peer: string;
  openedAt: Date;
  types: Record<string, TypeStatus>;
}

/** Events for the control plane (registry, metrics, dashboard). Listener errors are reported, never fatal. */
export interface AdsServerEvents {
  streamOpened: [nodeId: string, node: NodeInfo, streamId: number];
  streamClosed: [nodeId: string, streamId: number];
  ack: [nodeId: string, typeUrl: string, version: string];
  nack: [nodeId: string, typeUrl: string, version: string, message: string];
  pushed: [nodeId: string, typeUrl: string, version: string, count: number];
  /** A stream was ended because of a malformed request (nodeId is undefined before the first valid one). */
  streamError: [nodeId: string | undefined, message: string];
}

export interface AdsServerOptions {
  cache: SnapshotCache;
  /** A server to add the ADS service to (the caller may also bind it); one is created when absent. */
  server?: grpc.Server;
  /** What listen() binds: host:port. Default 127.0.0.1:15010; port 0 picks a free one. */
  address?: string;
  /** Default: insecure (plaintext), for loopback. */
  credentials?: grpc.ServerCredentials;
  /**
   * Checks a stream's node against how the stream was secured (the client certificate of a TLS stream). Returns
   * why the node may not use the stream, which then ends with PERMISSION_DENIED; undefined to let it in.
   */
  authenticate?: (node: NodeInfo, auth: AuthContext) => string | undefined;
}

// LDS and CDS are the types where an empty first subscription means "everything for this node".
const WILDCARD_TYPES = new Set([LISTENER, CLUSTER]);
// Make before break: secrets and clusters before endpoints, listeners before routes, then anything else.
const TYPE_ORDER = [SECRET, CLUSTER, ENDPOINT, LISTENER, ROUTE];

function ordered(typeUrls: Iterable<string>): string[] {
  const rank = (t: string) => {
    const i = TYPE_ORDER.indexOf(t);
    return i < 0 ? TYPE_ORDER.length : i;
  };
  return [...typeUrls].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** A request the protocol does not allow: the stream ends with INVALID_ARGUMENT. */
class ProtocolError extends Error {}
class AuthenticationError extends Error {}

function nodeInfo(node: Node__Output): NodeInfo {
  return {
    id: node.id,
    cluster: node.cluster ?? "",
    metadata: structToJson(node.metadata),
    locality: {
      region: node.locality?.region ?? "",
      zone: node.locality?.zone ?? "",
      subZone: node.locality?.subZone ?? "",
    },
    userAgentName: node.userAgentName ?? "",
    userAgentVersion: node.userAgentVersion ?? "",
    clientFeatures: [...(node.clientFeatures ?? [])],
  };
}

function nackOf(status: Status__Output, version: string, nonce: string): NackRecord {
  return { version, nonce, message: status.message ?? "", code: status.code ?? 0, at: new Date() };
}

/** What streams need from the server that owns them. */
interface StreamHost {
  readonly cache: SnapshotCache;
  nextNonce(): string;
  report<K extends keyof AdsServerEvents>(event: K, ...args: AdsServerEvents[K]): void;
  authenticate?: (node: NodeInfo, auth: AuthContext) => string | undefined;
  opened(stream: AdsStream): void;
  closed(stream: AdsStream): void;
}

abstract class AdsStream {
  node: NodeInfo | undefined;
  readonly openedAt = new Date();
  private scheduled = false;
  private blocked = false;
  private closed = false;
  private unwatch: (() => void) | undefined;

  constructor(
    readonly id: number,
    protected readonly host: StreamHost,
    // biome-ignore lint/suspicious/noExplicitAny: the two stream kinds carry different message types
    protected readonly call: grpc.ServerDuplexStream<any, any>,
  ) {
    call.on("data", (req) => this.receive(req));
    call.on("end", () => this.close(true)); // client half-closed: finish our side too
    call.on("cancelled", () => this.close(false));
    call.on("error", () => this.close(false));
    call.on("close", () => this.close(false));
  }

  abstract readonly protocol: "sotw" | "delta";
  protected abstract handle(req: unknown): void;
  protected abstract flush(snapshot: Snapshot): void;
  abstract typeStatus(): Record<string, TypeStatus>;

  get nodeId(): string | undefined {
    return this.node?.id;
  }

  get peer(): string {
    try {
      return this.call.getPeer();
    } catch {
      return "";
    }
  }

  private receive(req: unknown): void {
    if (this.closed) return;
    try {
      this.handle(req);
    } catch (e) {
      const code =
        e instanceof ProtocolError
          ? grpc.status.INVALID_ARGUMENT
          : e instanceof AuthenticationError
            ? grpc.status.PERMISSION_DENIED
            : grpc.status.INTERNAL;
      this.fail(code, (e as Error).message);
    }
  }

  /** The node comes with the first request; later requests may omit it but may not change it. */
  protected identify(node: Node__Output | null | undefined): void {
    if (this.node === undefined) {
      if (!node?.id) throw new ProtocolError("the first request on an xDS stream must carry node.id");
      const info = nodeInfo(node);
      const refused = this.host.authenticate?.(info, this.call.getAuthContext());
      if (refused !== undefined) throw new AuthenticationError(refused);
      this.node = info;
      // Watch before announcing, so a snapshot set from a streamOpened listener is not missed.
      this.unwatch = this.host.cache.watch(node.id, () => this.schedule());
      this.host.opened(this);
      return;
    }
    if (node?.id && node.id !== this.node.id) {
      throw new ProtocolError(`node.id changed from "${this.node.id}" to "${node.id}" on one stream`);
    }
  }

  /** Runs flush() once per event-loop turn however many requests and snapshot changes arrive. */
  protected schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (this.closed || this.blocked || !this.node) return;
      const snapshot = this.host.cache.getSnapshot(this.node.id);
      if (!snapshot) return; // a node without a snapshot waits until one is set
      try {
        this.flush(snapshot);
      } catch (e) {
        this.fail(grpc.status.INTERNAL, (e as Error).message);
      }
    });
  }

  /**
   * Writes one response. When the transport's buffer is full, stop and wait for 'drain': responses are
   * computed from the latest snapshot when flushing resumes, so a slow stream gets coalesced updates,
   * never an unbounded queue.
   */
  protected write(message: DiscoveryResponse | DeltaDiscoveryResponse): boolean {
    const ok = this.call.write(message);
    if (!ok) {
      this.blocked = true;
      this.call.once("drain", () => {
        this.blocked = false;
        this.schedule();
      });
    }
    return ok;
  }

  /** Ends the stream because of something the client sent (or an internal fault), reporting it. */
  fail(code: grpc.status, message: string): void {
    if (this.closed) return;
    this.host.report("streamError", this.nodeId, message);
    this.end(code, message);
  }

  /** Ends the stream with a status. */
  end(code: grpc.status, message: string): void {
    if (this.closed) return;
    // grpc-js turns an 'error' event on a server stream into the call's final status.
    this.call.emit("error", { code, details: message });
    this.close(false);
  }

  close(endCall: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    if (endCall) {
      try {
        this.call.end();
      } catch {
        // already finished
      }
    }
    this.host.closed(this);
  }

  status(): StreamStatus | undefined {
    if (!this.node) return undefined;
    return {
      streamId: this.id,
      nodeId: this.node.id,
      node: this.node,
      protocol: this.protocol,
      peer: this.peer,
      openedAt: this.openedAt,
      types: this.typeStatus(),
    };
  }
}

// ---- state of the world ------------------------------------------------------------------------------

interface SotwTypeState {
  wildcard: boolean;
  /** Ever sent a non-empty resource_names: from then on an empty list means "nothing", not wildcard. */
  explicit: boolean;
  names: Set<string>;
  /** version_info of the first request, for the reconnect optimisation below. */
  initialClientVersion: string | undefined;
  needsResponse: boolean;
  awaiting: boolean;
  lastNonce: string | undefined;
  sentVersion: string | undefined;
  /** Names and resource versions last sent: a new snapshot that leaves them unchanged sends nothing. */
  sentFingerprint: string | undefined;
  ackedVersion: string | undefined;
  lastNack: NackRecord | undefined;
}

class SotwStream extends AdsStream {
  readonly protocol = "sotw";
  private readonly types = new Map<string, SotwTypeState>();

  protected handle(raw: unknown): void {
    const req = raw as DiscoveryRequest__Output;
    this.identify(req.node);
    const typeUrl = req.typeUrl;
    if (!typeUrl)
      throw new ProtocolError("DiscoveryRequest.type_url is empty; ADS needs it on every request");
    const nodeId = this.nodeId as string;
    let st = this.types.get(typeUrl);
    const nonce = req.responseNonce ?? "";
    // A nonce older than the last response of this type answers a superseded response: ignore the request.
    if (st && nonce !== "" && st.lastNonce !== undefined && nonce !== st.lastNonce) return;
    const isNew = st === undefined;
    if (!st) {
      st = {
        wildcard: false,
        explicit: false,
        names: new Set(),
        initialClientVersion: req.versionInfo || undefined,
        needsResponse: true,
        awaiting: false,
        lastNonce: undefined,
        sentVersion: undefined,
        sentFingerprint: undefined,
        ackedVersion: undefined,
        lastNack: undefined,
      };
      this.types.set(typeUrl, st);
    }
    if (nonce !== "" && nonce === st.lastNonce) {
      st.awaiting = false;
      if (req.errorDetail) {
        // NACK: record it; the same version is not sent again (sentFingerprint stays), only a new one.
        st.lastNack = nackOf(req.errorDetail, st.sentVersion ?? "", nonce);
        this.host.report("nack", nodeId, typeUrl, st.lastNack.version, st.lastNack.message);
      } else {
        st.ackedVersion = req.versionInfo;
        this.host.report("ack", nodeId, typeUrl, req.versionInfo);
      }
    }
    const names = req.resourceNames ?? [];
    const wildcard =
      names.includes("*") || (names.length === 0 && !st.explicit && WILDCARD_TYPES.has(typeUrl));
    if (names.length > 0) st.explicit = true;
    const set = new Set(names.filter((n) => n !== "*"));
    if (isNew || wildcard !== st.wildcard || !sameSet(set, st.names)) {
      st.wildcard = wildcard;
      st.names = set;
      st.needsResponse = true; // a changed subscription is answered even if no version changed
    }
    this.schedule();
  }

  protected flush(snapshot: Snapshot): void {
    const nodeId = this.nodeId as string;
    for (const typeUrl of ordered(this.types.keys())) {
      const st = this.types.get(typeUrl) as SotwTypeState;
      // One response per type in flight: the next one goes out after its ACK/NACK (flow control).
      if (st.awaiting) continue;
      const selected = select(snapshot.resources(typeUrl), st.wildcard, st.names);
      const fingerprint = selected.map((r) => `${r.name}@${r.version}`).join(",");
      const version = snapshot.version(typeUrl);
      if (st.initialClientVersion !== undefined) {
        const had = st.initialClientVersion;
        st.initialClientVersion = undefined;
        // A reconnecting client with only a wildcard subscription that already has this version needs
        // nothing (the xDS spec allows skipping the resend exactly in this case).
        if (st.wildcard && st.names.size === 0 && had === version) {
          st.sentVersion = version;
          st.ackedVersion = version;
          st.sentFingerprint = fingerprint;
          st.needsResponse = false;
          continue;
        }
      }
      if (!st.needsResponse && fingerprint === st.sentFingerprint) continue;
      const nonce = this.host.nextNonce();
      const ok = this.write({
        versionInfo: version,
        resources: selected.map((r) => r.any),
        typeUrl,
        nonce,
      });
      st.lastNonce = nonce;
      st.sentVersion = version;
      st.sentFingerprint = fingerprint;
      st.awaiting = true;
      st.needsResponse = false;
      this.host.report("pushed", nodeId, typeUrl, version, selected.length);
      if (!ok) return;
    }
  }

  typeStatus(): Record<string, TypeStatus> {
    return typeStatusOf(this.types);
  }
}

function select(
  resources: ReadonlyMap<string, SnapshotResource>,
  wildcard: boolean,
  names: ReadonlySet<string>,
): SnapshotResource[] {
  if (wildcard) return [...resources.values()];
  const out: SnapshotResource[] = [];
  for (const name of [...names].sort()) {
    const r = resources.get(name);
    if (r) out.push(r);
  }
  return out;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

// ---- incremental (delta) ---------------------------------------------------------------------------------

interface DeltaTypeState {
  wildcard: boolean;
  names: Set<string>;
  /**
   * What the client has, by name: the resource version, or null when it was told the (explicitly
   * subscribed) resource does not exist. Starts from initial_resource_versions.
   */
  known: Map<string, string | null>;
  /** Names unsubscribed while a wildcard is on: the client must hear whether the wildcard still covers them. */
  recheck: Set<string>;
  needsResponse: boolean;
  awaiting: boolean;
  lastNonce: string | undefined;
  sentVersion: string | undefined;
  ackedVersion: string | undefined;
  lastNack: NackRecord | undefined;
}

class DeltaStream extends AdsStream {
  readonly protocol = "delta";
  private readonly types = new Map<string, DeltaTypeState>();

  protected handle(raw: unknown): void {
    const req = raw as DeltaDiscoveryRequest__Output;
    this.identify(req.node);
    const typeUrl = req.typeUrl;
    if (!typeUrl) {
      throw new ProtocolError("DeltaDiscoveryRequest.type_url is empty; ADS needs it on every request");
    }
    const nodeId = this.nodeId as string;
    let st = this.types.get(typeUrl);
    const first = st === undefined;
    if (!st) {
      st = {
        wildcard: false,
        names: new Set(),
        known: new Map(),
        recheck: new Set(),
        needsResponse: true, // the first request is answered even when there is nothing to send
        awaiting: false,
        lastNonce: undefined,
        sentVersion: undefined,
        ackedVersion: undefined,
        lastNack: undefined,
      };
      this.types.set(typeUrl, st);
    }
    const nonce = req.responseNonce ?? "";
    // Delta nonces pair ACK/NACK with a response; they never make a subscription change stale.
    if (nonce !== "" && nonce === st.lastNonce) {
      st.awaiting = false;
      const version = st.sentVersion ?? "";
      if (req.errorDetail) {
        // The client keeps its previous resources; `known` keeps what was sent, so nothing is resent
        // until the resources change again.
        st.lastNack = nackOf(req.errorDetail, version, nonce);
        this.host.report("nack", nodeId, typeUrl, version, st.lastNack.message);
      } else {
        st.ackedVersion = version;
        this.host.report("ack", nodeId, typeUrl, version);
      }
    }
    const subscribe = req.resourceNamesSubscribe ?? [];
    const unsubscribe = req.resourceNamesUnsubscribe ?? [];
    for (const name of subscribe) {
      if (name === "*") st.wildcard = true;
      else {
        st.names.add(name);
        // A (re)subscribed resource is always sent, even if the server thinks the client has it.
        if (!first) st.known.delete(name);
      }
    }
    for (const name of unsubscribe) {
      if (name === "*") st.wildcard = false;
      else if (st.names.delete(name)) {
        st.known.delete(name);
        if (st.wildcard) st.recheck.add(name);
      }
    }
    if (first) {
      if (subscribe.length === 0 && unsubscribe.length === 0 && WILDCARD_TYPES.has(typeUrl))
        st.wildcard = true;
      for (const [name, version] of Object.entries(req.initialResourceVersions ?? {}))
        st.known.set(name, version);
    }
    this.schedule();
  }

  protected flush(snapshot: Snapshot): void {
    const nodeId = this.nodeId as string;
    for (const typeUrl of ordered(this.types.keys())) {
      const st = this.types.get(typeUrl) as DeltaTypeState;
      if (st.awaiting) continue;
      const resources = snapshot.resources(typeUrl);
      const changed: SnapshotResource[] = [];
      const removed: string[] = [];
      const consider = (name: string) => {
        const r = resources.get(name);
        if (r) {
          if (st.known.get(name) !== r.version) {
            changed.push(r);
            st.known.set(name, r.version);
          }
        } else if (st.known.get(name) !== null) {
          removed.push(name);
          st.known.set(name, null);
        }
      };
      if (st.wildcard) for (const name of resources.keys()) consider(name);
      for (const name of st.names) if (!(st.wildcard && resources.has(name))) consider(name);
      for (const [name, version] of st.known) {
        const explicit = st.names.has(name);
        if (!explicit && !st.wildcard) {
          st.known.delete(name); // unsubscribed: forget quietly (no response needed)
          continue;
        }
        if (resources.has(name)) continue;
        if (version !== null) removed.push(name); // a wildcard resource the snapshot no longer has
        if (explicit) st.known.set(name, null);
        else st.known.delete(name);
      }
      for (const name of st.recheck) {
        if (!resources.has(name) && !removed.includes(name)) removed.push(name);
      }
      st.recheck.clear();
      if (changed.length === 0 && removed.length === 0 && !st.needsResponse) continue;
      const version = snapshot.version(typeUrl);
      const nonce = this.host.nextNonce();
      const ok = this.write({
        systemVersionInfo: version,
        resources: changed.map((r) => ({ name: r.name, version: r.version, resource: r.any })),
        typeUrl,
        removedResources: removed,
        nonce,
      });
      st.lastNonce = nonce;
      st.sentVersion = version;
      st.awaiting = true;
      st.needsResponse = false;
      this.host.report("pushed", nodeId, typeUrl, version, changed.length);
      if (!ok) return;
    }
  }

  typeStatus(): Record<string, TypeStatus> {
    return typeStatusOf(this.types);
  }
}

/** The per-type state both stream kinds keep, as status(). */
function typeStatusOf(
  types: ReadonlyMap<
    string,
    {
      wildcard: boolean;
      names: ReadonlySet<string>;
      sentVersion?: string;
      lastNonce?: string;
      ackedVersion?: string;
      lastNack?: NackRecord;
      awaiting: boolean;
    }
  >,
): Record<string, TypeStatus> {
  const out: Record<string, TypeStatus> = {};
  for (const [typeUrl, st] of types) {
    out[typeUrl] = {
      subscribed: [...(st.wildcard ? ["*"] : []), ...[...st.names].sort()],
      sentVersion: st.sentVersion,
      sentNonce: st.lastNonce,
      ackedVersion: st.ackedVersion,
      lastNack: st.lastNack,
      awaitingAck: st.awaiting,
    };
  }
  return out;
}

// ---- the server ----------------------------------------------------------------------------------------

/**
 * ADS over one grpc.Server. Per stream: node from the first request, per-type subscriptions, a nonce per
 * response, ACK/NACK bookkeeping, stale nonces ignored, subscription changes answered, and pushes only of
 * types whose resources changed for that node. Nodes without a snapshot wait until one is set.
 */
export class AdsServer extends EventEmitter<AdsServerEvents> {
  readonly cache: SnapshotCache;
  readonly grpcServer: grpc.Server;
  private readonly ownsServer: boolean;
  private readonly address: string;
  private readonly credentials: grpc.ServerCredentials;
  private readonly streams = new Set<AdsStream>();
  private nonceCounter = 0;
  private streamCounter = 0;
  private readonly host: StreamHost;

  constructor(options: AdsServerOptions) {
    super();
    if (!options?.cache)
      throw new SkeinError(XdsCodes.OPTION, "AdsServer needs options.cache (a SnapshotCache)");
    this.cache = options.cache;
    this.ownsServer = options.server === undefined;
    this.grpcServer = options.server ?? new grpc.Server();
    this.address = options.address ?? DEFAULT_ADS_ADDRESS;
    this.credentials = options.credentials ?? grpc.ServerCredentials.createInsecure();
    this.host = {
      cache: this.cache,
      nextNonce: () => (++this.nonceCounter).toString(36),
      report: (event, ...args) => this.report(event, ...args),
      authenticate: options.authenticate,
      opened: (s) => this.report("streamOpened", s.node?.id as string, s.node as NodeInfo, s.id),
      closed: (s) => {
        this.streams.delete(s);
        if (s.node) this.report("streamClosed", s.node.id, s.id);
      },
    };
    this.grpcServer.addService(adsServiceDefinition(), {
      StreamAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        this.streams.add(new SotwStream(++this.streamCounter, this.host, call));
      },
      DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        this.streams.add(new DeltaStream(++this.streamCounter, this.host, call));
      },
    });
  }

  /**
   * Binds the configured address (default 127.0.0.1:15010) and resolves to the bound port. May be called again
   * with another address and credentials (xDS over TLS beside plaintext): one server, several ports.
   */
  listen(
    address: string = this.address,
    credentials: grpc.ServerCredentials = this.credentials,
  ): Promise<number> {
    return new Promise((resolve, reject) => {
      this.grpcServer.bindAsync(address, credentials, (err, port) => {
        if (err) {
          reject(
            new SkeinError(
              XdsCodes.BIND,
              `the xDS server cannot listen on ${address}: ${err.message}; is another control plane running there? choose another address`,
            ),
          );
        } else resolve(port);
      });
    });
  }

  /** Connected streams (those whose node is known) and, per type, what was sent, acked and NACKed. */
  status(): StreamStatus[] {
    const out: StreamStatus[] = [];
    for (const s of this.streams) {
      const st = s.status();
      if (st) out.push(st);
    }
    return out.sort((a, b) => a.nodeId.localeCompare(b.nodeId) || a.streamId - b.streamId);
  }

  /**
   * Ends every stream with UNAVAILABLE (clients reconnect elsewhere or later, keeping their config) and,
   * when this server created the grpc.Server, shuts it down.
   */
  async close(): Promise<void> {
    for (const s of [...this.streams]) s.end(grpc.status.UNAVAILABLE, "the xDS server is shutting down");
    if (!this.ownsServer) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.grpcServer.forceShutdown();
        resolve();
      }, 1000);
      timer.unref();
      this.grpcServer.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private report<K extends keyof AdsServerEvents>(event: K, ...args: AdsServerEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: AdsServerEvents[K]) => boolean)(event, ...args);
    } catch (e) {
      // A failing listener must not break the protocol for the proxy.
      process.emitWarning(`AdsServer '${event}' listener threw: ${(e as Error).stack ?? e}`);
    }
  }
}
