// Runs every *.test.ts under test/ and src/ with node:test through tsx (Node 20's --test takes no globs).
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function find(dir, out) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries.sort()) {
    if (e === "node_modules" || e.startsWith(".")) continue;
    const p = join(dir, e);
    if (statSync(p).isDirectory()) find(p, out);
    else if (e.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const args = process.argv.slice(2);
const files = args.length ? args : [...find("test", []), ...find("src", [])];
if (files.length === 0) {
  console.error("no test files found");
  process.exit(1);
}
const reporter = process.stdout.isTTY ? "spec" : "spec";
const r = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", `--test-reporter=${reporter}`, ...files],
  {
    stdio: "inherit",
  },
);
process.exit(r.status ?? 1);
