// xxHash64 (the function Envoy uses for ring hash, Maglev and route hash policies) and the evaluation of a
// route's hash policies into one 64-bit value. The arithmetic runs on 32-bit halves in plain numbers so a
// per-request hash allocates nothing until the final bigint; the results equal the reference XXH64.
import type { HashPolicy } from "../config/types.js";

const P1H = 0x9e3779b1;
const P1L = 0x85ebca87;
const P2H = 0xc2b2ae3d;
const P2L = 0x27d4eb4f;
const P3H = 0x165667b1;
const P3L = 0x9e3779f9;
const P4H = 0x85ebca77;
const P4L = 0xc2b2ae63;
const P5H = 0x27d4eb2f;
const P5L = 0x165667c5;
const TWO32 = 4294967296;

// Result registers of the 64-bit helpers: returning pairs through module state avoids an object per step.
let RH = 0;
let RL = 0;

function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  const carry = lo >= TWO32 ? 1 : 0;
  RL = lo >>> 0;
  RH = (ah + bh + carry) >>> 0;
}

function mul(ah: number, al: number, bh: number, bl: number): void {
  // Low 64 bits of (ah·2³² + al)(bh·2³² + bl): the full al·bl product from 16-bit limbs, cross terms mod 2³².
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const b0 = bl & 0xffff;
  const b1 = bl >>> 16;
  const p00 = a0 * b0;
  const mid = a0 * b1 + a1 * b0 + (p00 >>> 16);
  RL = (((mid & 0xffff) << 16) | (p00 & 0xffff)) >>> 0;
  const hiAlBl = a1 * b1 + Math.floor(mid / 65536);
  RH = (hiAlBl + Math.imul(ah, bl) + Math.imul(al, bh)) >>> 0;
}

function rotl(h: number, l: number, r: number): void {
  // r is always in 1..31 here.
  RH = ((h << r) | (l >>> (32 - r))) >>> 0;
  RL = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** acc = rotl(acc + input·P2, 31)·P1, leaving the result in RH/RL. */
function round(ah: number, al: number, ih: number, il: number): void {
  mul(ih, il, P2H, P2L);
  add(ah, al, RH, RL);
  rotl(RH, RL, 31);
  mul(RH, RL, P1H, P1L);
}

function mergeRound(ah: number, al: number, vh: number, vl: number): void {
  round(0, 0, vh, vl);
  const xh = (ah ^ RH) >>> 0;
  const xl = (al ^ RL) >>> 0;
  mul(xh, xl, P1H, P1L);
  add(RH, RL, P4H, P4L);
}

function u32(b: Uint8Array, i: number): number {
  return (
    ((b[i] as number) |
      ((b[i + 1] as number) << 8) |
      ((b[i + 2] as number) << 16) |
      ((b[i + 3] as number) << 24)) >>>
    0
  );
}

/** XXH64 of `len` bytes of `b` with a 64-bit seed given as halves; the result is left in RH/RL. */
function xxh64Into(b: Uint8Array, len: number, seedH: number, seedL: number): void {
  let i = 0;
  let hh: number;
  let hl: number;
  if (len >= 32) {
    add(seedH, seedL, P1H, P1L);
    add(RH, RL, P2H, P2L);
    let v1h = RH;
    let v1l = RL;
    add(seedH, seedL, P2H, P2L);
    let v2h = RH;
    let v2l = RL;
    let v3h = seedH;
    let v3l = seedL;
    // seed − P1 = seed + (2⁶⁴ − P1)
    add(seedH, seedL, 0x61c8864e, 0x7a143579);
    let v4h = RH;
    let v4l = RL;
    const limit = len - 32;
    do {
      round(v1h, v1l, u32(b, i + 4), u32(b, i));
      v1h = RH;
      v1l = RL;
      round(v2h, v2l, u32(b, i + 12), u32(b, i + 8));
      v2h = RH;
      v2l = RL;
      round(v3h, v3l, u32(b, i + 20), u32(b, i + 16));
      v3h = RH;
      v3l = RL;
      round(v4h, v4l, u32(b, i + 28), u32(b, i + 24));
      v4h = RH;
      v4l = RL;
      i += 32;
    } while (i <= limit);
    rotl(v1h, v1l, 1);
    let ah = RH;
    let al = RL;
    rotl(v2h, v2l, 7);
    add(ah, al, RH, RL);
    ah = RH;
    al = RL;
    rotl(v3h, v3l, 12);
    add(ah, al, RH, RL);
    ah = RH;
    al = RL;
    rotl(v4h, v4l, 18);
    add(ah, al, RH, RL);
    mergeRound(RH, RL, v1h, v1l);
    mergeRound(RH, RL, v2h, v2l);
    mergeRound(RH, RL, v3h, v3l);
    mergeRound(RH, RL, v4h, v4l);
    hh = RH;
    hl = RL;
  } else {
    add(seedH, seedL, P5H, P5L);
    hh = RH;
    hl = RL;
  }
  add(hh, hl, Math.floor(len / TWO32), len >>> 0);
  hh = RH;
  hl = RL;
  while (i + 8 <= len) {
    round(0, 0, u32(b, i + 4), u32(b, i));
    rotl((hh ^ RH) >>> 0, (hl ^ RL) >>> 0, 27);
    mul(RH, RL, P1H, P1L);
    add(RH, RL, P4H, P4L);
    hh = RH;
    hl = RL;
    i += 8;
  }
  if (i + 4 <= len) {
    mul(0, u32(b, i), P1H, P1L);
    rotl((hh ^ RH) >>> 0, (hl ^ RL) >>> 0, 23);
    mul(RH, RL, P2H, P2L);
    add(RH, RL, P3H, P3L);
    hh = RH;
    hl = RL;
    i += 4;
  }
  while (i < len) {
    mul(0, b[i] as number, P5H, P5L);
    rotl((hh ^ RH) >>> 0, (hl ^ RL) >>> 0, 11);
    mul(RH, RL, P1H, P1L);
    hh = RH;
    hl = RL;
    i++;
  }
  // Avalanche: h ^= h >> 33; h *= P2; h ^= h >> 29; h *= P3; h ^= h >> 32.
  hl = (hl ^ (hh >>> 1)) >>> 0;
  mul(hh, hl, P2H, P2L);
  hh = RH;
  hl = (RL ^ ((RL >>> 29) | (RH << 3))) >>> 0;
  hh = (hh ^ (hh >>> 29)) >>> 0;
  mul(hh, hl, P3H, P3L);
  RL = (RL ^ RH) >>> 0;
}

const encoder = new TextEncoder();
// Reused for every string hashed; grown on demand. Single-threaded, and nothing here yields mid-hash.
let scratch = new Uint8Array(256);

function encode(s: string): number {
  // UTF-8 needs at most 3 bytes per UTF-16 unit.
  if (s.length * 3 > scratch.length) scratch = new Uint8Array(Math.max(s.length * 3, scratch.length * 2));
  return encoder.encodeInto(s, scratch).written;
}

function toBigInt(h: number, l: number): bigint {
  return (BigInt(h) << 32n) | BigInt(l);
}

/** XXH64 of a string's UTF-8 bytes, as Envoy's HashUtil::xxHash64(string_view, seed). */
export function xxHash64(input: string | Uint8Array, seed = 0n): bigint {
  const sh = Number(seed >> 32n) >>> 0;
  const sl = Number(seed & 0xffffffffn) >>> 0;
  if (typeof input === "string") xxh64Into(scratch, encode(input), sh, sl);
  else xxh64Into(input, input.length, sh, sl);
  return toBigInt(RH, RL);
}

// Accumulated hash of the policies evaluated so far (halves), and whether any policy produced one.
let accH = 0;
let accL = 0;
let accSet = false;

function combine(h: number, l: number): void {
  if (accSet) {
    // Envoy rotates the previous value left by one before xoring, so two equal policies do not cancel.
    const rh = ((accH << 1) | (accL >>> 31)) >>> 0;
    const rl = ((accL << 1) | (accH >>> 31)) >>> 0;
    accH = (rh ^ h) >>> 0;
    accL = (rl ^ l) >>> 0;
  } else {
    accH = h;
    accL = l;
    accSet = true;
  }
}

function hashString(s: string): void {
  xxh64Into(scratch, encode(s), 0, 0);
}

function hashValues(values: readonly string[]): void {
  // Envoy sorts multiple header values so their order does not matter, then chains them through the seed.
  const sorted = values.length > 1 ? [...values].sort() : values;
  let h = 0;
  let l = 0;
  for (const v of sorted) {
    xxh64Into(scratch, encode(v), h, l);
    h = RH;
    l = RL;
  }
}

function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) {
    for (const h of header) {
      const v = cookieValue(h, name);
      if (v !== undefined) return v;
    }
    return undefined;
  }
  // Scan `a=b; c=d` without splitting the whole header.
  let i = 0;
  const n = header.length;
  while (i < n) {
    while (i < n && (header.charCodeAt(i) === 0x20 || header.charCodeAt(i) === 0x3b)) i++;
    const eq = header.indexOf("=", i);
    if (eq < 0) return undefined;
    let end = header.indexOf(";", eq + 1);
    if (end < 0) end = n;
    if (eq - i === name.length && header.startsWith(name, i)) {
      let v = header.slice(eq + 1, end).trim();
      if (v.length >= 2 && v.charCodeAt(0) === 0x22 && v.charCodeAt(v.length - 1) === 0x22)
        v = v.slice(1, -1);
      return v;
    }
    i = end + 1;
  }
  return undefined;
}

export interface HashInput {
  headers: Record<string, string | string[] | undefined>;
  sourceIp: string;
  query: URLSearchParams;
}

/**
 * The route's hash for RING_HASH/MAGLEV, computed as Envoy's HashPolicyImpl does: policies in order, each
 * that applies rotated into the running value, a terminal policy that produced a hash ending the walk.
 * Undefined when no policy applied (the balancer then picks as if there were no affinity). Cookie policies
 * only read an existing cookie; generating one (ttl set, cookie absent) is the router's business.
 */
export function hashFor(policies: readonly HashPolicy[], req: HashInput): bigint | undefined {
  accSet = false;
  for (let i = 0; i < policies.length; i++) {
    const p = policies[i] as HashPolicy;
    switch (p.kind) {
      case "header": {
        let v = req.headers[p.name];
        if (v === undefined && p.name === ":authority") v = req.headers.host;
        if (v === undefined || (Array.isArray(v) && v.length === 0)) break;
        if (typeof v === "string") hashString(v);
        else hashValues(v);
        combine(RH, RL);
        break;
      }
      case "cookie": {
        const v = cookieValue(req.headers.cookie, p.name);
        if (v === undefined) break;
        hashString(v);
        combine(RH, RL);
        break;
      }
      case "sourceIp":
        if (!req.sourceIp) break;
        hashString(req.sourceIp);
        combine(RH, RL);
        break;
      case "queryParameter": {
        const v = req.query.get(p.name);
        if (v === null) break;
        hashString(v);
        combine(RH, RL);
        break;
      }
    }
    if (accSet && p.terminal) break;
  }
  return accSet ? toBigInt(accH, accL) : undefined;
}
