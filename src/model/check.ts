// The whole configuration check: read → validate → lower → (optionally) analyze across resources.
// Used by `skein validate`, `skein analyze` and, later, by the control plane before accepting a change.

import { type ConfigSet, type DecodeOptions, decodeSources, loadPaths } from "../api/load.js";
import { decoders } from "../api/registry.js";
import type { Resource } from "../api/resource.js";
import { type Diagnostic, hasErrors, sortDiagnostics } from "../lib/diagnostics.js";
import { analyzeModel } from "./analyze/index.js";
import { buildModel } from "./build.js";
import type { MeshModel } from "./types.js";

export interface CheckResult {
  resources: Resource[];
  model?: MeshModel;
  diagnostics: Diagnostic[];
}

export interface CheckOptions {
  /** Run the cross-resource analyzers too (skein analyze). */
  analyze: boolean;
}

function finish(set: ConfigSet, opts: CheckOptions): CheckResult {
  const diagnostics = [...set.diagnostics];
  let model: MeshModel | undefined;
  if (!hasErrors(diagnostics) || opts.analyze) {
    // Lowering and analysis run on what did validate, so one broken file does not hide the rest.
    const built = buildModel(set.resources);
    model = built.model;
    diagnostics.push(...built.diagnostics);
    if (opts.analyze) diagnostics.push(...analyzeModel(model, set.resources));
  }
  return { resources: set.resources, model, diagnostics: sortDiagnostics(diagnostics) };
}

export async function checkPaths(paths: readonly string[], opts: CheckOptions): Promise<CheckResult> {
  return finish(await loadPaths(paths, decoders), opts);
}

export function checkTexts(
  sources: readonly { file: string; text: string }[],
  opts: CheckOptions & DecodeOptions,
): CheckResult {
  return finish(decodeSources(sources, decoders, { overlay: opts.overlay }), opts);
}
