// Transport sockets (Envoy's tls and raw_buffer) → TlsContext: the certificate to present (the `default` SDS
// secret, or a chain and key from files or inline), what the peer must verify against (`ROOTCA`, or a CA file),
// peer SAN matchers, ALPN and protocol versions. Istio's mTLS and DestinationRule SIMPLE/MUTUAL both compile;
// any other TLS setting is refused with SKEIN_E_PROXY_CONFIG_TLS naming the field. Also: the plain values of a
// google.protobuf.Struct, which transport socket matches and endpoint metadata carry.
import type { CertificateValidationContext__Output } from "../../xds/generated/envoy/extensions/transport_sockets/tls/v3/CertificateValidationContext.js";
import type { CommonTlsContext__Output } from "../../xds/generated/envoy/extensions/transport_sockets/tls/v3/CommonTlsContext.js";
import type { DownstreamTlsContext__Output } from "../../xds/generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.js";
import type { SdsSecretConfig__Output } from "../../xds/generated/envoy/extensions/transport_sockets/tls/v3/SdsSecretConfig.js";
import type { TlsParameters__Output } from "../../xds/generated/envoy/extensions/transport_sockets/tls/v3/TlsParameters.js";
import type { UpstreamTlsContext__Output } from "../../xds/generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.js";
import { ProxyConfigCodes } from "./codes.js";
import { type At, anyTypeName, dataSourceText, decodeAny, names, setFields, wrapped } from "./fields.js";
import { compileStringMatcher } from "./matchers.js";
import type { SanMatcher, TlsContext } from "./types.js";

const TLS_PKG = "envoy.extensions.transport_sockets.tls.v3";
export const DOWNSTREAM_TLS_CONTEXT = `${TLS_PKG}.DownstreamTlsContext`;
export const UPSTREAM_TLS_CONTEXT = `${TLS_PKG}.UpstreamTlsContext`;
export const RAW_BUFFER = "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";
export const TLS_INSPECTOR = "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
/** The SDS names the sidecar's secret manager serves (Istio's agent's names). */
export const WORKLOAD_SECRET = "default";
export const ROOT_CA_SECRET = "ROOTCA";

/** Refuses set fields outside `allowed` with the TLS code (the sidecar's TLS does not honour them). */
function tlsFields(typeName: string, message: object, allowed: ReadonlySet<string>, at: At): void {
  for (const f of setFields(typeName, message))
    if (!allowed.has(f)) at.field(f).fail(ProxyConfigCodes.TLS, "not supported by the Skein sidecar's TLS");
}

const tlsUnsupported = (at: At, what: string): never => at.fail(ProxyConfigCodes.TLS, what);

function sdsSecret(s: SdsSecretConfig__Output, expected: string, what: string, at: At): string {
  tlsFields(`${TLS_PKG}.SdsSecretConfig`, s, names("name", "sdsConfig"), at);
  const src = s.sdsConfig;
  if (src) {
    const sat = at.field("sdsConfig");
    tlsFields(
      "envoy.config.core.v3.ConfigSource",
      src,
      names("ads", "self", "resourceApiVersion", "initialFetchTimeout"),
      sat,
    );
    if (src.configSourceSpecifier !== "ads" && src.configSourceSpecifier !== "self")
      tlsUnsupported(sat, "secrets are served in-process over the ADS stream only (ads or self)");
  }
  if (s.name !== expected)
    tlsUnsupported(
      at.field("name"),
      `unknown secret ${JSON.stringify(s.name)}: the sidecar's secret manager serves ${JSON.stringify(expected)} as the ${what}`,
    );
  return s.name;
}

const VERSIONS: Record<string, TlsContext["minVersion"] | undefined> = {
  TLS_AUTO: undefined,
  TLSv1_0: "TLSv1",
  TLSv1_1: "TLSv1.1",
  TLSv1_2: "TLSv1.2",
  TLSv1_3: "TLSv1.3",
};

function tlsParams(p: TlsParameters__Output, at: At, out: TlsContext): void {
  tlsFields(
    `${TLS_PKG}.TlsParameters`,
    p,
    names("tlsMinimumProtocolVersion", "tlsMaximumProtocolVersion"),
    at,
  );
  const min = VERSIONS[String(p.tlsMinimumProtocolVersion)];
  const max = VERSIONS[String(p.tlsMaximumProtocolVersion)];
  if (min) out.minVersion = min;
  if (max) out.maxVersion = max;
  const order = ["TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"];
  if (min && max && order.indexOf(min) > order.indexOf(max))
    at.invalid(`tls_minimum_protocol_version ${min} is above tls_maximum_protocol_version ${max}`);
}

const SAN_TYPES: Record<string, SanMatcher["type"] | undefined> = { DNS: "DNS", URI: "URI" };

/** The SAN checks and inline trust of a CertificateValidationContext (`sdsTrust`: the trust comes from SDS). */
function validation(
  v: CertificateValidationContext__Output,
  at: At,
  out: TlsContext,
  sdsTrust: boolean,
): void {
  const allowed = sdsTrust
    ? names("matchSubjectAltNames", "matchTypedSubjectAltNames")
    : names("trustedCa", "matchSubjectAltNames", "matchTypedSubjectAltNames");
  tlsFields(`${TLS_PKG}.CertificateValidationContext`, v, allowed, at);
  if (!sdsTrust && v.trustedCa)
    out.trust = { kind: "inline", pem: dataSourceText(v.trustedCa, at.field("trustedCa"), tlsFields) };
  // match_subject_alt_names matches any SAN type (Envoy: DNS, URI, email, IP); the sidecar checks URI and DNS.
  v.matchSubjectAltNames.forEach((m, i) => {
    out.sans.push({ type: "any", match: compileStringMatcher(m, at.field("matchSubjectAltNames").index(i)) });
  });
  v.matchTypedSubjectAltNames.forEach((m, i) => {
    const mat = at.field("matchTypedSubjectAltNames").index(i);
    tlsFields(`${TLS_PKG}.SubjectAltNameMatcher`, m, names("sanType", "matcher"), mat);
    const type = SAN_TYPES[String(m.sanType)];
    if (!type)
      tlsUnsupported(mat.field("sanType"), `SAN type ${m.sanType} is not supported (URI and DNS are)`);
    out.sans.push({
      type: type as SanMatcher["type"],
      match: compileStringMatcher(m.matcher, mat.field("matcher")),
    });
  });
  if (out.sans.length > 0 && !out.trust)
    at.invalid("subject alt name matching needs a trusted CA (trusted_ca or the ROOTCA secret)");
}

const COMMON_FIELDS = names(
  "tlsParams",
  "tlsCertificates",
  "validationContext",
  "alpnProtocols",
  "tlsCertificateSdsSecretConfigs",
  "validationContextSdsSecretConfig",
  "combinedValidationContext",
);

function commonTlsContext(c: CommonTlsContext__Output | null, at: At): TlsContext {
  const out: TlsContext = { sans: [], alpn: [] };
  if (!c) return out;
  tlsFields(`${TLS_PKG}.CommonTlsContext`, c, COMMON_FIELDS, at);
  if (c.tlsParams) tlsParams(c.tlsParams, at.field("tlsParams"), out);
  const certs = c.tlsCertificates.length + c.tlsCertificateSdsSecretConfigs.length;
  if (certs > 1)
    tlsUnsupported(at, `${certs} certificates: the Skein sidecar presents one certificate per context`);
  const [inline] = c.tlsCertificates;
  const [sds] = c.tlsCertificateSdsSecretConfigs;
  if (inline) {
    const cat = at.field("tlsCertificates").index(0);
    tlsFields(`${TLS_PKG}.TlsCertificate`, inline, names("certificateChain", "privateKey"), cat);
    out.certificate = {
      kind: "inline",
      chain: dataSourceText(inline.certificateChain, cat.field("certificateChain"), tlsFields),
      key: dataSourceText(inline.privateKey, cat.field("privateKey"), tlsFields),
    };
  } else if (sds) {
    const name = sdsSecret(
      sds,
      WORKLOAD_SECRET,
      "workload certificate",
      at.field("tlsCertificateSdsSecretConfigs").index(0),
    );
    out.certificate = { kind: "sds", name };
  }
  switch (c.validationContextType) {
    case "validationContext":
      if (c.validationContext) validation(c.validationContext, at.field("validationContext"), out, false);
      break;
    case "validationContextSdsSecretConfig":
      if (c.validationContextSdsSecretConfig) {
        const name = sdsSecret(
          c.validationContextSdsSecretConfig,
          ROOT_CA_SECRET,
          "trust bundle",
          at.field("validationContextSdsSecretConfig"),
        );
        out.trust = { kind: "sds", name };
      }
      break;
    case "combinedValidationContext": {
      const cat = at.field("combinedValidationContext");
      const cv = c.combinedValidationContext;
      if (!cv) break;
      tlsFields(
        `${TLS_PKG}.CommonTlsContext.CombinedCertificateValidationContext`,
        cv,
        names("defaultValidationContext", "validationContextSdsSecretConfig"),
        cat,
      );
      if (!cv.validationContextSdsSecretConfig)
        return cat.field("validationContextSdsSecretConfig").invalid("is required");
      const name = sdsSecret(
        cv.validationContextSdsSecretConfig,
        ROOT_CA_SECRET,
        "trust bundle",
        cat.field("validationContextSdsSecretConfig"),
      );
      out.trust = { kind: "sds", name };
      if (cv.defaultValidationContext)
        validation(cv.defaultValidationContext, cat.field("defaultValidationContext"), out, true);
      break;
    }
  }
  for (const [i, p] of c.alpnProtocols.entries())
    if (p === "" || p.length > 255) at.field("alpnProtocols").index(i).invalid("must be 1 to 255 bytes");
  out.alpn = [...c.alpnProtocols];
  return out;
}

/** Session settings only change resumption, which the sidecar does not offer; they are accepted and unused. */
const DOWNSTREAM_FIELDS = names(
  "commonTlsContext",
  "requireClientCertificate",
  "sessionTimeout",
  "disableStatelessSessionResumption",
  "disableStatefulSessionResumption",
);

/** DownstreamTlsContext → TlsContext (server side: a certificate is required). */
export function compileDownstreamTls(m: DownstreamTlsContext__Output, at: At): TlsContext {
  tlsFields(DOWNSTREAM_TLS_CONTEXT, m, DOWNSTREAM_FIELDS, at);
  const out = commonTlsContext(m.commonTlsContext, at.field("commonTlsContext"));
  if (!out.certificate)
    at.field("commonTlsContext").invalid(
      "a server needs a certificate (tls_certificates or the default secret)",
    );
  out.requireClientCertificate = wrapped(m.requireClientCertificate, false);
  if (out.requireClientCertificate && !out.trust)
    at.field("requireClientCertificate").invalid("requiring a client certificate needs a validation context");
  return out;
}

/** UpstreamTlsContext → TlsContext (client side; max_session_keys only sizes a resumption cache). */
export function compileUpstreamTls(m: UpstreamTlsContext__Output, at: At): TlsContext {
  tlsFields(UPSTREAM_TLS_CONTEXT, m, names("commonTlsContext", "sni", "maxSessionKeys"), at);
  const out = commonTlsContext(m.commonTlsContext, at.field("commonTlsContext"));
  if (m.sni) out.sni = m.sni;
  return out;
}

type AnyLike = { type_url?: string; typeUrl?: string; value?: Uint8Array | null };

/**
 * A transport socket on a listener's filter chain (`downstream`) or a cluster (`upstream`): its TlsContext, or
 * undefined for plaintext (none, or raw_buffer).
 */
export function compileTransportSocket(
  ts: { name: string; typedConfig?: AnyLike | null } | null | undefined,
  side: "downstream" | "upstream",
  at: At,
): TlsContext | undefined {
  if (!ts) return undefined;
  const typeName = anyTypeName(ts.typedConfig);
  if (typeName === RAW_BUFFER) return undefined;
  if (!typeName && (ts.name === "envoy.transport_sockets.raw_buffer" || ts.name === "raw_buffer"))
    return undefined;
  const expected = side === "downstream" ? DOWNSTREAM_TLS_CONTEXT : UPSTREAM_TLS_CONTEXT;
  if (typeName === DOWNSTREAM_TLS_CONTEXT || typeName === UPSTREAM_TLS_CONTEXT) {
    const tat = at.field("typedConfig");
    if (typeName !== expected)
      return tat.invalid(`a ${side} transport socket takes ${expected.split(".").pop()}, not ${typeName}`);
    const message = decodeAny(ts.typedConfig, tat).message;
    return side === "downstream"
      ? compileDownstreamTls(message as unknown as DownstreamTlsContext__Output, tat)
      : compileUpstreamTls(message as unknown as UpstreamTlsContext__Output, tat);
  }
  if (ts.name === "envoy.transport_sockets.tls" && !typeName)
    return at.field("typedConfig").invalid(`the tls transport socket needs a typed_config (${expected})`);
  return tlsUnsupported(
    at,
    `unsupported transport socket ${ts.name || typeName}; the Skein sidecar speaks raw_buffer and tls`,
  );
}

type ValueLike = object | null | undefined;

function plainValue(value: ValueLike): unknown {
  if (!value) return null;
  const v = value as Record<string, unknown>;
  switch (v.kind) {
    case "stringValue":
      return v.stringValue;
    case "numberValue":
      return v.numberValue;
    case "boolValue":
      return v.boolValue;
    case "structValue":
      return structValues(v.structValue as StructLike);
    case "listValue":
      return ((v.listValue as { values?: ValueLike[] } | null)?.values ?? []).map(plainValue);
    default:
      return null;
  }
}

type StructLike = { fields?: Record<string, ValueLike> | null } | null | undefined;

/** A decoded google.protobuf.Struct as a plain object. */
export function structValues(s: StructLike): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = plainValue(v);
  return out;
}
