// `skein tap SERVICE`: live requests to a service, as they finish (Linkerd's tap). Asks the control plane
// which sidecars serve the service (their inbound side) and which may call it (their outbound side, to the
// service's cluster only), reads each one's admin `GET /tap` NDJSON stream, and prints one line per request.
// Exit codes: 0 when --max requests were shown or on Ctrl-C, 1 unknown service, 2 usage, 3 control plane
// unreachable.
import { Command, Option } from "commander";
import { parseTapQuery, type TapEvent, type TapPeer } from "../proxy/admin/tap.js";
import { useColour } from "./output.js";

const EXIT_UNKNOWN = 1;
const EXIT_USAGE = 2;
const EXIT_UNREACHABLE = 3;
/** How often the control plane is asked again for sidecars that joined since. */
const REDISCOVER_MS = 3000;

interface TapOptions {
  namespace: string;
  path?: string;
  method?: string;
  status?: string;
  output: "text" | "wide" | "json";
  max: number;
  controlPlane: string;
}

interface Target {
  id: string;
  workload: string;
  namespace: string;
  admin: string;
  role: "server" | "client";
}

interface Targets {
  hostname: string;
  targets: Target[];
}

export function tapCommand(): Command {
  return new Command("tap")
    .description("stream live requests to a service from its sidecars and its callers' sidecars")
    .argument("<service>", "the service (short name or hostname)")
    .option("-n, --namespace <ns>", "the service's namespace", "default")
    .option("--path <prefix>", "only requests whose path starts with this")
    .option("--method <method>", "only requests with this method")
    .option("--status <status>", "only responses with this status (404) or class (5xx)")
    .addOption(
      new Option("-o, --output <format>", "line format").choices(["text", "wide", "json"]).default("text"),
    )
    .addOption(
      new Option("--max <n>", "stop after this many requests (0: until Ctrl-C)").argParser(Number).default(0),
    )
    .addOption(
      new Option("--control-plane <url>", "control plane HTTP API")
        .env("SKEIN_CONTROL_PLANE")
        .default("http://127.0.0.1:15080"),
    )
    .action(async (service: string, opts: TapOptions) => {
      process.exitCode = await tap(service, opts);
    });
}

async function discover(
  opts: TapOptions,
  service: string,
): Promise<{ ok: Targets } | { status: number; message: string }> {
  const url = new URL("/debug/tap_targets", opts.controlPlane);
  url.searchParams.set("service", service);
  url.searchParams.set("namespace", opts.namespace);
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json().catch(() => ({}))) as Targets & { message?: string };
  if (res.status !== 200) return { status: res.status, message: body.message ?? `HTTP ${res.status}` };
  return { ok: body };
}

const short = (p: TapPeer): string =>
  p.workload ? `${p.workload}${p.namespace ? `.${p.namespace}` : ""}` : (p.address ?? "-");

/** One request as a line: `text` for people, `wide` with clusters, hosts and principals, `json` as sent. */
export function formatTapLine(e: TapEvent, format: TapOptions["output"], colour: boolean): string {
  if (format === "json") return JSON.stringify(e);
  const paint = (code: string, s: string) => (colour ? `\x1b[${code}m${s}\x1b[0m` : s);
  const statusColour = e.status >= 500 || e.status === 0 ? "31" : e.status >= 400 ? "33" : "32";
  const dir = e.direction === "inbound" ? "in " : e.direction === "outbound" ? "out" : "?  ";
  const fields = [
    e.time,
    dir,
    e.method,
    `${e.authority}${e.path}`,
    paint(statusColour, String(e.status)),
    `${e.latencyMs}ms`,
    `src=${short(e.source)}`,
    `dst=${e.direction === "outbound" ? (e.destination.address ?? "-") : short(e.destination)}`,
    `mtls=${e.mtls}`,
    `flags=${e.responseFlags}`,
  ];
  if (format === "wide") {
    fields.push(
      `cluster=${e.destination.cluster ?? "-"}`,
      `upstream=${e.destination.address ?? "-"}`,
      `src_principal=${e.source.principal ?? "-"}`,
      `dst_principal=${e.destination.principal ?? "-"}`,
      `src_addr=${e.source.address ?? "-"}`,
    );
  }
  fields.push(`id=${e.requestId ?? "-"}`);
  return fields.join(" ");
}

async function tap(service: string, opts: TapOptions): Promise<number> {
  const say = (m: string) => process.stderr.write(`skein tap: ${m}\n`);
  if (!Number.isInteger(opts.max) || opts.max < 0) {
    say("--max must be a whole number");
    return EXIT_USAGE;
  }
  // The same checks the sidecars make, so a typo fails here and not once per sidecar.
  const query = new URLSearchParams();
  if (opts.path) query.set("path", opts.path);
  if (opts.method) query.set("method", opts.method);
  if (opts.status) query.set("status", opts.status);
  try {
    parseTapQuery(query);
  } catch (err) {
    say((err as Error).message);
    return EXIT_USAGE;
  }

  let found: Targets;
  try {
    const r = await discover(opts, service);
    if ("status" in r) {
      say(r.message);
      return r.status === 404 ? EXIT_UNKNOWN : EXIT_UNREACHABLE;
    }
    found = r.ok;
  } catch (err) {
    say(
      `cannot reach the control plane at ${opts.controlPlane}: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`,
    );
    return EXIT_UNREACHABLE;
  }

  const colour = useColour(process.stdout);
  const stop = new AbortController();
  const connected = new Set<string>();
  let shown = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const end = () => {
    stop.abort();
    finish();
  };

  const open = async (t: Target): Promise<void> => {
    const q = new URLSearchParams(query);
    if (t.role === "server") q.set("direction", "inbound");
    else {
      q.set("direction", "outbound");
      q.set("host", found.hostname);
    }
    connected.add(t.id);
    try {
      const res = await fetch(`${t.admin}/tap?${q}`, { signal: stop.signal });
      if (res.status !== 200 || !res.body) {
        say(`${t.workload}.${t.namespace}: /tap answered ${res.status}`);
        return;
      }
      let buf = "";
      const decoder = new TextDecoder();
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        let nl = buf.indexOf("\n");
        while (nl >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          nl = buf.indexOf("\n");
          if (!line || stop.signal.aborted) continue;
          process.stdout.write(`${formatTapLine(JSON.parse(line) as TapEvent, opts.output, colour)}\n`);
          shown++;
          if (opts.max > 0 && shown >= opts.max) end();
        }
      }
    } catch (err) {
      if (!stop.signal.aborted) say(`${t.workload}.${t.namespace}: ${(err as Error).message}`);
    } finally {
      // Gone (stopped, restarted): rediscovery may connect to it again.
      connected.delete(t.id);
    }
  };

  const connectNew = (targets: Target[]) => {
    for (const t of targets) if (!connected.has(t.id)) void open(t);
  };
  if (found.targets.length === 0) say(`no sidecar serves or calls ${found.hostname} yet; waiting`);
  connectNew(found.targets);
  const timer = setInterval(async () => {
    try {
      const r = await discover(opts, service);
      if ("ok" in r && !stop.signal.aborted) connectNew(r.ok.targets);
    } catch {
      // The control plane went away: the sidecars' streams carry on.
    }
  }, REDISCOVER_MS);
  const onSignal = () => end();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  await done;
  clearInterval(timer);
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  return 0;
}
