// Server listeners for proxyless gRPC servers (gRFC A36 xDS-enabled servers, A41 RBAC). An `XdsServer`
// binding <ip>:<port> asks LDS for its bootstrap's `server_listener_resource_name_template` filled in with
// that address, Istio's `grpc/server?xds.resource.listening_address=<ip>:<port>`, and serves only once it
// gets a Listener of that name whose socket_address is the same <ip>:<port>. gRPC then needs, per filter
// chain, exactly one filter (an HttpConnectionManager) whose routes all use `non_forwarding_action` (the
// server routes nowhere; it only picks a route for per-route filter config) and whose http_filters end
// with the router.
// Each port the workload serves over HTTP (clusters.ts inboundPorts) gets one such Listener with:
// - one filter chain without filter_chain_match (gRPC reads a missing match as transport_protocol
//   raw_buffer) and without transport_socket: proxyless workloads are plaintext (mtls.ts), so policies
//   naming principals or namespaces cannot match their callers; gRPC has no JWT filter and its RBAC
//   engine never matches metadata, so request.auth.* conditions never match either;
// - the sidecar's RBAC filters for the port (authz.ts), DENY then ALLOW, before the router. AUDIT policies
//   (an RBAC filter with action LOG) are left out: gRPC rejects action LOG, which would NACK the listener
//   and keep the server from serving at all. gRPC registers its RBAC filter only when
//   GRPC_XDS_EXPERIMENTAL_RBAC=true (grpc-js-xds 1.14); a server without it NACKs a listener that carries
//   policies, and so refuses to serve rather than serve without them.

import type { Listener } from "../xds/generated/envoy/config/listener/v3/Listener.js";
import type { HttpFilter } from "../xds/generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.js";
import { authzHttpFilters } from "./authz.js";
import { inboundPorts } from "./clusters.js";
import { isHttp } from "./names.js";
import type { ProxyView } from "./scope.js";
import { FILTER, typed } from "./typed.js";
import { socketAddress } from "./values.js";

/** Istio's (and gRPC's documented) server listener resource name template, up to the address. */
export const GRPC_SERVER_LISTENER_PREFIX = "grpc/server?xds.resource.listening_address=";

/** The server Listener a proxyless gRPC server bound on address:port asks for. */
export function grpcServerListenerName(address: string, port: number): string {
  const host = address.includes(":") ? `[${address}]` : address;
  return `${GRPC_SERVER_LISTENER_PREFIX}${host}:${port}`;
}

/** One server Listener per HTTP port the proxyless node's workload serves; none without a workload. */
export function grpcServerListeners(view: ProxyView): Listener[] {
  const workload = view.proxy.workload;
  if (view.proxy.kind !== "proxyless" || !workload) return [];
  return inboundPorts(view, workload)
    .filter((inbound) => isHttp(inbound.servicePort.protocol))
    .map((inbound): Listener => {
      const { port } = inbound;
      const rbac = authzHttpFilters(view, inbound).filter((f) => f.name !== FILTER.rbacAudit);
      const router: HttpFilter = {
        name: FILTER.router,
        typedConfig: typed("envoy.extensions.filters.http.router.v3.Router", {}),
      };
      return {
        name: grpcServerListenerName(workload.address, port),
        address: socketAddress(workload.address, port),
        trafficDirection: "INBOUND",
        filterChains: [
          {
            name: "inbound-grpc",
            filters: [
              {
                name: FILTER.httpConnectionManager,
                typedConfig: typed(
                  "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                  {
                    statPrefix: `inbound_${workload.address}_${port}`,
                    codecType: "AUTO",
                    routeConfig: {
                      name: `inbound|grpc|${port}`,
                      virtualHosts: [
                        {
                          name: `inbound|grpc|${port}`,
                          domains: ["*"],
                          routes: [{ name: "default", match: { prefix: "/" }, nonForwardingAction: {} }],
                        },
                      ],
                    },
                    httpFilters: [...rbac, router],
                  },
                ),
              },
            ],
          },
        ],
      };
    });
}
