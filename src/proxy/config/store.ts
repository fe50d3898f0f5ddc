// The sidecar's current RuntimeConfig and the one way it changes: a whole xDS response of one type is compiled
// and checked first, and swapped in only if every resource in it is good (else the NACK message names the
// first bad resource and field, and nothing changes). It also tells the xDS client which RDS and EDS names
// the accepted listeners and clusters refer to, and drops routes and endpoints nothing refers to any more.
import { EventEmitter } from "node:events";
import { SkeinError } from "../../lib/diagnostics.js";
import type { Cluster__Output } from "../../xds/generated/envoy/config/cluster/v3/Cluster.js";
import type { ClusterLoadAssignment__Output } from "../../xds/generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js";
import type { Listener__Output } from "../../xds/generated/envoy/config/listener/v3/Listener.js";
import type { RouteConfiguration__Output } from "../../xds/generated/envoy/config/route/v3/RouteConfiguration.js";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from "../../xds/protos.js";
import { compileCluster } from "./cluster.js";
import { ProxyConfigCodes } from "./codes.js";
import { compileClusterLoadAssignment } from "./endpoint.js";
import { At, resourceLabel } from "./fields.js";
import { compileListener, routeNamesOf } from "./listener.js";
import { clustersOf, compileRouteConfiguration, validatesClusters } from "./route.js";
import type { Cluster, EndpointSet, Listener, RouteTable, RuntimeConfig } from "./types.js";

/** What a validator tells the xDS client: ACK, or NACK with a message. */
export type UpdateResult = { ok: true } | { ok: false; message: string };

export interface ConfigStoreEvents {
  /** A new RuntimeConfig is in force; `changed` holds the type URLs whose part of it changed. */
  updated: [config: RuntimeConfig, changed: ReadonlySet<string>];
}

/** Anything that can be told which resource names to subscribe to (an AdsClient). */
export interface Subscriber {
  subscribe(typeUrl: string, names: readonly string[]): void;
}

const KIND: Record<string, string> = {
  [LISTENER]: "Listener",
  [ROUTE]: "RouteConfiguration",
  [CLUSTER]: "Cluster",
  [ENDPOINT]: "ClusterLoadAssignment",
};

export const EMPTY_CONFIG: RuntimeConfig = Object.freeze({
  listeners: new Map(),
  routes: new Map(),
  clusters: new Map(),
  endpoints: new Map(),
  versions: Object.freeze({}),
});

function nameOf(typeUrl: string, resource: object): string {
  const r = resource as { name?: string; clusterName?: string };
  return (typeUrl === ENDPOINT ? r.clusterName : r.name) ?? "";
}

/** Names by resource, failing on empty or repeated ones (Envoy rejects both). */
function byName<T extends object>(typeUrl: string, resources: readonly object[]): Map<string, T> {
  const out = new Map<string, T>();
  const kind = KIND[typeUrl] as string;
  resources.forEach((r, i) => {
    const name = nameOf(typeUrl, r);
    const at = new At(`${kind} resources[${i}]`);
    if (name === "") at.invalid(`has no ${typeUrl === ENDPOINT ? "cluster_name" : "name"}`);
    if (out.has(name)) new At(resourceLabel(kind, name)).invalid("appears twice in one response");
    out.set(name, r as T);
  });
  return out;
}

/** The RDS names a set of listeners uses, sorted. */
export function routeNames(listeners: ReadonlyMap<string, Listener>): string[] {
  const out = new Set<string>();
  for (const l of listeners.values()) for (const n of routeNamesOf(l)) out.add(n);
  return [...out].sort();
}

/** The EDS names (ClusterLoadAssignment names) a set of clusters uses, sorted. */
export function endpointNames(clusters: ReadonlyMap<string, Cluster>): string[] {
  const out = new Set<string>();
  for (const c of clusters.values()) if (c.type === "EDS") out.add(c.edsServiceName);
  return [...out].sort();
}

function pruned<T>(map: ReadonlyMap<string, T>, keep: readonly string[]): Map<string, T> {
  const out = new Map<string, T>();
  for (const n of keep) {
    const v = map.get(n);
    if (v !== undefined) out.set(n, v);
  }
  return out;
}

/**
 * Holds the sidecar's RuntimeConfig. `validate` is what an AdsClient calls for each response: it compiles
 * and, when every resource is good, swaps the new config in (atomically per type) before answering ok.
 */
export class ConfigStore extends EventEmitter<ConfigStoreEvents> {
  private current: RuntimeConfig = EMPTY_CONFIG;
  /** The accepted resources as decoded, per type and name (for the admin config dump). */
  private readonly accepted = new Map<string, ReadonlyMap<string, object>>();

  /** The config in force. Each update replaces the object: a reader holding one sees a consistent whole. */
  get config(): RuntimeConfig {
    return this.current;
  }

  /** AdsClient's validate callback: compiles the response and applies it when valid. */
  readonly validate = (typeUrl: string, resources: readonly object[], version: string): UpdateResult =>
    this.update(typeUrl, resources, version);

  /** Compiles one response of `typeUrl` as a whole; applies it only when every resource compiles. */
  update(typeUrl: string, resources: readonly object[], version: string): UpdateResult {
    let next: { config: RuntimeConfig; changed: Set<string>; accepted: Map<string, object> };
    try {
      next = this.compile(typeUrl, resources, version);
    } catch (e) {
      if (e instanceof SkeinError) return { ok: false, message: e.message };
      return {
        ok: false,
        message: `internal error compiling ${KIND[typeUrl] ?? typeUrl}: ${(e as Error).message}`,
      };
    }
    this.current = next.config;
    this.accepted.set(typeUrl, next.accepted);
    for (const t of next.changed)
      if (t !== typeUrl)
        this.accepted.set(t, pruned(this.accepted.get(t) ?? new Map(), [...this.namesIn(t)]));
    try {
      this.emit("updated", next.config, next.changed);
    } catch (e) {
      // The config is in force whatever a listener does with the event; report, never NACK for it.
      process.emitWarning(`ConfigStore 'updated' listener threw: ${(e as Error).stack ?? e}`);
    }
    return { ok: true };
  }

  /** The RDS or EDS names the accepted listeners and clusters refer to, sorted (what to subscribe to). */
  resourceNames(typeUrl: string): string[] {
    if (typeUrl === ROUTE) return routeNames(this.current.listeners);
    if (typeUrl === ENDPOINT) return endpointNames(this.current.clusters);
    return [];
  }

  /** Accepted resources of one type as decoded, by name. */
  resources(typeUrl: string): ReadonlyMap<string, object> {
    return this.accepted.get(typeUrl) ?? new Map();
  }

  /**
   * Keeps `client`'s RDS and EDS subscriptions equal to what the config refers to, now and after every
   * update. Returns the function that stops it.
   */
  bind(client: Subscriber): () => void {
    const sync = () => {
      client.subscribe(ROUTE, this.resourceNames(ROUTE));
      client.subscribe(ENDPOINT, this.resourceNames(ENDPOINT));
    };
    this.on("updated", sync);
    sync();
    return () => this.off("updated", sync);
  }

  private namesIn(typeUrl: string): Iterable<string> {
    if (typeUrl === ROUTE) return this.current.routes.keys();
    if (typeUrl === ENDPOINT) return this.current.endpoints.keys();
    return [];
  }

  private compile(
    typeUrl: string,
    resources: readonly object[],
    version: string,
  ): { config: RuntimeConfig; changed: Set<string>; accepted: Map<string, object> } {
    const cur = this.current;
    const versions = { ...cur.versions, [typeUrl]: version };
    const changed = new Set([typeUrl]);
    switch (typeUrl) {
      case LISTENER: {
        // LDS is state of the world: what is not in the response is gone.
        const raw = byName<Listener__Output>(typeUrl, resources);
        const listeners = new Map<string, Listener>();
        const bound = new Map<string, string>();
        for (const [name, r] of raw) {
          const l = compileListener(r, { clusters: cur.clusters });
          const key = `${l.address}:${l.port}`;
          const other = bound.get(key);
          if (l.bind && other !== undefined)
            new At(resourceLabel("Listener", name)).invalid(
              `address ${key} is already used by listener ${JSON.stringify(other)}`,
            );
          if (l.bind) bound.set(key, name);
          listeners.set(name, l);
        }
        const routes = pruned(cur.routes, routeNames(listeners));
        if (routes.size !== cur.routes.size) changed.add(ROUTE);
        return { config: { ...cur, listeners, routes, versions }, changed, accepted: raw };
      }
      case CLUSTER: {
        const raw = byName<Cluster__Output>(typeUrl, resources);
        const clusters = new Map<string, Cluster>();
        for (const [name, r] of raw) clusters.set(name, compileCluster(r));
        const endpoints = pruned(cur.endpoints, endpointNames(clusters));
        if (endpoints.size !== cur.endpoints.size) changed.add(ENDPOINT);
        return { config: { ...cur, clusters, endpoints, versions }, changed, accepted: raw };
      }
      case ROUTE: {
        // RDS is per name: a response updates the names it carries; names nothing refers to are not kept.
        const raw = byName<RouteConfiguration__Output>(typeUrl, resources);
        const wanted = new Set(routeNames(cur.listeners));
        const routes = pruned(cur.routes, [...wanted]);
        const accepted = new Map([...this.resources(ROUTE)].filter(([n]) => wanted.has(n)));
        for (const [name, r] of raw) {
          const table: RouteTable = compileRouteConfiguration(r);
          if (validatesClusters(r, false))
            for (const c of clustersOf(table))
              if (!cur.clusters.has(c))
                new At(resourceLabel("RouteConfiguration", name)).invalid(
                  `routes to unknown cluster ${JSON.stringify(c)} (validate_clusters is on: set it false to allow this)`,
                );
          if (!wanted.has(name)) continue;
          routes.set(name, table);
          accepted.set(name, r);
        }
        return { config: { ...cur, routes, versions }, changed, accepted };
      }
      case ENDPOINT: {
        const raw = byName<ClusterLoadAssignment__Output>(typeUrl, resources);
        const wanted = new Set(endpointNames(cur.clusters));
        const endpoints = pruned(cur.endpoints, [...wanted]);
        const accepted = new Map([...this.resources(ENDPOINT)].filter(([n]) => wanted.has(n)));
        for (const [name, r] of raw) {
          const set: EndpointSet = compileClusterLoadAssignment(r);
          if (!wanted.has(name)) continue;
          endpoints.set(name, set);
          accepted.set(name, r);
        }
        return { config: { ...cur, endpoints, versions }, changed, accepted };
      }
      default:
        return new At(typeUrl).fail(
          ProxyConfigCodes.UNSUPPORTED,
          "the Skein sidecar does not use this resource type",
        );
    }
  }
}
