// Commands that talk to a running control plane over its HTTP API: apply, get, delete, proxy-status.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { Command, Option } from "commander";
import { stringify } from "yaml";
import { listConfigFiles } from "../api/load.js";
import { kinds, templateDecoders } from "../api/registry.js";
import type { Diagnostic } from "../lib/diagnostics.js";
import { formatDiagnostic, useColour } from "./output.js";
import { table } from "./table.js";

export const EXIT_PROBLEMS = 1;
export const EXIT_USAGE = 2;
export const EXIT_UNREACHABLE = 3;

const DEFAULT_URL = "http://127.0.0.1:15080";

function controlPlaneOption(): Option {
  return new Option("--control-plane <url>", "control plane HTTP API")
    .env("SKEIN_CONTROL_PLANE")
    .default(DEFAULT_URL);
}

class Unreachable extends Error {}

async function call(
  base: string,
  method: string,
  path: string,
  body?: string,
): Promise<{ status: number; json: unknown }> {
  let res: Response;
  try {
    res = await fetch(new URL(path, base), {
      method,
      body,
      headers: body ? { "content-type": "application/yaml" } : undefined,
    });
  } catch (err) {
    throw new Unreachable(
      `cannot reach the control plane at ${base}: ${(err as { cause?: Error }).cause?.message ?? (err as Error).message}`,
    );
  }
  return { status: res.status, json: await res.json().catch(() => ({})) };
}

/** Runs a command body, mapping an unreachable control plane to exit code 3. */
function guarded<A extends unknown[]>(fn: (...args: A) => Promise<number>) {
  return async (...args: A) => {
    try {
      process.exitCode = await fn(...args);
    } catch (err) {
      if (err instanceof Unreachable) {
        process.stderr.write(
          `skein: ${err.message}\n    → start one with \`skein control-plane\`, or pass --control-plane URL\n`,
        );
        process.exitCode = EXIT_UNREACHABLE;
      } else throw err;
    }
  };
}

function printDiagnostics(diags: readonly Diagnostic[]): void {
  const colour = useColour(process.stdout);
  for (const d of diags) process.stdout.write(`${formatDiagnostic(d, colour)}\n`);
}

export function applyCommand(): Command {
  return new Command("apply")
    .description(
      "apply configuration files to a running control plane (checked as a whole; rejected changes change nothing)",
    )
    .requiredOption("-f, --filename <path...>", "files or directories of YAML")
    .addOption(controlPlaneOption())
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(
      guarded(async (opts: { filename: string[]; controlPlane: string; output: string }) => {
        const { files, diagnostics } = await listConfigFiles(opts.filename);
        if (diagnostics.length) {
          printDiagnostics(diagnostics);
          return EXIT_PROBLEMS;
        }
        let failed = false;
        const results: unknown[] = [];
        for (const file of files) {
          const { status, json } = await call(
            opts.controlPlane,
            "POST",
            `/api/v1/apply?name=${encodeURIComponent(basename(file))}`,
            await readFile(file, "utf8"),
          );
          const out = json as {
            accepted?: boolean;
            unchanged?: boolean;
            version?: string;
            diagnostics?: Diagnostic[];
            message?: string;
          };
          results.push({ file, status, ...out });
          if (opts.output === "json") continue;
          if (status === 200) {
            process.stdout.write(
              `${file}: ${out.unchanged ? "unchanged" : "configured"} (version ${out.version})\n`,
            );
            printDiagnostics(out.diagnostics ?? []);
          } else {
            failed = true;
            process.stdout.write(`${file}: rejected${out.message ? `: ${out.message}` : ""}\n`);
            // Point at the user's file, not the name the control plane stored it under.
            printDiagnostics(
              (out.diagnostics ?? []).map((d) => (d.file === `api:${basename(file)}` ? { ...d, file } : d)),
            );
          }
        }
        if (opts.output === "json") {
          process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
          failed = results.some((r) => (r as { status: number }).status !== 200);
        }
        return failed ? EXIT_PROBLEMS : 0;
      }),
    );
}

/** kubectl/istioctl short names. */
const SHORT_NAMES: Record<string, string> = {
  vs: "VirtualService",
  dr: "DestinationRule",
  se: "ServiceEntry",
  pa: "PeerAuthentication",
  ap: "AuthorizationPolicy",
  ra: "RequestAuthentication",
  svc: "Service",
  io: "IstioOperator",
};

/** `virtualservices`, `vs`, `VirtualService` → `VirtualService`; undefined when no kind has that name. */
export function resolveKindName(input: string): string | undefined {
  const k = input.toLowerCase();
  if (SHORT_NAMES[k]) return SHORT_NAMES[k];
  const names = [
    ...kinds.all().map((d) => d.kind),
    ...templateDecoders.flatMap((t) => t.types.map((x) => x.split("::").at(-1) as string)),
  ];
  return names.find((n) => {
    const l = n.toLowerCase();
    return k === l || k === `${l}s` || k === `${l}es` || (l.endsWith("y") && k === `${l.slice(0, -1)}ies`);
  });
}

interface Item {
  apiVersion: string;
  kind: string;
  namespace: string;
  name: string;
  source: { file: string; line?: number };
  document: unknown;
}

export function getCommand(): Command {
  return new Command("get")
    .description(
      "list resources in force on the control plane (KIND: e.g. virtualservice, destinationrule, all)",
    )
    .argument("<kind>", "kind, case-insensitive; `all` for every kind")
    .argument("[name]", "one resource by name")
    .option("-n, --namespace <ns>", "only this namespace")
    .addOption(controlPlaneOption())
    .addOption(
      new Option("-o, --output <format>", "output format")
        .choices(["table", "yaml", "json"])
        .default("table"),
    )
    .action(
      guarded(
        async (
          kind: string,
          name: string | undefined,
          opts: { namespace?: string; controlPlane: string; output: string },
        ) => {
          const q = new URLSearchParams();
          if (kind.toLowerCase() !== "all") {
            const resolved = resolveKindName(kind);
            if (!resolved) {
              process.stderr.write(`skein: unknown kind "${kind}"; see \`skein kinds\`\n`);
              return EXIT_USAGE;
            }
            q.set("kind", resolved.toLowerCase());
          }
          if (opts.namespace) q.set("namespace", opts.namespace);
          const { json } = await call(opts.controlPlane, "GET", `/api/v1/resources?${q}`);
          let items = (json as { items: Item[] }).items ?? [];
          if (name) items = items.filter((i) => i.name === name);
          if (name && items.length === 0) {
            process.stderr.write(`skein: ${kind} "${name}" not found\n`);
            return EXIT_PROBLEMS;
          }
          if (opts.output === "json")
            process.stdout.write(
              `${JSON.stringify(
                items.map((i) => i.document),
                null,
                2,
              )}\n`,
            );
          else if (opts.output === "yaml")
            process.stdout.write(items.map((i) => stringify(i.document)).join("---\n"));
          else if (items.length === 0) process.stderr.write("No resources found.\n");
          else
            process.stdout.write(
              table(
                ["NAMESPACE", "KIND", "NAME", "SOURCE"],
                items.map((i) => [
                  i.namespace || "-",
                  i.kind,
                  i.name,
                  `${i.source.file}${i.source.line ? `:${i.source.line}` : ""}`,
                ]),
              ),
            );
          return 0;
        },
      ),
    );
}

export function deleteCommand(): Command {
  return new Command("delete")
    .description("delete a resource that was applied through the API")
    .argument("<kind>", "kind, e.g. VirtualService")
    .argument("<name>", "name")
    .option("-n, --namespace <ns>", "namespace", "default")
    .addOption(controlPlaneOption())
    .action(
      guarded(async (input: string, name: string, opts: { namespace: string; controlPlane: string }) => {
        const kind = resolveKindName(input);
        if (!kind) {
          process.stderr.write(`skein: unknown kind "${input}"; see \`skein kinds\`\n`);
          return EXIT_USAGE;
        }
        const { status, json } = await call(
          opts.controlPlane,
          "DELETE",
          `/api/v1/resources/${encodeURIComponent(kind)}/${encodeURIComponent(opts.namespace)}/${encodeURIComponent(name)}`,
        );
        const out = json as { message?: string; version?: string; diagnostics?: Diagnostic[] };
        if (status === 200) {
          process.stdout.write(`${kind} ${opts.namespace}/${name} deleted (version ${out.version})\n`);
          return 0;
        }
        process.stdout.write(
          `${kind} ${opts.namespace}/${name}: not deleted${out.message ? `: ${out.message}` : ""}\n`,
        );
        printDiagnostics(out.diagnostics ?? []);
        return EXIT_PROBLEMS;
      }),
    );
}

interface StatusRow {
  id: string;
  kind: string;
  namespace: string;
  workload?: string;
  types: Record<string, { sent?: string; acked?: string; nack?: { version: string; message: string } }>;
}

function syncState(t: StatusRow["types"][string] | undefined): string {
  if (!t?.sent) return "NOT SENT";
  if (t.nack && t.nack.version === t.sent) return "NACKED";
  return t.acked === t.sent ? "SYNCED" : "STALE";
}

export function proxyStatusCommand(): Command {
  return new Command("proxy-status")
    .description("which proxies are connected and whether each has ACKed the latest config of each xDS type")
    .addOption(controlPlaneOption())
    .addOption(
      new Option("-o, --output <format>", "output format")
        .choices(["table", "yaml", "json"])
        .default("table"),
    )
    .action(
      guarded(async (opts: { controlPlane: string; output: string }) => {
        const { json } = await call(opts.controlPlane, "GET", "/debug/proxy_status");
        const rows = (json as { proxies: StatusRow[] }).proxies ?? [];
        if (opts.output === "json") process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        else if (opts.output === "yaml") process.stdout.write(stringify(rows));
        else if (rows.length === 0) process.stderr.write("No proxies connected.\n");
        else {
          process.stdout.write(
            table(
              ["NAME", "TYPE", "NAMESPACE", "CDS", "LDS", "EDS", "RDS"],
              rows.map((r) => [
                r.id,
                r.kind,
                r.namespace,
                ...["cds", "lds", "eds", "rds"].map((t) => syncState(r.types[t])),
              ]),
            ),
          );
          for (const r of rows)
            for (const [t, s] of Object.entries(r.types))
              if (s.nack)
                process.stdout.write(`${r.id} NACKed ${t} version ${s.nack.version}: ${s.nack.message}\n`);
        }
        return rows.some((r) => Object.values(r.types).some((t) => syncState(t) === "NACKED"))
          ? EXIT_PROBLEMS
          : 0;
      }),
    );
}
