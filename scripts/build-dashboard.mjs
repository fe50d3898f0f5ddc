// Bundles the dashboard (src/dashboard, TypeScript + preact) with esbuild into dist/dashboard: app.js (with
// its source map), app.css and index.html, which the control plane serves at / and /dashboard/. Everything
// the page needs is in that folder: no CDN, no remote fonts. `npm run build` runs it after tsc.
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const src = join(root, "src", "dashboard");
const out = join(root, "dist", "dashboard");

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(src, "main.tsx")],
  outfile: join(out, "app.js"),
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  minify: true,
  sourcemap: true,
  legalComments: "linked",
  logLevel: "warning",
});
for (const f of ["index.html", "app.css"]) copyFileSync(join(src, f), join(out, f));
console.log(`dashboard built into ${out}`);
