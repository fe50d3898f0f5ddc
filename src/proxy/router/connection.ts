// What the sidecar knows about one downstream connection, shared by every request on it: addresses, and
// whether it arrived over TLS with a verified client certificate. Authorization (source principals),
// metrics (source_principal, connection_security_policy) and the peer-metadata exchange read it; none of
// them may take a peer's identity from anything but this (never from a request header).
import type { Socket } from "node:net";

export interface ConnectionInfo {
  /** TLS was terminated by the sidecar on this connection. */
  readonly tls: boolean;
  /**
   * The URI SAN of the client certificate the sidecar verified against its trust bundle
   * (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`); undefined without mutual TLS.
   */
  readonly peerPrincipal: string | undefined;
  /** The sidecar's own SPIFFE ID presented on this connection; undefined without TLS. */
  readonly localPrincipal: string | undefined;
  /** SNI the client sent; undefined without TLS or SNI. */
  readonly sni: string | undefined;
  /** Negotiated ALPN protocol, or undefined. */
  readonly alpn: string | undefined;
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly localAddress: string;
  readonly localPort: number;
}

/** A plaintext connection's info, from its socket. */
export function plaintextConnection(socket: Socket): ConnectionInfo {
  return {
    tls: false,
    peerPrincipal: undefined,
    localPrincipal: undefined,
    sni: undefined,
    alpn: undefined,
    sourceAddress: socket.remoteAddress ?? "",
    sourcePort: socket.remotePort ?? 0,
    localAddress: socket.localAddress ?? "",
    localPort: socket.localPort ?? 0,
  };
}

/** `mutual_tls` when the peer was authenticated by certificate, else `none` (Istio's connection_security_policy). */
export function connectionSecurityPolicy(c: ConnectionInfo | undefined): "mutual_tls" | "none" {
  return c?.peerPrincipal !== undefined ? "mutual_tls" : "none";
}
