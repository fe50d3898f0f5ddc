// How diagnostics look on a terminal (istioctl-like lines, colour only on a TTY) and as JSON/YAML.
import { stringify } from "yaml";
import type { Diagnostic } from "../lib/diagnostics.js";
import { formatDiagnostic } from "../lib/format.js";

export { formatDiagnostic };

export type OutputFormat = "text" | "json" | "yaml";

export function useColour(stream: NodeJS.WriteStream): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== "dumb";
}

export function renderDiagnostics(
  diags: readonly Diagnostic[],
  format: OutputFormat,
  summary: { resources: number; paths: readonly string[]; verb: string },
  colour: boolean,
): string {
  const errors = diags.filter((d) => d.severity === "error").length;
  const warnings = diags.filter((d) => d.severity === "warning").length;
  if (format !== "text") {
    const doc = { resources: summary.resources, errors, warnings, diagnostics: diags };
    return format === "json" ? `${JSON.stringify(doc, null, 2)}\n` : stringify(doc);
  }
  const lines = diags.map((d) => formatDiagnostic(d, colour));
  const where = summary.paths.join(", ");
  const infos = diags.length - errors - warnings;
  if (errors === 0 && warnings === 0) {
    lines.push(
      `✔ No issues found when ${summary.verb} ${summary.resources} resource(s) in ${where}${infos ? ` (${infos} info)` : ""}.`,
    );
  } else {
    lines.push(
      `${errors} error(s), ${warnings} warning(s) when ${summary.verb} ${summary.resources} resource(s) in ${where}.`,
    );
  }
  return `${lines.join("\n")}\n`;
}
