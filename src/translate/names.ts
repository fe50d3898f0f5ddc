// Resource names, in Istio's forms so that operators' tools and habits (istioctl proxy-config, stats
// prefixes, grpc-js-xds targets) carry over.

import { CLUSTER_DOMAIN } from "../model/hosts.js";
import type { Protocol, Service } from "../model/types.js";

/** `outbound|8080||order-service.production.svc.cluster.local`, `outbound|8080|canary|…` for a subset. */
export function outboundClusterName(port: number, subset: string | undefined, hostname: string): string {
  return `outbound|${port}|${subset ?? ""}|${hostname}`;
}

/** `inbound|8080||`: named by the port the inbound listener binds (Istio ≥ 1.10 uses the target port too). */
export function inboundClusterName(port: number): string {
  return `inbound|${port}||`;
}

export interface ParsedClusterName {
  direction: "outbound" | "inbound";
  port: number;
  subset?: string;
  hostname: string;
}

export function parseClusterName(name: string): ParsedClusterName | undefined {
  const parts = name.split("|");
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, hostname] = parts as [string, string, string, string];
  if (direction !== "outbound" && direction !== "inbound") return undefined;
  const n = Number(port);
  if (!Number.isInteger(n)) return undefined;
  return { direction, port: n, subset: subset || undefined, hostname };
}

/** The sidecar's explicit-proxy route configuration: every port, matched by `Host: name:port` (Istio's RDSHttpProxy). */
export const HTTP_PROXY_ROUTE = "http_proxy";

/** Per-port outbound route configuration, for proxyless clients (Istio's `"8080"`). */
export function portRouteName(port: number): string {
  return String(port);
}

export const OUTBOUND_LISTENER = "virtualOutbound";
export const OUTBOUND_PORT = 15001;

/** Istio's listener naming: `<address>_<port>`. */
export function listenerName(address: string, port: number): string {
  return `${address}_${port}`;
}

/** The virtual host of a service port: `order-service.production.svc.cluster.local:8080`. */
export function virtualHostName(hostname: string, port: number): string {
  return `${hostname}:${port}`;
}

export function isHttp(protocol: Protocol): boolean {
  return protocol === "HTTP" || protocol === "HTTP2" || protocol === "GRPC";
}

export function isHttp2(protocol: Protocol): boolean {
  return protocol === "HTTP2" || protocol === "GRPC";
}

/**
 * Every name a client in `proxyNamespace` can use for a service, without port: the hostname, for
 * Kubernetes-style hostnames `name.namespace.svc`, `name.namespace` and (same namespace only) `name`,
 * then its aliases (App Mesh virtual service names). Duplicates removed, order stable.
 */
export function serviceNames(service: Service, proxyNamespace: string): string[] {
  const names = [service.hostname];
  const suffix = `.${CLUSTER_DOMAIN}`;
  if (service.hostname.endsWith(suffix)) {
    const head = service.hostname.slice(0, -suffix.length);
    const dot = head.indexOf(".");
    if (dot > 0) {
      const name = head.slice(0, dot);
      const namespace = head.slice(dot + 1);
      names.push(`${head}.svc`, head);
      if (namespace === proxyNamespace) names.push(name);
    }
  }
  names.push(...service.aliases);
  return [...new Set(names)];
}
