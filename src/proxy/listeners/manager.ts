// Keeps the sidecar's sockets in step with the listeners of the runtime config (LDS): binds new ones,
// drains removed ones, and swaps the config of a listener whose address:port and kind are unchanged in
// place, so its socket and open connections survive. Also the whole-proxy drain (/quitquitquit, SIGTERM).
import type { Listener, RouteTable, RuntimeConfig } from "../config/types.js";
import { registerBuiltinFilters } from "../filters/index.js";
import { SecretManager } from "../identity/secrets.js";
import { type LocalNode, UNKNOWN_NODE } from "../node.js";
import { FilterChain, FilterRegistry, ROUTER_FILTER } from "../router/chain.js";
import { createRouterFilter } from "../router/router.js";
import { Stats } from "../router/stats.js";
import type { StreamInfo } from "../router/stream-info.js";
import type { ClusterManager } from "../upstream/types.js";
import type { ListenerContext } from "./context.js";
import { HttpListener } from "./http-listener.js";
import { TcpListener } from "./tcp-listener.js";

export const ListenerCodes = {
  /** The address:port could not be bound (in use, or not an address of this machine). */
  BIND: "SKEIN_E_LISTENER_BIND",
  /** Two listeners of one config ask for the same address:port. */
  CONFLICT: "SKEIN_E_LISTENER_CONFLICT",
} as const;

export interface ListenerManagerOptions {
  clusters: ClusterManager;
  /** Shared with the admin server; a new one by default. */
  stats?: Stats;
  /** Filter factories by Envoy name; the router is always registered. Default: the sidecar's built-in filters. */
  registry?: FilterRegistry;
  /** Uniform in [0, 1); Math.random by default. */
  random?: () => number;
  /** Called once per finished request or TCP connection (access logs, metrics). */
  onRequestComplete?: (info: StreamInfo) => void;
  /** The sidecar's own workload (default UNKNOWN_NODE). */
  node?: LocalNode;
  /** How long a listener removed by LDS keeps serving its open connections (default 10 s). */
  removedListenerDrainMs?: number;
  /** Secrets for TLS filter chains; default: an empty manager (TLS chains then refuse connections). */
  secrets?: SecretManager;
}

export interface ListenerFailure {
  listener: string;
  code: (typeof ListenerCodes)[keyof typeof ListenerCodes];
  message: string;
}

export interface ApplyResult {
  added: string[];
  updated: string[];
  removed: string[];
  failed: ListenerFailure[];
  /** Configured HTTP filters that have no implementation yet, by listener; they are left out of the chain. */
  skippedFilters: { listener: string; filters: string[] }[];
}

export interface ListenerStatus {
  name: string;
  address: string;
  port: number;
  kind: "http" | "tcp";
  connections: number;
}

type Active = HttpListener | TcpListener;

function keyOf(l: Listener): string {
  return `${l.address}:${l.port}`;
}

export class ListenerManager {
  readonly stats: Stats;
  readonly registry: FilterRegistry;
  private readonly ctx: ListenerContext;
  private readonly active = new Map<string, Active>();
  private routes: ReadonlyMap<string, RouteTable> = new Map();
  private queue: Promise<unknown> = Promise.resolve();
  private applied = false;
  private drainingAll = false;
  private readonly removedDrainMs: number;
  private readonly retiring = new Map<Active, Promise<void>>();

  constructor(opts: ListenerManagerOptions) {
    this.stats = opts.stats ?? new Stats();
    this.registry = opts.registry ?? registerBuiltinFilters(new FilterRegistry());
    if (!this.registry.has(ROUTER_FILTER)) this.registry.register(ROUTER_FILTER, createRouterFilter);
    this.removedDrainMs = opts.removedListenerDrainMs ?? 10_000;
    this.ctx = {
      clusters: opts.clusters,
      stats: this.stats,
      random: opts.random ?? Math.random,
      registry: this.registry,
      routes: () => this.routes,
      onRequestComplete: opts.onRequestComplete,
      node: opts.node ?? UNKNOWN_NODE,
      secrets: opts.secrets ?? new SecretManager(),
    };
  }

  /** True once the first config's listeners have been bound (the admin /ready signal). */
  get ready(): boolean {
    return this.applied && !this.drainingAll;
  }

  get draining(): boolean {
    return this.drainingAll;
  }

  /** Brings the bound listeners in line with `config`; calls are serialised. */
  apply(config: RuntimeConfig): Promise<ApplyResult> {
    const run = this.queue.then(() => this.applyNow(config));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async applyNow(config: RuntimeConfig): Promise<ApplyResult> {
    const result: ApplyResult = { added: [], updated: [], removed: [], failed: [], skippedFilters: [] };
    // Route tables first: a listener bound below may serve a request at once.
    this.routes = config.routes;
    if (this.drainingAll) return result;
    const wanted = new Map<string, Listener>();
    for (const l of config.listeners.values()) {
      if (!l.bind) continue;
      const key = keyOf(l);
      const other = wanted.get(key);
      if (other) {
        result.failed.push({
          listener: l.name,
          code: ListenerCodes.CONFLICT,
          message: `listener ${l.name} asks for ${key}, which listener ${other.name} already has; give one of them another port`,
        });
        continue;
      }
      wanted.set(key, l);
    }

    for (const [key, current] of this.active) {
      const next = wanted.get(key);
      if (next && next.config.kind === current.listener.config.kind) continue;
      // Gone, or the same port now speaks another protocol: stop accepting now, let its connections finish.
      this.active.delete(key);
      result.removed.push(current.name);
      this.retire(current);
    }

    const binds: Promise<void>[] = [];
    for (const [key, l] of wanted) {
      const current = this.active.get(key);
      if (current) {
        if (current instanceof HttpListener) {
          const chain = this.compileChain(l, result);
          current.update(l, chain);
        } else current.update(l);
        result.updated.push(l.name);
        continue;
      }
      const created: Active =
        l.config.kind === "http"
          ? new HttpListener(l, this.compileChain(l, result), this.ctx)
          : new TcpListener(l, this.ctx);
      binds.push(
        created.listen().then(
          () => {
            this.active.set(key, created);
            result.added.push(l.name);
          },
          (err: NodeJS.ErrnoException) => {
            result.failed.push({
              listener: l.name,
              code: ListenerCodes.BIND,
              message:
                `cannot listen on ${key} for listener ${l.name}: ${err.code ?? err.message}; ` +
                (err.code === "EADDRINUSE"
                  ? "another process has that port"
                  : "check that the address belongs to this machine (local mode uses 127.0.0.0/8)"),
            });
          },
        ),
      );
    }
    await Promise.all(binds);
    this.applied = true;
    return result;
  }

  private compileChain(l: Listener, result: ApplyResult): FilterChain {
    if (l.config.kind !== "http") throw new Error("not an HTTP listener");
    // Filters name their stats after the listener's stat prefix, as Envoy's do.
    const chain = FilterChain.compile(l.config.filters, this.registry, {
      ...this.ctx,
      statPrefix: l.config.statPrefix,
      direction: l.direction,
    });
    if (chain.skipped.length > 0)
      result.skippedFilters.push({ listener: l.name, filters: [...chain.skipped] });
    return chain;
  }

  private retire(l: Active): void {
    this.retiring.set(
      l,
      l.drain(this.removedDrainMs).finally(() => this.retiring.delete(l)),
    );
  }

  /** The bound listeners, for the admin pages. */
  listeners(): ListenerStatus[] {
    return [...this.active.values()].map((l) => ({
      name: l.name,
      address: l.listener.address,
      port: l.listener.port,
      kind: l.listener.config.kind,
      connections: l.connectionCount,
    }));
  }

  /**
   * Drains the whole proxy: every listener stops accepting, HTTP/1 responses say `Connection: close`, HTTP/2
   * connections get GOAWAY, requests in flight may finish within `ms`; whatever remains then is closed.
   * Later config updates bind nothing.
   */
  async drain(ms: number): Promise<void> {
    this.drainingAll = true;
    await this.queue;
    const all = [...this.active.values()];
    this.active.clear();
    // Listeners already retiring after an LDS removal get the same deadline if theirs is later.
    await Promise.all([...all, ...this.retiring.keys()].map((l) => l.drain(ms)));
  }

  /** Closes every listener and connection now. */
  async close(): Promise<void> {
    this.drainingAll = true;
    await this.queue;
    for (const l of this.active.values()) l.close();
    for (const l of this.retiring.keys()) l.close();
    this.active.clear();
    await Promise.all(this.retiring.values());
  }
}
