// Shared test helpers: check YAML text and look at the diagnostics it produces.

import type { Diagnostic } from "../src/lib/diagnostics.js";
import { type CheckResult, checkTexts } from "../src/model/check.js";

export function check(text: string, opts: { analyze?: boolean; file?: string } = {}): CheckResult {
  return checkTexts([{ file: opts.file ?? "test.yaml", text }], { analyze: opts.analyze ?? false });
}

export function checkFiles(files: Record<string, string>, analyze = true): CheckResult {
  return checkTexts(
    Object.entries(files).map(([file, text]) => ({ file, text })),
    { analyze },
  );
}

/** `CODE@line` for each error (and warning when asked), for compact assertions. */
export function codes(
  diags: readonly Diagnostic[],
  severity: "error" | "warning" | "all" = "error",
): string[] {
  return diags.filter((d) => severity === "all" || d.severity === severity).map((d) => `${d.code}@${d.line}`);
}

/** Strips position bookkeeping from model objects so they can be compared with deepEqual. */
export function plain<T>(v: T): T {
  return JSON.parse(
    JSON.stringify(v, (k, val) => (k === "source" || k === "positions" || k === "path" ? undefined : val)),
  ) as T;
}
