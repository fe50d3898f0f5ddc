// One diagnostic as one line (plus a hint line), istioctl-style; colour only when asked.
import type { Diagnostic } from "./diagnostics.js";

const COLOURS = {
  error: "\x1b[31m",
  warning: "\x1b[33m",
  info: "\x1b[36m",
  dim: "\x1b[2m",
  reset: "\x1b[0m",
};

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
