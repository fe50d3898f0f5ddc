// The file identity source (`skein proxy --cert-dir`): Istio's cert-chain.pem / key.pem / root-cert.pem are
// loaded, a rewrite is picked up (new version, new identity), and a broken set (a key that is not the
// certificate's) is ignored while the last good secrets stay.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SecretManager, type WorkloadSecret } from "../src/proxy/identity/secrets.js";
import { FileSecretSource } from "../src/proxy/identity/sources.js";
import { quiet, TestCa } from "./mtls-fixtures.js";
import { until } from "./proxy-router-fixtures.js";

function write(dir: string, w: WorkloadSecret, root: string, key = w.key): void {
  writeFileSync(join(dir, "cert-chain.pem"), w.chain);
  writeFileSync(join(dir, "key.pem"), key);
  writeFileSync(join(dir, "root-cert.pem"), root);
}

test("certificate files are loaded, reloaded on change, and a mismatched set is ignored", async () => {
  const ca = await TestCa.create();
  const dir = mkdtempSync(join(tmpdir(), "skein-cert-dir-"));
  const secrets = new SecretManager({ logger: quiet });
  const source = new FileSecretSource(secrets, dir, { logger: quiet, pollMs: 200 });
  assert.equal(secrets.ready(), false, "a configured source makes readiness wait");
  source.start();
  try {
    write(dir, await ca.issue("production", "a"), ca.root);
    await until(() => secrets.ready(), 5000);
    assert.equal(secrets.workload?.spiffeId, "spiffe://cluster.local/ns/production/sa/a");
    assert.equal(secrets.roots, ca.root);
    const v = secrets.version;
    const b = await ca.issue("production", "b");
    write(dir, b, ca.root);
    await until(() => secrets.workload?.spiffeId === "spiffe://cluster.local/ns/production/sa/b", 5000);
    assert.ok(secrets.version > v);
    // A half-rotated directory: c's certificate with b's key. It must not replace b.
    const c = await ca.issue("production", "c");
    write(dir, c, ca.root, b.key);
    await source.reload();
    assert.equal(secrets.workload?.spiffeId, "spiffe://cluster.local/ns/production/sa/b");
    write(dir, c, ca.root);
    await until(() => secrets.workload?.spiffeId === "spiffe://cluster.local/ns/production/sa/c", 5000);
  } finally {
    source.stop();
  }
});
