// A small structured logger for the long-running processes: one line per event, `key=value` fields,
// written to stderr (asynchronous for pipes and files). Level from SKEIN_LOG_LEVEL (debug|info|warn|error).
export type Level = "debug" | "info" | "warn" | "error";
const RANK: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

function format(v: unknown): string {
  const s = typeof v === "string" ? v : JSON.stringify(v);
  return /[\s"=]/.test(s ?? "") ? JSON.stringify(s) : String(s);
}

export function createLogger(
  component: string,
  level: Level = (process.env.SKEIN_LOG_LEVEL as Level) ?? "info",
  sink: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const min = RANK[level] ?? RANK.info;
  const write = (l: Level, msg: string, fields?: Record<string, unknown>) => {
    if (RANK[l] < min) return;
    const extra = fields
      ? Object.entries(fields)
          .filter(([, v]) => v !== undefined)
          .map(([k, v]) => ` ${k}=${format(v)}`)
          .join("")
      : "";
    sink(`${new Date().toISOString()} ${l} ${component} ${msg}${extra}\n`);
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
  };
}
