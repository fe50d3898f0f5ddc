// Runs every analyzer over a model built from a set of resources.
import type { Resource } from "../../api/resource.js";
import type { Diagnostic } from "../../lib/diagnostics.js";
import { ServiceIndex } from "../hosts.js";
import type { MeshModel } from "../types.js";
import { appMeshAnalyzer } from "./appmesh.js";
import { networkingAnalyzer } from "./networking.js";
import { securityAnalyzer } from "./security.js";
import type { Analyzer } from "./types.js";

export const analyzers: Analyzer[] = [networkingAnalyzer, securityAnalyzer, appMeshAnalyzer];

export function analyzeModel(model: MeshModel, resources: readonly Resource[]): Diagnostic[] {
  const ctx = { model, resources, services: new ServiceIndex(model.services) };
  return analyzers.flatMap((a) => a.run(ctx));
}
