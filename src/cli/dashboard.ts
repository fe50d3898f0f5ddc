// `skein dashboard`: checks that the control plane answers, prints the dashboard's URL and opens it in
// the desktop's browser (xdg-open) when run from a terminal with a display. Exit 3: unreachable.
import { spawn } from "node:child_process";
import { Command, InvalidArgumentError, Option } from "commander";
import { EXIT_UNREACHABLE, EXIT_USAGE } from "./remote.js";

const DEFAULT_URL = "http://127.0.0.1:15080";

export interface DashboardOptions {
  controlPlane: string;
  port?: number;
  open: boolean;
}

/** The dashboard's URL: the control plane's, with `port` replacing its port when given. */
export function dashboardUrl(controlPlane: string, port?: number): URL {
  const url = new URL(controlPlane);
  if (port !== undefined) url.port = String(port);
  url.pathname = "/";
  url.search = "";
  url.hash = "";
  return url;
}

/** Should the browser be opened: asked to, on a terminal, with an X11 or Wayland display. */
export function canOpen(open: boolean, env: NodeJS.ProcessEnv, tty: boolean): boolean {
  return open && tty && Boolean(env.DISPLAY || env.WAYLAND_DISPLAY);
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError("give a port in 1–65535");
  return n;
}

export async function dashboard(opts: DashboardOptions): Promise<number> {
  let url: URL;
  try {
    url = dashboardUrl(opts.controlPlane, opts.port);
  } catch {
    process.stderr.write(`skein dashboard: --control-plane ${opts.controlPlane} is not a URL\n`);
    return EXIT_USAGE;
  }
  try {
    const res = await fetch(new URL("/healthz", url), { signal: AbortSignal.timeout(3000) });
    if (!res.ok) throw new Error(`HTTP ${res.status} from /healthz`);
  } catch (err) {
    const why = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
    process.stderr.write(
      `skein: cannot reach the control plane at ${url.origin}: ${why}\n    → start one with \`skein control-plane\` or \`skein up\`, or pass --control-plane URL\n`,
    );
    return EXIT_UNREACHABLE;
  }
  process.stdout.write(`${url.href}\n`);
  if (canOpen(opts.open, process.env, Boolean(process.stdout.isTTY))) {
    const child = spawn("xdg-open", [url.href], { stdio: "ignore", detached: true });
    child.on("error", (err) =>
      process.stderr.write(`skein dashboard: cannot run xdg-open (${err.message}); open the URL above\n`),
    );
    child.unref();
  }
  return 0;
}

export function dashboardCommand(): Command {
  return new Command("dashboard")
    .description("print the control plane's dashboard URL and open it in a browser")
    .addOption(
      new Option("--control-plane <url>", "control plane HTTP API")
        .env("SKEIN_CONTROL_PLANE")
        .default(DEFAULT_URL),
    )
    .addOption(new Option("--port <n>", "the API's port, in place of the URL's").argParser(parsePort))
    .option("--no-open", "only print the URL")
    .action(async (opts: DashboardOptions) => {
      process.exitCode = await dashboard(opts);
    });
}
