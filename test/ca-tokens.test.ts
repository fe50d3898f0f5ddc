// Bootstrap tokens on their own, on a hand-driven clock: random, bound to one identity, stored only hashed,
// expiring when unused, kept alive by the certificates they obtain, revocable, and surviving a restart.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { CaCodes } from "../src/control-plane/ca/codes.js";
import { parseTtl } from "../src/control-plane/ca/issuer.js";
import { BootstrapTokens } from "../src/control-plane/ca/tokens.js";
import { rotateAt } from "../src/lib/identity.js";
import { createLogger } from "../src/lib/log.js";

const logger = createLogger("ca", "error");
const HOUR = 3600_000;
const order = { namespace: "production", serviceAccount: "order-service" };

function clock(start = Date.parse("2030-01-01T00:00:00Z")) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe("bootstrap tokens", () => {
  it("are 256 random bits, prove the identity they were issued for, and no other token does", async () => {
    const tokens = new BootstrapTokens({ logger });
    const a = await tokens.issue(order);
    const b = await tokens.issue(order);
    assert.equal(Buffer.from(a.token, "base64url").length, 32);
    assert.notEqual(a.token, b.token);
    assert.deepEqual(tokens.authenticate(a.token), order);
    // Another first character (its 6 bits are all data; the last one's low bits are padding that decoders ignore).
    const tampered = `${a.token.startsWith("A") ? "B" : "A"}${a.token.slice(1)}`;
    assert.equal(tokens.authenticate(tampered), undefined);
    assert.equal(tokens.authenticate(""), undefined);
  });

  it("expire after an hour unused; a certificate keeps its token alive until it expires, plus that hour", async () => {
    const c = clock();
    const tokens = new BootstrapTokens({ logger, now: c.now });
    const idle = await tokens.issue(order);
    assert.equal(idle.expiresAt.getTime(), c.t + HOUR);
    const used = await tokens.issue(order);
    c.t += HOUR - 1;
    assert.ok(tokens.authenticate(idle.token), "still valid just before the hour");
    // A 24 h certificate obtained now: renewal at half-life (12 h) must still find the token.
    await tokens.used(used.token, c.t + 24 * HOUR);
    c.t += 1;
    assert.equal(tokens.authenticate(idle.token), undefined, "unused for an hour: expired");
    c.t += 12 * HOUR;
    assert.deepEqual(tokens.authenticate(used.token), order, "alive at the certificate's half-life");
    c.t += 12 * HOUR + HOUR;
    assert.equal(tokens.authenticate(used.token), undefined, "gone an hour after its certificate expired");
    assert.equal(tokens.size, 0);
  });

  it("are revocable one by one or for a whole identity", async () => {
    const tokens = new BootstrapTokens({ logger });
    const a = await tokens.issue(order);
    const b = await tokens.issue(order);
    const other = await tokens.issue({ namespace: "production", serviceAccount: "payment-service" });
    assert.equal(await tokens.revoke(a.token), true);
    assert.equal(await tokens.revoke(a.token), false);
    assert.equal(tokens.authenticate(a.token), undefined);
    assert.ok(tokens.authenticate(b.token));
    assert.equal(await tokens.revokeAll(order), 1);
    assert.equal(tokens.authenticate(b.token), undefined);
    assert.ok(tokens.authenticate(other.token), "another identity's token is untouched");
  });

  it("persist hashed and owner-only, and survive a restart", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "skein-tokens-")), "ca", "bootstrap-tokens.json");
    const c = clock();
    const first = new BootstrapTokens({ logger, file, now: c.now });
    const { token } = await first.issue(order);
    const revoked = await first.issue(order);
    await first.revoke(revoked.token);
    const text = readFileSync(file, "utf8");
    assert.ok(!text.includes(token), "the token itself is never written");
    assert.equal(statSync(file).mode & 0o777, 0o600);

    const second = new BootstrapTokens({ logger, file, now: c.now });
    await second.load();
    assert.deepEqual(second.authenticate(token), order);
    assert.equal(second.authenticate(revoked.token), undefined);
    c.t += HOUR;
    const third = new BootstrapTokens({ logger, file, now: c.now });
    await third.load();
    assert.equal(third.authenticate(token), undefined, "expired while the control plane was down");

    writeFileSync(file, "{not json");
    const damaged = new BootstrapTokens({ logger, file, now: c.now });
    await damaged.load();
    assert.equal(damaged.size, 0, "a damaged file is set aside, not fatal");
  });

  it("are bounded in number", async () => {
    const tokens = new BootstrapTokens({ logger, maxTokens: 2 });
    await tokens.issue(order);
    await tokens.issue(order);
    await assert.rejects(tokens.issue(order), { code: CaCodes.TOKEN_LIMIT });
  });
});

describe("lifetimes", () => {
  it("rotateAt is the half-life", () => {
    const issued = new Date("2030-01-01T00:00:00Z");
    assert.equal(
      rotateAt(new Date("2030-01-02T00:00:00Z"), issued).toISOString(),
      "2030-01-01T12:00:00.000Z",
    );
    assert.equal(rotateAt(new Date(issued.getTime() + 120_000), issued).getTime(), issued.getTime() + 60_000);
  });

  it("the API's ttl: seconds or a duration; anything else is SKEIN_E_CA_TTL", () => {
    assert.equal(parseTtl(120), 120_000);
    assert.equal(parseTtl("2m"), 120_000);
    assert.equal(parseTtl("1h30m"), 5_400_000);
    assert.equal(parseTtl("1500ms"), 1500);
    for (const bad of ["", "2 minutes", "-1s", "1d", 0, -5, Number.NaN]) {
      assert.throws(() => parseTtl(bad), { code: CaCodes.TTL }, String(bad));
    }
  });
});
