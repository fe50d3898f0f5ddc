// Makes a fresh clone runnable: installs npm dependencies when they are missing or stale, and builds
// dist/ when any source is newer than the build. Used by `npm start` and `npm test`.
import { execSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function newest(dir) {
  let t = 0;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const s = statSync(p);
    t = Math.max(t, s.isDirectory() ? newest(p) : s.mtimeMs);
  }
  return t;
}

const run = (cmd) => {
  console.error(`skein: ${cmd}`);
  execSync(cmd, { stdio: ["ignore", "inherit", "inherit"] });
};

const lock = statSync("package-lock.json").mtimeMs;
const installed = existsSync("node_modules/.package-lock.json")
  ? statSync("node_modules/.package-lock.json").mtimeMs
  : 0;
if (installed < lock) run("npm ci --no-audit --no-fund");

const built = existsSync("dist/cli/main.js") ? statSync("dist/cli/main.js").mtimeMs : 0;
if (built === 0 || newest("src") > built || statSync("tsconfig.json").mtimeMs > built)
  run("npm run build --silent");
