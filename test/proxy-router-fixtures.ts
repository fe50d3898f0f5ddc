// Builders of compiled runtime config (what the config layer produces from xDS) and a harness that runs a
// real sidecar data path (listener manager + the real cluster manager) against real servers on 127.0.0.1.
import { once } from "node:events";
import {
  type Agent,
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { type ClientHttp2Session, connect as http2Connect } from "node:http2";
import { createServer, type Server } from "node:net";
import type {
  Cluster,
  DirectResponseAction,
  Endpoint,
  EndpointSet,
  HeaderMutation,
  HttpFilter,
  HttpListenerConfig,
  Listener,
  RedirectAction,
  RetryPolicy,
  Route,
  RouteAction,
  RouteMatch,
  RouteTable,
  RuntimeConfig,
  TcpListenerConfig,
  VirtualHost,
} from "../src/proxy/config/types.js";
import {
  type ApplyResult,
  ListenerManager,
  type ListenerManagerOptions,
} from "../src/proxy/listeners/manager.js";
import type { StreamInfo } from "../src/proxy/router/stream-info.js";
import { createClusterManager, type SkeinClusterManager } from "../src/proxy/upstream/cluster-manager.js";

export const noMutation = (): HeaderMutation => ({ add: [], remove: [] });

export function prefixMatch(value = "/", extra: Partial<RouteMatch> = {}): RouteMatch {
  return { path: { kind: "prefix", value, caseSensitive: true }, headers: [], queryParameters: [], ...extra };
}

export function routeAction(
  clusters:
    | string
    | { name: string; weight: number; requestHeaders?: HeaderMutation; responseHeaders?: HeaderMutation }[],
  extra: Partial<RouteAction> = {},
): RouteAction {
  const list =
    typeof clusters === "string" ? [{ name: clusters, weight: 1 }] : clusters.map((c) => ({ ...c }));
  const wc = list.map((c) => ({
    name: c.name,
    weight: c.weight,
    requestHeaders: (c as { requestHeaders?: HeaderMutation }).requestHeaders ?? noMutation(),
    responseHeaders: (c as { responseHeaders?: HeaderMutation }).responseHeaders ?? noMutation(),
  }));
  return {
    kind: "route",
    clusters: wc,
    totalWeight: wc.reduce((s, c) => s + c.weight, 0),
    timeoutMs: 0,
    hashPolicies: [],
    mirrors: [],
    ...extra,
  };
}

export function route(
  name: string,
  match: RouteMatch,
  action: RouteAction | RedirectAction | DirectResponseAction,
  extra: Partial<Route> = {},
): Route {
  return {
    name,
    match,
    action,
    requestHeaders: noMutation(),
    responseHeaders: noMutation(),
    filterConfig: new Map(),
    ...extra,
  };
}

export function virtualHost(
  name: string,
  domains: string[],
  routes: Route[],
  extra: Partial<VirtualHost> = {},
): VirtualHost {
  return {
    name,
    domains,
    routes,
    requestHeaders: noMutation(),
    responseHeaders: noMutation(),
    filterConfig: new Map(),
    ...extra,
  };
}

/** Indexes domains the way the config layer does (exact, `*suffix`, `prefix*`, `*`). */
export function routeTable(
  name: string,
  virtualHosts: VirtualHost[],
  extra: Partial<RouteTable> = {},
): RouteTable {
  const table: RouteTable = {
    name,
    virtualHosts,
    exact: new Map(),
    suffixes: [],
    prefixes: [],
    requestHeaders: noMutation(),
    responseHeaders: noMutation(),
    ...extra,
  };
  for (const vh of virtualHosts) {
    for (const d of vh.domains) {
      const domain = d.toLowerCase();
      if (domain === "*") table.catchAll = vh;
      else if (domain.startsWith("*")) table.suffixes.push({ suffix: domain.slice(1), host: vh });
      else if (domain.endsWith("*")) table.prefixes.push({ prefix: domain.slice(0, -1), host: vh });
      else table.exact.set(domain, vh);
    }
  }
  table.suffixes.sort((a, b) => b.suffix.length - a.suffix.length);
  table.prefixes.sort((a, b) => b.prefix.length - a.prefix.length);
  return table;
}

export function retryPolicy(
  retryOn: string[],
  numRetries: number,
  extra: Partial<RetryPolicy> = {},
): RetryPolicy {
  return {
    retryOn: new Set(retryOn),
    numRetries,
    perTryTimeoutMs: 0,
    retriableStatusCodes: new Set(),
    backoffBaseMs: 5,
    backoffMaxMs: 50,
    avoidPreviousHosts: false,
    hostSelectionRetryMaxAttempts: 1,
    ...extra,
  };
}

export function httpListener(
  name: string,
  address: string,
  port: number,
  routes: RouteTable | string,
  extra: Partial<HttpListenerConfig> = {},
  filters: HttpFilter[] = [
    { name: "envoy.filters.http.router", config: { kind: "router", suppressEnvoyHeaders: false } },
  ],
): Listener {
  const config: HttpListenerConfig = {
    kind: "http",
    statPrefix: name,
    filters,
    acceptAbsoluteUrls: true,
    generateRequestId: true,
    idleTimeoutMs: 0,
    upgrades: new Set(),
    ...(typeof routes === "string" ? { routeConfigName: routes } : { routes }),
    ...extra,
  };
  return { name, address, port, direction: "outbound", bind: true, config };
}

export function tcpListener(
  name: string,
  address: string,
  port: number,
  clusters: { name: string; weight: number }[],
  idleTimeoutMs = 0,
): Listener {
  const config: TcpListenerConfig = { kind: "tcp", statPrefix: name, clusters, idleTimeoutMs };
  return { name, address, port, direction: "outbound", bind: true, config };
}

export function endpoint(port: number, address = "127.0.0.1", extra: Partial<Endpoint> = {}): Endpoint {
  return { address, port, weight: 1, healthy: true, locality: "", priority: 0, ...extra };
}

export function cluster(name: string, extra: Partial<Cluster> = {}): Cluster {
  return {
    name,
    type: "EDS",
    edsServiceName: name,
    lbPolicy: "ROUND_ROBIN",
    connectTimeoutMs: 1000,
    http2: false,
    useDownstreamProtocol: false,
    maxRequestsPerConnection: 0,
    idleTimeoutMs: 60_000,
    circuitBreakers: { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 },
    panicThreshold: 50,
    ...extra,
  };
}

export interface ConfigParts {
  listeners: Listener[];
  routes?: RouteTable[];
  clusters: Cluster[];
  endpoints: Record<string, Endpoint[]>;
}

export function runtimeConfig(parts: ConfigParts): RuntimeConfig {
  const endpoints = new Map<string, EndpointSet>();
  for (const [name, eps] of Object.entries(parts.endpoints))
    endpoints.set(name, { clusterName: name, endpoints: eps });
  return {
    listeners: new Map(parts.listeners.map((l) => [l.name, l])),
    routes: new Map((parts.routes ?? []).map((r) => [r.name, r])),
    clusters: new Map(parts.clusters.map((c) => [c.name, c])),
    endpoints,
    versions: {},
  };
}

/** A sidecar data path: the real cluster manager and the listener manager, fed one RuntimeConfig at a time. */
export class Sidecar {
  readonly clusters: SkeinClusterManager;
  readonly listeners: ListenerManager;
  readonly completed: StreamInfo[] = [];
  config: RuntimeConfig | undefined;

  constructor(opts: Partial<ListenerManagerOptions> = {}) {
    this.clusters = createClusterManager();
    this.listeners = new ListenerManager({
      clusters: this.clusters,
      onRequestComplete: (info) => this.completed.push(info),
      ...opts,
    });
  }

  async apply(config: RuntimeConfig): Promise<ApplyResult> {
    this.config = config;
    this.clusters.update(config.clusters, config.endpoints);
    const result = await this.listeners.apply(config);
    if (result.failed.length > 0)
      throw new Error(result.failed.map((f) => `${f.code}: ${f.message}`).join("; "));
    return result;
  }

  async close(): Promise<void> {
    await this.listeners.close();
    await this.clusters.close(100);
  }
}

/** A port nobody listens on (bound then released). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const s: Server = createServer();
  s.listen(0, host);
  await once(s, "listening");
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, "close");
  return port;
}

/** Polls until `pred` holds. */
export async function until(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// ── Upstreams and clients ────────────────────────────────────────────────────────────────────────────

export interface Echo {
  name: string;
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface Upstream {
  port: number;
  /** Requests seen, in order. */
  seen: Echo[];
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 server that answers each request with what it received as JSON (`Echo`), after `handler`
 * had its say: it may answer by itself (return true) or delay.
 */
export async function echoServer(
  name: string,
  handler?: (req: IncomingMessage, res: ServerResponse, seen: Echo[]) => boolean | Promise<boolean>,
): Promise<Upstream> {
  const seen: Echo[] = [];
  const server = createHttpServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const echo: Echo = {
      name,
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      body: Buffer.concat(chunks).toString(),
    };
    seen.push(echo);
    if (handler && (await handler(req, res, seen))) return;
    const body = JSON.stringify(echo);
    res.writeHead(200, {
      "content-type": "application/json",
      "x-upstream": name,
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as { port: number }).port,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP/1.1 request (a fresh connection unless an agent is given). */
export function request(
  address: string,
  port: number,
  opts: {
    method?: string;
    path?: string;
    headers?: Record<string, string | string[]>;
    body?: string | Buffer;
    agent?: Agent;
  },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const r = httpRequest(
      {
        host: address,
        port,
        method: opts.method ?? (opts.body !== undefined ? "POST" : "GET"),
        path: opts.path ?? "/",
        headers: opts.headers,
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on("error", reject);
      },
    );
    r.on("error", reject);
    r.end(opts.body);
  });
}

/** One HTTP/2 request on `session`; resolves with headers, body and trailers. */
export function h2request(
  session: ClientHttp2Session,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<{
  headers: Record<string, unknown>;
  body: string;
  trailers: Record<string, unknown> | undefined;
}> {
  return new Promise((resolve, reject) => {
    const s = session.request(headers, { endStream: body === undefined });
    let h: Record<string, unknown> = {};
    let trailers: Record<string, unknown> | undefined;
    const chunks: Buffer[] = [];
    s.on("response", (x) => {
      h = x;
    });
    s.on("trailers", (t) => {
      trailers = t;
    });
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("end", () => resolve({ headers: h, body: Buffer.concat(chunks).toString(), trailers }));
    s.on("error", reject);
    if (body !== undefined) s.end(body);
  });
}

export function h2connect(address: string, port: number): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2Connect(`http://${address}:${port}`);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}
