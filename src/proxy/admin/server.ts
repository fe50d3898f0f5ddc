// The sidecar's admin endpoint (Envoy's admin API, loopback only, port 15000): readiness, the runtime
// config as JSON, clusters and hosts as Envoy prints them, counters, and /quitquitquit to start draining.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { RuntimeConfig } from "../config/types.js";
import type { Stats } from "../router/stats.js";
import type { ClusterManager, HostStatus } from "../upstream/types.js";
import { serveTap, type TapHub } from "./tap.js";

export const ADMIN_PORT = 15000;

export interface AdminOptions {
  /** Default 127.0.0.1: the admin API must not be reachable from other machines. */
  address?: string;
  /** Default 15000; 0 picks a free port. */
  port?: number;
  /** The runtime config in force; undefined before the first one. */
  config: () => RuntimeConfig | undefined;
  clusters: ClusterManager;
  stats: Stats;
  /** Listeners from the first LDS/CDS are up. */
  ready: () => boolean;
  /** The proxy is draining (/ready answers 503 DRAINING). */
  draining: () => boolean;
  /** POST /quitquitquit: start draining (the caller decides how long and what follows). */
  onQuit: () => void;
  /** The bound listeners (ListenerManager.listeners()), for /listeners. */
  listeners?: () => readonly { name: string; address: string; port: number }[];
  /** Extra text pages (path → text). */
  pages?: Record<string, () => string>;
  /** Live requests for `GET /tap` (skein tap); absent: not served. */
  tap?: TapHub;
}

export class AdminServer {
  private readonly server: Server;

  constructor(private readonly opts: AdminOptions) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  listen(): Promise<AddressInfo> {
    const { address = "127.0.0.1", port = ADMIN_PORT } = this.opts;
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host: address, port }, () => {
        this.server.off("error", reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? "/", "http://admin");
    if (url.pathname === "/tap" && this.opts.tap) {
      serveTap(this.opts.tap, url, req, res);
      return;
    }
    const page = this.page(url, req.method ?? "GET");
    const body = page.json !== undefined ? `${JSON.stringify(page.json, null, 2)}\n` : (page.text ?? "");
    res.writeHead(page.status, {
      "content-type": page.json !== undefined ? "application/json" : "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
    if (page.quit) this.opts.onQuit();
  }

  private page(url: URL, method: string): Page {
    const o = this.opts;
    const asJson = url.searchParams.get("format") === "json";
    switch (url.pathname) {
      case "/ready":
        if (o.draining()) return { status: 503, text: "DRAINING\n" };
        return o.ready() ? { status: 200, text: "LIVE\n" } : { status: 503, text: "PRE_INITIALIZING\n" };
      case "/config_dump": {
        const c = o.config();
        return { status: 200, json: c ? configDump(c) : {} };
      }
      case "/clusters":
        return asJson ? { status: 200, json: clustersJson(o) } : { status: 200, text: clustersText(o) };
      case "/stats":
        if (asJson)
          return {
            status: 200,
            json: { stats: o.stats.entries().map(([name, s]) => ({ name, value: s.value })) },
          };
        return { status: 200, text: o.stats.text() };
      case "/listeners": {
        const list = o.listeners?.() ?? [];
        if (asJson) return { status: 200, json: { listener_statuses: list } };
        // Envoy's text form: name::address:port.
        return { status: 200, text: list.map((l) => `${l.name}::${l.address}:${l.port}\n`).join("") };
      }
      case "/quitquitquit":
        // Envoy's mutating endpoints take POST only, so a crawler or a stray GET cannot stop the proxy.
        if (method !== "POST") return { status: 405, text: "use POST\n" };
        return { status: 200, text: "OK\n", quit: true };
      case "/":
        return {
          status: 200,
          text: `${["/ready", "/config_dump", "/clusters", "/listeners", "/stats", "/quitquitquit", ...Object.keys(o.pages ?? {})].join("\n")}\n`,
        };
      default: {
        const extra = o.pages?.[url.pathname];
        return extra ? { status: 200, text: extra() } : { status: 404, text: "not found\n" };
      }
    }
  }
}

interface Page {
  status: number;
  text?: string;
  json?: unknown;
  /** Start draining once the answer is out. */
  quit?: boolean;
}

/** The route table's lookup indexes repeat its virtual hosts; the dump shows each once. */
const DERIVED_ROUTE_TABLE_KEYS = new Set(["exact", "suffixes", "prefixes", "catchAll"]);

/** The runtime config as plain JSON: maps as objects, sets as arrays, regexes as their source. */
export function configDump(config: RuntimeConfig): unknown {
  return {
    versions: config.versions,
    listeners: [...config.listeners.values()].map(plain),
    routes: [...config.routes.values()].map(plain),
    clusters: [...config.clusters.values()].map(plain),
    endpoints: [...config.endpoints.values()].map(plain),
  };
}

function plain(value: unknown): unknown {
  if (value === null || value === undefined) return value;
  if (typeof value === "bigint") return value.toString();
  if (typeof value !== "object") return value;
  if (value instanceof RegExp)
    return value.flags.replace(/[gu]/g, "")
      ? `(?${value.flags.replace(/[gu]/g, "")})${value.source}`
      : value.source;
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of value) out[String(k)] = plain(v);
    return out;
  }
  if (value instanceof Set) return [...value].map(plain);
  if (Array.isArray(value)) return value.map(plain);
  const isTable = "virtualHosts" in value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (isTable && DERIVED_ROUTE_TABLE_KEYS.has(k)) continue;
    if (typeof v === "function") continue;
    out[k] = plain(v);
  }
  return out;
}

function healthFlags(h: HostStatus): string {
  if (h.healthy && !h.ejected && !h.activeHealthCheckFailed) return "healthy";
  let out = "";
  if (h.activeHealthCheckFailed) out += "/failed_active_hc";
  if (h.activeHealthCheckPending) out += "/pending_active_hc";
  if (!h.healthy) out += "/failed_eds_health";
  if (h.ejected) out += "/failed_outlier_check";
  return out;
}

/** Envoy's /clusters text: `cluster::host::stat::value` lines, circuit breakers per cluster first. */
export function clustersText(o: Pick<AdminOptions, "config" | "clusters">): string {
  const config = o.config();
  if (!config) return "";
  let out = "";
  for (const name of [...config.clusters.keys()].sort()) {
    const c = o.clusters.get(name);
    if (!c) continue;
    const cb = c.config.circuitBreakers;
    out += `${name}::observability_name::${name}\n`;
    out += `${name}::default_priority::max_connections::${cb.maxConnections}\n`;
    out += `${name}::default_priority::max_pending_requests::${cb.maxPendingRequests}\n`;
    out += `${name}::default_priority::max_requests::${cb.maxRequests}\n`;
    out += `${name}::default_priority::max_retries::${cb.maxRetries}\n`;
    out += `${name}::added_via_api::true\n`;
    for (const h of c.hosts()) {
      const p = `${name}::${h.key}::`;
      out += `${p}cx_active::${h.connections ?? 0}\n`;
      out += `${p}cx_connect_fail::${h.connectFailures ?? 0}\n`;
      out += `${p}rq_active::${h.active}\n`;
      out += `${p}rq_error::${h.failures}\n`;
      out += `${p}rq_success::${Math.max(0, h.total - h.failures)}\n`;
      out += `${p}rq_total::${h.total}\n`;
      out += `${p}health_flags::${healthFlags(h)}\n`;
      out += `${p}weight::${h.weight ?? 1}\n`;
    }
  }
  return out;
}

function clustersJson(o: Pick<AdminOptions, "config" | "clusters">): unknown {
  const config = o.config();
  if (!config) return { cluster_statuses: [] };
  return {
    cluster_statuses: [...config.clusters.keys()].sort().flatMap((name) => {
      const c = o.clusters.get(name);
      return c
        ? [{ name, host_statuses: c.hosts().map((h) => ({ ...h, health_flags: healthFlags(h) })) }]
        : [];
    }),
  };
}
