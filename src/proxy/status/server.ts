// The sidecar's status port (Istio's pilot-agent port 15020), on the workload's address so Prometheus can
// reach it: `/stats/prometheus` (Istio's standard metrics, the proxy's Envoy-named internals, process
// metrics) and `/healthz/ready` (200 once the sidecar has its config and listeners, 503 before and while
// draining). Unlike the admin port it exposes nothing that changes or reveals config.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const STATUS_PORT = 15020;

export interface StatusServerOptions {
  address: string;
  /** 0 picks a free port. */
  port: number;
  /** The exposition text and its content type. */
  metrics: () => Promise<string>;
  contentType: string;
  ready: () => boolean;
}

export class StatusServer {
  private readonly server: Server;

  constructor(private readonly opts: StatusServerOptions) {
    this.server = createServer((req, res) => void this.handle(req, res));
  }

  listen(): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen({ host: this.opts.address, port: this.opts.port }, () => {
        this.server.off("error", reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  address(): { address: string; port: number } | undefined {
    const a = this.server.address();
    return a && typeof a === "object" ? { address: a.address, port: a.port } : undefined;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? "/", "http://status").pathname;
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "use GET\n");
    switch (path) {
      case "/stats/prometheus":
      case "/metrics":
        try {
          return send(res, 200, await this.opts.metrics(), this.opts.contentType);
        } catch (err) {
          return send(res, 500, `cannot collect metrics: ${(err as Error).message}\n`);
        }
      case "/healthz/ready":
        return this.opts.ready() ? send(res, 200, "") : send(res, 503, "not ready\n");
      default:
        return send(res, 404, "not found; try /stats/prometheus or /healthz/ready\n");
    }
  }
}

function send(res: ServerResponse, status: number, body: string, type = "text/plain; charset=utf-8"): void {
  res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
  res.end(res.req.method === "HEAD" ? undefined : body);
}
