// The HTTP filter chain, on Envoy's model: each filter is built once per listener config by a factory that
// receives the compiled config, and answers each request with an explicit status (continue, or stop with
// a local reply, or stop because it took the stream over). The router is the terminal filter. Factories
// are found in a registry by Envoy filter name, so filters (fault, cors, local rate limit) plug in.
// Skein's one departure: a filter may also act on each upstream attempt (AttemptFilter), which is how
// faults apply per attempt with retries and timeouts still in force (docs/resilience.md).
import type { HttpFilter } from "../config/types.js";
import type { LocalNode } from "../node.js";
import type { ClusterManager } from "../upstream/types.js";
import type { DownstreamRequest } from "./downstream.js";
import type { HeaderRecord } from "./headers.js";
import type { LocalReply } from "./local-reply.js";
import type { Stats } from "./stats.js";

export const Continue = { kind: "continue" } as const;
/** The filter owns the stream from here (the router, or a filter that answered by itself). */
export const StopIteration = { kind: "stop" } as const;

export type FilterStatus = typeof Continue | typeof StopIteration | LocalReply;

export interface StreamFilter {
  /**
   * Called with the request headers once the route is resolved; `perRoute` is the route's (else the virtual
   * host's) typed_per_filter_config for this filter's name. A promise delays the chain (fault delays).
   */
  decodeHeaders(req: DownstreamRequest, perRoute: unknown): FilterStatus | Promise<FilterStatus>;
  /** Optional: adjust response headers (upstream or local) before they are sent. */
  encodeHeaders?(req: DownstreamRequest, status: number, headers: HeaderRecord): void;
  /** Optional: act on each upstream attempt the router makes (see AttemptFilter). */
  readonly attempt?: AttemptFilter;
}

/**
 * What a filter does to each upstream attempt of a forwarded request. The router asks before every attempt
 * (first try and retries alike): first for a delay, which the route and per-try timeouts cover, then for an
 * abort, which stands in for the upstream's answer and is retried under the route's retry policy.
 * `perRoute` is the filter's per-route config, as for decodeHeaders; `cluster` is the attempt's cluster.
 */
export interface AttemptFilter {
  /** Milliseconds to hold the attempt before it is sent; 0 for none. */
  attemptDelay(req: DownstreamRequest, perRoute: unknown, cluster: string): number;
  /** The delay asked for is over, or was cut short (timeout, downstream gone). */
  attemptDelayEnded(req: DownstreamRequest): void;
  /** A reply standing in for this attempt's upstream response, or undefined to send the attempt. */
  attemptAbort(req: DownstreamRequest, perRoute: unknown, cluster: string): LocalReply | undefined;
}

/** The attempt filters of one chain, in chain order, with the names their per-route config is kept under. */
export interface AttemptFilters {
  readonly filters: readonly AttemptFilter[];
  readonly names: readonly string[];
}

/** What filter factories may use. */
export interface FilterContext {
  readonly clusters: ClusterManager;
  readonly stats: Stats;
  /** Uniform in [0, 1): weighted clusters, runtime fractions, back-off jitter (tests may substitute). */
  readonly random: () => number;
  /** The stat prefix of the listener the chain serves (filters name their stats under `http.<prefix>.`). */
  readonly statPrefix?: string;
  /** The sidecar's own workload (telemetry labels, peer metadata); UNKNOWN_NODE when none was given. */
  readonly node: LocalNode;
  /** Whether the listener the chain serves is inbound (server side) or outbound (client side). */
  readonly direction?: "inbound" | "outbound" | "unspecified";
}

/** Builds a filter from its compiled listener-level config (`HttpFilter.config`) and its chain name. */
export type FilterFactory = (config: unknown, name: string, ctx: FilterContext) => StreamFilter;

export const ROUTER_FILTER = "envoy.filters.http.router";

/** Compiled config kinds (HttpFilterConfig.kind) → the Envoy filter whose factory builds them. */
const ENVOY_NAME_BY_KIND: Readonly<Record<string, string>> = {
  router: ROUTER_FILTER,
  fault: "envoy.filters.http.fault",
  "cors-filter": "envoy.filters.http.cors",
  "local-ratelimit": "envoy.filters.http.local_ratelimit",
  "jwt-authn": "envoy.filters.http.jwt_authn",
  "peer-metadata": "istio.metadata_exchange",
  rbac: "envoy.filters.http.rbac",
};

export class FilterRegistry {
  private readonly factories = new Map<string, FilterFactory>();

  register(envoyName: string, factory: FilterFactory): this {
    this.factories.set(envoyName, factory);
    return this;
  }

  has(envoyName: string): boolean {
    return this.factories.has(envoyName);
  }

  /** The factory for a configured filter: by its config's kind, else by the name it has in the chain. */
  factoryFor(filter: HttpFilter): { envoyName: string; factory: FilterFactory | undefined } {
    const kind = (filter.config as { kind?: unknown } | null | undefined)?.kind;
    const envoyName = (typeof kind === "string" ? ENVOY_NAME_BY_KIND[kind] : undefined) ?? filter.name;
    return { envoyName, factory: this.factories.get(envoyName) };
  }
}

export class FilterChain {
  private constructor(
    private readonly names: readonly string[],
    private readonly filters: readonly StreamFilter[],
    private readonly encoders: readonly StreamFilter[],
    /** Shared by every request of the chain; undefined when no filter acts per attempt. */
    private readonly attemptFilters: AttemptFilters | undefined,
    /** Configured filters with no factory in the registry; they are left out of the chain. */
    readonly skipped: readonly string[],
  ) {}

  /**
   * Builds the chain of a listener. Filters without a registered factory are skipped and reported (the
   * config layer has already rejected names it does not know; these are known but not built yet). The
   * router ends the chain whether or not the config lists it, and nothing after it runs, as in Envoy.
   */
  static compile(
    configured: readonly HttpFilter[],
    registry: FilterRegistry,
    ctx: FilterContext,
  ): FilterChain {
    const names: string[] = [];
    const filters: StreamFilter[] = [];
    const skipped: string[] = [];
    let router: { name: string; config: unknown } = {
      name: ROUTER_FILTER,
      config: { kind: "router", suppressEnvoyHeaders: false },
    };
    for (const f of configured) {
      const { envoyName, factory } = registry.factoryFor(f);
      if (envoyName === ROUTER_FILTER) {
        router = f;
        break;
      }
      if (!factory) {
        skipped.push(f.name);
        continue;
      }
      names.push(f.name);
      filters.push(factory(f.config, f.name, ctx));
    }
    const routerFactory = registry.factoryFor({ name: ROUTER_FILTER, config: router.config }).factory;
    if (!routerFactory) throw new Error(`no factory registered for ${ROUTER_FILTER}`);
    names.push(router.name);
    filters.push(routerFactory(router.config, router.name, ctx));
    const encoders = filters.filter((f) => f.encodeHeaders !== undefined);
    const attempts: AttemptFilter[] = [];
    const attemptNames: string[] = [];
    filters.forEach((f, i) => {
      if (f.attempt === undefined) return;
      attempts.push(f.attempt);
      attemptNames.push(names[i] as string);
    });
    const attemptFilters = attempts.length > 0 ? { filters: attempts, names: attemptNames } : undefined;
    return new FilterChain(names, filters, encoders, attemptFilters, skipped);
  }

  /** Runs the chain for one request: resolve the route, then each filter until one stops. */
  async run(req: DownstreamRequest, random: () => number): Promise<void> {
    req.resolveRoute(random);
    req.attemptFilters = this.attemptFilters;
    const filters = this.filters;
    for (let i = 0; i < filters.length; i++) {
      const name = this.names[i] as string;
      let status = (filters[i] as StreamFilter).decodeHeaders(req, req.perFilterConfig(name));
      if (status instanceof Promise) status = await status;
      if (status.kind === "continue") {
        if (req.aborted) return;
        continue;
      }
      if (status.kind === "local-reply") req.sendLocalReply(status);
      return;
    }
  }

  encodeHeaders(req: DownstreamRequest, status: number, headers: HeaderRecord): void {
    const encoders = this.encoders;
    for (let i = 0; i < encoders.length; i++)
      (encoders[i] as StreamFilter).encodeHeaders?.(req, status, headers);
  }
}
