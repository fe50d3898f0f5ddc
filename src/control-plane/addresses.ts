// Local mode hands each workload its own loopback address (DESIGN.md, "Addressing without Kubernetes"),
// standing in for a pod IP. `skein run` asks for one before starting its sidecar; the address is
// reserved for a while and then held for as long as a proxy or static workload uses it.
import { readFileSync } from "node:fs";

export const POOL_START = "127.0.1.1";
export const POOL_END = "127.0.255.254";

function toInt(a: string): number {
  return a.split(".").reduce((n, o) => n * 256 + Number(o), 0) >>> 0;
}
function toAddr(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/**
 * Loopback addresses that something on this machine listens on (Linux /proc/net/tcp, LISTEN state): another
 * mesh's sidecars, started by another control plane, must not be handed out again. Empty where unreadable.
 */
export function listeningLoopbackAddresses(): string[] {
  let text: string;
  try {
    text = readFileSync("/proc/net/tcp", "utf8");
  } catch {
    return [];
  }
  const out = new Set<string>();
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[3] !== "0A" || !f[1]) continue;
    const hex = f[1].split(":")[0] ?? "";
    // Little-endian hex of the IPv4 address.
    const n = Number.parseInt(hex, 16);
    const a = [n & 255, (n >>> 8) & 255, (n >>> 16) & 255, n >>> 24].join(".");
    if (a.startsWith("127.")) out.add(a);
  }
  return [...out];
}

export class AddressAllocator {
  private readonly reserved = new Map<string, number>();
  private next: number;
  constructor(
    private readonly inUse: () => Iterable<string>,
    private readonly ttlMs = 60_000,
    private readonly start = toInt(POOL_START),
    private readonly end = toInt(POOL_END),
  ) {
    this.next = start;
  }

  /** A free address, reserved for `ttlMs`; undefined when the pool is exhausted. */
  allocate(now = Date.now()): string | undefined {
    for (const [a, until] of this.reserved) if (until <= now) this.reserved.delete(a);
    const used = new Set(this.inUse());
    const size = this.end - this.start + 1;
    // Round-robin through the pool so a released address is not handed out again at once.
    for (let i = 0; i < size; i++) {
      const n = this.start + ((this.next - this.start + i) % size);
      const last = n & 255;
      if (last === 0 || last === 255) continue;
      const a = toAddr(n);
      if (used.has(a) || this.reserved.has(a)) continue;
      this.reserved.set(a, now + this.ttlMs);
      this.next = n + 1 > this.end ? this.start : n + 1;
      return a;
    }
    return undefined;
  }

  release(address: string): void {
    this.reserved.delete(address);
  }
}
