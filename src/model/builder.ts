// Collects what resources lower into, plus the diagnostics lowering finds (e.g. fields accepted but
// without effect yet, which are reported as warnings and never dropped silently).

import type { PathSegment } from "../api/yaml.js";
import type { Diagnostic, Severity } from "../lib/diagnostics.js";
import { formatPath } from "../lib/diagnostics.js";
import type { MeshConfig, MeshModel, SourceRef } from "./types.js";

export const DEFAULT_TRUST_DOMAIN = "cluster.local";
export const DEFAULT_ROOT_NAMESPACE = "istio-system";

export function defaultMeshConfig(): MeshConfig {
  return {
    enableTracing: false,
    accessLogEncoding: "TEXT",
    outboundTrafficPolicy: "ALLOW_ANY",
    trustDomain: DEFAULT_TRUST_DOMAIN,
    rootNamespace: DEFAULT_ROOT_NAMESPACE,
    extensionProviders: [],
  };
}

export function emptyModel(): MeshModel {
  return {
    services: [],
    workloads: [],
    routeTables: [],
    destinationPolicies: [],
    sidecars: [],
    gateways: [],
    peerAuthentications: [],
    authorizationPolicies: [],
    requestAuthentications: [],
    telemetry: [],
    meshConfig: defaultMeshConfig(),
    serviceMonitors: [],
    rateLimits: [],
  };
}

/** Builds a diagnostic that points at a field of the resource `ref` describes. */
export function diagnosticAt(
  ref: SourceRef,
  path: readonly PathSegment[],
  severity: Severity,
  code: string,
  message: string,
  hint?: string,
): Diagnostic {
  const full = [...ref.basePath, ...path];
  const pos = ref.positions?.keyOf(full);
  return {
    code,
    severity,
    message,
    hint,
    file: pos?.file ?? ref.file,
    line: pos?.line ?? ref.line,
    column: pos?.column ?? ref.column,
    path: path.length ? formatPath(path) : undefined,
    resource: ref.namespace ? `${ref.kind} ${ref.namespace}/${ref.name}` : `${ref.kind} ${ref.name}`,
  };
}

export class ModelBuilder {
  readonly model: MeshModel = emptyModel();
  readonly diagnostics: Diagnostic[] = [];
  /** Set once an IstioOperator/mesh config has been applied, to report a second one. */
  meshConfigSource?: SourceRef;

  report(
    ref: SourceRef,
    path: readonly PathSegment[],
    severity: Severity,
    code: string,
    message: string,
    hint?: string,
  ) {
    this.diagnostics.push(diagnosticAt(ref, path, severity, code, message, hint));
  }
}
