#!/usr/bin/env node
// The `skein` command line. Commands are thin: they call into src/api and src/model.
// Exit codes: 0 clean, 1 problems found, 2 usage error.
import { Command, CommanderError, Option } from "commander";
import { kinds, templateDecoders } from "../api/registry.js";
import { checkPaths } from "../model/check.js";
import { controlPlaneCommand } from "./control-plane.js";
import { dashboardCommand } from "./dashboard.js";
import { type OutputFormat, renderDiagnostics, useColour } from "./output.js";
import { prometheusConfigCommand } from "./prometheus-config.js";
import { proxyCommand } from "./proxy.js";
import { applyCommand, deleteCommand, getCommand, proxyStatusCommand } from "./remote.js";
import { runCommand } from "./run.js";
import { table } from "./table.js";
import { tapCommand } from "./tap.js";
import { upCommand } from "./up.js";
import { VERSION } from "./version.js";

const EXIT_PROBLEMS = 1;
const EXIT_USAGE = 2;

const outputOption = () =>
  new Option("-o, --output <format>", "output format").choices(["text", "json", "yaml"]).default("text");

function checkCommand(name: "validate" | "analyze", description: string): Command {
  return new Command(name)
    .description(description)
    .requiredOption(
      "-f, --filename <path...>",
      "files or directories of YAML (directories are read recursively)",
    )
    .addOption(outputOption())
    .addOption(
      new Option("--fail-on <severity>", "lowest severity that makes the exit code 1")
        .choices(["error", "warning"])
        .default("error"),
    )
    .action(async (opts: { filename: string[]; output: OutputFormat; failOn: "error" | "warning" }) => {
      const result = await checkPaths(opts.filename, { analyze: name === "analyze" });
      process.stdout.write(
        renderDiagnostics(
          result.diagnostics,
          opts.output,
          {
            resources: result.resources.length,
            paths: opts.filename,
            verb: name === "analyze" ? "analyzing" : "validating",
          },
          useColour(process.stdout),
        ),
      );
      const failing = result.diagnostics.some(
        (d) => d.severity === "error" || (opts.failOn === "warning" && d.severity === "warning"),
      );
      process.exitCode = failing ? EXIT_PROBLEMS : 0;
    });
}

function kindsCommand(): Command {
  return new Command("kinds")
    .description("list the resource kinds Skein accepts")
    .addOption(outputOption())
    .action((opts: { output: OutputFormat }) => {
      const rows = kinds.all().map((k) => ({
        kind: k.kind,
        group: k.group,
        versions: k.versions.join(","),
        namespaced: k.namespaced,
      }));
      for (const t of templateDecoders)
        rows.push(...t.types.map((kind) => ({ kind, group: t.name, versions: "-", namespaced: false })));
      if (opts.output === "json") process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      else if (opts.output === "yaml") import("yaml").then((y) => process.stdout.write(y.stringify(rows)));
      else {
        process.stdout.write(
          table(
            ["KIND", "GROUP", "VERSIONS", "NAMESPACED"],
            rows.map((r) => [r.kind, r.group, r.versions, String(r.namespaced)]),
          ),
        );
      }
    });
}

export function buildProgram(): Command {
  const program = new Command("skein")
    .description("Skein service mesh: configuration checks, control plane and its API.")
    .version(VERSION, "--version", "print the version")
    .showHelpAfterError()
    // Program options only before the command, so `skein run --version v2` is run's --version.
    .enablePositionalOptions()
    .exitOverride();
  program.addCommand(
    checkCommand("validate", "check files against the schemas (syntax, types, fields, values)"),
  );
  program.addCommand(
    checkCommand(
      "analyze",
      "validate, then check across resources (hosts, subsets, weights, references, policies)",
    ),
  );
  program.addCommand(kindsCommand());
  program.addCommand(controlPlaneCommand());
  program.addCommand(proxyCommand());
  program.addCommand(runCommand());
  program.addCommand(upCommand());
  program.addCommand(applyCommand());
  program.addCommand(getCommand());
  program.addCommand(deleteCommand());
  program.addCommand(proxyStatusCommand());
  program.addCommand(tapCommand());
  program.addCommand(prometheusConfigCommand());
  program.addCommand(dashboardCommand());
  for (const c of program.commands) c.exitOverride();
  return program;
}

async function main(): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; real usage errors with 2.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    process.stderr.write(`skein: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = EXIT_USAGE + 1;
  }
}

await main();
