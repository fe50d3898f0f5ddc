// The upstream side of TLS: which transport an endpoint gets (Envoy's transport_socket_matches: the first
// match whose fields all equal the endpoint's `envoy.transport_socket_match` metadata wins, else the cluster's
// transport_socket, else plaintext), and the client handshake over a connected TCP socket: our `default`
// certificate, the server's chain verified against ROOTCA (or the configured CA), its SANs against the
// expected identities, SNI and ALPN as configured.
import type { Socket } from "node:net";
import { isIP } from "node:net";
import { type PeerCertificate, type TLSSocket, connect as tlsConnect } from "node:tls";
import { isDeepStrictEqual } from "node:util";
import type { Cluster, TlsContext } from "../config/types.js";
import type { SecretManager } from "../identity/secrets.js";
import { clientSecureContext, describePeer, describeSans, sansMatch } from "../identity/tls-contexts.js";

/** The TLS context for an endpoint with `metadata` in `cluster`; undefined: plaintext. */
export function endpointTls(
  cluster: Cluster,
  metadata: Readonly<Record<string, unknown>> | undefined,
): TlsContext | undefined {
  for (const m of cluster.transportSocketMatches ?? []) {
    const all = Object.entries(m.match).every(
      ([k, v]) => metadata !== undefined && k in metadata && isDeepStrictEqual(metadata[k], v),
    );
    if (all) return m.tls;
  }
  return cluster.tls;
}

/** ALPN to offer on a connection for one protocol: the configured list, narrowed to what that pool speaks. */
function alpnFor(ctx: TlsContext, protocol: "http1" | "http2" | "tcp"): string[] | undefined {
  if (ctx.alpn.length === 0) return undefined;
  if (protocol === "tcp") return ctx.alpn;
  const want = protocol === "http2" ? "h2" : "http/1.1";
  const list = ctx.alpn.filter((p) => (protocol === "http2" ? p === want : p !== "h2"));
  return list.length > 0 ? list : undefined;
}

/**
 * Starts a client handshake on `raw` (connecting or connected). Throws SKEIN_E_PROXY_NO_IDENTITY at once when
 * a secret the context names is missing. A verification failure destroys the returned socket with an error
 * whose message says why (the chain, or "server presented X, expected Y").
 */
export function startClientTls(
  raw: Socket,
  ctx: TlsContext,
  secrets: SecretManager,
  protocol: "http1" | "http2" | "tcp",
): TLSSocket {
  const { context } = clientSecureContext(ctx, secrets);
  const alpn = alpnFor(ctx, protocol);
  return tlsConnect({
    socket: raw,
    secureContext: context,
    ...(ctx.sni && isIP(ctx.sni) === 0 && { servername: ctx.sni }),
    ...(alpn && { ALPNProtocols: alpn }),
    // Without a validation context Envoy accepts any server certificate; with one, the chain must verify.
    rejectUnauthorized: ctx.trust !== undefined,
    // Envoy checks SANs, not host names: the configured matchers replace the hostname check.
    checkServerIdentity: (_host: string, cert: PeerCertificate) =>
      sansMatch(cert, ctx.sans)
        ? undefined
        : Object.assign(
            new Error(`server presented ${describePeer(cert)}, expected ${describeSans(ctx.sans)}`),
            {
              code: "ERR_TLS_SAN_MISMATCH",
            },
          ),
  });
}
