// google.protobuf.Any values inside translated resources (filter configs, per-route overrides, protocol
// options), in the JSON form `{ "@type": "type.googleapis.com/<full name>", ...fields }`.
//
// Why this form: translation is pure and cannot encode bytes, and this is the form the xDS layer's
// encoder already understands. protobufjs (7.x, src/wrappers.js) installs a wrapper for
// `.google.protobuf.Any` whose `fromObject` looks up the message named after the last `/` of
// `@type`, runs that type's `fromObject` on the same object (the `@type` key is ignored there) and
// stores the encoded bytes with the type URL; nested Anys are handled by the same wrapper
// recursively. @grpc/proto-loader's generated `Any` type admits it too (`AnyExtension`), so these
// values type-check where the generated interfaces expect an Any. The one requirement on the xDS
// layer: every type named here must be loaded in its protobufjs Root, or protobufjs silently encodes
// an empty Any (scripts/gen-xds-types.mjs lists the protos).

import type { OpenTelemetryConfig } from "../xds/generated/envoy/config/trace/v3/OpenTelemetryConfig.js";
import type { ZipkinConfig } from "../xds/generated/envoy/config/trace/v3/ZipkinConfig.js";
import type { Cors } from "../xds/generated/envoy/extensions/filters/http/cors/v3/Cors.js";
import type { CorsPolicy } from "../xds/generated/envoy/extensions/filters/http/cors/v3/CorsPolicy.js";
import type { HTTPFault } from "../xds/generated/envoy/extensions/filters/http/fault/v3/HTTPFault.js";
import type { JwtAuthentication } from "../xds/generated/envoy/extensions/filters/http/jwt_authn/v3/JwtAuthentication.js";
import type { RBAC as HttpRBAC } from "../xds/generated/envoy/extensions/filters/http/rbac/v3/RBAC.js";
import type { Router } from "../xds/generated/envoy/extensions/filters/http/router/v3/Router.js";
import type { TlsInspector } from "../xds/generated/envoy/extensions/filters/listener/tls_inspector/v3/TlsInspector.js";
import type { HttpConnectionManager } from "../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.js";
import type { RBAC as NetworkRBAC } from "../xds/generated/envoy/extensions/filters/network/rbac/v3/RBAC.js";
import type { TcpProxy } from "../xds/generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.js";
import type { PreviousHostsPredicate } from "../xds/generated/envoy/extensions/retry/host/previous_hosts/v3/PreviousHostsPredicate.js";
import type { RawBuffer } from "../xds/generated/envoy/extensions/transport_sockets/raw_buffer/v3/RawBuffer.js";
import type { DownstreamTlsContext } from "../xds/generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.js";
import type { UpstreamTlsContext } from "../xds/generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.js";
import type { HttpProtocolOptions } from "../xds/generated/envoy/extensions/upstreams/http/v3/HttpProtocolOptions.js";
import type { LocalRateLimit } from "../xds/local-ratelimit.js";

/** Every message translation packs into an Any, by full name: the name and the fields are checked together. */
export interface TypedMessages {
  "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager": HttpConnectionManager;
  "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy": TcpProxy;
  "envoy.extensions.filters.http.router.v3.Router": Router;
  "envoy.extensions.filters.http.fault.v3.HTTPFault": HTTPFault;
  "envoy.extensions.filters.http.cors.v3.Cors": Cors;
  "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication": JwtAuthentication;
  "envoy.extensions.filters.http.cors.v3.CorsPolicy": CorsPolicy;
  "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit": LocalRateLimit;
  "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": HttpProtocolOptions;
  "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate": PreviousHostsPredicate;
  "envoy.config.trace.v3.ZipkinConfig": ZipkinConfig;
  "envoy.config.trace.v3.OpenTelemetryConfig": OpenTelemetryConfig;
  "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext": DownstreamTlsContext;
  "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext": UpstreamTlsContext;
  "envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer": RawBuffer;
  "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector": TlsInspector;
  "envoy.extensions.filters.http.rbac.v3.RBAC": HttpRBAC;
  "envoy.extensions.filters.network.rbac.v3.RBAC": NetworkRBAC;
}

export type TypeName = keyof TypedMessages;

export const TYPE_URL_PREFIX = "type.googleapis.com/";

/** An Any in protobufjs's JSON form: the type URL under `@type`, the message's own fields beside it. */
export type TypedConfig<N extends TypeName = TypeName> = {
  "@type": `${typeof TYPE_URL_PREFIX}${N}`;
} & TypedMessages[N];

export function typed<N extends TypeName>(typeName: N, message: TypedMessages[N]): TypedConfig<N> {
  return { "@type": `${TYPE_URL_PREFIX}${typeName}`, ...message } as TypedConfig<N>;
}

/** Reads back a value made by `typed` (the simulator and tests look inside filter configs). */
export function asTyped<N extends TypeName>(value: unknown, typeName: N): TypedConfig<N> | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const url = (value as { "@type"?: unknown })["@type"];
  return url === `${TYPE_URL_PREFIX}${typeName}` ? (value as TypedConfig<N>) : undefined;
}

/** Well-known filter names: per-route `typed_per_filter_config` keys must equal the HCM filter's name. */
export const FILTER = {
  httpConnectionManager: "envoy.filters.network.http_connection_manager",
  tcpProxy: "envoy.filters.network.tcp_proxy",
  router: "envoy.filters.http.router",
  fault: "envoy.filters.http.fault",
  cors: "envoy.filters.http.cors",
  localRateLimit: "envoy.filters.http.local_ratelimit",
  /** Also the key of `typed_extension_protocol_options`, which Envoy looks up by the type's name. */
  httpProtocolOptions: "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
  previousHosts: "envoy.retry_host_predicates.previous_hosts",
  tlsInspector: "envoy.filters.listener.tls_inspector",
  tlsTransportSocket: "envoy.transport_sockets.tls",
  rawBufferTransportSocket: "envoy.transport_sockets.raw_buffer",
  /** Istio's names for its RBAC filter instances (unique names: per-route config is keyed by them). */
  rbacAudit: "envoy.filters.http.rbac",
  rbacDeny: "istio.authorization.deny",
  rbacAllow: "istio.authorization.allow",
  networkRbac: "envoy.filters.network.rbac",
} as const;
