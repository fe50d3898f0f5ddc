// The registry of Kubernetes-shaped kinds Skein accepts: group, kind, versions and the spec schema that
// validates and types each one. Lowering into the mesh model lives in src/model/lower/.
import type { z } from "zod";

export interface KindDefinition<Spec = unknown> {
  group: string;
  kind: string;
  /** Accepted versions, e.g. ["v1beta1", "v1"]; all share one schema. */
  versions: readonly string[];
  namespaced: boolean;
  spec: z.ZodType<Spec>;
  /** The spec may be omitted (a PeerAuthentication with no spec means UNSET). */
  specOptional?: boolean;
  /** Some kinds (IstioOperator) are commonly written without metadata; they get this name. */
  defaultName?: string;
}

export function defineKind<Spec>(def: KindDefinition<Spec>): KindDefinition<Spec> {
  return def;
}

export class KindRegistry {
  private readonly byGroupKind = new Map<string, KindDefinition>();
  register(defs: readonly KindDefinition<unknown>[]): this {
    for (const d of defs) this.byGroupKind.set(`${d.group}/${d.kind}`, d);
    return this;
  }
  get(group: string, kind: string): KindDefinition | undefined {
    return this.byGroupKind.get(`${group}/${kind}`);
  }
  kindsOf(group: string): KindDefinition[] {
    return [...this.byGroupKind.values()].filter((d) => d.group === group);
  }
  all(): KindDefinition[] {
    return [...this.byGroupKind.values()];
  }
}
