// End-to-end harness for the resilience tests (issue 9): a real ControlPlane watching a directory of mesh
// YAML, or a hand-fed ADS server serving translated (and patched) resources; a real Sidecar with its own
// loopback address; instrumented HTTP upstreams on their own addresses; and an HTTP/1.1 client that sends
// through the sidecar's outbound listener with a Host header, as applications do.
import { mkdtempSync, writeFileSync } from "node:fs";
import {
  Agent,
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ControlPlane } from "../src/control-plane/control-plane.js";
import { createLogger } from "../src/lib/log.js";
import type { StreamInfo } from "../src/proxy/router/stream-info.js";
import { Sidecar } from "../src/proxy/sidecar.js";
import { type ProxyResources, translate } from "../src/translate/index.js";
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from "../src/xds/protos.js";
import { AdsServer } from "../src/xds/server.js";
import { Snapshot, SnapshotCache } from "../src/xds/snapshot.js";
import { check } from "./helpers.js";

export const quiet = createLogger("test", "error");

export interface Upstream {
  readonly address: string;
  readonly port: number;
  /** Requests received so far. */
  readonly received: number;
  /** Requests being handled now, and the most there ever were at once. */
  readonly inFlight: number;
  readonly maxInFlight: number;
  /** What each request looked like (method, url, host, headers, body), in arrival order. */
  readonly seen: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[];
  close(): Promise<void>;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>;

/** An HTTP/1.1 server on `address` that counts requests and concurrency; `handler` answers (default 200 "ok"). */
export async function upstream(address: string, handler?: Handler): Promise<Upstream> {
  let received = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const seen: Upstream["seen"] = [];
  const server: Server = createServer(async (req, res) => {
    received++;
    inFlight++;
    if (inFlight > maxInFlight) maxInFlight = inFlight;
    res.once("close", () => inFlight--);
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString();
    seen.push({ method: req.method ?? "", url: req.url ?? "", headers: req.headers, body });
    if (handler) await handler(req, res, body);
    else res.writeHead(200, { "content-type": "text/plain" }).end("ok");
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address,
    port,
    get received() {
      return received;
    },
    get inFlight() {
      return inFlight;
    },
    get maxInFlight() {
      return maxInFlight;
    },
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * The node a sidecar for `app` in `namespace` presents: the control plane registers its workload from it.
 * `ports` are SKEIN_PORTS (`app:<port name>` → where the application listens on 127.0.0.1).
 */
export function sidecarNode(address: string, app: string, namespace: string, ports?: Record<string, number>) {
  return {
    id: `sidecar~${address}~${app}.${namespace}~${namespace}.svc.cluster.local`,
    metadata: {
      NAMESPACE: namespace,
      LABELS: { app },
      SERVICE_ACCOUNT: app,
      INSTANCE_IPS: address,
      ...(ports && { SKEIN_PORTS: ports }),
    },
  };
}

export interface RunningSidecar {
  sidecar: Sidecar;
  address: string;
  /** StreamInfo of every finished request, in completion order. */
  completed: StreamInfo[];
  stop(): Promise<void>;
}

export async function startSidecar(
  xds: string,
  address: string,
  app = "client",
  namespace = "production",
  ports?: Record<string, number>,
): Promise<RunningSidecar> {
  const completed: StreamInfo[] = [];
  // A workload identity from the control plane's CA, as `skein run` gets one: peers talk mTLS to it.
  const api = apiByXds.get(xds);
  const token = api
    ? (
        (await (
          await fetch(`${api}/api/v1/workloads/token`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ namespace, serviceAccount: app }),
          })
        ).json()) as { token: string }
      ).token
    : undefined;
  const sidecar = new Sidecar({
    xds,
    node: sidecarNode(address, app, namespace, ports),
    adminAddress: address,
    adminPort: 0,
    drainMs: 200,
    logger: quiet,
    onRequestComplete: (info) => completed.push(info),
    ...(api && token && { ca: api, token }),
  });
  await sidecar.start();
  await until("the sidecar is ready", () => sidecar.ready());
  return { sidecar, address, completed, stop: () => sidecar.stop() };
}

/** The HTTP API of each control plane started here, by its xDS address (sidecars get their tokens there). */
const apiByXds = new Map<string, string>();

/** A control plane watching a fresh directory that holds `files`. */
export async function startControlPlane(
  files: Record<string, string>,
): Promise<{ cp: ControlPlane; xds: string; write(name: string, text: string): void }> {
  const dir = mkdtempSync(join(tmpdir(), "skein-resilience-"));
  const write = (name: string, text: string) => writeFileSync(join(dir, name), text);
  for (const [name, text] of Object.entries(files)) write(name, text);
  const cp = new ControlPlane({
    configDir: dir,
    host: "127.0.0.1",
    xdsPort: 0,
    httpPort: 0,
    metricsPort: 0,
    logger: quiet,
  });
  await cp.start();
  if (!cp.pipeline.current) throw new Error("the mesh configuration was rejected");
  apiByXds.set(`127.0.0.1:${cp.ports.xds}`, `http://127.0.0.1:${cp.ports.http}`);
  return { cp, xds: `127.0.0.1:${cp.ports.xds}`, write };
}

/**
 * A hand-fed control plane: the control plane's own translation of `yaml` for the sidecar at `address`,
 * passed through `patch` (to add what the mesh APIs cannot say, like header-controlled faults).
 */
export async function startAdsServer(
  yaml: string,
  address: string,
  patch: (r: ProxyResources) => void,
  app = "client",
  namespace = "production",
): Promise<{ ads: AdsServer; xds: string }> {
  const built = check(yaml);
  if (!built.model) throw new Error("the mesh configuration does not build");
  const node = sidecarNode(address, app, namespace);
  const workloads = built.model.workloads.map((w) => ({
    id: w.name,
    name: w.name,
    namespace: w.namespace,
    labels: w.labels,
    serviceAccount: w.serviceAccount,
    address: w.address as string,
    ports: Object.fromEntries(w.ports.map((p) => [p.name, p.number])),
    origin: "static" as const,
    healthy: true,
  }));
  const self = {
    id: node.id,
    name: app,
    namespace,
    labels: { app },
    serviceAccount: app,
    address,
    ports: {},
    origin: "proxy" as const,
    healthy: true,
  };
  const resources = translate(
    { version: "1", model: built.model, workloads: [...workloads, self] },
    { id: node.id, kind: "sidecar", namespace, workload: self },
  );
  patch(resources);
  const byName = <T extends { name?: string; clusterName?: string }>(l: T[]) =>
    new Map(l.map((x) => [(x.name ?? x.clusterName) as string, x]));
  const cache = new SnapshotCache();
  const ads = new AdsServer({ cache, address: "127.0.0.1:0" });
  const port = await ads.listen();
  cache.setSnapshot(
    node.id,
    new Snapshot({
      [LISTENER]: byName(resources.listeners),
      [ROUTE]: byName(resources.routes),
      [CLUSTER]: byName(resources.clusters),
      [ENDPOINT]: byName(resources.endpoints),
    }),
  );
  return { ads, xds: `127.0.0.1:${port}` };
}

export interface Reply {
  status: number;
  headers: IncomingMessage["headers"];
  body: string;
  ms: number;
}

const agent = new Agent({ keepAlive: true, maxSockets: 2000 });

/** One request through the sidecar at `proxy` (its 15001 listener) for `host` (with port), HTTP_PROXY style. */
export function send(
  proxy: string,
  host: string,
  path = "/",
  opts: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Reply> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: proxy,
        port: 15001,
        method: opts.method ?? (opts.body !== undefined ? "POST" : "GET"),
        path,
        headers: { host, ...opts.headers },
        agent,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
            ms: performance.now() - start,
          }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(opts.body);
  });
}

/** `n` requests made by `concurrency` workers; results in completion order. */
export async function sendMany(
  n: number,
  concurrency: number,
  one: (i: number) => Promise<Reply>,
): Promise<Reply[]> {
  const out: Reply[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) out.push(await one(next++));
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

export async function until(
  what: string,
  pred: () => boolean | Promise<boolean>,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(20);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A Service with one HTTP port 8080 and one static Workload per upstream, labelled `version: v<i+1>`. */
export function serviceYaml(name: string, upstreams: readonly Upstream[], namespace = "production"): string {
  let out = `apiVersion: skein.dev/v1alpha1
kind: Service
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  selector: { app: ${name} }
  ports: [{ name: http, port: 8080 }]
`;
  upstreams.forEach((u, i) => {
    out += `---
apiVersion: skein.dev/v1alpha1
kind: Workload
metadata: { name: ${name}-${i + 1}, namespace: ${namespace}, labels: { app: ${name}, version: v${i + 1} } }
spec: { address: ${u.address}, ports: { http: ${u.port} } }
`;
  });
  return out;
}

/**
 * Open-loop load: `n` requests started in batches of `batch` every `gapMs`, whatever the earlier ones are
 * doing (so injected delays overlap instead of queueing); results in start order.
 */
export async function sendPaced(
  n: number,
  batch: number,
  gapMs: number,
  one: (i: number) => Promise<Reply>,
): Promise<Reply[]> {
  const all: Promise<Reply>[] = [];
  for (let i = 0; i < n; i++) {
    all.push(one(i));
    if ((i + 1) % batch === 0) await sleep(gapMs);
  }
  return Promise.all(all);
}
