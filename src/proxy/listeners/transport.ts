// The downstream side of a listener's transport: Envoy's tls_inspector and filter chain selection by
// transport_protocol, then TLS termination with the chain's DownstreamTlsContext. The first bytes tell TLS
// (a handshake record starts 0x16 0x03) from raw_buffer; no matching chain closes the connection (Envoy's "no
// matching filter chain"); a TLS chain does the handshake with the current `default` certificate and verifies
// the client against `ROOTCA` (and SAN matchers), then hands the decrypted socket with its ConnectionInfo
// (verified peer SPIFFE ID, SNI, ALPN) to the listener, which sniffs HTTP/1.1 vs h2 on it as on plaintext.
import type { Socket } from "node:net";
import {
  createServer as createTlsServer,
  type PeerCertificate,
  type TLSSocket,
  type Server as TlsServer,
} from "node:tls";
import type { ChainTransport, ListenerTransport, TlsContext } from "../config/types.js";
import { IdentityProxyCodes, type SecretManager } from "../identity/secrets.js";
import {
  describePeer,
  describeSans,
  peerPrincipal,
  sansMatch,
  tlsMaterial,
} from "../identity/tls-contexts.js";
import { type ConnectionInfo, plaintextConnection } from "../router/connection.js";
import type { Stat, Stats } from "../router/stats.js";

/** Envoy's listener_filters_timeout default: a connection that sends nothing to inspect is closed. */
export const INSPECT_TIMEOUT_MS = 15_000;
/** A handshake that does not finish in this long is abandoned. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Envoy-named counters of one listener's TLS and chain selection (listener.<name>.*). */
interface TransportStats {
  noChain: Stat;
  handshakes: Stat;
  connectionError: Stat;
  verifyError: Stat;
  verifySan: Stat;
  noCertificate: Stat;
  noIdentity: Stat;
}

function transportStats(stats: Stats, listener: string): TransportStats {
  const p = `listener.${listener}.`;
  return {
    noChain: stats.counter(`${p}no_filter_chain_match`),
    handshakes: stats.counter(`${p}ssl.handshake`),
    connectionError: stats.counter(`${p}ssl.connection_error`),
    verifyError: stats.counter(`${p}ssl.fail_verify_error`),
    verifySan: stats.counter(`${p}ssl.fail_verify_san`),
    noCertificate: stats.counter(`${p}ssl.fail_verify_no_cert`),
    noIdentity: stats.counter(`${p}ssl.no_identity`),
  };
}

interface TlsEndpoint {
  server: TlsServer;
  version: number;
  localPrincipal: string | undefined;
}

/**
 * One listener's transport handling. `serve` receives every accepted connection (the TLSSocket for TLS) with
 * its ConnectionInfo; connections that match no chain or fail TLS never reach it.
 */
export class DownstreamTransport {
  /** Why the last refused TLS connection was refused (for tests and the admin's debugging). */
  lastError: string | undefined;
  private readonly servers = new WeakMap<TlsContext, TlsEndpoint>();
  private readonly handshaking = new Set<Socket>();
  private readonly stats: TransportStats;

  constructor(
    listenerName: string,
    stats: Stats,
    private readonly secrets: SecretManager,
    private readonly serve: (socket: Socket, info: ConnectionInfo) => void,
  ) {
    this.stats = transportStats(stats, listenerName);
  }

  /** Takes a freshly accepted socket (possibly paused, as TCP listeners accept them). */
  accept(socket: Socket, transport: ListenerTransport | undefined): void {
    if (!transport) {
      this.serve(socket, plaintextConnection(socket));
      return;
    }
    if (!transport.inspect) {
      this.dispatch(socket, transport.rawBuffer, undefined);
      return;
    }
    socket.on("error", noop);
    let buf: Buffer | undefined;
    const timer = setTimeout(() => {
      cleanup();
      socket.destroy();
    }, INSPECT_TIMEOUT_MS);
    const cleanup = () => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
    };
    const onClose = () => cleanup();
    const onData = (chunk: Buffer) => {
      buf = buf === undefined ? chunk : Buffer.concat([buf, chunk]);
      if (buf[0] === 0x16 && buf.length < 2) return;
      cleanup();
      socket.pause();
      const tls = buf[0] === 0x16 && buf[1] === 0x03;
      this.dispatch(socket, tls ? transport.tls : transport.rawBuffer, buf);
    };
    socket.on("data", onData);
    socket.once("close", onClose);
    socket.resume();
  }

  /** Ends connections still in their handshake (the listener closes the established ones). */
  close(): void {
    for (const s of this.handshaking) s.destroy();
    this.handshaking.clear();
  }

  private dispatch(socket: Socket, chain: ChainTransport, peeked: Buffer | undefined): void {
    if (chain.kind === "none") {
      this.stats.noChain.value++;
      socket.destroy();
      return;
    }
    if (peeked) socket.unshift(peeked);
    if (chain.kind === "plaintext") this.serve(socket, plaintextConnection(socket));
    else this.handshake(socket, chain.context);
  }

  private handshake(socket: Socket, ctx: TlsContext): void {
    let endpoint: TlsEndpoint;
    try {
      endpoint = this.endpoint(ctx);
    } catch (e) {
      // No identity (logged once by the secret manager): this connection cannot be served over TLS.
      this.stats.noIdentity.value++;
      this.lastError = (e as Error).message;
      socket.destroy();
      return;
    }
    socket.on("error", noop);
    this.handshaking.add(socket);
    socket.once("close", () => this.handshaking.delete(socket));
    endpoint.server.emit("connection", socket);
  }

  /** The TLS server for a context, with the current secrets (rebuilt for new connections after a rotation). */
  private endpoint(ctx: TlsContext): TlsEndpoint {
    const material = tlsMaterial(ctx, this.secrets);
    let endpoint = this.servers.get(ctx);
    if (!endpoint) {
      const server = createTlsServer({
        ...material.options,
        ...(ctx.alpn.length > 0 && { ALPNProtocols: ctx.alpn }),
        requestCert: ctx.trust !== undefined,
        rejectUnauthorized: ctx.requireClientCertificate === true,
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
      });
      const created: TlsEndpoint = {
        server,
        version: material.version,
        localPrincipal: material.localPrincipal,
      };
      server.on("secureConnection", (s: TLSSocket) => this.secured(s, ctx, created));
      server.on("tlsClientError", (err: Error & { code?: string }) => {
        this.stats.connectionError.value++;
        if (/CERTIFICATE|VERIFY|CERT_/i.test(`${err.code ?? ""} ${err.message}`))
          this.stats.verifyError.value++;
        this.lastError = `TLS handshake failed: ${err.code ?? ""} ${err.message}`.trim();
      });
      this.servers.set(ctx, created);
      endpoint = created;
    } else if (endpoint.version !== material.version) {
      // New connections get the rotated certificate; connections already open keep theirs.
      endpoint.server.setSecureContext(material.options);
      endpoint.version = material.version;
      endpoint.localPrincipal = material.localPrincipal;
    }
    return endpoint;
  }

  /** Why a client that finished its handshake is still refused (Envoy's validation), or undefined. */
  private refusal(
    s: TLSSocket,
    cert: PeerCertificate | undefined,
    ctx: TlsContext,
  ): [Stat, string] | undefined {
    if (cert && ctx.trust && !s.authorized)
      return [this.stats.verifyError, `client certificate refused: ${String(s.authorizationError)}`];
    if (!cert && ctx.requireClientCertificate)
      return [this.stats.noCertificate, "the client presented no certificate"];
    if (cert && !sansMatch(cert, ctx.sans))
      return [
        this.stats.verifySan,
        `client presented ${describePeer(cert)}, expected ${describeSans(ctx.sans)}`,
      ];
    return undefined;
  }

  private secured(s: TLSSocket, ctx: TlsContext, endpoint: TlsEndpoint): void {
    const peer = s.getPeerCertificate();
    const cert = peer && Object.keys(peer).length > 0 ? peer : undefined;
    const refused = this.refusal(s, cert, ctx);
    if (refused) {
      refused[0].value++;
      this.lastError = `${IdentityProxyCodes.HANDSHAKE}: ${refused[1]}`;
      s.destroy();
      return;
    }
    this.stats.handshakes.value++;
    const info: ConnectionInfo = {
      tls: true,
      peerPrincipal: cert && s.authorized ? peerPrincipal(cert) : undefined,
      localPrincipal: endpoint.localPrincipal,
      sni: typeof s.servername === "string" && s.servername !== "" ? s.servername : undefined,
      alpn: typeof s.alpnProtocol === "string" ? s.alpnProtocol : undefined,
      sourceAddress: s.remoteAddress ?? "",
      sourcePort: s.remotePort ?? 0,
      localAddress: s.localAddress ?? "",
      localPort: s.localPort ?? 0,
    };
    this.serve(s, info);
  }
}

function noop(): void {}
