// `skein up`: the demo mesh on one machine. Starts the control plane on a working copy of the demo's
// configuration, runs each service of the demo shop under `skein run` (so each gets its sidecar), drives
// a gentle steady load through the api-gateway, and shows a live one-screen summary. Ctrl-C stops it all.
import { type ChildProcess, spawn } from "node:child_process";
import { cpSync, createWriteStream, mkdirSync, rmSync } from "node:fs";
import { request } from "node:http";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Command, Option } from "commander";
import { ControlPlane } from "../control-plane/control-plane.js";
import { createLogger } from "../lib/log.js";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface DemoService {
  service: string;
  version: string;
}

/** The seed's shop: order-service v1 (stable) and v2 (canary) behind the gateway. */
const SHOP: DemoService[] = [
  { service: "inventory-service", version: "v1" },
  { service: "payment-service", version: "v1" },
  { service: "order-service", version: "v1" },
  { service: "order-service", version: "v2" },
  { service: "api-gateway", version: "v1" },
];
const NAMESPACE = "production";

interface UpOptions {
  config: string;
  workdir: string;
  load: boolean;
  rps: number;
  portBase: number;
}

export function upCommand(): Command {
  return new Command("up")
    .description(
      "run the demo mesh: control plane, the shop's services with sidecars, steady load, live summary",
    )
    .addOption(
      new Option(
        "-c, --config <dir>",
        "mesh configuration to start from (copied to the working directory, then watched)",
      ).default(join(ROOT, "examples", "mesh"), "examples/mesh"),
    )
    .option("--workdir <dir>", "where the working copy, state and logs go", ".skein/up")
    .option("--no-load", "do not send the steady demo load")
    .addOption(new Option("--rps <n>", "demo load, requests per second").argParser(Number).default(10))
    .addOption(
      new Option("--port-base <n>", "control plane ports are base+10 (xDS), base+80 (API), base+14 (metrics)")
        .argParser(Number)
        .default(15000),
    )
    .action(async (opts: UpOptions) => {
      process.exitCode = await up(opts);
    });
}

type Stats = Map<string, number>;

async function fetchJson(url: string): Promise<unknown> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  return res.json();
}

async function up(opts: UpOptions): Promise<number> {
  const workdir = resolve(opts.workdir);
  const config = join(workdir, "config");
  const logs = join(workdir, "logs");
  // A fresh working copy each time: edits made during a session are the user's to play with.
  rmSync(workdir, { recursive: true, force: true });
  mkdirSync(logs, { recursive: true });
  cpSync(opts.config, config, { recursive: true });

  const say = (m: string) => process.stdout.write(`${m}\n`);
  const cpLog = createWriteStream(join(logs, "control-plane.log"));
  const cp = new ControlPlane({
    configDir: config,
    stateDir: join(workdir, "state"),
    host: "127.0.0.1",
    xdsPort: opts.portBase + 10,
    httpPort: opts.portBase + 80,
    metricsPort: opts.portBase + 14,
    xdsTlsPort: opts.portBase + 12,
    logger: createLogger("control-plane", "info", (line) => cpLog.write(line)),
  });
  try {
    await cp.start();
  } catch (err) {
    process.stderr.write(
      `skein up: cannot start the control plane: ${(err as Error).message}\n    → is another \`skein up\` running? try --port-base\n`,
    );
    return 1;
  }
  const api = `http://127.0.0.1:${cp.ports.http}`;
  say(
    `control plane   ${api}  (xDS 127.0.0.1:${cp.ports.xds}, over TLS :${cp.ports.xdsTls}, metrics http://127.0.0.1:${cp.ports.metrics}/metrics)`,
  );

  const children: ChildProcess[] = [];
  let stopping = false;
  const main = join(ROOT, "dist", "cli", "main.js");
  for (const s of SHOP) {
    const log = createWriteStream(join(logs, `${s.service}-${s.version}.log`));
    const child = spawn(
      process.execPath,
      [
        main,
        "run",
        "--service",
        s.service,
        "--version",
        s.version,
        "-n",
        NAMESPACE,
        "--port",
        "http=8080",
        "--drain",
        "3000",
        "--control-plane",
        api,
        "--",
        process.execPath,
        join(ROOT, "demo", "shop", "service.mjs"),
      ],
      { env: { ...process.env, SERVICE: s.service, VERSION: s.version }, stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    child.on("exit", (code) => {
      if (!stopping)
        process.stderr.write(
          `skein up: ${s.service} ${s.version} exited (${code}); see ${join(logs, `${s.service}-${s.version}.log`)}\n`,
        );
    });
    children.push(child);
  }

  // Ready when every workload's proxy is connected and has ACKed its config.
  const deadline = Date.now() + 60_000;
  let gateway: string | undefined;
  while (Date.now() < deadline) {
    const ps = cp.proxyStatus();
    const synced = ps.filter((p) =>
      ["lds", "cds", "rds", "eds"].every((t) => p.types[t]?.sent && p.types[t]?.acked === p.types[t]?.sent),
    );
    gateway = cp.registry.instances().find((w) => w.labels.app === "api-gateway")?.address;
    if (synced.length >= SHOP.length && gateway) {
      // And every application answers through its sidecar (apps start after their proxies). The front door is
      // asked directly; the others over mTLS through the gateway's sidecar, as the mesh reaches them: any answer
      // but an upstream failure (502-504: app not listening yet) means the app is up, a 403 from a policy too.
      const healthy = await Promise.all(
        cp.registry.instances().map((w) =>
          w.address === gateway
            ? fetch(`http://${w.address}:8080/health`, { signal: AbortSignal.timeout(1000) }).then(
                (r) => r.ok,
                () => false,
              )
            : viaSidecar(gateway as string, `${w.labels.app}.${w.namespace}:8080`).then(
                (status) => status > 0 && (status < 502 || status > 504),
                () => false,
              ),
        ),
      );
      if (healthy.length >= SHOP.length && healthy.every(Boolean)) break;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  if (!gateway) {
    process.stderr.write(`skein up: the shop did not come up within 60 s; see the logs in ${logs}\n`);
    await shutdown();
    return 1;
  }
  const entry = `http://${gateway}:8080`;
  say(`api-gateway     ${entry}/api/v1/orders/1`);
  say(`dashboard       ${api}/   (live service graph; or: npx skein dashboard --control-plane ${api})`);
  say(`working config  ${config}   (edit a file: the mesh follows within seconds)`);
  say(`logs            ${logs}`);
  say("");
  say("Try:");
  say(
    `  curl -s ${entry}/api/v1/orders/7                       # goes to order-service v1 (90%) or v2 (10%)`,
  );
  say(`  curl -s -H 'x-canary: true' ${entry}/api/v1/orders/7   # always order-service v2`);
  say(`  npx skein get virtualservices -n ${NAMESPACE} --control-plane ${api}`);
  say(
    `  npx skein apply -f demo/fault-injection.yaml --control-plane ${api}      # 10% delayed 5 s, 5% aborted 503`,
  );
  say(
    `  npx skein delete virtualservice order-service -n ${NAMESPACE} --control-plane ${api}   # back to the file's routing`,
  );
  say(`  npx skein proxy-status --control-plane ${api}`);
  say(
    `  npx skein tap order-service -n ${NAMESPACE} --control-plane ${api}   # live requests, with who called over mTLS`,
  );
  say("Ctrl-C stops everything.");
  say("");

  // Steady load and what it saw, per second.
  const seen = { total: 0, errors: 0, v1: 0, v2: 0, lastError: "" };
  let loadTimer: NodeJS.Timeout | undefined;
  if (opts.load) {
    let n = 0;
    loadTimer = setInterval(() => {
      n++;
      const req = request(`${entry}/api/v1/orders/${n}`, { method: "GET", timeout: 20_000 }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c) => {
          body += c;
        });
        res.on("end", () => {
          seen.total++;
          if ((res.statusCode ?? 0) >= 500) {
            seen.errors++;
            seen.lastError = `${res.statusCode} ${body.trim().slice(0, 160)}`;
          }
          const v = /"order":\{[^{}]*?"version":"(v\d)"/.exec(body)?.[1];
          if (v === "v1") seen.v1++;
          else if (v === "v2") seen.v2++;
        });
      });
      req.on("timeout", () => req.destroy());
      req.on("error", (err) => {
        seen.total++;
        seen.errors++;
        seen.lastError = err.message;
      });
      req.end();
    }, 1000 / opts.rps);
  }

  // Per-service requests and errors from each sidecar's inbound listener counters.
  let previous = new Map<string, Stats>();
  const summaryTimer = setInterval(async () => {
    const now = new Map<string, Stats>();
    await Promise.all(
      cp.registry.instances().map(async (w) => {
        try {
          const body = (await fetchJson(`http://${w.address}:15000/stats?format=json`)) as {
            stats: { name: string; value: number }[];
          };
          const s: Stats = new Map();
          for (const x of body.stats) {
            // http.inbound_<address>_<port>.downstream_rq_total: summed over the workload's inbound ports.
            const m = /^http\.inbound_.*\.(downstream_rq_[a-z0-9]+)$/.exec(x.name);
            if (m?.[1]) s.set(m[1], (s.get(m[1]) ?? 0) + x.value);
          }
          now.set(`${w.labels.app}\u0000${w.labels.version ?? "-"}`, s);
        } catch {
          // a workload that is starting or stopping
        }
      }),
    );
    const rows: string[][] = [];
    for (const [key, s] of [...now].sort()) {
      const [app, version] = key.split("\u0000") as [string, string];
      const prev = previous.get(key) ?? new Map();
      const d = (n: string) => (s.get(n) ?? 0) - (prev.get(n) ?? 0);
      const rq = d("downstream_rq_total");
      const err = d("downstream_rq_5xx");
      rows.push([app, version, String(rq), rq ? `${((100 * err) / rq).toFixed(1)}%` : "-"]);
    }
    previous = now;
    const split =
      seen.v1 + seen.v2
        ? `${Math.round((100 * seen.v1) / (seen.v1 + seen.v2))}% v1 / ${Math.round((100 * seen.v2) / (seen.v1 + seen.v2))}% v2`
        : "-";
    const lines = [
      `demo load: ${seen.total} requests, ${seen.errors} errors (${seen.total ? ((100 * seen.errors) / seen.total).toFixed(1) : "0.0"}%), order-service split ${split}`,
      ...formatTable(["SERVICE", "VERSION", "RPS", "5XX"], rows),
      ...(seen.lastError ? [`last error: ${seen.lastError}`] : []),
    ];
    render(lines);
  }, 1000);

  let rendered = 0;
  function render(lines: string[]): void {
    if (process.stdout.isTTY) {
      // Redraw in place: move up over the previous summary and clear to the end of the screen.
      process.stdout.write(`${rendered ? `\x1b[${rendered}A` : ""}\x1b[0J${lines.join("\n")}\n`);
      rendered = lines.length;
    } else if (Date.now() % 10_000 < 1000) {
      process.stdout.write(`${lines.join("\n")}\n`);
    }
  }

  async function shutdown(): Promise<void> {
    stopping = true;
    if (loadTimer) clearInterval(loadTimer);
    clearInterval(summaryTimer);
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolveExit) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolveExit();
            c.once("exit", () => resolveExit());
            c.kill("SIGTERM");
            // Past the drain period (3 s) and the app's own shutdown: only then force it.
            setTimeout(() => c.kill("SIGKILL"), 20_000).unref();
          }),
      ),
    );
    await cp.stop();
    cpLog.end();
  }

  await new Promise<void>((resolveSignal) => {
    process.once("SIGINT", resolveSignal);
    process.once("SIGTERM", resolveSignal);
  });
  say("\nstopping…");
  await shutdown();
  say("stopped.");
  return 0;
}

function formatTable(header: string[], rows: string[][]): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
  return all.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("   ")
      .trimEnd(),
  );
}

/** GET /health of `authority` through the sidecar on `address` (HTTP_PROXY style); resolves with the status. */
function viaSidecar(address: string, authority: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: address,
        port: 15001,
        path: `http://${authority}/health`,
        headers: { host: authority },
        timeout: 1000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}
