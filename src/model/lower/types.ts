// The shape of a lowering: one resource (or a set, for sources whose resources reference each other)
// into the model held by a ModelBuilder.
import type { Resource } from "../../api/resource.js";
import type { ModelBuilder } from "../builder.js";

// biome-ignore lint/suspicious/noExplicitAny: each lowering is typed by its own kind's spec.
export type KindLowering = (resource: Resource<any>, model: ModelBuilder) => void;

export interface SetLowering {
  name: string;
  lower(resources: readonly Resource[], model: ModelBuilder): void;
}
