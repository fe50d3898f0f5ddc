// xxHash64 in src/proxy/upstream/hash.ts against published test vectors and a straightforward bigint
// implementation of the reference algorithm, and route hash policies computed as Envoy combines them.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { HashPolicy } from "../src/proxy/config/types.js";
import { createClusterManager } from "../src/proxy/upstream/cluster-manager.js";
import { hashFor, xxHash64 } from "../src/proxy/upstream/hash.js";

const M = (1n << 64n) - 1n;
const P1 = 0x9e3779b185ebca87n;
const P2 = 0xc2b2ae3d27d4eb4fn;
const P3 = 0x165667b19e3779f9n;
const P4 = 0x85ebca77c2b2ae63n;
const P5 = 0x27d4eb2f165667c5n;
const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
const round = (acc: bigint, input: bigint) => (rotl((acc + input * P2) & M, 31n) * P1) & M;
const merge = (acc: bigint, v: bigint) => ((acc ^ round(0n, v)) * P1 + P4) & M;

/** XXH64 written directly from the specification, with bigints. */
function referenceXXH64(b: Uint8Array, seed: bigint): bigint {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let i = 0;
  let h: bigint;
  if (b.length >= 32) {
    let v1 = (seed + P1 + P2) & M;
    let v2 = (seed + P2) & M;
    let v3 = seed;
    let v4 = (seed - P1) & M;
    while (i + 32 <= b.length) {
      v1 = round(v1, dv.getBigUint64(i, true));
      v2 = round(v2, dv.getBigUint64(i + 8, true));
      v3 = round(v3, dv.getBigUint64(i + 16, true));
      v4 = round(v4, dv.getBigUint64(i + 24, true));
      i += 32;
    }
    h = (rotl(v1, 1n) + rotl(v2, 7n) + rotl(v3, 12n) + rotl(v4, 18n)) & M;
    h = merge(merge(merge(merge(h, v1), v2), v3), v4);
  } else h = (seed + P5) & M;
  h = (h + BigInt(b.length)) & M;
  for (; i + 8 <= b.length; i += 8) h = (rotl(h ^ round(0n, dv.getBigUint64(i, true)), 27n) * P1 + P4) & M;
  if (i + 4 <= b.length) {
    h = (rotl(h ^ ((BigInt(dv.getUint32(i, true)) * P1) & M), 23n) * P2 + P3) & M;
    i += 4;
  }
  for (; i < b.length; i++) h = (rotl(h ^ ((BigInt(b[i] as number) * P5) & M), 11n) * P1) & M;
  h ^= h >> 33n;
  h = (h * P2) & M;
  h ^= h >> 29n;
  h = (h * P3) & M;
  return h ^ (h >> 32n);
}

describe("xxHash64", () => {
  it("matches the published vectors", () => {
    assert.equal(xxHash64(""), 0xef46db3751d8e999n);
    assert.equal(xxHash64("a"), 0xd24ec4f1a98c6e5bn);
    assert.equal(xxHash64("abc"), 0x44bc2cf5ad770999n);
    assert.equal(xxHash64("Nobody inspects the spammish repetition"), 0xfbcea83c8a378bf1n);
  });

  it("matches a bigint reference for 2000 random inputs of 0–200 bytes and random seeds", () => {
    let state = 12345;
    const next = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state;
    };
    for (let n = 0; n < 2000; n++) {
      const len = n < 201 ? n : next() % 201;
      const bytes = new Uint8Array(len);
      for (let i = 0; i < len; i++) bytes[i] = next() & 0xff;
      const seed = n % 3 === 0 ? 0n : (BigInt(next()) << 32n) | BigInt(next());
      assert.equal(xxHash64(bytes, seed), referenceXXH64(bytes, seed), `length ${len}`);
    }
    // Strings are hashed as UTF-8.
    assert.equal(xxHash64("héllo ✓"), referenceXXH64(new TextEncoder().encode("héllo ✓"), 0n));
  });
});

describe("hash policies", () => {
  const input = (
    headers: Record<string, string | string[] | undefined>,
    query = "",
    sourceIp = "10.1.2.3",
  ) => ({
    headers,
    sourceIp,
    query: new URLSearchParams(query),
  });
  const header = (name: string, terminal = false): HashPolicy => ({ kind: "header", name, terminal });

  it("hashes a header, a cookie, the source IP and a query parameter; undefined when nothing applies", () => {
    assert.equal(hashFor([header("x-user")], input({ "x-user": "alice" })), xxHash64("alice"));
    assert.equal(hashFor([header("x-user")], input({})), undefined);
    assert.equal(hashFor([], input({ "x-user": "alice" })), undefined);
    assert.equal(
      hashFor(
        [{ kind: "cookie", name: "session", terminal: false }],
        input({ cookie: 'a=1; session="s-42"; b=2' }),
      ),
      xxHash64("s-42"),
    );
    assert.equal(
      hashFor([{ kind: "cookie", name: "session", terminal: false }], input({ cookie: "sessions=1" })),
      undefined,
    );
    assert.equal(hashFor([{ kind: "sourceIp", terminal: false }], input({})), xxHash64("10.1.2.3"));
    assert.equal(
      hashFor([{ kind: "queryParameter", name: "id", terminal: false }], input({}, "x=1&id=7&id=8")),
      xxHash64("7"),
    );
    assert.equal(hashFor([header(":authority")], input({ host: "shop.mesh" })), xxHash64("shop.mesh"));
  });

  it("hashes repeated header values independently of their order", () => {
    const ab = hashFor([header("x-tag")], input({ "x-tag": ["a", "b"] }));
    assert.equal(ab, hashFor([header("x-tag")], input({ "x-tag": ["b", "a"] })));
    assert.equal(ab, xxHash64("b", xxHash64("a")));
  });

  it("combines policies by rotating the running hash, and stops at a terminal policy that produced one", () => {
    const h1 = xxHash64("alice");
    const h2 = xxHash64("10.1.2.3");
    const rot = ((h1 << 1n) | (h1 >> 63n)) & M;
    const both = [header("x-user"), { kind: "sourceIp", terminal: false } as HashPolicy];
    assert.equal(hashFor(both, input({ "x-user": "alice" })), rot ^ h2);
    const terminal = [header("x-user", true), { kind: "sourceIp", terminal: false } as HashPolicy];
    assert.equal(hashFor(terminal, input({ "x-user": "alice" })), h1);
    // A terminal policy that did not apply does not stop the walk.
    assert.equal(hashFor(terminal, input({})), h2);
    // The manager exposes the same function.
    assert.equal(createClusterManager().hashFor(both, input({ "x-user": "alice" })), rot ^ h2);
  });
});
