// The sidecar's in-process secret manager, in the place of Istio's agent serving SDS to Envoy: it holds the two
// secrets TLS configs name, `default` (this workload's certificate chain and private key) and `ROOTCA` (the
// trust bundle), fed by a source (the control plane's CA, or a directory of files). Each change bumps a
// version: TLS contexts built for an older version are rebuilt for the next connection, so a rotated
// certificate is used at once by new connections while open ones keep theirs.
import { EventEmitter } from "node:events";
import { SkeinError } from "../../lib/diagnostics.js";
import { createLogger, type Logger } from "../../lib/log.js";

export const IdentityProxyCodes = {
  /** A TLS config names `default` or `ROOTCA` but the sidecar has no identity source, or not the secret yet. */
  NO_IDENTITY: "SKEIN_E_PROXY_NO_IDENTITY",
  /** The certificate directory's files are missing, do not parse, or the key is not the certificate's. */
  SECRET_FILES: "SKEIN_E_PROXY_SECRET_FILES",
  /** A TLS handshake with a peer failed or the peer's certificate was refused (downstream side). */
  HANDSHAKE: "SKEIN_E_PROXY_TLS_HANDSHAKE",
} as const;

/** The `default` secret: what this workload presents. */
export interface WorkloadSecret {
  /** Leaf first, PEM. */
  chain: string;
  /** PKCS#8 (or any PEM node:tls reads). */
  key: string;
  /** The leaf's URI SAN, the workload's SPIFFE ID. */
  spiffeId: string | undefined;
  expiresAt?: Date;
}

export interface SecretManagerOptions {
  logger?: Logger;
}

/** Holds `default` and `ROOTCA`; emits "updated" after each change. */
export class SecretManager extends EventEmitter {
  private workloadSecret: WorkloadSecret | undefined;
  private rootsPem: string | undefined;
  private generation = 0;
  private sources = 0;
  private readonly log: Logger;
  private readonly logged = new Set<string>();

  constructor(options: SecretManagerOptions = {}) {
    super();
    this.log = options.logger ?? createLogger("identity");
  }

  /** Bumped on every change of either secret. */
  get version(): number {
    return this.generation;
  }

  get workload(): WorkloadSecret | undefined {
    return this.workloadSecret;
  }

  get roots(): string | undefined {
    return this.rootsPem;
  }

  /** A source feeds this manager (readiness then waits for both secrets). */
  attachSource(): void {
    this.sources++;
  }

  get configured(): boolean {
    return this.sources > 0;
  }

  /** Without a source there is nothing to wait for; with one, both secrets must be there. */
  ready(): boolean {
    return !this.configured || (this.workloadSecret !== undefined && this.rootsPem !== undefined);
  }

  /** Replaces both secrets at once (one version step, so no context sees a new key with an old root). */
  set(workload: WorkloadSecret | undefined, roots: string | undefined): void {
    if (workload) this.workloadSecret = workload;
    if (roots !== undefined) this.rootsPem = roots;
    this.generation++;
    this.emit("updated", this.generation);
  }

  /**
   * The error for a secret a TLS context needs and the manager does not have, logged once per secret and
   * reason (it is hit by every connection until fixed).
   */
  missing(name: string): SkeinError {
    const why = this.configured
      ? `the secret ${JSON.stringify(name)} has not arrived yet from the identity source`
      : `the secret ${JSON.stringify(name)} is named by the TLS config but this sidecar has no identity source ` +
        "(give skein proxy --token and --ca, or --cert-dir)";
    const err = new SkeinError(
      IdentityProxyCodes.NO_IDENTITY,
      `cannot use TLS: ${why}; plaintext keeps working`,
    );
    if (!this.logged.has(why)) {
      this.logged.add(why);
      this.log.error("TLS connection refused: no identity", {
        code: IdentityProxyCodes.NO_IDENTITY,
        error: why,
      });
    }
    return err;
  }
}
