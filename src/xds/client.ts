// The xDS client machinery (state of the world over one ADS stream), for the sidecar: sends the Node,
// subscribes by wildcard (LDS, CDS) or by name (RDS, EDS, as its consumer asks), hands each response to a
// consumer-supplied validator and ACKs or NACKs it, and reconnects with jittered exponential back-off,
// resuming from the versions it accepted. It knows nothing of the mesh: what a resource means is the
// consumer's business.
import { EventEmitter } from "node:events";
import * as grpc from "@grpc/grpc-js";
import { SkeinError } from "../lib/diagnostics.js";
import { XdsCodes } from "./codes.js";
import type { Node } from "./generated/envoy/config/core/v3/Node.js";
import type { DiscoveryRequest } from "./generated/envoy/service/discovery/v3/DiscoveryRequest.js";
import type { DiscoveryResponse__Output } from "./generated/envoy/service/discovery/v3/DiscoveryResponse.js";
import type { Any__Output } from "./generated/google/protobuf/Any.js";
import {
  CLUSTER,
  createAdsClient,
  ENDPOINT,
  fullNameOf,
  type JsonObject,
  jsonToStruct,
  LISTENER,
  ROUTE,
  TYPE_URL_PREFIX,
  unpack,
} from "./protos.js";

/** The identity the client announces (Envoy's Node); user_agent_name is always "skein". */
export interface AdsClientNode {
  /** `sidecar~<ip>~<name>.<namespace>~<namespace>.svc.cluster.local`. */
  id: string;
  cluster?: string;
  /** NAMESPACE, LABELS, SERVICE_ACCOUNT, INSTANCE_IPS, WORKLOAD_NAME, SKEIN_PORTS, ... */
  metadata?: JsonObject;
  locality?: { region?: string; zone?: string; subZone?: string };
  userAgentVersion?: string;
}

export type ValidationResult = { ok: true } | { ok: false; message: string };

/**
 * Called synchronously for every response with its resources decoded (proto-loader's form: camelCase fields,
 * defaults filled, enums and 64-bit integers as strings, nested Anys as {type_url, value}). Returning ok
 * means the consumer has accepted (and applied) them; a NACK must leave the consumer's state unchanged.
 */
export type Validate = (typeUrl: string, resources: object[], version: string) => ValidationResult;

export interface BackoffOptions {
  /** First retry within [0, baseMs); default 200 ms. */
  baseMs?: number;
  /** Cap of the exponential growth; default 15 s. */
  maxMs?: number;
  /** For tests; default Math.random. */
  random?: () => number;
}

export interface AdsClientOptions {
  /** The control plane's xDS address, `host:port` (plaintext). */
  address: string;
  node: AdsClientNode;
  validate: Validate;
  /** Types subscribed by wildcard from the start; default CDS and LDS. Others follow subscribe(). */
  wildcardTypes?: readonly string[];
  backoff?: BackoffOptions;
  /** Extra gRPC channel options (keepalive, message sizes). */
  channelOptions?: grpc.ChannelOptions;
  /**
   * Channel credentials, asked for at every (re)connect so a rotated workload certificate is used from the next
   * connection on; default plaintext. xDS over TLS: `grpc.credentials.createSsl(root, key, chain)`.
   */
  credentials?: () => grpc.ChannelCredentials;
  /** Connect at once (default); false: wait for start() (e.g. until the credentials exist). */
  autoStart?: boolean;
}

export interface NackInfo {
  /** The rejected response's version and nonce. */
  version: string;
  nonce: string;
  message: string;
  at: Date;
}

export interface AdsClientEvents {
  /** The stream's channel is up (or the first response arrived). */
  connected: [];
  /** The stream ended; the next attempt starts in `retryInMs`. The consumer keeps its config meanwhile. */
  disconnected: [reason: string, retryInMs: number];
  /** A response was accepted (after validate said ok), with its resources as decoded. */
  response: [typeUrl: string, version: string, resources: object[]];
  ack: [typeUrl: string, version: string];
  nack: [typeUrl: string, message: string];
  /** Every request written to the stream (for tests and debugging). */
  request: [request: DiscoveryRequest];
}

export interface AdsTypeStatus {
  /** `*` for a wildcard subscription, else the names. */
  subscribed: "*" | string[];
  /** The last accepted version ("" before the first). */
  version: string;
  /** The nonce of the last response on the current stream. */
  nonce?: string;
  lastNack?: NackInfo;
}

export const DEFAULT_BACKOFF = { baseMs: 200, maxMs: 15_000 } as const;
/** Large EDS responses exceed gRPC's 4 MiB default. */
const DEFAULT_MAX_RECEIVE = 64 * 1024 * 1024;
const RESOURCE_WRAPPER = `${TYPE_URL_PREFIX}envoy.service.discovery.v3.Resource`;
// Envoy's order: clusters and their endpoints before the listeners and routes that use them.
const TYPE_ORDER = [CLUSTER, ENDPOINT, LISTENER, ROUTE];
const INVALID_ARGUMENT = 3;

/** Full jitter: a delay in [0, min(max, base · 2^attempt)). */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  maxMs: number,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

interface TypeState {
  wildcard: boolean;
  names: string[];
  version: string;
  lastNack?: NackInfo;
}

interface Stream {
  client: grpc.Client & {
    StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse__Output>;
  };
  call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse__Output>;
  /** Nonces are per stream; versions survive reconnects. */
  nonces: Map<string, string>;
  /** Types a request was written for on this stream. */
  requested: Set<string>;
  sentNode: boolean;
  connected: boolean;
  ended: boolean;
}

class DecodeError extends Error {}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * One ADS stream (state of the world) to the control plane, reopened whenever it ends until close().
 * Per type: the subscription, the last accepted version (sent on reconnect so the server can skip what the
 * client has) and the nonce to answer. A NACK is sent once per rejected response; nothing is re-requested
 * until the server sends something new or the subscription changes.
 */
export class AdsClient extends EventEmitter<AdsClientEvents> {
  private readonly types = new Map<string, TypeState>();
  private readonly node: Node;
  private readonly backoff: Required<BackoffOptions>;
  private stream: Stream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;
  private started = false;

  constructor(private readonly options: AdsClientOptions) {
    super();
    if (!options?.address)
      throw new SkeinError(
        XdsCodes.OPTION,
        "AdsClient needs options.address (host:port of the control plane)",
      );
    if (!options.node?.id) throw new SkeinError(XdsCodes.OPTION, "AdsClient needs options.node.id");
    if (typeof options.validate !== "function")
      throw new SkeinError(
        XdsCodes.OPTION,
        "AdsClient needs options.validate (typeUrl, resources, version) => result",
      );
    const baseMs = options.backoff?.baseMs ?? DEFAULT_BACKOFF.baseMs;
    const maxMs = options.backoff?.maxMs ?? DEFAULT_BACKOFF.maxMs;
    if (!(baseMs > 0) || !(maxMs >= baseMs))
      throw new SkeinError(
        XdsCodes.OPTION,
        `AdsClient back-off needs 0 < baseMs <= maxMs (got ${baseMs}, ${maxMs})`,
      );
    this.backoff = { baseMs, maxMs, random: options.backoff?.random ?? Math.random };
    const n = options.node;
    this.node = {
      id: n.id,
      cluster: n.cluster ?? "",
      metadata: jsonToStruct(n.metadata ?? {}),
      locality: {
        region: n.locality?.region ?? "",
        zone: n.locality?.zone ?? "",
        subZone: n.locality?.subZone ?? "",
      },
      userAgentName: "skein",
      userAgentVersion: n.userAgentVersion ?? "",
    };
    for (const t of options.wildcardTypes ?? [CLUSTER, LISTENER])
      this.types.set(t, { wildcard: true, names: [], version: "" });
    // Next turn, so listeners attached right after construction see every event, the first requests included.
    if (options.autoStart !== false) this.start();
  }

  /** Starts connecting (once); called by the constructor unless `autoStart` is false. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.timer = setTimeout(() => this.connect(), 0);
  }

  /** Whether a stream is up. */
  get connected(): boolean {
    return this.stream?.connected === true;
  }

  /**
   * Sets the names subscribed for a non-wildcard type (RDS, EDS); sends the new subscription when it
   * changed. Names are sent sorted and without duplicates.
   */
  subscribe(typeUrl: string, names: readonly string[]): void {
    if (this.closed) return;
    const next = [...new Set(names)].sort();
    let st = this.types.get(typeUrl);
    if (st?.wildcard)
      throw new SkeinError(XdsCodes.OPTION, `${typeUrl} is subscribed by wildcard; it takes no names`);
    if (st && sameList(st.names, next)) return;
    if (st) st.names = next;
    else {
      st = { wildcard: false, names: next, version: "" };
      this.types.set(typeUrl, st);
    }
    const s = this.stream;
    // An empty list is sent only to drop names the server knows of on this stream.
    if (s && (next.length > 0 || s.requested.has(typeUrl))) this.send(s, typeUrl);
  }

  /** Per type: subscription, accepted version, current nonce, last NACK. */
  status(): Record<string, AdsTypeStatus> {
    const out: Record<string, AdsTypeStatus> = {};
    for (const [typeUrl, st] of this.types) {
      const s: AdsTypeStatus = { subscribed: st.wildcard ? "*" : [...st.names], version: st.version };
      const nonce = this.stream?.nonces.get(typeUrl);
      if (nonce !== undefined) s.nonce = nonce;
      if (st.lastNack) s.lastNack = st.lastNack;
      out[typeUrl] = s;
    }
    return out;
  }

  /** Ends the stream and stops reconnecting. No events follow. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    const s = this.stream;
    this.stream = undefined;
    if (s) {
      s.ended = true;
      s.call.cancel();
      s.client.close();
    }
  }

  private connect(): void {
    this.timer = undefined;
    if (this.closed) return;
    const credentials = this.options.credentials?.() ?? grpc.credentials.createInsecure();
    const client = createAdsClient(this.options.address, credentials, {
      "grpc.max_receive_message_length": DEFAULT_MAX_RECEIVE,
      ...this.options.channelOptions,
    }) as unknown as Stream["client"];
    const call = client.StreamAggregatedResources();
    const s: Stream = {
      client,
      call,
      nonces: new Map(),
      requested: new Set(),
      sentNode: false,
      connected: false,
      ended: false,
    };
    this.stream = s;
    call.on("data", (r: DiscoveryResponse__Output) => this.onResponse(s, r));
    call.on("status", (st: grpc.StatusObject) =>
      this.onEnd(s, `${grpc.status[st.code] ?? st.code}: ${st.details}`),
    );
    // The 'status' event that follows carries the reason; without a listener 'error' would throw.
    call.on("error", () => undefined);
    this.watchReady(s);
    const ordered = [...this.types.keys()].sort((a, b) => rank(a) - rank(b));
    for (const typeUrl of ordered) {
      const st = this.types.get(typeUrl) as TypeState;
      if (st.wildcard || st.names.length > 0) this.send(s, typeUrl);
    }
  }

  /** Emits `connected` once the channel is READY (a server that answers nothing yet is still connected). */
  private watchReady(s: Stream): void {
    const channel = s.client.getChannel();
    const check = () => {
      if (s !== this.stream || s.ended) return;
      let state: grpc.connectivityState;
      try {
        state = channel.getConnectivityState(false);
      } catch {
        return;
      }
      if (state === grpc.connectivityState.READY) return this.markConnected(s);
      try {
        channel.watchConnectivityState(state, Number.POSITIVE_INFINITY, check);
      } catch {
        // The channel was closed: the stream's end is handled by its status event.
      }
    };
    check();
  }

  private markConnected(s: Stream): void {
    if (s.connected) return;
    s.connected = true;
    this.report("connected");
  }

  private send(s: Stream, typeUrl: string, errorDetail?: { code: number; message: string }): void {
    if (s !== this.stream || s.ended) return;
    const st = this.types.get(typeUrl) as TypeState;
    const req: DiscoveryRequest = {
      typeUrl,
      // The last accepted version, also on a new stream: the server may skip what the client has.
      versionInfo: st.version,
      responseNonce: s.nonces.get(typeUrl) ?? "",
      // Wildcard in its legacy form (an empty list), which every server understands.
      resourceNames: st.wildcard ? [] : st.names,
    };
    if (!s.sentNode) {
      req.node = this.node;
      s.sentNode = true;
    }
    if (errorDetail) req.errorDetail = errorDetail;
    s.requested.add(typeUrl);
    try {
      s.call.write(req);
    } catch {
      // The stream is ending; its status event schedules the reconnect.
      return;
    }
    this.report("request", req);
  }

  private decode(typeUrl: string, anys: readonly Any__Output[]): object[] {
    return anys.map((raw, i) => {
      let any = raw as { type_url?: string; typeUrl?: string; value?: Uint8Array };
      let url = any.type_url ?? any.typeUrl ?? "";
      try {
        // Servers may wrap resources in envoy.service.discovery.v3.Resource even in state of the world.
        if (url === RESOURCE_WRAPPER) {
          const wrapper = unpack<{ resource?: typeof any | null }>(any);
          if (!wrapper.resource)
            throw new DecodeError(`resources[${i}]: a Resource wrapper without a resource`);
          any = wrapper.resource;
          url = any.type_url ?? any.typeUrl ?? "";
        }
        if (url !== typeUrl)
          throw new DecodeError(
            `resources[${i}] is a ${url ? fullNameOf(url) : "resource without type"}, not a ${fullNameOf(typeUrl)}`,
          );
        return unpack(any);
      } catch (e) {
        if (e instanceof DecodeError) throw e;
        throw new DecodeError(`resources[${i}]: ${(e as Error).message}`);
      }
    });
  }

  private onResponse(s: Stream, r: DiscoveryResponse__Output): void {
    if (s !== this.stream || s.ended) return;
    // The control plane answers: the next disconnect starts the back-off over.
    this.attempt = 0;
    this.markConnected(s);
    const typeUrl = r.typeUrl;
    const st = this.types.get(typeUrl);
    // As Envoy: a type nobody asked for is ignored, not NACKed.
    if (!st || !s.requested.has(typeUrl)) return;
    let resources: object[] = [];
    let result: ValidationResult;
    try {
      resources = this.decode(typeUrl, r.resources);
      result = this.options.validate(typeUrl, resources, r.versionInfo);
    } catch (e) {
      result = {
        ok: false,
        message: e instanceof DecodeError ? e.message : `validation failed: ${(e as Error).message}`,
      };
    }
    // Recorded after validate: a subscribe() of this type made from inside validate carries the previous
    // nonce, which the server ignores as stale, and the ACK/NACK below carries the new names anyway.
    s.nonces.set(typeUrl, r.nonce);
    if (result.ok) {
      st.version = r.versionInfo;
      this.send(s, typeUrl);
      this.report("response", typeUrl, r.versionInfo, resources);
      this.report("ack", typeUrl, r.versionInfo);
    } else {
      st.lastNack = { version: r.versionInfo, nonce: r.nonce, message: result.message, at: new Date() };
      // version_info stays the last accepted one: that is what the client runs.
      this.send(s, typeUrl, { code: INVALID_ARGUMENT, message: result.message });
      this.report("nack", typeUrl, result.message);
    }
  }

  private onEnd(s: Stream, reason: string): void {
    if (s.ended) return;
    s.ended = true;
    if (s !== this.stream) return;
    this.stream = undefined;
    s.client.close();
    if (this.closed) return;
    const delay = backoffDelay(this.attempt++, this.backoff.baseMs, this.backoff.maxMs, this.backoff.random);
    this.timer = setTimeout(() => this.connect(), delay);
    this.report("disconnected", reason, delay);
  }

  private report<K extends keyof AdsClientEvents>(event: K, ...args: AdsClientEvents[K]): void {
    try {
      (this.emit as (e: K, ...a: AdsClientEvents[K]) => boolean)(event, ...args);
    } catch (e) {
      // A failing listener must not break the protocol.
      process.emitWarning(`AdsClient '${event}' listener threw: ${(e as Error).stack ?? e}`);
    }
  }
}

function rank(typeUrl: string): number {
  const i = TYPE_ORDER.indexOf(typeUrl);
  return i < 0 ? TYPE_ORDER.length : i;
}
