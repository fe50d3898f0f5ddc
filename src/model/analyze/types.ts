// Cross-resource analysis (like `istioctl analyze`): each analyzer reads the model and the resources
// and reports problems no single resource's schema can see.
import type { Resource } from "../../api/resource.js";
import type { Diagnostic } from "../../lib/diagnostics.js";
import type { ServiceIndex } from "../hosts.js";
import type { MeshModel } from "../types.js";

export interface AnalysisContext {
  model: MeshModel;
  resources: readonly Resource[];
  services: ServiceIndex;
}

export interface Analyzer {
  name: string;
  run(ctx: AnalysisContext): Diagnostic[];
}
