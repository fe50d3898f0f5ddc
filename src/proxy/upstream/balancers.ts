// Load balancers, one small class per LbPolicy behind one interface. A balancer is built when a cluster's
// host set (or policy) changes and reads the cluster's current host lists at pick time, so health and
// ejection changes cost nothing here. Ring and table construction happen at build time, never per pick.
import type { LbPolicy } from "../config/types.js";
import { xxHash64 } from "./hash.js";
import type { PickContext } from "./types.js";

/** What a balancer reads from a host. */
export interface BalancedHost {
  readonly key: string;
  readonly weight: number;
  /** Healthy (EDS) and not ejected by outlier detection. */
  readonly available: boolean;
  /** Requests in flight (least-request). */
  readonly active: number;
  /** Position in the cluster's `all` list, set by the cluster; indexes per-host balancer state. */
  readonly lbIndex: number;
}

/** The cluster's host lists; replaced (not mutated) when membership or availability changes. */
export interface HostSets<H extends BalancedHost> {
  readonly all: readonly H[];
  readonly available: readonly H[];
}

export interface LoadBalancer<H extends BalancedHost> {
  /**
   * A host, or undefined when none may be used. In panic mode (healthy share below the panic threshold)
   * every host is a candidate. Hosts in `ctx.avoid` are skipped unless nothing else is left.
   */
  pick(ctx: PickContext, panic: boolean): H | undefined;
}

export interface BalancerOptions {
  /** RING_HASH minimum ring size (default 1024) or MAGLEV table size (default 65537, made prime). */
  ringSize?: number;
  random: () => number;
}

export const DEFAULT_MIN_RING_SIZE = 1024;
/** Envoy's maximum_ring_size default. */
export const MAX_RING_SIZE = 8 * 1024 * 1024;
export const DEFAULT_MAGLEV_TABLE_SIZE = 65537;

export function createBalancer<H extends BalancedHost>(
  policy: LbPolicy,
  sets: HostSets<H>,
  options: BalancerOptions,
): LoadBalancer<H> {
  switch (policy) {
    case "ROUND_ROBIN":
      return new RoundRobin(sets, options.random);
    case "LEAST_REQUEST":
      return new LeastRequest(sets, options.random);
    case "RANDOM":
      return new RandomBalancer(sets, options.random);
    case "RING_HASH":
      return new RingHash(sets, options.ringSize ?? DEFAULT_MIN_RING_SIZE, options.random);
    case "MAGLEV":
      return new Maglev(sets, options.ringSize ?? DEFAULT_MAGLEV_TABLE_SIZE, options.random);
  }
}

function candidates<H extends BalancedHost>(
  sets: HostSets<H>,
  ctx: PickContext,
  panic: boolean,
): readonly H[] {
  const list = panic ? sets.all : sets.available;
  const avoid = ctx.avoid;
  if (avoid === undefined || avoid.size === 0) return list;
  // Only retries carry `avoid`, so the filtered copy is not on the common path.
  const kept = list.filter((h) => !avoid.has(h.key));
  return kept.length > 0 ? kept : list;
}

function allWeightsEqual(hosts: readonly BalancedHost[]): boolean {
  for (let i = 1; i < hosts.length; i++)
    if ((hosts[i] as BalancedHost).weight !== (hosts[0] as BalancedHost).weight) return false;
  return true;
}

/**
 * Smooth weighted round robin (nginx): each pick adds every candidate's weight to its running score,
 * takes the highest and subtracts the total from it, so a 3:1 split interleaves as a a b a rather than
 * a a a b. With equal weights it degrades to a plain rotation, which is O(1).
 */
class RoundRobin<H extends BalancedHost> implements LoadBalancer<H> {
  private readonly weighted: boolean;
  private readonly score: Float64Array;
  private next: number;

  constructor(
    private readonly sets: HostSets<H>,
    random: () => number,
  ) {
    this.weighted = !allWeightsEqual(sets.all);
    this.score = new Float64Array(sets.all.length);
    // A random start keeps a fleet of proxies from all hitting the first host after a config push.
    this.next = Math.floor(random() * Math.max(1, sets.all.length));
  }

  pick(ctx: PickContext, panic: boolean): H | undefined {
    const list = candidates(this.sets, ctx, panic);
    const n = list.length;
    if (n === 0) return undefined;
    if (!this.weighted) return list[this.next++ % n];
    return smoothPick(list, this.score, weightOf);
  }
}

function weightOf(h: BalancedHost): number {
  return h.weight;
}

function smoothPick<H extends BalancedHost>(
  list: readonly H[],
  score: Float64Array,
  weight: (h: H) => number,
): H | undefined {
  let total = 0;
  let best: H | undefined;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < list.length; i++) {
    const h = list[i] as H;
    const w = weight(h);
    const s = (score[h.lbIndex] as number) + w;
    score[h.lbIndex] = s;
    total += w;
    if (s > bestScore) {
      bestScore = s;
      best = h;
    }
  }
  if (best !== undefined) score[best.lbIndex] = bestScore - total;
  return best;
}

/**
 * Envoy's least request: with equal weights, the power of two choices (two distinct random candidates,
 * the one with fewer requests in flight wins); with unequal weights, a weighted schedule over
 * weight / (active + 1), Envoy's dynamic weight with active_request_bias 1.
 */
class LeastRequest<H extends BalancedHost> implements LoadBalancer<H> {
  private readonly weighted: boolean;
  private readonly score: Float64Array;

  constructor(
    private readonly sets: HostSets<H>,
    private readonly random: () => number,
  ) {
    this.weighted = !allWeightsEqual(sets.all);
    this.score = new Float64Array(sets.all.length);
  }

  pick(ctx: PickContext, panic: boolean): H | undefined {
    const list = candidates(this.sets, ctx, panic);
    const n = list.length;
    if (n === 0) return undefined;
    if (n === 1) return list[0];
    if (this.weighted) return smoothPick(list, this.score, dynamicWeight);
    const i = Math.floor(this.random() * n);
    let j = Math.floor(this.random() * (n - 1));
    if (j >= i) j++;
    const a = list[i] as H;
    const b = list[j] as H;
    return b.active < a.active ? b : a;
  }
}

function dynamicWeight(h: BalancedHost): number {
  return h.weight / (h.active + 1);
}

/** A random candidate; weighted by endpoint weight when weights differ (cumulative weights, binary search). */
class RandomBalancer<H extends BalancedHost> implements LoadBalancer<H> {
  private readonly weighted: boolean;
  // Cumulative weights of the last list seen; lists are replaced on change, so identity is the cache key.
  private cumList: readonly H[] | undefined;
  private cum = new Float64Array(0);

  constructor(
    private readonly sets: HostSets<H>,
    private readonly random: () => number,
  ) {
    this.weighted = !allWeightsEqual(sets.all);
  }

  pick(ctx: PickContext, panic: boolean): H | undefined {
    const list = candidates(this.sets, ctx, panic);
    const n = list.length;
    if (n === 0) return undefined;
    if (!this.weighted) return list[Math.floor(this.random() * n)];
    if (this.cumList !== list) {
      if (this.cum.length < n) this.cum = new Float64Array(n);
      let sum = 0;
      for (let i = 0; i < n; i++) {
        sum += (list[i] as H).weight;
        this.cum[i] = sum;
      }
      this.cumList = list;
    }
    const target = this.random() * (this.cum[n - 1] as number);
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cum[mid] as number) > target) hi = mid;
      else lo = mid + 1;
    }
    return list[lo];
  }
}

/** Splits a 64-bit hash into halves once per pick (two small bigint operations). */
function halves(hash: bigint): [number, number] {
  return [Number(hash >> 32n), Number(hash & 0xffffffffn)];
}

/**
 * Ketama-style consistent hash ring. Each host contributes weight × R points, the point i of host
 * `address:port` being xxHash64(`address:port_i`) as Envoy hashes them. R, the points per unit of weight,
 * is the smallest power of two that brings the ring to its minimum size: it depends on the total weight
 * only in power-of-two steps, so removing one of five equal hosts leaves every survivor's points where
 * they were and only the removed host's keys move (a plain `minRingSize / N` would re-cut every host).
 * A pick walks clockwise from the key's point to the first usable host, so an ejected host's keys spread
 * to its ring neighbours and come back when it returns.
 */
export class RingHash<H extends BalancedHost> implements LoadBalancer<H> {
  readonly size: number;
  private readonly hashHi: Uint32Array;
  private readonly hashLo: Uint32Array;
  private readonly owner: H[];

  constructor(
    private readonly sets: HostSets<H>,
    minRingSize: number,
    private readonly random: () => number,
  ) {
    const hosts = sets.all;
    let totalWeight = 0;
    for (const h of hosts) totalWeight += Math.max(1, h.weight);
    let perWeight = 1;
    while (perWeight * totalWeight < minRingSize && perWeight * totalWeight * 2 <= MAX_RING_SIZE)
      perWeight *= 2;
    // Weights so large that one point per unit exceeds the maximum: scale them down (rare, and then the
    // survivor-stability above holds only approximately).
    const scale = totalWeight > MAX_RING_SIZE ? MAX_RING_SIZE / totalWeight : 1;
    const pointsOf = (h: H) => Math.max(1, Math.floor(perWeight * Math.max(1, h.weight) * scale));
    let size = 0;
    for (const h of hosts) size += pointsOf(h);
    const hi = new Uint32Array(size);
    const lo = new Uint32Array(size);
    const owners: H[] = new Array(size);
    let k = 0;
    for (const h of hosts) {
      const points = pointsOf(h);
      for (let i = 0; i < points; i++) {
        const [a, b] = halves(xxHash64(`${h.key}_${i}`));
        hi[k] = a;
        lo[k] = b;
        owners[k] = h;
        k++;
      }
    }
    // Sort by hash (ties by host key, so the ring does not depend on EDS order).
    const order = Array.from({ length: size }, (_, i) => i);
    order.sort(
      (x, y) =>
        (hi[x] as number) - (hi[y] as number) ||
        (lo[x] as number) - (lo[y] as number) ||
        ((owners[x] as H).key < (owners[y] as H).key ? -1 : 1),
    );
    this.size = size;
    this.hashHi = new Uint32Array(size);
    this.hashLo = new Uint32Array(size);
    this.owner = new Array(size);
    for (let i = 0; i < size; i++) {
      const o = order[i] as number;
      this.hashHi[i] = hi[o] as number;
      this.hashLo[i] = lo[o] as number;
      this.owner[i] = owners[o] as H;
    }
  }

  pick(ctx: PickContext, panic: boolean): H | undefined {
    if (this.size === 0 || (!panic && this.sets.available.length === 0)) return undefined;
    let kh: number;
    let kl: number;
    if (ctx.hash !== undefined) [kh, kl] = halves(ctx.hash);
    else {
      kh = Math.floor(this.random() * 4294967296);
      kl = Math.floor(this.random() * 4294967296);
    }
    // First point with hash ≥ key, wrapping to the start of the ring.
    let a = 0;
    let b = this.size;
    while (a < b) {
      const m = (a + b) >>> 1;
      const mh = this.hashHi[m] as number;
      if (mh < kh || (mh === kh && (this.hashLo[m] as number) < kl)) a = m + 1;
      else b = m;
    }
    return walk(this.owner, a === this.size ? 0 : a, ctx.avoid, panic);
  }

  /** The host owning a hash regardless of health (tests and the admin page). */
  ownerOf(hash: bigint): H | undefined {
    return this.pick({ hash }, true);
  }
}

/** From `start`, the first usable host not avoided, else the first usable one; at most one lap. */
function walk<H extends BalancedHost>(
  table: readonly H[],
  start: number,
  avoid: ReadonlySet<string> | undefined,
  panic: boolean,
): H | undefined {
  const n = table.length;
  let fallback: H | undefined;
  for (let k = 0, i = start; k < n; k++, i = i + 1 === n ? 0 : i + 1) {
    const h = table[i] as H;
    if (!panic && !h.available) continue;
    if (avoid === undefined || !avoid.has(h.key)) return h;
    fallback ??= h;
  }
  return fallback;
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}

/**
 * Maglev (Eisenbud et al., 2016) as Envoy builds it: each host (sorted by key) gets an offset
 * xxHash64(key) mod M and a skip xxHash64(key, seed 1) mod (M − 1) + 1; hosts take turns claiming the
 * next free slot of their permutation, a host of weight w taking a turn w/max-weight as often. A key's
 * host is table[hash mod M]; when that host is not usable the walk continues along the table.
 */
export class Maglev<H extends BalancedHost> implements LoadBalancer<H> {
  readonly tableSize: number;
  private readonly bigSize: bigint;
  private readonly table: H[];

  constructor(
    private readonly sets: HostSets<H>,
    tableSize: number,
    private readonly random: () => number,
  ) {
    let m = Math.max(2, Math.floor(tableSize));
    while (!isPrime(m)) m++;
    this.tableSize = m;
    this.bigSize = BigInt(m);
    const hosts = [...sets.all].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    this.table = hosts.length === 0 ? [] : new Array(m);
    if (hosts.length === 0) return;
    const n = hosts.length;
    const offset = new Float64Array(n);
    const skip = new Float64Array(n);
    const next = new Float64Array(n);
    const counts = new Float64Array(n);
    let maxWeight = 0;
    for (let i = 0; i < n; i++) {
      const h = hosts[i] as H;
      offset[i] = Number(xxHash64(h.key) % this.bigSize);
      skip[i] = Number(xxHash64(h.key, 1n) % (this.bigSize - 1n)) + 1;
      maxWeight = Math.max(maxWeight, h.weight);
    }
    const taken = new Uint8Array(m);
    let filled = 0;
    for (let iteration = 1; filled < m; iteration++) {
      for (let i = 0; i < n && filled < m; i++) {
        const h = hosts[i] as H;
        if (maxWeight > 0) {
          if (iteration * h.weight < (counts[i] as number)) continue;
          counts[i] = (counts[i] as number) + maxWeight;
        }
        let c = ((offset[i] as number) + (skip[i] as number) * (next[i] as number)) % m;
        while (taken[c] === 1) {
          next[i] = (next[i] as number) + 1;
          c = ((offset[i] as number) + (skip[i] as number) * (next[i] as number)) % m;
        }
        taken[c] = 1;
        this.table[c] = h;
        next[i] = (next[i] as number) + 1;
        filled++;
      }
    }
  }

  pick(ctx: PickContext, panic: boolean): H | undefined {
    if (this.table.length === 0 || (!panic && this.sets.available.length === 0)) return undefined;
    const i =
      ctx.hash !== undefined ? Number(ctx.hash % this.bigSize) : Math.floor(this.random() * this.tableSize);
    return walk(this.table, i, ctx.avoid, panic);
  }
}
