// How diagnostics look on a terminal (istioctl-like lines, colour only on a TTY) and as JSON/YAML.
import { stringify } from "yaml";
import type { Diagnostic } from "../lib/diagnostics.js";

export type OutputFormat = "text" | "json" | "yaml";

const COLOURS = {
  error: "\x1b[31m",
  warning: "\x1b[33m",
  info: "\x1b[36m",
  dim: "\x1b[2m",
  reset: "\x1b[0m",
};

export function useColour(stream: NodeJS.WriteStream): boolean {
  return Boolean(stream.isTTY) && !process.env.NO_COLOR && process.env.TERM !== "dumb";
}

export function formatDiagnostic(d: Diagnostic, colour: boolean): string {
  const c = (k: keyof typeof COLOURS, s: string) => (colour ? `${COLOURS[k]}${s}${COLOURS.reset}` : s);
  const level = d.severity === "error" ? "Error" : d.severity === "warning" ? "Warning" : "Info";
  const where = d.file ? `${d.file}${d.line ? `:${d.line}${d.column ? `:${d.column}` : ""}` : ""}` : "";
  const parts = [c(d.severity, `${level} [${d.code}]`)];
  if (d.resource) parts.push(`(${d.resource})`);
  if (where) parts.push(where);
  let line = `${parts.join(" ")}${d.path ? ` ${c("dim", d.path)}` : ""}: ${d.message}`;
  if (d.hint) line += `\n    ${c("dim", `→ ${d.hint}`)}`;
  return line;
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
