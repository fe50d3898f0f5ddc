// Debian packages some tests run for real (a Prometheus server, Chromium): installed with apt-get when a
// binary is missing, as root (CI runs as root). `npm test` calls it before the suite so no test has to
// install anything while others run; tests still check for the binary and say what is missing.
import { execSync, spawnSync } from "node:child_process";

/** Binary → Debian package that provides it. */
export const SYSTEM_PACKAGES = {
  prometheus: "prometheus",
  chromium: "chromium",
};

export function has(bin) {
  return spawnSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" }).status === 0;
}

export function ensureSystemPackages(bins = Object.keys(SYSTEM_PACKAGES)) {
  const missing = bins.filter((b) => !has(b)).map((b) => SYSTEM_PACKAGES[b]);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) {
    console.error(
      `skein: missing ${missing.join(", ")}; install with: sudo apt-get install -y ${missing.join(" ")}`,
    );
    return;
  }
  console.error(`skein: apt-get install ${missing.join(" ")}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  execSync("apt-get update -qq", { stdio: ["ignore", "inherit", "inherit"], env });
  execSync(`apt-get install -y -qq --no-install-recommends ${missing.join(" ")}`, {
    stdio: ["ignore", "inherit", "inherit"],
    env,
  });
}

if (import.meta.url === `file://${process.argv[1]}`)
  ensureSystemPackages(process.argv.slice(2).length ? process.argv.slice(2) : undefined);
