// Traffic-management analysis, after `istioctl analyze`: destinations that point at no service, subsets
// no DestinationRule defines, ports a service does not expose, weights that do not add up, rules no
// request can reach, and VirtualServices that claim the same host.
import { Codes } from "../../api/codes.js";
import type { PathSegment } from "../../api/yaml.js";
import type { Diagnostic } from "../../lib/diagnostics.js";
import { diagnosticAt } from "../builder.js";
import { hostMatches, resolveHost } from "../hosts.js";
import type { DestinationPolicy, RouteTable, Service, SourceRef } from "../types.js";
import type { AnalysisContext, Analyzer } from "./types.js";

/** Is a resource in `from` namespace, exported with `exportTo`, visible in namespace `to`? */
export function visibleIn(exportTo: readonly string[], from: string, to: string): boolean {
  return exportTo.some((e) => e === "*" || (e === "." ? from === to : e === to));
}

function exportsOverlap(a: RouteTable, b: RouteTable): boolean {
  const set = (rt: RouteTable) => rt.exportTo.map((e) => (e === "." ? rt.namespace : e));
  const sa = set(a);
  const sb = set(b);
  return sa.some((x) => x === "*" || sb.includes("*") || sb.includes(x));
}

function namesOf(s: Service): string[] {
  return [s.hostname, ...s.aliases];
}

/** DestinationRules that apply to `services` as seen from namespace `ns`. */
function policiesFor(
  policies: readonly DestinationPolicy[],
  services: readonly Service[],
  host: string,
  ns: string,
) {
  const names = new Set([resolveHost(host, ns), ...services.flatMap(namesOf)]);
  return policies.filter((p) => {
    if (!visibleIn(p.exportTo, p.namespace, ns)) return false;
    const ph = resolveHost(p.host, p.namespace);
    return [...names].some((n) => hostMatches(ph, n));
  });
}

function at(
  ref: SourceRef,
  path: readonly PathSegment[],
  sev: "error" | "warning",
  code: string,
  msg: string,
  hint?: string,
) {
  return diagnosticAt(ref, path, sev, code, msg, hint);
}

export const networkingAnalyzer: Analyzer = {
  name: "networking",
  run(ctx: AnalysisContext): Diagnostic[] {
    const out: Diagnostic[] = [];
    const { model } = ctx;

    const checkDestination = (
      rt: RouteTable,
      d: { host: string; subset?: string; port?: number },
      path: readonly PathSegment[],
    ) => {
      const services = ctx.services.find(d.host, rt.namespace);
      if (services.length === 0) {
        if (!d.host.startsWith("*"))
          out.push(
            at(
              rt.source,
              [...path, "host"],
              "error",
              Codes.HOST_NOT_FOUND,
              `destination host "${d.host}" (${resolveHost(d.host, rt.namespace)}) is not a known service`,
              "declare it (a Service, a ServiceEntry or an App Mesh virtual node) or fix the name",
            ),
          );
        return;
      }
      if (d.subset !== undefined) {
        const policies = policiesFor(model.destinationPolicies, services, d.host, rt.namespace);
        if (!policies.some((p) => p.subsets.some((s) => s.name === d.subset))) {
          const known = [...new Set(policies.flatMap((p) => p.subsets.map((s) => s.name)))];
          out.push(
            at(
              rt.source,
              [...path, "subset"],
              "error",
              Codes.SUBSET_NOT_FOUND,
              `subset "${d.subset}" of host "${d.host}" is not defined by any DestinationRule`,
              known.length
                ? `subsets defined for this host: ${known.join(", ")}`
                : `add a DestinationRule for ${d.host} with a subset named ${d.subset}`,
            ),
          );
        }
      }
      if (d.port !== undefined) {
        const withPorts = services.filter((s) => s.ports.length > 0);
        if (withPorts.length > 0 && !withPorts.some((s) => s.ports.some((p) => p.number === d.port)))
          out.push(
            at(
              rt.source,
              [...path, "port"],
              "error",
              Codes.PORT_NOT_FOUND,
              `port ${d.port} is not a port of ${d.host}`,
              `its ports: ${[...new Set(withPorts.flatMap((s) => s.ports.map((p) => p.number)))].join(", ")}`,
            ),
          );
      }
    };

    for (const rt of model.routeTables) {
      rt.http.forEach((route, i) => {
        route.destinations.forEach((d, j) => {
          checkDestination(rt, d, d.path ?? [...route.path, "route", j, "destination"]);
        });
        route.mirrors.forEach((m, j) => {
          checkDestination(rt, m, m.path ?? [...route.path, "mirrors", j, "destination"]);
        });
        if (rt.origin === "istio" && route.destinations.length > 1) {
          const sum = route.destinations.reduce((a, d) => a + d.weight, 0);
          if (sum !== 100)
            out.push(
              at(
                rt.source,
                [...route.path, "route"],
                "warning",
                Codes.WEIGHT_SUM,
                `route weights add up to ${sum}, not 100`,
                sum === 0
                  ? "no destination has a weight: give each one, adding up to 100"
                  : "Skein splits traffic in proportion to the weights; make them add up to 100 to say what you mean",
              ),
            );
        }
        const firstCatchAll = rt.http.findIndex((r) => r.matches.length === 0);
        if (firstCatchAll >= 0 && i > firstCatchAll)
          out.push(
            at(
              rt.source,
              route.path,
              "warning",
              Codes.UNREACHABLE_ROUTE,
              `this rule is never used: rule ${firstCatchAll} before it matches every request`,
              "move the rule without a match to the end",
            ),
          );
      });
      rt.tcp.forEach((route) => {
        route.destinations.forEach((d, j) => {
          checkDestination(rt, d, d.path ?? [...route.path, "route", j, "destination"]);
        });
      });
    }

    // Two VirtualServices bound to sidecars ("mesh") that claim one host: Istio uses one and ignores the
    // other (IST0109); Skein refuses the ambiguity.
    const claims = new Map<string, { rt: RouteTable; index: number }[]>();
    for (const rt of model.routeTables) {
      if (rt.origin !== "istio" || !rt.gateways.includes("mesh")) continue;
      rt.hosts.forEach((h, index) => {
        const key = resolveHost(h, rt.namespace);
        claims.set(key, [...(claims.get(key) ?? []), { rt, index }]);
      });
    }
    for (const [host, list] of claims) {
      for (const { rt, index } of list) {
        const others = list.filter((o) => o.rt !== rt && exportsOverlap(o.rt, rt));
        if (others.length === 0) continue;
        out.push(
          at(
            rt.source,
            ["spec", "hosts", index],
            "error",
            Codes.VS_HOST_CONFLICT,
            `host ${host} is also claimed by ${others.map((o) => `VirtualService ${o.rt.namespace}/${o.rt.name}`).join(", ")}`,
            "merge them into one VirtualService, or limit each one's exportTo so they do not overlap",
          ),
        );
      }
    }

    // DestinationRules for one host in one namespace: Istio merges subsets but keeps only the first
    // traffic policy, which surprises people.
    const drs = new Map<string, DestinationPolicy[]>();
    for (const p of model.destinationPolicies) {
      if (p.workloadSelector) continue;
      const key = `${p.namespace}\u0000${resolveHost(p.host, p.namespace)}`;
      drs.set(key, [...(drs.get(key) ?? []), p]);
    }
    for (const list of drs.values()) {
      for (const p of list.slice(1)) {
        const first = list[0] as DestinationPolicy;
        out.push(
          at(
            p.source,
            ["spec", "host"],
            "warning",
            Codes.DR_HOST_CONFLICT,
            `DestinationRule ${first.namespace}/${first.name} already configures host ${p.host}; only the first one's traffic policy applies`,
            "merge them into one DestinationRule",
          ),
        );
      }
    }
    return out;
  },
};
