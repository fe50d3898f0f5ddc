// The control plane's HTTP API (:15080): what `skein apply/get/delete/proxy-status` talk to, plus
// debug endpoints. JSON in and out; configuration changes take the same path as file changes.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type Diagnostic, SkeinError } from "../lib/diagnostics.js";
import { CA_HTTP_STATUS, CaCodes } from "./ca/codes.js";
import type { WorkloadCertificates } from "./ca/issuer.js";
import type { ConfigPipeline } from "./config.js";
import type { Registry } from "./registry.js";
import { tapTargets } from "./tap-targets.js";

export interface ProxyTypeStatus {
  sent?: string;
  acked?: string;
  nack?: { version: string; message: string; at: string };
}

export interface ProxyStatusRow {
  id: string;
  kind: "sidecar" | "proxyless";
  namespace: string;
  workload?: string;
  connectedAt: string;
  /** By short type name: lds, rds, cds, eds. */
  types: Record<string, ProxyTypeStatus>;
}

export interface ControlPlaneView {
  pipeline: ConfigPipeline;
  registry: Registry;
  /** Where proxies reach xDS (`host:port`), for `skein run`. */
  xdsAddress(): string;
  /** xDS over TLS (15012), when served. */
  xdsTlsAddress?(): string | undefined;
  /** A free workload address for `skein run` (local mode). */
  allocateAddress(): string | undefined;
  proxies(): ProxyStatusRow[];
  configDump(proxyId: string): unknown | undefined;
  /** Bootstrap tokens and workload certificate signing. */
  certificates: WorkloadCertificates;
  /** The dashboard's page, assets and JSON (src/control-plane/dashboard.ts); false: not one of its paths. */
  dashboard?: (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean>;
}

const MAX_BODY = 4 * 1024 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY)
      throw new HttpError(413, "SKEIN_E_API_TOO_LARGE", `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

async function jsonBody(req: IncomingMessage): Promise<unknown> {
  const text = await body(req);
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, CaCodes.REQUEST, "the request body is not JSON");
  }
}

/** The token of `Authorization: Bearer <token>`, if any. */
function bearer(req: IncomingMessage): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  return m?.[1];
}

// Bootstrap tokens are handed out on this host only (to `skein run`), whatever address the API listens on.
function isLoopback(address: string | undefined): boolean {
  return !!address && (address === "::1" || /^(::ffff:)?127\./.test(address));
}

const errorsOf = (d: readonly Diagnostic[]) => d.filter((x) => x.severity === "error").length;

export function createHttpApi(view: ControlPlaneView): Server {
  const { pipeline, registry } = view;
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const parts = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const route = `${req.method} /${parts.slice(0, 3).join("/")}`;

    if (req.method === "GET" && url.pathname === "/healthz") return send(res, 200, { ok: true });
    if (req.method === "GET" && url.pathname === "/ready") {
      return send(res, pipeline.current ? 200 : 503, { ready: Boolean(pipeline.current) });
    }
    if (route === "GET /api/v1/status") {
      const c = pipeline.current;
      return send(res, 200, {
        version: c?.version,
        xds: view.xdsAddress(),
        xdsTls: view.xdsTlsAddress?.(),
        acceptedAt: c?.acceptedAt,
        resources: c?.resources.length ?? 0,
        warnings: c?.diagnostics ?? [],
        rejections: pipeline.rejections,
        lastRejection: pipeline.lastRejection,
        proxies: view.proxies().length,
        workloads: registry.instances().length,
      });
    }
    if (route === "GET /api/v1/resources") {
      const kind = url.searchParams.get("kind")?.toLowerCase();
      const ns = url.searchParams.get("namespace");
      const list = (pipeline.current?.resources ?? [])
        .filter(
          (r) => !kind || r.kind.toLowerCase() === kind || r.kind.toLowerCase().split("::").at(-1) === kind,
        )
        .filter((r) => !ns || r.namespace === ns)
        .map((r) => ({
          apiVersion: r.apiVersion,
          kind: r.kind,
          namespace: r.namespace,
          name: r.name,
          source: { file: r.source.file, line: r.source.line },
          document: r.raw,
        }));
      return send(res, 200, { version: pipeline.current?.version, items: list });
    }
    if (route === "POST /api/v1/apply") {
      const name = url.searchParams.get("name");
      if (!name || !/^[\w.@-]{1,200}$/.test(name))
        throw new HttpError(400, "SKEIN_E_API_USAGE", "give the applied file a name: ?name=<file name>");
      const outcome = await pipeline.apply(name, await body(req));
      return send(res, outcome.accepted ? 200 : 422, { ...outcome, errors: errorsOf(outcome.diagnostics) });
    }
    if (req.method === "DELETE" && parts[0] === "api" && parts[1] === "v1" && parts[2] === "resources") {
      const [kind, namespace, name] = parts.slice(3);
      if (!kind || !namespace || !name)
        throw new HttpError(400, "SKEIN_E_API_USAGE", "DELETE /api/v1/resources/<kind>/<namespace>/<name>");
      const outcome = await pipeline.delete(kind, namespace, name);
      if (!outcome.found) {
        const inFiles = pipeline.current?.resources.find(
          (r) => r.kind === kind && r.namespace === namespace && r.name === name,
        );
        throw new HttpError(
          inFiles ? 409 : 404,
          inFiles ? "SKEIN_E_API_FILE_OWNED" : "SKEIN_E_API_NOT_FOUND",
          inFiles
            ? `${kind} ${namespace}/${name} is defined in ${inFiles.source.file}: edit or remove it there`
            : `${kind} ${namespace}/${name} was not applied through the API`,
        );
      }
      return send(res, outcome.accepted ? 200 : 422, { ...outcome, errors: errorsOf(outcome.diagnostics) });
    }
    if (route === "POST /api/v1/addresses") {
      const address = view.allocateAddress();
      if (!address)
        throw new HttpError(
          503,
          "SKEIN_E_API_NO_ADDRESS",
          "no free workload address left in 127.0.1.1–127.0.255.254",
        );
      return send(res, 201, { address });
    }
    if (url.pathname === "/api/v1/workloads/token" && (req.method === "POST" || req.method === "DELETE")) {
      if (!isLoopback(req.socket.remoteAddress))
        throw new HttpError(
          403,
          CaCodes.NOT_LOCAL,
          "bootstrap tokens are issued and revoked for callers on the control plane's host only",
        );
      if (req.method === "POST")
        return send(res, 201, await view.certificates.issueToken(await jsonBody(req)));
      const token = bearer(req);
      return send(res, 200, await view.certificates.revokeTokens(token, token ? {} : await jsonBody(req)));
    }
    if (route === "POST /api/v1/certificates") {
      // The raw body: it is parsed only after the token is checked, so an unauthenticated caller learns nothing.
      const token = bearer(req);
      return send(res, 201, await view.certificates.certificate(token, token ? await body(req) : undefined));
    }
    if (route === "GET /api/v1/ca") {
      const ca = view.certificates.ca;
      return send(res, 200, {
        rootCert: ca.rootCert,
        rootFingerprint: ca.rootFingerprint,
        subject: ca.subject,
        source: ca.source,
      });
    }
    if (route === "GET /debug/proxy_status") return send(res, 200, { proxies: view.proxies() });
    if (route === "GET /debug/registry") return send(res, 200, { workloads: registry.instances() });
    if (route === "GET /debug/tap_targets") {
      const service = url.searchParams.get("service");
      const namespace = url.searchParams.get("namespace") ?? "default";
      if (!service) throw new HttpError(400, "SKEIN_E_API_USAGE", "GET /debug/tap_targets?service=<name>");
      const model = pipeline.current?.model;
      const found = model && tapTargets(model, registry.instances(), service, namespace);
      if (!found)
        throw new HttpError(404, "SKEIN_E_API_NOT_FOUND", `no service ${service} in namespace ${namespace}`);
      return send(res, 200, found);
    }
    if (route === "GET /debug/config_dump") {
      const id = url.searchParams.get("proxy");
      if (!id) throw new HttpError(400, "SKEIN_E_API_USAGE", "GET /debug/config_dump?proxy=<node id>");
      const dump = view.configDump(id);
      if (dump === undefined)
        throw new HttpError(404, "SKEIN_E_API_NOT_FOUND", `no proxy ${id} is connected`);
      return send(res, 200, dump);
    }
    if (view.dashboard && (await view.dashboard(req, res, url))) return;
    throw new HttpError(404, "SKEIN_E_API_NOT_FOUND", `no such endpoint: ${req.method} ${url.pathname}`);
  };
  return createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) send(res, err.status, { code: err.code, message: err.message });
      else if (err instanceof SkeinError && CA_HTTP_STATUS[err.code])
        send(res, CA_HTTP_STATUS[err.code] as number, { code: err.code, message: err.message });
      else send(res, 500, { code: "SKEIN_E_API_INTERNAL", message: (err as Error).message });
    });
  });
}

export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}
