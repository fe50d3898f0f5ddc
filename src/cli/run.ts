// `skein run -- <app command>`: the workload supervisor of local mode. It gets the workload an address
// from the control plane, starts its sidecar, waits until the sidecar is ready (the app never starts
// before its proxy), starts the app with the environment that puts it in the mesh, forwards signals,
// and when the app exits stops the sidecar and exits with the app's code. If the sidecar dies, the app
// is stopped rather than left running unmeshed.
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { Command, Option } from "commander";

export const EXIT_SIDECAR_FAILED = 70;

interface RunOptions {
  service: string;
  version?: string;
  namespace: string;
  serviceAccount?: string;
  port: string[];
  label: string[];
  controlPlane: string;
  readyTimeout: number;
  drain: number;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function json(url: string, init?: RequestInit): Promise<Record<string, unknown>> {
  const res = await fetch(url, init);
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok)
    throw new Error(`${init?.method ?? "GET"} ${url}: ${res.status} ${String(body.message ?? "")}`);
  return body;
}

async function waitReady(url: string, timeoutMs: number, sidecar: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (sidecar.exitCode !== null || sidecar.signalCode !== null)
      throw new Error(`the sidecar exited (${sidecar.exitCode ?? sidecar.signalCode}) before it was ready`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the sidecar was not ready within ${timeoutMs} ms (${url})`);
}

const collect = (v: string, prev: string[]) => [...prev, v];

export function runCommand(): Command {
  return new Command("run")
    .description(
      "run an application in the mesh: start its sidecar, wait until it is ready, then start the app",
    )
    .usage("--service NAME [options] -- <command> [args...]")
    .requiredOption("--service <name>", "the service this workload serves (sets the app label)")
    .option("--version <version>", "version label (e.g. v1, v2)")
    .option("-n, --namespace <ns>", "namespace", "default")
    .option("--service-account <sa>", "identity (default: the service name)")
    .option("--port <name=port>", "a service port the app serves, e.g. http=8080 (repeatable)", collect, [])
    .option("--label <key=value>", "extra workload label (repeatable)", collect, [])
    .addOption(
      new Option("--control-plane <url>", "control plane HTTP API")
        .env("SKEIN_CONTROL_PLANE")
        .default("http://127.0.0.1:15080"),
    )
    .addOption(
      new Option("--ready-timeout <ms>", "how long to wait for the sidecar")
        .argParser(Number)
        .default(30_000),
    )
    .addOption(
      new Option("--drain <ms>", "sidecar drain period when stopping").argParser(Number).default(5000),
    )
    .argument("<command...>", "the application command, after --")
    .passThroughOptions()
    .action(async (command: string[], opts: RunOptions) => {
      process.exitCode = await run(command, opts);
    });
}

async function run(command: string[], opts: RunOptions): Promise<number> {
  const say = (m: string) =>
    process.stderr.write(`skein run [${opts.service}${opts.version ? ` ${opts.version}` : ""}]: ${m}\n`);
  const ports: { name: string; port: number }[] = [];
  for (const p of opts.port.length ? opts.port : ["http=8080"]) {
    const [name, num] = p.includes("=") ? p.split("=") : ["http", p];
    const n = Number(num);
    if (!name || !Number.isInteger(n) || n < 1 || n > 65535) {
      say(`--port ${p}: write name=port, e.g. http=8080`);
      return 2;
    }
    ports.push({ name, port: n });
  }
  let status: Record<string, unknown>;
  let address: string;
  let token: string;
  const serviceAccount = opts.serviceAccount ?? opts.service;
  try {
    status = await json(`${opts.controlPlane}/api/v1/status`);
    address = String((await json(`${opts.controlPlane}/api/v1/addresses`, { method: "POST" })).address);
    // The workload's bootstrap token: what its sidecar shows the CA to get a certificate for this identity only.
    token = String(
      (
        await json(`${opts.controlPlane}/api/v1/workloads/token`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ namespace: opts.namespace, serviceAccount }),
        })
      ).token,
    );
  } catch (err) {
    say(`cannot reach the control plane at ${opts.controlPlane}: ${(err as Error).message}`);
    return 3;
  }
  const appPort = await freePort();
  const labels = [`app=${opts.service}`, ...(opts.version ? [`version=${opts.version}`] : []), ...opts.label];
  const name = `${opts.service}${opts.version ? `-${opts.version}` : ""}-${address.split(".").slice(2).join("-")}`;
  const main = fileURLToPath(new URL("./main.js", import.meta.url));
  const sidecarArgs = [
    main,
    "proxy",
    // Authenticated xDS (15012) when the control plane serves it; the sidecar connects once it has its certificate.
    ...(status.xdsTls ? ["--xds", String(status.xdsTls), "--xds-tls"] : ["--xds", String(status.xds)]),
    "--address",
    address,
    "--name",
    name,
    "--namespace",
    opts.namespace,
    "--service-account",
    serviceAccount,
    ...labels.flatMap((l) => ["--label", l]),
    ...ports.flatMap((p) => ["--port", `${p.name}=${p.port}`, "--app-port", `${p.name}=${appPort}`]),
  ];
  const sidecar = spawn(
    process.execPath,
    [...process.execArgv, ...sidecarArgs, "--parent-pid", String(process.pid)],
    {
      stdio: ["ignore", "inherit", "inherit"],
      // In the environment, not the arguments: other users can read a process's command line.
      env: { ...process.env, SKEIN_CA: opts.controlPlane, SKEIN_BOOTSTRAP_TOKEN: token },
    },
  );
  let stopping = false;
  let app: ChildProcess | undefined;
  const sidecarExit = new Promise<number>((resolve) =>
    sidecar.on("exit", (code, signal) => {
      if (!stopping) {
        say(`the sidecar stopped unexpectedly (${code ?? signal}); stopping the application`);
        app?.kill("SIGTERM");
        setTimeout(() => app?.kill("SIGKILL"), 5000).unref();
      }
      resolve(code ?? 1);
    }),
  );
  try {
    await waitReady(`http://${address}:15000/ready`, opts.readyTimeout, sidecar);
  } catch (err) {
    say((err as Error).message);
    stopping = true;
    sidecar.kill("SIGTERM");
    await sidecarExit;
    return EXIT_SIDECAR_FAILED;
  }
  say(`sidecar ready on ${address} (outbound :15001, admin :15000); starting ${command.join(" ")}`);
  const [cmd, ...args] = command as [string, ...string[]];
  const proxy = `http://${address}:15001`;
  app = spawn(cmd, args, {
    stdio: "inherit",
    env: {
      ...process.env,
      PORT: String(appPort),
      HTTP_PROXY: proxy,
      http_proxy: proxy,
      NO_PROXY: "localhost,127.0.0.1,::1",
      no_proxy: "localhost,127.0.0.1,::1",
      SKEIN_ADDRESS: address,
      SKEIN_SERVICE: opts.service,
      SKEIN_NAMESPACE: opts.namespace,
      ...(opts.version ? { SKEIN_VERSION: opts.version } : {}),
      SKEIN_ADMIN: `http://${address}:15000`,
    },
  });
  const forward = (sig: NodeJS.Signals) => app?.kill(sig);
  process.on("SIGINT", forward);
  process.on("SIGTERM", forward);
  const appCode = await new Promise<number>((resolve) => {
    app?.on("error", (err) => {
      say(`cannot start ${cmd}: ${err.message}`);
      resolve(127);
    });
    app?.on("exit", (code, signal) => resolve(code ?? (signal ? 128 + (signalNumber(signal) ?? 15) : 1)));
  });
  process.off("SIGINT", forward);
  process.off("SIGTERM", forward);
  if (sidecar.exitCode === null && sidecar.signalCode === null) {
    stopping = true;
    sidecar.kill("SIGTERM");
    const timer = setTimeout(() => sidecar.kill("SIGKILL"), opts.drain + 5000);
    await sidecarExit;
    clearTimeout(timer);
  } else if (!stopping) {
    return EXIT_SIDECAR_FAILED;
  }
  await revokeToken(opts.controlPlane, token);
  return appCode;
}

/** The workload is gone: its token must not get another certificate (best effort; tokens also expire idle). */
async function revokeToken(controlPlane: string, token: string): Promise<void> {
  try {
    await fetch(`${controlPlane}/api/v1/workloads/token`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(2000),
    });
  } catch {
    // The control plane may be gone already.
  }
}

function signalNumber(sig: NodeJS.Signals): number | undefined {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[sig];
}
