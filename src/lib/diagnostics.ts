// Problems a user can act on: a stable code, where it is (file, line, column, field path) and what to do.
// Every error Skein reports about configuration is a Diagnostic; SkeinError carries them when thrown.

export type Severity = "error" | "warning" | "info";

export interface SourcePosition {
  file: string;
  line: number; // 1-based
  column: number; // 1-based
}

export interface Diagnostic {
  code: string;
  severity: Severity;
  message: string;
  /** What to do about it. */
  hint?: string;
  file?: string;
  line?: number;
  column?: number;
  /** Field path inside the document, e.g. `spec.http[0].retries.perTryTimeout`. */
  path?: string;
  /** The resource the problem is about, as `Kind namespace/name`. */
  resource?: string;
}

/** The one error type the configuration API throws; `code` is stable and tests assert it. */
export class SkeinError extends Error {
  readonly code: string;
  readonly diagnostics: readonly Diagnostic[];
  constructor(code: string, message: string, diagnostics: readonly Diagnostic[] = []) {
    super(message);
    this.name = "SkeinError";
    this.code = code;
    this.diagnostics = diagnostics;
  }
}

/** Renders a field path the way users write it: `spec.http[0].route[1].weight`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z_$][\w$-]*$/.test(s) ? (out ? `.${s}` : s) : `[${JSON.stringify(s)}]`;
    }
  }
  return out;
}

export function hasErrors(diags: readonly Diagnostic[]): boolean {
  return diags.some((d) => d.severity === "error");
}

/** Stable order for output: file, line, column, code. */
export function sortDiagnostics(diags: Diagnostic[]): Diagnostic[] {
  return diags.sort(
    (a, b) =>
      (a.file ?? "").localeCompare(b.file ?? "") ||
      (a.line ?? 0) - (b.line ?? 0) ||
      (a.column ?? 0) - (b.column ?? 0) ||
      a.code.localeCompare(b.code),
  );
}
