// Versioned, consistency-checked sets of Envoy resources per proxy, and the cache the ADS server serves them
// from. The producer's whole API is SnapshotCache.setSnapshot(nodeId, snapshot); the server never builds resources.
import { createHash } from "node:crypto";
import { type Diagnostic, SkeinError } from "../lib/diagnostics.js";
import { XdsCodes } from "./codes.js";
import type { Cluster } from "./generated/envoy/config/cluster/v3/Cluster.js";
import type { ClusterLoadAssignment } from "./generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js";
import type { Listener } from "./generated/envoy/config/listener/v3/Listener.js";
import type { RouteConfiguration } from "./generated/envoy/config/route/v3/RouteConfiguration.js";
import type { Secret } from "./generated/envoy/extensions/transport_sockets/tls/v3/Secret.js";
import {
  CLUSTER,
  decode,
  ENDPOINT,
  fullNameOf,
  HTTP_CONNECTION_MANAGER,
  LISTENER,
  type PackedAny,
  pack,
  ROUTE,
  SECRET,
  TYPE_URL_PREFIX,
  unpack,
} from "./protos.js";

/**
 * A proxy's resources: per type URL, a map from resource name to the plain resource object (camelCase, as the
 * generated interfaces describe it). Types other than the five well-known ones may be added by type URL.
 */
export interface Resources {
  [LISTENER]?: ReadonlyMap<string, Listener>;
  [ROUTE]?: ReadonlyMap<string, RouteConfiguration>;
  [CLUSTER]?: ReadonlyMap<string, Cluster>;
  [ENDPOINT]?: ReadonlyMap<string, ClusterLoadAssignment>;
  [SECRET]?: ReadonlyMap<string, Secret>;
  [typeUrl: string]: ReadonlyMap<string, object> | undefined;
}

/** One resource of a snapshot, encoded once so every stream sends the same bytes. */
export interface SnapshotResource {
  name: string;
  /** The object it was built from. */
  resource: object;
  /** Encoded, ready for DiscoveryResponse.resources / Resource.resource. */
  any: PackedAny;
  /** Content hash of the encoding: the per-resource version of delta xDS. */
  version: string;
}

/** A reference from one resource to another that the snapshot does not contain. */
export interface ConsistencyError {
  /** The referring resource. */
  typeUrl: string;
  name: string;
  /** What it refers to. */
  missingTypeUrl: string;
  missingName: string;
  message: string;
}

const EMPTY: ReadonlyMap<string, SnapshotResource> = new Map();

// The field that holds a resource's own name, per well-known type: the name clients subscribe by.
const NAME_FIELD: Record<string, string> = {
  [LISTENER]: "name",
  [ROUTE]: "name",
  [CLUSTER]: "name",
  [ENDPOINT]: "clusterName",
  [SECRET]: "name",
};

function hash(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex").slice(0, 16);
}

/**
 * Encodings by content. Every proxy's snapshot is translated afresh, yet most of its resources (the clusters,
 * endpoints and routes of the services it sees) are the same as other proxies': checking and encoding them is
 * most of a push's cost, so equal content (the same type and JSON text) is encoded once. Bounded: cleared when
 * it outgrows ENCODING_CACHE_MAX entries (content keys are never stale, only unused).
 */
const encodings = new Map<string, { any: PackedAny; version: string }>();
const ENCODING_CACHE_MAX = 100_000;

// The same object again (translation shares resources between proxies that see the mesh alike): no JSON at all.
// Resources are never mutated once in a snapshot, so an object's encoding cannot change.
const byObject = new WeakMap<object, { typeUrl: string; any: PackedAny; version: string }>();

function encodeCached(typeUrl: string, resource: object): { any: PackedAny; version: string } {
  const same = byObject.get(resource);
  if (same && same.typeUrl === typeUrl) return same;
  const key = `${typeUrl}\u0000${JSON.stringify(resource)}`;
  let entry = encodings.get(key);
  if (!entry) {
    const any = pack(fullNameOf(typeUrl), resource);
    entry = { any, version: hash(any.value) };
    if (encodings.size >= ENCODING_CACHE_MAX) encodings.clear();
    encodings.set(key, entry);
  }
  byObject.set(resource, { typeUrl, ...entry });
  return entry;
}

function kindOf(typeUrl: string): string {
  const full = fullNameOf(typeUrl);
  return full.slice(full.lastIndexOf(".") + 1);
}

/**
 * An immutable, encoded set of resources for one proxy. Each type's version is a content hash of its
 * encoded resources, so an unchanged type keeps its version across snapshots (and control-plane restarts),
 * and pushes go only where something changed.
 */
export class Snapshot {
  private readonly byType = new Map<string, ReadonlyMap<string, SnapshotResource>>();
  private readonly typeVersions = new Map<string, string>();
  private cachedErrors: ConsistencyError[] | undefined;
  /** The version of a type with no resources (also of a type the snapshot does not mention). */
  static readonly EMPTY_VERSION = hash("");

  /**
   * Encodes every resource (so an invalid one fails here, naming it, rather than on a stream) and checks
   * that each is stored under its own name. Throws SkeinError SKEIN_E_XDS_UNKNOWN_FIELD / _BAD_VALUE /
   * _UNKNOWN_TYPE / _NAME_MISMATCH.
   */
  constructor(resources: Resources) {
    for (const typeUrl of Object.keys(resources).sort()) {
      const map = resources[typeUrl];
      if (!map) continue;
      if (!typeUrl.startsWith(TYPE_URL_PREFIX)) {
        throw new SkeinError(
          XdsCodes.UNKNOWN_TYPE,
          `snapshot key "${typeUrl}" is not a type URL: use ${TYPE_URL_PREFIX}<message full name>, e.g. the LISTENER constant`,
        );
      }
      const encoded = new Map<string, SnapshotResource>();
      const kind = kindOf(typeUrl);
      const nameField = NAME_FIELD[typeUrl];
      // Sorted so responses list resources in a stable order.
      for (const name of [...map.keys()].sort()) {
        const resource = map.get(name) as object;
        if (nameField !== undefined) {
          const own = (resource as Record<string, unknown>)[nameField];
          if (own !== name) {
            throw new SkeinError(
              XdsCodes.NAME_MISMATCH,
              `${kind} stored under "${name}" has ${nameField} ${JSON.stringify(own ?? "")}: clients subscribe by ${nameField}, so the map key must equal it`,
            );
          }
        }
        let any: PackedAny;
        let version: string;
        try {
          ({ any, version } = encodeCached(typeUrl, resource));
        } catch (e) {
          if (!(e instanceof SkeinError)) throw e;
          const resourceLabel = `${kind} ${name}`;
          throw new SkeinError(
            e.code,
            `${resourceLabel}: ${e.message}`,
            e.diagnostics.map((d) => ({ ...d, resource: resourceLabel })),
          );
        }
        encoded.set(name, { name, resource, any, version });
      }
      this.byType.set(typeUrl, encoded);
      this.typeVersions.set(typeUrl, encoded.size === 0 ? Snapshot.EMPTY_VERSION : typeVersion(encoded));
    }
  }

  /** Type URLs this snapshot has resources (possibly none) for. */
  typeUrls(): string[] {
    return [...this.byType.keys()];
  }

  /** The version of one type: a content hash; EMPTY_VERSION when it has no resources. */
  version(typeUrl: string): string {
    return this.typeVersions.get(typeUrl) ?? Snapshot.EMPTY_VERSION;
  }

  /** Every type's version, by type URL. */
  versions(): Record<string, string> {
    return Object.fromEntries(this.typeVersions);
  }

  /** The encoded resources of one type, by name, sorted by name. */
  resources(typeUrl: string): ReadonlyMap<string, SnapshotResource> {
    return this.byType.get(typeUrl) ?? EMPTY;
  }

  get(typeUrl: string, name: string): SnapshotResource | undefined {
    return this.byType.get(typeUrl)?.get(name);
  }

  /**
   * Every EDS cluster whose ClusterLoadAssignment (eds_cluster_config.service_name, else the cluster name) is
   * missing, and every RDS route_config_name of a listener's HttpConnectionManager (api_listener, filter
   * chains, default filter chain) whose RouteConfiguration is missing. Empty when consistent.
   */
  consistencyErrors(): ConsistencyError[] {
    if (this.cachedErrors) return this.cachedErrors;
    const errors: ConsistencyError[] = [];
    const endpoints = this.resources(ENDPOINT);
    for (const c of this.resources(CLUSTER).values()) {
      // Decoded rather than read from the object, so every accepted input form (enum numbers, Any forms) counts.
      const cluster = unpack<Cluster>(c.any, { defaults: false, oneofs: true });
      if (cluster.type !== "EDS") continue;
      const edsName = cluster.edsClusterConfig?.serviceName || c.name;
      if (!endpoints.has(edsName)) {
        errors.push({
          typeUrl: CLUSTER,
          name: c.name,
          missingTypeUrl: ENDPOINT,
          missingName: edsName,
          message: `Cluster ${c.name} is an EDS cluster but the snapshot has no ClusterLoadAssignment "${edsName}"`,
        });
      }
    }
    const routes = this.resources(ROUTE);
    for (const l of this.resources(LISTENER).values()) {
      for (const routeName of rdsNamesOf(l.any)) {
        if (routes.has(routeName)) continue;
        errors.push({
          typeUrl: LISTENER,
          name: l.name,
          missingTypeUrl: ROUTE,
          missingName: routeName,
          message: `Listener ${l.name} uses RDS route_config_name "${routeName}" but the snapshot has no RouteConfiguration "${routeName}"`,
        });
      }
    }
    this.cachedErrors = errors;
    return errors;
  }
}

function typeVersion(encoded: ReadonlyMap<string, SnapshotResource>): string {
  const h = createHash("sha256");
  for (const r of encoded.values()) h.update(`${r.name}\0${r.version}\n`);
  return h.digest("hex").slice(0, 16);
}

type AnyLike = { type_url?: string; typeUrl?: string; value?: Buffer } | null | undefined;

function rdsNamesOf(listenerAny: PackedAny): string[] {
  const listener = unpack<Listener>(listenerAny, { defaults: false, oneofs: true });
  const managers: AnyLike[] = [];
  managers.push(listener.apiListener?.apiListener as AnyLike);
  const chains = [
    ...(listener.filterChains ?? []),
    ...(listener.defaultFilterChain ? [listener.defaultFilterChain] : []),
  ];
  for (const chain of chains) for (const f of chain.filters ?? []) managers.push(f.typedConfig as AnyLike);
  const names: string[] = [];
  for (const any of managers) {
    if (!any || (any.type_url ?? any.typeUrl) !== TYPE_URL_PREFIX + HTTP_CONNECTION_MANAGER) continue;
    const hcm = decode<{ rds?: { routeConfigName?: string } }>(
      HTTP_CONNECTION_MANAGER,
      any.value ?? Buffer.alloc(0),
      {
        defaults: false,
      },
    );
    const name = hcm.rds?.routeConfigName;
    if (name && !names.includes(name)) names.push(name);
  }
  return names;
}

/** Called when a node's snapshot is set, replaced or cleared. */
export type SnapshotWatcher = (snapshot: Snapshot | undefined) => void;

/** The latest consistent snapshot per node id, with change notification for the streams serving each node. */
export class SnapshotCache {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly watchers = new Map<string, Set<SnapshotWatcher>>();

  /**
   * Publishes a snapshot for a node and wakes its streams. An inconsistent snapshot is refused with
   * SKEIN_E_XDS_INCONSISTENT and the previous one stays in place (a proxy keeps its last good config).
   */
  setSnapshot(nodeId: string, snapshot: Snapshot): void {
    const errors = snapshot.consistencyErrors();
    if (errors.length > 0) {
      const diagnostics: Diagnostic[] = errors.map((e) => ({
        code: XdsCodes.INCONSISTENT,
        severity: "error",
        message: e.message,
        resource: `${kindOf(e.typeUrl)} ${e.name}`,
        hint: `add the ${kindOf(e.missingTypeUrl)} "${e.missingName}" to the snapshot or stop referring to it`,
      }));
      throw new SkeinError(
        XdsCodes.INCONSISTENT,
        `snapshot for node "${nodeId}" refused, the previous one stays in place: ${errors.map((e) => e.message).join("; ")}`,
        diagnostics,
      );
    }
    const previous = this.snapshots.get(nodeId);
    this.snapshots.set(nodeId, snapshot);
    if (previous && sameVersions(previous, snapshot)) return; // nothing any stream could send
    this.notify(nodeId, snapshot);
  }

  getSnapshot(nodeId: string): Snapshot | undefined {
    return this.snapshots.get(nodeId);
  }

  /** Forgets a node's snapshot. Its open streams keep what they were sent and wait for a new snapshot. */
  clearSnapshot(nodeId: string): boolean {
    const had = this.snapshots.delete(nodeId);
    if (had) this.notify(nodeId, undefined);
    return had;
  }

  /** Node ids that have a snapshot. */
  nodeIds(): string[] {
    return [...this.snapshots.keys()];
  }

  /** Calls `watcher` whenever the node's snapshot changes; returns the function that stops it. */
  watch(nodeId: string, watcher: SnapshotWatcher): () => void {
    let set = this.watchers.get(nodeId);
    if (!set) {
      set = new Set();
      this.watchers.set(nodeId, set);
    }
    set.add(watcher);
    return () => {
      const s = this.watchers.get(nodeId);
      if (!s) return;
      s.delete(watcher);
      if (s.size === 0) this.watchers.delete(nodeId);
    };
  }

  private notify(nodeId: string, snapshot: Snapshot | undefined): void {
    for (const w of [...(this.watchers.get(nodeId) ?? [])]) w(snapshot);
  }
}

function sameVersions(a: Snapshot, b: Snapshot): boolean {
  const va = a.versions();
  const vb = b.versions();
  const keys = new Set([...Object.keys(va), ...Object.keys(vb)]);
  for (const k of keys) if (a.version(k) !== b.version(k)) return false;
  return true;
}
