// Where the secret manager's secrets come from, as Istio's agent gets them:
// - CaSecretSource: a key pair made in memory and a CSR signed by the control plane's CA (POST
//   /api/v1/certificates with the bootstrap token), renewed at half-life; a failed request is retried with
//   back-off while the current certificate is still valid.
// - FileSecretSource: a directory in Istio's output layout (cert-chain.pem, key.pem, root-cert.pem), re-read
//   when it changes (fs.watch, plus a slow poll for file systems whose events get lost); a half-written or
//   mismatched set is ignored until it is whole again.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { SkeinError } from "../../lib/diagnostics.js";
import { requestWorkloadCertificate, rotateAt } from "../../lib/identity.js";
import { createLogger, type Logger } from "../../lib/log.js";
import { IdentityProxyCodes, type SecretManager } from "./secrets.js";
import { leafSpiffeId } from "./tls-contexts.js";

/** Something that feeds a SecretManager until stopped. */
export interface SecretSource {
  start(): void;
  stop(): void;
}

export interface CaSourceOptions {
  /** The control plane's HTTP API, e.g. http://127.0.0.1:15080. */
  controlPlane: string;
  token: string;
  /** Requested certificate lifetime (the CA's default when absent). */
  ttlMs?: number;
  logger?: Logger;
  /** First retry delay after a failed request (doubles up to 30 s); default 1 s. */
  retryMs?: number;
}

const MAX_RETRY_MS = 30_000;

/** Certificates from the control plane's CA, rotated at half-life. */
export class CaSecretSource implements SecretSource {
  private timer: NodeJS.Timeout | undefined;
  private readonly ac = new AbortController();
  private failures = 0;
  private stopped = false;
  private readonly log: Logger;
  /** Certificates received so far (rotations + 1). */
  issued = 0;

  constructor(
    private readonly secrets: SecretManager,
    private readonly options: CaSourceOptions,
  ) {
    this.log = options.logger ?? createLogger("identity");
    secrets.attachSource();
  }

  start(): void {
    void this.fetch();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.ac.abort();
  }

  private async fetch(): Promise<void> {
    if (this.stopped) return;
    try {
      const cert = await requestWorkloadCertificate({
        controlPlane: this.options.controlPlane,
        token: this.options.token,
        ...(this.options.ttlMs !== undefined && { ttlMs: this.options.ttlMs }),
        signal: this.ac.signal,
      });
      if (this.stopped) return;
      this.failures = 0;
      this.issued++;
      this.secrets.set(
        { chain: cert.chain, key: cert.key, spiffeId: cert.spiffeId, expiresAt: cert.expiresAt },
        cert.root,
      );
      const at = rotateAt(cert.expiresAt, cert.issuedAt).getTime();
      this.log.info("workload certificate installed", {
        identity: cert.spiffeId,
        expires: cert.expiresAt.toISOString(),
        renew: new Date(at).toISOString(),
      });
      this.schedule(Math.max(0, at - Date.now()));
    } catch (e) {
      if (this.stopped) return;
      this.failures++;
      const delay = Math.min((this.options.retryMs ?? 1000) * 2 ** (this.failures - 1), MAX_RETRY_MS);
      const current = this.secrets.workload?.expiresAt;
      this.log.error("cannot get a workload certificate; retrying", {
        code: (e as SkeinError).code ?? IdentityProxyCodes.NO_IDENTITY,
        error: (e as Error).message,
        retryInMs: delay,
        ...(current && { currentExpires: current.toISOString() }),
      });
      this.schedule(delay);
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.fetch(), ms);
    this.timer.unref();
  }
}

/** Istio's file names for a workload's certificate (what its agent writes with OUTPUT_CERTS). */
export const CERT_FILES = { chain: "cert-chain.pem", key: "key.pem", root: "root-cert.pem" } as const;

export interface FileSourceOptions {
  logger?: Logger;
  /** Poll period besides fs.watch (default 2 s). */
  pollMs?: number;
}

/** Certificates from a directory, re-read when the files change. */
export class FileSecretSource implements SecretSource {
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private debounce: NodeJS.Timeout | undefined;
  private signature = "";
  private lastError = "";
  private readonly log: Logger;
  private loading: Promise<void> = Promise.resolve();

  constructor(
    private readonly secrets: SecretManager,
    readonly dir: string,
    private readonly options: FileSourceOptions = {},
  ) {
    this.log = options.logger ?? createLogger("identity");
    secrets.attachSource();
  }

  start(): void {
    this.reload();
    try {
      this.watcher = watch(this.dir, () => {
        if (this.debounce) clearTimeout(this.debounce);
        this.debounce = setTimeout(() => this.reload(), 50);
      });
      this.watcher.on("error", () => undefined);
    } catch (e) {
      this.log.warn("cannot watch the certificate directory; polling it", {
        dir: this.dir,
        error: (e as Error).message,
      });
    }
    this.poll = setInterval(() => this.reload(), this.options.pollMs ?? 2000);
    this.poll.unref();
  }

  stop(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
  }

  /** Reads the files again (serialised); resolves once done. */
  reload(): Promise<void> {
    this.loading = this.loading.then(() => this.load());
    return this.loading;
  }

  private async load(): Promise<void> {
    const file = (n: string) => join(this.dir, n);
    try {
      const stats = await Promise.all(Object.values(CERT_FILES).map((n) => stat(file(n))));
      const signature = stats.map((s) => `${s.mtimeMs}:${s.size}:${s.ino}`).join("|");
      if (signature === this.signature) return;
      const [chain, key, root] = await Promise.all(
        [CERT_FILES.chain, CERT_FILES.key, CERT_FILES.root].map((n) => readFile(file(n), "utf8")),
      );
      checkSecretFiles(chain as string, key as string, root as string, this.dir);
      this.signature = signature;
      this.lastError = "";
      const spiffeId = leafSpiffeId(chain as string);
      const expiresAt = new Date(new X509Certificate(chain as string).validTo);
      this.secrets.set({ chain: chain as string, key: key as string, spiffeId, expiresAt }, root as string);
      this.log.info("workload certificate loaded", { dir: this.dir, identity: spiffeId });
    } catch (e) {
      const message =
        e instanceof SkeinError
          ? e.message
          : `cannot read the certificate files in ${this.dir} (${Object.values(CERT_FILES).join(", ")}): ${(e as Error).message}`;
      if (message !== this.lastError) {
        this.lastError = message;
        this.log.warn("certificate files not usable; keeping the current secrets", {
          code: IdentityProxyCodes.SECRET_FILES,
          error: message,
        });
      }
    }
  }
}

/** Throws SKEIN_E_PROXY_SECRET_FILES unless the three files parse and the key belongs to the chain's leaf. */
export function checkSecretFiles(chain: string, key: string, root: string, dir: string): void {
  const fail = (what: string) =>
    new SkeinError(IdentityProxyCodes.SECRET_FILES, `certificate files in ${dir}: ${what}`);
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(chain);
    new X509Certificate(root);
  } catch (e) {
    throw fail(`a certificate does not parse: ${(e as Error).message}`);
  }
  let ok: boolean;
  try {
    ok = leaf.checkPrivateKey(createPrivateKey(key));
  } catch (e) {
    throw fail(`${CERT_FILES.key} does not parse: ${(e as Error).message}`);
  }
  if (!ok) throw fail(`${CERT_FILES.key} is not the private key of ${CERT_FILES.chain}'s first certificate`);
}
