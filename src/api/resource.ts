// A validated configuration resource: Kubernetes-shaped (apiVersion/kind/metadata/spec) or a
// CloudFormation resource (AWS::AppMesh::*) with its intrinsics resolved. The spec is typed by its kind.
import type { PathSegment, PositionIndex } from "./yaml.js";

/** Where a resource (and through `positions`, each of its fields) came from. */
export interface SourceRef {
  /** Kind as written, e.g. `VirtualService` or `AWS::AppMesh::Route`. */
  kind: string;
  name: string;
  namespace: string;
  file: string;
  line?: number;
  column?: number;
  /** Where the resource sits in its document (e.g. `["Resources", "OrderRoute"]` in a template). */
  basePath: PathSegment[];
  positions?: PositionIndex;
}

export interface Resource<Spec = unknown> {
  /** e.g. `networking.istio.io/v1beta1`; for CloudFormation `cloudformation`. */
  apiVersion: string;
  group: string;
  version: string;
  kind: string;
  name: string;
  /** "" for cluster-scoped kinds and CloudFormation resources. */
  namespace: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: Spec;
  source: SourceRef;
  /** The document as written (before defaults and unit conversion), for `skein get -o yaml`. */
  raw?: unknown;
}

export const DEFAULT_NAMESPACE = "default";

export function resourceId(r: Pick<Resource, "kind" | "namespace" | "name">): string {
  return r.namespace ? `${r.kind} ${r.namespace}/${r.name}` : `${r.kind} ${r.name}`;
}
