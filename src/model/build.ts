// Lowers validated resources into one MeshModel. Each kind has a lowering function (src/model/lower/);
// some sources (App Mesh) lower as a set because their resources reference each other.

import type { Resource } from "../api/resource.js";
import type { Diagnostic } from "../lib/diagnostics.js";
import { ModelBuilder } from "./builder.js";
import { kindLowerings, setLowerings } from "./lower/index.js";
import type { MeshModel } from "./types.js";

export function buildModel(resources: readonly Resource[]): { model: MeshModel; diagnostics: Diagnostic[] } {
  const builder = new ModelBuilder();
  for (const r of resources) {
    const lower = kindLowerings.get(`${r.group}/${r.kind}`);
    if (lower) lower(r, builder);
  }
  for (const s of setLowerings) s.lower(resources, builder);
  return { model: builder.model, diagnostics: builder.diagnostics };
}
