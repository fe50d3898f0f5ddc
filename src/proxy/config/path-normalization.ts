// The connection manager's path settings (normalize_path, merge_slashes, path_with_escaped_slashes_action)
// compiled for the listener: the data path normalises each request's path with them before any filter runs
// (router/normalize.ts). Envoy's defaults: no normalisation, no merging, escaped slashes kept unchanged.

import type { PathNormalization } from "../router/normalize.js";
import type { At } from "./fields.js";

/** The HCM fields read here; the listener compiler lets them through its field check. */
export const PATH_NORMALIZATION_FIELDS = ["normalizePath", "mergeSlashes", "pathWithEscapedSlashesAction"];

const ACTIONS: Record<string, PathNormalization["escapedSlashes"]> = {
  IMPLEMENTATION_SPECIFIC_DEFAULT: "KEEP_UNCHANGED",
  KEEP_UNCHANGED: "KEEP_UNCHANGED",
  REJECT_REQUEST: "REJECT_REQUEST",
  UNESCAPE_AND_REDIRECT: "UNESCAPE_AND_REDIRECT",
  UNESCAPE_AND_FORWARD: "UNESCAPE_AND_FORWARD",
};

/** The HCM's path settings, or undefined when they leave paths as received (nothing to do per request). */
export function compilePathNormalization(
  hcm: {
    normalizePath?: { value?: boolean } | null;
    mergeSlashes?: boolean;
    pathWithEscapedSlashesAction?: string | number;
  },
  at: At,
): PathNormalization | undefined {
  const action = String(hcm.pathWithEscapedSlashesAction ?? "IMPLEMENTATION_SPECIFIC_DEFAULT");
  const escapedSlashes = ACTIONS[action];
  if (!escapedSlashes) return at.field("pathWithEscapedSlashesAction").invalid(`unknown action ${action}`);
  const out: PathNormalization = {
    normalizePath: hcm.normalizePath?.value === true,
    mergeSlashes: hcm.mergeSlashes === true,
    escapedSlashes,
  };
  if (!out.normalizePath && !out.mergeSlashes && escapedSlashes === "KEEP_UNCHANGED") return undefined;
  return out;
}
