// Active health checking (Envoy's cluster health_checks): every host of a cluster is probed on its own
// schedule by each configured check (HTTP/1.1 or HTTP/2 GET with expected statuses, TCP connect, or
// grpc.health.v1.Health/Check), and marked failed or healthy by consecutive results against the
// unhealthy/healthy thresholds. As in Envoy, a host added to a checked cluster is failed until its first
// check passes, and the first result of a check decides at once; after that the thresholds apply. A host
// serves traffic only when every check passes (and EDS and outlier detection agree). Probes use their own
// connections, outside the request pools and circuit breakers; nothing here runs per request. As in Envoy, a
// probe speaks the host's transport (TLS with the same certificate, SNI, ALPN and SAN checks as traffic, or
// plaintext), or the transport socket match its transport_socket_match_criteria select.
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { type ClientHttp2Session, constants as h2, connect as http2Connect } from "node:http2";
import { connect as netConnect, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { Cluster, HealthCheck, TlsContext } from "../config/types.js";
import type { SecretManager } from "../identity/secrets.js";
import { endpointTls, startClientTls } from "./tls.js";

/** The per-host fields the checker keeps; hosts carry them, as they do outlier state. */
export interface CheckedHost {
  readonly key: string;
  readonly address: string;
  readonly port: number;
  /** Some check says the host is unhealthy (Envoy's FAILED_ACTIVE_HC). */
  hcFailed: boolean;
  /** Added to a checked cluster and not checked yet (Envoy's PENDING_ACTIVE_HC); failed meanwhile. */
  hcPending: boolean;
  /** The transport traffic to this host uses (undefined: plaintext); probes use it too. */
  readonly tls?: TlsContext | undefined;
}

export interface CheckedCluster<H extends CheckedHost> {
  readonly name: string;
  readonly hostList: readonly H[];
  /** The cluster's config: its transport socket matches, for checks with transport_socket_match_criteria. */
  readonly config?: Cluster;
  /** The `default` and `ROOTCA` secrets TLS probes present and verify with (absent: TLS probes fail). */
  readonly secrets?: SecretManager | undefined;
  /** A host's hcFailed changed: the cluster refreshes what the balancer may use. */
  healthCheckChanged(host: H): void;
  /** A check passed on `host` (a passing check un-ejects an outlier, Envoy's default). */
  healthCheckPassed(host: H): void;
}

/** Envoy's checker identifies itself so; applications that recognise it keep doing so. */
const USER_AGENT = "Envoy/HC";
const GRPC_HEALTH_PATH = "/grpc.health.v1.Health/Check";
/** grpc.health.v1.HealthCheckResponse.ServingStatus.SERVING. */
const SERVING = 1;

export class HealthChecker<H extends CheckedHost> {
  private checks: readonly HealthCheck[];
  private signature: string;
  private readonly sessions = new Map<H, HostSession<H>[]>();
  private closed = false;

  constructor(
    checks: readonly HealthCheck[],
    private readonly cluster: CheckedCluster<H>,
  ) {
    this.checks = checks;
    this.signature = JSON.stringify(checks);
  }

  /** A changed health_checks list: every host is checked afresh under the new checks. */
  setChecks(checks: readonly HealthCheck[]): void {
    const signature = JSON.stringify(checks);
    if (signature === this.signature) return;
    this.checks = checks;
    this.signature = signature;
    for (const [host, list] of this.sessions) {
      for (const s of list) s.stop();
      this.sessions.delete(host);
    }
    this.sync();
  }

  /** Starts checking hosts that joined the cluster and stops checking those that left. */
  sync(): void {
    if (this.closed) return;
    const current = new Set(this.cluster.hostList);
    for (const [host, list] of this.sessions) {
      if (current.has(host)) continue;
      for (const s of list) s.stop();
      this.sessions.delete(host);
    }
    for (const host of current) {
      if (this.sessions.has(host)) continue;
      const list = this.checks.map((c) => new HostSession(this, host, c, this.cluster));
      this.sessions.set(host, list);
      for (const s of list) s.start();
    }
  }

  /** One check's verdict on `host` changed or was confirmed; the host fails while any check fails. */
  verdict(host: H, passed: boolean): void {
    if (passed) this.cluster.healthCheckPassed(host);
    const failed = this.sessions.get(host)?.some((s) => s.failed) ?? false;
    const wasPending = host.hcPending;
    host.hcPending = false;
    if (failed !== host.hcFailed || wasPending) {
      host.hcFailed = failed;
      this.cluster.healthCheckChanged(host);
    }
  }

  close(): void {
    this.closed = true;
    for (const list of this.sessions.values()) for (const s of list) s.stop();
    this.sessions.clear();
  }
}

/** One check of one host: its schedule, its consecutive counts and its connection. */
class HostSession<H extends CheckedHost> {
  /** This check's verdict. */
  failed: boolean;
  private first = true;
  private successes = 0;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private agent: HttpAgent | undefined;
  private h2session: ClientHttp2Session | undefined;
  /** The transport the kept connection (agent or session) was opened with; a change replaces it. */
  private keptTls: TlsContext | undefined;

  constructor(
    private readonly checker: HealthChecker<H>,
    private readonly host: H,
    private readonly check: HealthCheck,
    private readonly cluster: CheckedCluster<H>,
  ) {
    // A host already serving when checks begin keeps serving until a check says otherwise.
    this.failed = host.hcFailed;
  }

  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.agent?.destroy();
    this.h2session?.destroy();
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => this.run(), ms);
    this.timer.unref();
  }

  private run(): void {
    this.timer = undefined;
    this.probe().then(
      (ok) => this.result(ok),
      () => this.result(false),
    );
  }

  private result(ok: boolean): void {
    if (this.stopped) return;
    const c = this.check;
    if (ok) {
      this.failures = 0;
      this.successes++;
      if (this.failed && (this.first || this.successes >= c.healthyThreshold)) this.failed = false;
    } else {
      this.successes = 0;
      this.failures++;
      if (!this.failed && (this.first || this.failures >= c.unhealthyThreshold)) this.failed = true;
    }
    this.first = false;
    this.checker.verdict(this.host, ok);
    this.schedule(c.intervalMs);
  }

  private probe(): Promise<boolean> {
    switch (this.check.kind) {
      case "tcp":
        return this.probeTcp();
      case "http":
        return this.check.http2 ? this.probeHttp2() : this.probeHttp1();
      case "grpc":
        return this.probeGrpc();
    }
  }

  private get port(): number {
    return this.check.port ?? this.host.port;
  }

  private get authority(): string {
    return this.check.host ?? this.cluster.name;
  }

  /**
   * The transport of this check: with transport_socket_match_criteria, the first transport socket match they
   * satisfy (else the cluster's transport socket), in place of the endpoint's metadata; else the host's own.
   */
  private transport(): TlsContext | undefined {
    const criteria = this.check.transportSocketMatch;
    const config = this.cluster.config;
    return criteria && config ? endpointTls(config, criteria) : this.host.tls;
  }

  /** Drops the kept connection when the transport changed since it was opened (a CDS or EDS update). */
  private keepFor(tls: TlsContext | undefined): void {
    if (tls === this.keptTls) return;
    this.agent?.destroy();
    this.agent = undefined;
    this.h2session?.destroy();
    this.h2session = undefined;
    this.keptTls = tls;
  }

  /**
   * A probe connection: TCP to the check's port, with the TLS client handshake on top (the traffic path's
   * startClientTls: our certificate, the server's chain and SANs verified, SNI and ALPN) when `tls` says so.
   * Throws when a secret the context names is missing. A TCP failure destroys the TLS socket with it.
   */
  private dial(tls: TlsContext | undefined, protocol: "http1" | "http2" | "tcp"): Socket {
    const raw = netConnect({ host: this.host.address, port: this.port, noDelay: true });
    if (!tls) return raw;
    const secrets = this.cluster.secrets;
    try {
      if (!secrets) throw new Error("this sidecar has no secret manager for TLS");
      const socket = startClientTls(raw, tls, secrets, protocol);
      raw.once("error", (err) => socket.destroy(err));
      return socket;
    } catch (e) {
      raw.destroy();
      throw e;
    }
  }

  private healthyStatus(status: number): boolean {
    for (const [start, end] of this.check.expectedStatuses ?? [[200, 300]])
      if (status >= start && status < end) return true;
    return false;
  }

  private probeTcp(): Promise<boolean> {
    return new Promise((resolve) => {
      const tls = this.transport();
      const socket = this.dial(tls, "tcp");
      const done = (ok: boolean) => {
        clearTimeout(timer);
        socket.destroy();
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), this.check.timeoutMs);
      // Over TLS, connected means the handshake and verification succeeded (Envoy's Connected event).
      socket.once(tls ? "secureConnect" : "connect", () => done(true));
      socket.once("error", () => done(false));
    });
  }

  private probeHttp1(): Promise<boolean> {
    // Envoy reuses the check's connection (reuse_connection's default).
    const tls = this.transport();
    this.keepFor(tls);
    if (!this.agent) {
      const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
      agent.createConnection = (): Duplex => {
        try {
          return this.dial(tls, "http1");
        } catch (e) {
          // No identity: the request fails through its socket, as a refused connect does.
          const failed = new Socket();
          process.nextTick(() => failed.destroy(e as Error));
          return failed;
        }
      };
      this.agent = agent;
    }
    return new Promise((resolve) => {
      let settled = false;
      const done = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(ok);
      };
      const req = httpRequest(
        {
          host: this.host.address,
          port: this.port,
          method: "GET",
          path: this.check.path ?? "/",
          headers: { host: this.authority, "user-agent": USER_AGENT },
          agent: this.agent,
        },
        (res) => {
          const ok = this.healthyStatus(res.statusCode ?? 0);
          res.on("error", () => done(false));
          res.on("end", () => done(ok));
          res.resume();
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        done(false);
      }, this.check.timeoutMs);
      req.on("error", () => done(false));
      req.end();
    });
  }

  private session(): ClientHttp2Session {
    const tls = this.transport();
    this.keepFor(tls);
    const s = this.h2session;
    if (s && !s.closed && !s.destroyed) return s;
    const address = this.host.address.includes(":") ? `[${this.host.address}]` : this.host.address;
    // As the traffic pool does: the origin stays http://, the socket (TLS or not) comes from dial.
    const fresh = http2Connect(`http://${address}:${this.port}`, {
      createConnection: () => this.dial(tls, "http2"),
    });
    fresh.on("error", () => fresh.destroy());
    fresh.unref();
    this.h2session = fresh;
    return fresh;
  }

  private probeHttp2(): Promise<boolean> {
    return this.h2probe(
      {
        [h2.HTTP2_HEADER_METHOD]: "GET",
        [h2.HTTP2_HEADER_PATH]: this.check.path ?? "/",
        [h2.HTTP2_HEADER_AUTHORITY]: this.authority,
        "user-agent": USER_AGENT,
      },
      undefined,
      (status) => this.healthyStatus(status),
    );
  }

  private probeGrpc(): Promise<boolean> {
    return this.h2probe(
      {
        [h2.HTTP2_HEADER_METHOD]: "POST",
        [h2.HTTP2_HEADER_PATH]: GRPC_HEALTH_PATH,
        [h2.HTTP2_HEADER_AUTHORITY]: this.authority,
        "content-type": "application/grpc",
        te: "trailers",
        "user-agent": USER_AGENT,
      },
      grpcFrame(healthCheckRequest(this.check.serviceName ?? "")),
      (status, body, grpcStatus) => status === 200 && grpcStatus === "0" && servingStatus(body) === SERVING,
    );
  }

  private h2probe(
    headers: Record<string, string>,
    body: Buffer | undefined,
    judge: (status: number, body: Buffer, grpcStatus: string | undefined) => boolean,
  ): Promise<boolean> {
    return new Promise((resolve) => {
      let settled = false;
      let status = 0;
      let grpcStatus: string | undefined;
      const chunks: Buffer[] = [];
      const session = this.session();
      const stream = session.request(headers, { endStream: body === undefined });
      const done = (ok: boolean) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (!stream.closed) stream.close(h2.NGHTTP2_CANCEL);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), this.check.timeoutMs);
      stream.on("response", (h) => {
        status = Number(h[h2.HTTP2_HEADER_STATUS] ?? 0);
        const g = h["grpc-status"];
        if (g !== undefined) grpcStatus = String(g);
      });
      stream.on("trailers", (t) => {
        const g = t["grpc-status"];
        if (g !== undefined) grpcStatus = String(g);
      });
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("end", () => done(judge(status, Buffer.concat(chunks), grpcStatus)));
      stream.on("error", () => done(false));
      if (body !== undefined) stream.end(body);
    });
  }
}

/** grpc.health.v1.HealthCheckRequest { string service = 1; } */
function healthCheckRequest(service: string): Buffer {
  if (service === "") return Buffer.alloc(0);
  const s = Buffer.from(service, "utf8");
  return Buffer.concat([Buffer.from([0x0a]), varint(s.length), s]);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v > 0x7f) {
    out.push((v & 0x7f) | 0x80);
    v >>>= 7;
  }
  out.push(v);
  return Buffer.from(out);
}

/** A gRPC length-prefixed message: flag 0 (uncompressed), 4-byte big-endian length, the bytes. */
function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/** HealthCheckResponse.status (field 1, varint) from one gRPC frame; 0 (UNKNOWN) when absent or malformed. */
export function servingStatus(frame: Buffer): number {
  if (frame.length < 5 || frame[0] !== 0) return 0;
  const len = frame.readUInt32BE(1);
  const msg = frame.subarray(5, 5 + len);
  let i = 0;
  while (i < msg.length) {
    const key = msg[i++] as number;
    if (key === 0x08) {
      let v = 0;
      let shift = 0;
      while (i < msg.length) {
        const b = msg[i++] as number;
        v |= (b & 0x7f) << shift;
        if ((b & 0x80) === 0) return v;
        shift += 7;
      }
      return 0;
    }
    // Only field 1 is defined; anything else means a message we do not understand.
    return 0;
  }
  return 0;
}
