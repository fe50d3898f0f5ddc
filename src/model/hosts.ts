// Host names as Istio resolves them: a short name (no dots) is relative to the namespace of the rule
// that wrote it; anything with a dot is taken as written. Lookups also accept Kubernetes DNS search
// forms (name.namespace, name.namespace.svc) through each service's aliases.
import type { Service } from "./types.js";

export const CLUSTER_DOMAIN = "svc.cluster.local";

export function serviceFqdn(name: string, namespace: string): string {
  return `${name}.${namespace}.${CLUSTER_DOMAIN}`;
}

export function resolveHost(host: string, namespace: string): string {
  if (host === "*" || host.startsWith("*.") || host.includes(".")) return host;
  return serviceFqdn(host, namespace);
}

/** Does `pattern` (possibly `*` or `*.suffix`) cover `host`? */
export function hostMatches(pattern: string, host: string): boolean {
  if (pattern === "*") return true;
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1));
  return pattern === host;
}

/** Index of services by every name that refers to them. */
export class ServiceIndex {
  private readonly byName = new Map<string, Service[]>();
  constructor(services: readonly Service[]) {
    for (const s of services) {
      for (const n of new Set([s.hostname, ...s.aliases])) {
        const list = this.byName.get(n) ?? [];
        list.push(s);
        this.byName.set(n, list);
      }
    }
  }
  /** The services a host written in `namespace` refers to (several for a wildcard). */
  find(host: string, namespace: string): Service[] {
    const resolved = resolveHost(host, namespace);
    if (resolved.startsWith("*")) {
      const out = new Set<Service>();
      for (const [name, list] of this.byName)
        if (hostMatches(resolved, name)) for (const s of list) out.add(s);
      return [...out];
    }
    return this.byName.get(resolved) ?? this.byName.get(host) ?? [];
  }
}

export function selectorMatches(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
