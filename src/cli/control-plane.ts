// `skein control-plane`: runs the control plane until SIGINT/SIGTERM.
import { Command, Option } from "commander";
import { parseTtl } from "../control-plane/ca/issuer.js";
import { ControlPlane } from "../control-plane/control-plane.js";

const port = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`not a port: ${v}`);
  return n;
};

export function controlPlaneCommand(): Command {
  return new Command("control-plane")
    .description(
      "run the control plane: watch config, keep the registry, serve xDS (ADS), the HTTP API and metrics",
    )
    .option("-c, --config <dir>", "directory of mesh YAML to watch (Istio, App Mesh, Skein kinds)")
    .addOption(
      new Option("--state-dir <dir>", "where resources applied through the API are kept")
        .env("SKEIN_STATE_DIR")
        .default(".skein"),
    )
    .option("--host <address>", "address every port binds", "127.0.0.1")
    .addOption(
      new Option("--xds-port <port>", "xDS (ADS over gRPC, plaintext)").argParser(port).default(15010),
    )
    .addOption(
      new Option("--http-port <port>", "HTTP API and debug endpoints").argParser(port).default(15080),
    )
    .addOption(
      new Option("--metrics-port <port>", "Prometheus metrics (/metrics)").argParser(port).default(15014),
    )
    .addOption(
      new Option(
        "--xds-tls-port <port>",
        "xDS over TLS: proxies authenticate with their workload certificate (0: a free port)",
      )
        .argParser(port)
        .default(15012),
    )
    .option("--no-xds-tls", "do not serve xDS over TLS")
    .addOption(
      new Option(
        "--ca-dir <dir>",
        "an Istio cacerts directory (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) to sign with; default: a root generated under the state dir",
      ).env("SKEIN_CA_DIR"),
    )
    .addOption(
      new Option("--cert-ttl <duration>", "lifetime of workload certificates, e.g. 24h, 30m, 90s").argParser(
        (v) => parseTtl(v),
      ),
    )
    .action(
      async (opts: {
        config?: string;
        stateDir: string;
        host: string;
        xdsPort: number;
        httpPort: number;
        metricsPort: number;
        xdsTlsPort: number;
        xdsTls: boolean;
        caDir?: string;
        certTtl?: number;
      }) => {
        const cp = new ControlPlane({
          configDir: opts.config,
          stateDir: opts.stateDir,
          host: opts.host,
          xdsPort: opts.xdsPort,
          httpPort: opts.httpPort,
          metricsPort: opts.metricsPort,
          ...(opts.xdsTls && { xdsTlsPort: opts.xdsTlsPort }),
          ...(opts.caDir && { caDir: opts.caDir }),
          ...(opts.certTtl !== undefined && { certTtlMs: opts.certTtl }),
        });
        await cp.start();
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
        });
        await cp.stop();
      },
    );
}
