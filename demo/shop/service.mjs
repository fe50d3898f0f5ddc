// One small HTTP service of the demo shop, chosen by SERVICE (api-gateway, order-service,
// payment-service, inventory-service) and VERSION. It knows nothing about the mesh: it listens on
// $PORT and calls other services by name through the standard HTTP_PROXY setting, which `skein run`
// points at its sidecar. It forwards the trace headers it receives, as a meshed app must.
import { Agent, createServer, request } from "node:http";

const SERVICE = process.env.SERVICE ?? "order-service";
const VERSION = process.env.VERSION ?? "v1";
const PORT = Number(process.env.PORT ?? 8080);
// Calls to other services go to their mesh names; the sidecar resolves and balances them.
const UPSTREAM_PORT = Number(process.env.UPSTREAM_PORT ?? 8080);
// HTTP_PROXY is the standard way to send traffic through a proxy; `skein run` sets it. For http://
// URLs a client sends the absolute URL to the proxy (as curl, Go and Python do).
const proxy = process.env.HTTP_PROXY ?? process.env.http_proxy;
const via = proxy ? new URL(proxy) : undefined;

const keepAlive = new Agent({ keepAlive: true });

const FORWARDED = [
  "x-request-id",
  "traceparent",
  "tracestate",
  "b3",
  "x-b3-traceid",
  "x-b3-spanid",
  "x-b3-parentspanid",
  "x-b3-sampled",
  "x-b3-flags",
  "x-canary",
];

function call(service, path, incoming) {
  const headers = {};
  for (const h of FORWARDED) if (incoming[h]) headers[h] = incoming[h];
  const url = `http://${service}:${UPSTREAM_PORT}${path}`;
  const target = via
    ? {
        host: via.hostname,
        port: Number(via.port || 80),
        path: url,
        headers: { ...headers, host: `${service}:${UPSTREAM_PORT}` },
      }
    : { host: service, port: UPSTREAM_PORT, path, headers };
  return new Promise((resolve, reject) => {
    const req = request({ ...target, method: "GET", agent: keepAlive }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => {
        text += c;
      });
      res.on("end", () => {
        let body;
        try {
          body = JSON.parse(text);
        } catch {
          body = { error: text.trim() };
        }
        resolve({ status: res.statusCode, ...body });
      });
    });
    req.setTimeout(15_000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

const handlers = {
  "api-gateway": async (id, headers) => ({
    order: await call("order-service.production", `/api/v1/orders/${id}`, headers),
  }),
  "order-service": async (id, headers) => {
    const [payment, inventory] = await Promise.all([
      call("payment-service.production", `/api/v1/payments/${id}`, headers),
      call("inventory-service.production", `/api/v1/inventory/${id}`, headers),
    ]);
    return { payment, inventory };
  },
  "payment-service": async (id) => ({ paid: Number(id) % 7 !== 0 }),
  "inventory-service": async (id) => ({ inStock: Number(id) % 5 !== 0 }),
};

const server = createServer(async (req, res) => {
  if (req.url === "/health") {
    res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    return;
  }
  const m = /^\/api\/v1\/[a-z]+\/(\d+)$/.exec(req.url ?? "");
  if (!m) {
    res
      .writeHead(404, { "content-type": "application/json" })
      .end(`${JSON.stringify({ error: "not found" })}\n`);
    return;
  }
  try {
    const result = await handlers[SERVICE](m[1], req.headers);
    const failed = Object.values(result).some((r) => r && typeof r === "object" && r.status >= 500);
    res
      .writeHead(failed ? 502 : 200, { "content-type": "application/json" })
      .end(`${JSON.stringify({ service: SERVICE, version: VERSION, ...result })}\n`);
  } catch (err) {
    res
      .writeHead(502, { "content-type": "application/json" })
      .end(`${JSON.stringify({ service: SERVICE, version: VERSION, error: String(err.message ?? err) })}\n`);
  }
});

server.listen(PORT, "127.0.0.1");
const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
