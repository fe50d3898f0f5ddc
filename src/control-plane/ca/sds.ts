// Envoy SDS Secret resources under Istio's names: `ROOTCA` (the trust bundle, which the control plane serves to
// every proxy) and `default` (a workload's certificate and private key, which only the workload itself can build,
// because the key never leaves it; see docs/security.md).
import type { Secret } from "../../xds/generated/envoy/extensions/transport_sockets/tls/v3/Secret.js";

/** The workload certificate and key (Istio's name, so Envoy configs written for Istio find it). */
export const WORKLOAD_SECRET = "default";
/** The roots that peer certificates must chain to (Istio's name). */
export const ROOT_CA_SECRET = "ROOTCA";

// Base64 is the proto3 JSON form of bytes: the config dump shows it as Envoy's own does, and pack() accepts it.
const bytes = (pem: string) => Buffer.from(pem, "utf8").toString("base64");

/** The trust bundle as an SDS validation context: `trusted_ca` holds every root, PEM. */
export function rootCaSecret(rootCertPem: string): Secret {
  return { name: ROOT_CA_SECRET, validationContext: { trustedCa: { inlineBytes: bytes(rootCertPem) } } };
}

/** A workload's own certificate: the chain it presents (leaf first) and its private key, both PEM. */
export function workloadSecret(certificateChainPem: string, privateKeyPem: string): Secret {
  return {
    name: WORKLOAD_SECRET,
    tlsCertificate: {
      certificateChain: { inlineBytes: bytes(certificateChainPem) },
      privateKey: { inlineBytes: bytes(privateKeyPem) },
    },
  };
}
