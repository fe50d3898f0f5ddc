// Lowers telemetry.istio.io Telemetry and install.istio.io IstioOperator (its meshConfig) into the model.
// Fields Skein accepts but does not act on are reported as SKEIN_W_NO_EFFECT warnings, once each.
import { Codes } from "../../api/codes.js";
import {
  EXTENSION_PROVIDER_KINDS,
  INSTALL_ONLY_FIELDS,
  type IstioOperatorSpec,
  OTHER_MESH_CONFIG_FIELDS,
  OTHER_PROXY_CONFIG_FIELDS,
  type ProxyTracingSpec,
  TRACER_KINDS,
} from "../../api/istio/operator.js";
import type { CustomTagSpec, TelemetrySpec } from "../../api/istio/telemetry.js";
import { type Resource, resourceId } from "../../api/resource.js";
import { DEFAULT_ROOT_NAMESPACE, DEFAULT_TRUST_DOMAIN, type ModelBuilder } from "../builder.js";
import type { CustomTag, MeshConfig, TraceContext } from "../types.js";
import { lowerSelector, lowerTargetRefs, policyScope } from "./policy-scope.js";

export function lowerCustomTags(tags: Record<string, CustomTagSpec> | undefined): Record<string, CustomTag> {
  const out: Record<string, CustomTag> = {};
  for (const [name, t] of Object.entries(tags ?? {})) {
    if (t.literal) out[name] = { kind: "literal", value: t.literal.value };
    else if (t.environment)
      out[name] = { kind: "environment", name: t.environment.name, defaultValue: t.environment.defaultValue };
    else if (t.header)
      out[name] = { kind: "header", name: t.header.name, defaultValue: t.header.defaultValue };
  }
  return out;
}

export function lowerTelemetry(r: Resource<TelemetrySpec | undefined>, b: ModelBuilder): void {
  const spec = r.spec ?? {};
  const selector = lowerSelector(r, spec.selector, b);
  const targetRefs = lowerTargetRefs(spec);
  const tracing = spec.tracing ?? [];
  // Istio's validation warns about both; its proxies take one tracing rule and one provider.
  if (tracing.length > 1)
    b.report(
      r.source,
      ["spec", "tracing", 1],
      "warning",
      Codes.NO_EFFECT,
      "Istio supports one tracing entry per Telemetry resource; entries after the first are not applied",
      "merge the tracing entries into one",
    );
  tracing.forEach((t, i) => {
    if ((t.providers?.length ?? 0) > 1)
      b.report(
        r.source,
        ["spec", "tracing", i, "providers", 1],
        "warning",
        Codes.NO_EFFECT,
        "Istio supports one provider per tracing entry; providers after the first are not used",
        "keep one provider",
      );
  });
  if (spec.metrics !== undefined)
    b.report(
      r.source,
      ["spec", "metrics"],
      "warning",
      Codes.NO_EFFECT,
      "metrics overrides are not applied yet: proxies report the standard metrics unchanged",
      "remove spec.metrics, or keep it for when Skein supports metric overrides",
    );
  b.model.telemetry.push({
    name: r.name,
    namespace: r.namespace,
    scope: policyScope(r.namespace, selector, targetRefs, DEFAULT_ROOT_NAMESPACE),
    selector,
    targetRefs,
    tracing: tracing.map((t) => ({
      match: t.match?.mode,
      providers: (t.providers ?? []).map((p) => p.name),
      randomSamplingPercentage: t.randomSamplingPercentage,
      disableSpanReporting: t.disableSpanReporting,
      useRequestIdForTraceSampling: t.useRequestIdForTraceSampling,
      enableIstioTags: t.enableIstioTags,
      customTags: lowerCustomTags(t.customTags),
    })),
    accessLogging: (spec.accessLogging ?? []).map((a) => ({
      match: a.match?.mode,
      providers: (a.providers ?? []).map((p) => p.name),
      disabled: a.disabled,
      filter: a.filter?.expression,
    })),
    source: r.source,
  });
}

function lowerProxyTracing(t: ProxyTracingSpec): NonNullable<MeshConfig["tracing"]> {
  const kind = TRACER_KINDS.find((k) => t[k] !== undefined);
  let tracer: { kind: string; address?: string } | undefined;
  let context: TraceContext[] = [];
  if (kind) {
    const body = t[kind] as { address?: string } | undefined;
    tracer = { kind, address: body?.address };
    // openCensusAgent propagates what `context` lists (W3C trace context when empty); Envoy's zipkin
    // tracer uses B3 headers; the others propagate in their own vendor formats.
    if (kind === "openCensusAgent")
      context = t.openCensusAgent?.context?.length ? [...t.openCensusAgent.context] : ["W3C_TRACE_CONTEXT"];
    else if (kind === "zipkin") context = ["B3"];
  }
  const customTags = t.customTags ?? t.custom_tags;
  return {
    sampling: t.sampling,
    tracer,
    context,
    maxPathTagLength: t.maxPathTagLength ?? t.max_path_tag_length,
    customTags: customTags ? lowerCustomTags(customTags) : undefined,
  };
}

export function lowerIstioOperator(r: Resource<IstioOperatorSpec>, b: ModelBuilder): void {
  const spec = r.spec as IstioOperatorSpec & Record<string, unknown>;
  for (const f of INSTALL_ONLY_FIELDS)
    if (spec[f] !== undefined)
      b.report(
        r.source,
        ["spec", f],
        "warning",
        Codes.NO_EFFECT,
        `spec.${f} configures an Istio installation, not the mesh; Skein does not use it`,
        "only spec.meshConfig configures the mesh; remove the rest or keep it for istioctl",
      );
  const mc = spec.meshConfig as
    | (NonNullable<IstioOperatorSpec["meshConfig"]> & Record<string, unknown>)
    | undefined;
  if (!mc) return;
  const first = b.meshConfigSource;
  if (first) {
    b.report(
      r.source,
      ["spec", "meshConfig"],
      "error",
      Codes.MESH_CONFIG_CONFLICT,
      `${resourceId(r)} and ${resourceId(first)} (${first.file}:${first.line ?? 1}) both set meshConfig; the mesh has one configuration, so this one is ignored`,
      "merge the two meshConfig sections into one IstioOperator",
    );
    return;
  }
  b.meshConfigSource = r.source;
  const noEffect = (path: (string | number)[], what: string) =>
    b.report(
      r.source,
      path,
      "warning",
      Codes.NO_EFFECT,
      `${what} is not used by Skein`,
      "it configures Istio's own control plane or Envoy; remove it or keep it for istioctl",
    );
  for (const f of OTHER_MESH_CONFIG_FIELDS)
    if (mc[f] !== undefined) noEffect(["spec", "meshConfig", f], `meshConfig.${f}`);
  if (mc.outboundTrafficPolicy?.egressProxy !== undefined)
    noEffect(
      ["spec", "meshConfig", "outboundTrafficPolicy", "egressProxy"],
      "meshConfig.outboundTrafficPolicy.egressProxy",
    );
  const dc = mc.defaultConfig as (NonNullable<typeof mc.defaultConfig> & Record<string, unknown>) | undefined;
  for (const f of OTHER_PROXY_CONFIG_FIELDS)
    if (dc?.[f] !== undefined)
      noEffect(["spec", "meshConfig", "defaultConfig", f], `meshConfig.defaultConfig.${f}`);
  if (dc?.tracing?.tlsSettings !== undefined)
    noEffect(
      ["spec", "meshConfig", "defaultConfig", "tracing", "tlsSettings"],
      "meshConfig.defaultConfig.tracing.tlsSettings",
    );
  // Istio's default mesh configuration enables tracing; an IstioOperator that does not say otherwise keeps it.
  const enableTracing = mc.enableTracing ?? true;
  if (!enableTracing && dc?.tracing !== undefined && Object.keys(dc.tracing).length > 0)
    b.report(
      r.source,
      ["spec", "meshConfig", "defaultConfig", "tracing"],
      "warning",
      Codes.NO_EFFECT,
      "tracing settings have no effect while meshConfig.enableTracing is false",
      "set enableTracing: true, or remove defaultConfig.tracing",
    );
  b.model.meshConfig = {
    enableTracing,
    accessLogFile: mc.accessLogFile || undefined,
    accessLogEncoding: mc.accessLogEncoding ?? "TEXT",
    accessLogFormat: mc.accessLogFormat || undefined,
    outboundTrafficPolicy: mc.outboundTrafficPolicy?.mode ?? "ALLOW_ANY",
    trustDomain: mc.trustDomain ?? DEFAULT_TRUST_DOMAIN,
    rootNamespace: mc.rootNamespace ?? DEFAULT_ROOT_NAMESPACE,
    tracing: dc?.tracing ? lowerProxyTracing(dc.tracing) : undefined,
    extensionProviders: (mc.extensionProviders ?? []).map((p) => {
      const entries = p as Record<string, unknown>;
      const kind = EXTENSION_PROVIDER_KINDS.find((k) => entries[k] !== undefined) ?? "";
      const body = (entries[kind] ?? {}) as { service?: string; port?: number };
      return { name: p.name, kind, service: body.service, port: body.port };
    }),
    defaultProviders: mc.defaultProviders
      ? {
          tracing: mc.defaultProviders.tracing ?? [],
          metrics: mc.defaultProviders.metrics ?? [],
          accessLogging: mc.defaultProviders.accessLogging ?? [],
        }
      : undefined,
    source: r.source,
  };
}
