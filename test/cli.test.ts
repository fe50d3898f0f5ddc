// The `skein` CLI as users run it: the built dist/cli/main.js (npm test builds it first), real files,
// exit codes scripts can trust (0 clean, 1 problems, 2 usage).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const root = new URL("..", import.meta.url).pathname;
const skein = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, "dist/cli/main.js"), ...args], {
    cwd: root,
    encoding: "utf8",
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

test("skein analyze -f examples/ is clean and exits 0", () => {
  const r = skein("analyze", "-f", "examples/");
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /No issues found when analyzing \d+ resource\(s\) in examples\//);
});

test("skein analyze on the seed's App Mesh pattern names the missing InventoryService, exit 1, -o json", () => {
  const r = skein("analyze", "-f", "test/fixtures/seed/pattern5-app-mesh.yaml", "-o", "json");
  assert.equal(r.code, 1, r.stderr);
  const out = JSON.parse(r.stdout) as {
    errors: number;
    diagnostics: { code: string; line: number; message: string }[];
  };
  assert.ok(out.errors >= 1);
  const d = out.diagnostics.find((x) => x.code === "SKEIN_E_CFN_REF_UNRESOLVED");
  assert.ok(d, r.stdout);
  assert.match(d.message, /InventoryService/);
  assert.equal(d.line, 30);
});

test("validate reports file:line, code and the field path; warnings alone exit 0 unless --fail-on warning", () => {
  const dir = mkdtempSync(join(tmpdir(), "skein-cli-"));
  const bad = join(dir, "bad.yaml");
  writeFileSync(
    bad,
    `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: a
spec:
  hosts: [a]
  http:
    - route: [{ destination: { host: a } }]
      timeout: 10x
`,
  );
  const r = skein("validate", "-f", bad);
  assert.equal(r.code, 1);
  assert.ok(
    r.stdout.includes(`Error [SKEIN_E_DURATION] (VirtualService default/a) ${bad}:9:16 spec.http[0].timeout`),
    r.stdout,
  );
  assert.ok(!r.stdout.includes("\u001b["), "no colour when stdout is not a terminal");

  const warn = join(dir, "warn.yaml");
  writeFileSync(
    warn,
    `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: { name: s }
spec:
  ingress: [{ port: { number: 80 } }]
`,
  );
  const w = skein("validate", "-f", warn, "-o", "yaml");
  assert.equal(w.code, 0, w.stdout);
  assert.match(w.stdout, /code: SKEIN_W_NO_EFFECT/);
  assert.equal(skein("validate", "-f", warn, "--fail-on", "warning").code, 1);
});

test("usage errors exit 2; a missing file is a problem (1) with SKEIN_E_FILE_READ", () => {
  assert.equal(skein("analyze").code, 2);
  assert.equal(skein("analyze", "-f", "examples", "-o", "xml").code, 2);
  assert.equal(skein("frobnicate").code, 2);
  const missing = skein("validate", "-f", "does/not/exist.yaml");
  assert.equal(missing.code, 1);
  assert.match(missing.stdout, /SKEIN_E_FILE_READ/);
  const help = skein("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /analyze/);
});

test("skein kinds lists Istio, App Mesh and Skein kinds as a table and as JSON", () => {
  const t = skein("kinds");
  assert.equal(t.code, 0);
  assert.match(t.stdout, /^KIND\s+GROUP\s+VERSIONS\s+NAMESPACED/);
  assert.match(t.stdout, /VirtualService\s+networking\.istio\.io\s+v1alpha3,v1beta1,v1/);
  const j = JSON.parse(skein("kinds", "-o", "json").stdout) as { kind: string }[];
  for (const k of ["VirtualService", "DestinationRule", "ServiceEntry", "Sidecar", "Service", "Workload"]) {
    assert.ok(
      j.some((x) => x.kind === k),
      k,
    );
  }
});
