// Bootstrap tokens: how a workload proves who it is to the CA before it has a certificate. `skein run` asks for
// one when it registers a workload and gives it to that workload's sidecar alone. A token is 256 random bits,
// kept only as its SHA-256 (so the state file cannot be replayed), bound to one (namespace, service account),
// and expires when unused for a while; each certificate it obtains keeps it alive until that certificate expires
// and an idle period after, so renewal at half-life never finds its token gone.
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { SkeinError } from "../../lib/diagnostics.js";
import { createLogger, type Logger } from "../../lib/log.js";
import { CaCodes } from "./codes.js";

export const DEFAULT_TOKEN_IDLE_MS = 3600_000;
const DEFAULT_MAX_TOKENS = 100_000;

export interface BootstrapTokenOptions {
  /** How long a token lives without being used. */
  idleMs?: number;
  /** Where the hashed tokens persist across restarts (owner-only); none: memory only. */
  file?: string;
  maxTokens?: number;
  logger?: Logger;
  now?: () => number;
}

/** Who a token proves the caller to be. */
export interface TokenSubject {
  namespace: string;
  serviceAccount: string;
}

interface TokenRecord extends TokenSubject {
  issuedAt: number;
  expiresAt: number;
}

interface StateFile {
  version: 1;
  tokens: ({ hash: string } & TokenRecord)[];
}

const hashOf = (token: string) => createHash("sha256").update(token).digest("hex");

export class BootstrapTokens {
  private readonly byHash = new Map<string, TokenRecord>();
  private readonly idleMs: number;
  private readonly maxTokens: number;
  private readonly now: () => number;
  private readonly log: Logger;
  /** Writes run one after another so an older state never lands after a newer one. */
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly options: BootstrapTokenOptions = {}) {
    this.idleMs = options.idleMs ?? DEFAULT_TOKEN_IDLE_MS;
    this.maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
    this.now = options.now ?? Date.now;
    this.log = options.logger ?? createLogger("ca");
    if (!Number.isFinite(this.idleMs) || this.idleMs <= 0)
      throw new SkeinError(CaCodes.REQUEST, `token idle time ${this.idleMs} ms must be positive`);
  }

  /** Reads the persisted tokens, dropping expired ones. A damaged file is reported and set aside, not fatal. */
  async load(): Promise<void> {
    const file = this.options.file;
    if (!file) return;
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
      throw new SkeinError(CaCodes.STATE, `cannot read ${file}: ${(e as Error).message}`);
    }
    try {
      const state = JSON.parse(text) as StateFile;
      if (state.version !== 1 || !Array.isArray(state.tokens)) throw new Error("not a version 1 token file");
      const at = this.now();
      for (const t of state.tokens) {
        if (typeof t.hash !== "string" || !(t.expiresAt > at)) continue;
        this.byHash.set(t.hash, {
          namespace: String(t.namespace),
          serviceAccount: String(t.serviceAccount),
          issuedAt: Number(t.issuedAt),
          expiresAt: Number(t.expiresAt),
        });
      }
    } catch (e) {
      // Workloads can be given new tokens; refusing to start would take the whole mesh's control plane down.
      this.log.warn("bootstrap token file unreadable; starting without tokens (re-register workloads)", {
        file,
        error: (e as Error).message,
      });
    }
  }

  /** A new token for this identity; the caller hands it to the workload, nobody else. */
  async issue(subject: TokenSubject): Promise<{ token: string; expiresAt: Date }> {
    this.prune();
    if (this.byHash.size >= this.maxTokens) {
      throw new SkeinError(
        CaCodes.TOKEN_LIMIT,
        `${this.byHash.size} bootstrap tokens are live: revoke unused ones or wait for them to expire`,
      );
    }
    const token = randomBytes(32).toString("base64url");
    const at = this.now();
    const record = {
      namespace: subject.namespace,
      serviceAccount: subject.serviceAccount,
      issuedAt: at,
      expiresAt: at + this.idleMs,
    };
    this.byHash.set(hashOf(token), record);
    await this.save();
    return { token, expiresAt: new Date(record.expiresAt) };
  }

  /** Who the token proves the caller to be; undefined when it is unknown, expired or revoked. */
  authenticate(token: string): TokenSubject | undefined {
    // Looked up by hash: the comparison that matters happens on 256-bit digests, not on the secret itself.
    const hash = hashOf(token);
    const record = this.byHash.get(hash);
    if (!record) return undefined;
    if (record.expiresAt <= this.now()) {
      this.byHash.delete(hash);
      return undefined;
    }
    return { namespace: record.namespace, serviceAccount: record.serviceAccount };
  }

  /** Records a use: the token lives at least `idleMs` more, and until `atLeastUntil` plus `idleMs`. */
  async used(token: string, atLeastUntil = 0): Promise<void> {
    const record = this.byHash.get(hashOf(token));
    if (!record) return;
    record.expiresAt = Math.max(record.expiresAt, this.now() + this.idleMs, atLeastUntil + this.idleMs);
    await this.save();
  }

  /** Revokes one token; false when it was not live. */
  async revoke(token: string): Promise<boolean> {
    const had = this.byHash.delete(hashOf(token));
    if (had) await this.save();
    return had;
  }

  /** Revokes every token of an identity; returns how many there were. */
  async revokeAll(subject: TokenSubject): Promise<number> {
    let n = 0;
    for (const [hash, r] of this.byHash) {
      if (r.namespace === subject.namespace && r.serviceAccount === subject.serviceAccount) {
        this.byHash.delete(hash);
        n++;
      }
    }
    if (n > 0) await this.save();
    return n;
  }

  /** Live tokens. */
  get size(): number {
    this.prune();
    return this.byHash.size;
  }

  private prune(): void {
    const at = this.now();
    for (const [hash, r] of this.byHash) if (r.expiresAt <= at) this.byHash.delete(hash);
  }

  private save(): Promise<void> {
    const file = this.options.file;
    if (!file) return Promise.resolve();
    const next = this.saving.then(async () => {
      const state: StateFile = {
        version: 1,
        tokens: [...this.byHash].map(([hash, r]) => ({ hash, ...r })),
      };
      const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
      try {
        await mkdir(dirname(file), { recursive: true, mode: 0o700 });
        await writeFile(tmp, JSON.stringify(state), { mode: 0o600, flag: "wx" });
        await rename(tmp, file);
      } catch (e) {
        await unlink(tmp).catch(() => undefined);
        throw new SkeinError(CaCodes.STATE, `cannot write ${file}: ${(e as Error).message}`);
      }
    });
    // A failed write must not wedge the ones after it; the caller of this one still sees the error.
    this.saving = next.catch(() => undefined);
    return next;
  }
}
