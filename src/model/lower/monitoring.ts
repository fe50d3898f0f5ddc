// Lowers monitoring.coreos.com ServiceMonitor into model.serviceMonitors, the input for generating
// Prometheus scrape configuration. Fields not carried yet are reported as SKEIN_W_NO_EFFECT.
import { Codes } from "../../api/codes.js";
import {
  ENDPOINT_FIELDS_WITHOUT_EFFECT,
  type RelabelConfigSpec,
  type ServiceMonitorSpec,
  SPEC_FIELDS_WITHOUT_EFFECT,
} from "../../api/monitoring.js";
import type { Resource } from "../../api/resource.js";
import type { ModelBuilder } from "../builder.js";
import type { RelabelConfig, ServiceMonitorEndpoint } from "../types.js";

function lowerRelabel(r: RelabelConfigSpec): RelabelConfig {
  return {
    sourceLabels: r.sourceLabels ?? [],
    separator: r.separator,
    targetLabel: r.targetLabel,
    regex: r.regex,
    modulus: r.modulus,
    replacement: r.replacement,
    action: r.action ?? "replace",
  };
}

export function lowerServiceMonitor(r: Resource<ServiceMonitorSpec>, b: ModelBuilder): void {
  const spec = r.spec as ServiceMonitorSpec & Record<string, unknown>;
  const noEffect = (path: (string | number)[], what: string, hint: string) =>
    b.report(r.source, path, "warning", Codes.NO_EFFECT, what, hint);
  for (const f of SPEC_FIELDS_WITHOUT_EFFECT)
    if (spec[f] !== undefined)
      noEffect(
        ["spec", f],
        `spec.${f} is not carried into scrape configuration yet`,
        "remove it, or keep it for the Prometheus Operator",
      );
  if ((spec.endpoints?.length ?? 0) === 0)
    noEffect(
      ["spec"],
      "this ServiceMonitor has no endpoints, so nothing is scraped",
      "add endpoints: [{port: <service port name>}]",
    );
  if (spec.namespaceSelector?.any && (spec.namespaceSelector.matchNames?.length ?? 0) > 0)
    noEffect(
      ["spec", "namespaceSelector", "matchNames"],
      "matchNames has no effect when any is true (every namespace is selected)",
      "remove matchNames, or set any: false",
    );
  const endpoints: ServiceMonitorEndpoint[] = (spec.endpoints ?? []).map((e, i) => {
    const raw = e as typeof e & Record<string, unknown>;
    for (const f of ENDPOINT_FIELDS_WITHOUT_EFFECT)
      if (raw[f] !== undefined)
        noEffect(
          ["spec", "endpoints", i, f],
          `endpoints[${i}].${f} is not carried into scrape configuration yet`,
          "remove it, or keep it for the Prometheus Operator",
        );
    if (e.port !== undefined && e.targetPort !== undefined)
      noEffect(
        ["spec", "endpoints", i, "targetPort"],
        "targetPort has no effect when port is set (the Service port name wins)",
        "keep one of port and targetPort",
      );
    return {
      port: e.port,
      targetPort: e.targetPort,
      path: e.path,
      intervalMs: e.interval,
      scrapeTimeoutMs: e.scrapeTimeout,
      scheme: e.scheme,
      params: e.params,
      honorLabels: e.honorLabels,
      honorTimestamps: e.honorTimestamps,
      relabelings: (e.relabelings ?? []).map(lowerRelabel),
      metricRelabelings: (e.metricRelabelings ?? []).map(lowerRelabel),
      tlsConfig: e.tlsConfig
        ? {
            serverName: e.tlsConfig.serverName,
            insecureSkipVerify: e.tlsConfig.insecureSkipVerify,
            caFile: e.tlsConfig.caFile,
            certFile: e.tlsConfig.certFile,
            keyFile: e.tlsConfig.keyFile,
            ca: e.tlsConfig.ca,
            cert: e.tlsConfig.cert,
            keySecret: e.tlsConfig.keySecret,
            minVersion: e.tlsConfig.minVersion,
            maxVersion: e.tlsConfig.maxVersion,
          }
        : undefined,
      bearerTokenSecret: e.bearerTokenSecret,
      followRedirects: e.followRedirects,
      enableHttp2: e.enableHttp2,
    };
  });
  b.model.serviceMonitors.push({
    name: r.name,
    namespace: r.namespace,
    labels: r.labels,
    selector: {
      matchLabels: spec.selector.matchLabels ?? {},
      matchExpressions: (spec.selector.matchExpressions ?? []).map((m) => ({
        key: m.key,
        operator: m.operator,
        values: m.values ?? [],
      })),
    },
    namespaceSelector: {
      any: spec.namespaceSelector?.any ?? false,
      matchNames: spec.namespaceSelector?.matchNames ?? [],
    },
    endpoints,
    jobLabel: spec.jobLabel || undefined,
    targetLabels: spec.targetLabels ?? [],
    podTargetLabels: spec.podTargetLabels ?? [],
    sampleLimit: spec.sampleLimit,
    targetLimit: spec.targetLimit,
    source: r.source,
  });
}
