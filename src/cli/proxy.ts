// `skein proxy`: runs one sidecar until SIGTERM/SIGINT, then drains.
import { Command, Option } from "commander";
import { parseTtl } from "../control-plane/ca/issuer.js";
import { Sidecar } from "../proxy/sidecar.js";

const collect = (v: string, prev: string[]) => [...prev, v];

function pairs(list: string[], what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf("=");
    if (i <= 0) throw new Error(`${what} ${item}: write key=value`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

function ports(list: string[], what: string, prefix = ""): Record<string, number> {
  return Object.fromEntries(
    Object.entries(pairs(list, what)).map(([k, v]) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${what} ${k}=${v}: not a port`);
      return [`${prefix}${k}`, n];
    }),
  );
}

interface ProxyOptions {
  xds: string;
  address: string;
  name: string;
  namespace: string;
  serviceAccount: string;
  label: string[];
  port: string[];
  appPort: string[];
  adminPort: number;
  statusPort: number;
  drain: number;
  nodeId?: string;
  parentPid?: number;
  ca?: string;
  token?: string;
  certTtl?: number;
  certDir?: string;
  xdsTls?: boolean;
}

/** `--cert-ttl`: seconds, or a duration such as 90s, 30m, 24h (what the CA's API accepts). */
function certTtl(value: string): number {
  return parseTtl(/^\d+(\.\d+)?$/.test(value) ? Number(value) : value);
}

export function proxyCommand(): Command {
  return new Command("proxy")
    .description("run a sidecar: consume xDS from the control plane and proxy the workload's traffic")
    .addOption(
      new Option("--xds <host:port>", "control plane xDS address")
        .env("SKEIN_XDS")
        .default("127.0.0.1:15010"),
    )
    .requiredOption("--address <ip>", "the workload's address (local mode: its own 127.x address)")
    .option("--name <name>", "workload (pod) name", "workload")
    .option("-n, --namespace <ns>", "namespace", "default")
    .option("--service-account <sa>", "service account (identity)", "default")
    .option("--label <key=value>", "workload label (repeatable)", collect, [])
    .option("--port <name=port>", "service port the workload serves (repeatable)", collect, [])
    .option(
      "--app-port <name=port>",
      "where the application listens on 127.0.0.1 for that port (repeatable)",
      collect,
      [],
    )
    .addOption(
      new Option("--admin-port <port>", "admin port on the workload address")
        .argParser(Number)
        .default(15000),
    )
    .addOption(
      new Option("--status-port <port>", "metrics and health port on the workload address")
        .argParser(Number)
        .default(15020),
    )
    .addOption(new Option("--drain <ms>", "drain period on SIGTERM").argParser(Number).default(5000))
    .option(
      "--node-id <id>",
      "xDS node id (default: Istio's sidecar~<address>~<name>.<ns>~<ns>.svc.cluster.local)",
    )
    .addOption(
      new Option(
        "--token <token>",
        "bootstrap token: the sidecar gets its mTLS certificate from the control plane's CA with it",
      ).env("SKEIN_BOOTSTRAP_TOKEN"),
    )
    .addOption(
      new Option(
        "--ca <url>",
        "the control plane's HTTP API that signs certificates (default: http://<--xds host>:15080)",
      ).env("SKEIN_CA"),
    )
    .addOption(
      new Option(
        "--cert-ttl <duration>",
        "requested certificate lifetime, e.g. 1h (default: the CA's, 24h)",
      ).argParser(certTtl),
    )
    .option(
      "--cert-dir <dir>",
      "instead of --token: read cert-chain.pem, key.pem and root-cert.pem from this directory (re-read on change)",
    )
    .option(
      "--xds-tls",
      "--xds is the control plane's TLS port (15012): authenticate with the workload certificate (needs --token or --cert-dir)",
    )
    .addOption(
      new Option(
        "--parent-pid <pid>",
        "drain and exit when this process is gone (set by skein run)",
      ).argParser(Number),
    )
    .action(async (opts: ProxyOptions) => {
      const sidecar = new Sidecar({
        xds: opts.xds,
        adminAddress: opts.address,
        adminPort: opts.adminPort,
        statusPort: opts.statusPort,
        drainMs: opts.drain,
        ...(opts.token && { token: opts.token }),
        ...(opts.ca && { ca: opts.ca }),
        ...(opts.certTtl !== undefined && { certTtlMs: opts.certTtl }),
        ...(opts.certDir && { certDir: opts.certDir }),
        ...(opts.xdsTls && { xdsTls: true }),
        node: {
          id:
            opts.nodeId ??
            `sidecar~${opts.address}~${opts.name}.${opts.namespace}~${opts.namespace}.svc.cluster.local`,
          cluster: opts.name,
          metadata: {
            NAMESPACE: opts.namespace,
            LABELS: pairs(opts.label, "--label"),
            SERVICE_ACCOUNT: opts.serviceAccount,
            INSTANCE_IPS: opts.address,
            WORKLOAD_NAME: opts.name,
            SKEIN_PORTS: { ...ports(opts.port, "--port"), ...ports(opts.appPort, "--app-port", "app:") },
          },
        },
      });
      await sidecar.start();
      await new Promise<void>((resolve) => {
        process.once("SIGTERM", resolve);
        process.once("SIGINT", resolve);
        // A sidecar whose supervisor was killed outright must not outlive it.
        const parent = opts.parentPid;
        if (parent) {
          setInterval(() => {
            try {
              process.kill(parent, 0);
            } catch {
              resolve();
            }
          }, 1000).unref();
        }
      });
      await sidecar.stop();
    });
}
