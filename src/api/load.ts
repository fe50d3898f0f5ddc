// Reading configuration: files and directories → YAML documents → validated, typed resources.
// Never throws for bad input: every problem is a Diagnostic with a stable code and a position.
import { readdir, readFile, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { z } from "zod";
import type { Diagnostic } from "../lib/diagnostics.js";
import { closest } from "../lib/suggest.js";
import { Codes } from "./codes.js";
import type { KindDefinition, KindRegistry } from "./kinds.js";
import { DEFAULT_NAMESPACE, type Resource, resourceId } from "./resource.js";
import { metadata, obj, validate } from "./schema.js";
import { parseYaml, type SourceDocument } from "./yaml.js";

/** Decodes documents that are not Kubernetes-shaped, such as CloudFormation templates. */
export interface TemplateDecoder {
  name: string;
  /** The resource types it accepts, for `skein kinds` (e.g. AWS::AppMesh::VirtualNode). */
  types: readonly string[];
  claims(doc: SourceDocument): boolean;
  /** All claimed documents of one file, together (references resolve across them). */
  decode(docs: SourceDocument[]): { resources: Resource[]; diagnostics: Diagnostic[] };
}

export interface ConfigSet {
  resources: Resource[];
  diagnostics: Diagnostic[];
}

export interface Decoders {
  kinds: KindRegistry;
  templates: readonly TemplateDecoder[];
}

const YAML_EXT = new Set([".yaml", ".yml"]);

/** Lists the YAML files under the given paths (directories recursively, sorted for stable output). */
export async function listConfigFiles(
  paths: readonly string[],
): Promise<{ files: string[]; diagnostics: Diagnostic[] }> {
  const files: string[] = [];
  const diagnostics: Diagnostic[] = [];
  const walk = async (p: string, explicit: boolean): Promise<void> => {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(p);
    } catch (err) {
      diagnostics.push({
        code: Codes.FILE_READ,
        severity: "error",
        message: `cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        hint: "check the path given with -f",
        file: p,
      });
      return;
    }
    if (st.isDirectory()) {
      const entries = (await readdir(p)).filter((e) => !e.startsWith(".")).sort();
      for (const e of entries) await walk(join(p, e), false);
    } else if (explicit || YAML_EXT.has(extname(p))) {
      files.push(p);
    }
  };
  for (const p of paths) await walk(p, true);
  return { files, diagnostics };
}

export async function loadPaths(paths: readonly string[], decoders: Decoders): Promise<ConfigSet> {
  const { files, diagnostics } = await listConfigFiles(paths);
  const sources: { file: string; text: string }[] = [];
  for (const file of files) {
    try {
      sources.push({ file, text: await readFile(file, "utf8") });
    } catch (err) {
      diagnostics.push({
        code: Codes.FILE_READ,
        severity: "error",
        message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        file,
      });
    }
  }
  const set = decodeSources(sources, decoders);
  return { resources: set.resources, diagnostics: [...diagnostics, ...set.diagnostics] };
}

/** Decodes YAML texts (one per file) into resources. */
export interface DecodeOptions {
  /**
   * Sources whose resources override same-named resources of other sources instead of clashing with
   * them (the control plane's `skein apply` layer over its watched files).
   */
  overlay?: (file: string) => boolean;
}

export function decodeSources(
  sources: readonly { file: string; text: string }[],
  decoders: Decoders,
  options: DecodeOptions = {},
): ConfigSet {
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const { file, text } of sources) {
    const parsed = parseYaml(text, file);
    diagnostics.push(...parsed.diagnostics);
    const claimed = new Map<TemplateDecoder, SourceDocument[]>();
    for (const doc of parsed.documents) {
      const decoder = decoders.templates.find((t) => t.claims(doc));
      if (decoder) {
        claimed.set(decoder, [...(claimed.get(decoder) ?? []), doc]);
        continue;
      }
      const r = decodeResource(doc, decoders.kinds);
      diagnostics.push(...r.diagnostics);
      if (r.resource) resources.push(r.resource);
    }
    for (const [decoder, docs] of claimed) {
      const r = decoder.decode(docs);
      diagnostics.push(...r.diagnostics);
      resources.push(...r.resources);
    }
  }
  const kept = options.overlay ? applyOverlay(resources, options.overlay, diagnostics) : resources;
  diagnostics.push(...findDuplicates(kept));
  return { resources: kept, diagnostics };
}

const identity = (r: Resource) => `${r.group}/${r.kind}/${r.namespace}/${r.name}`;

/** Drops the resources an overlay source redefines, saying so (info) so nothing changes silently. */
function applyOverlay(
  resources: Resource[],
  overlay: (file: string) => boolean,
  diagnostics: Diagnostic[],
): Resource[] {
  const over = new Map(resources.filter((r) => overlay(r.source.file)).map((r) => [identity(r), r]));
  return resources.filter((r) => {
    const by = overlay(r.source.file) ? undefined : over.get(identity(r));
    if (by)
      diagnostics.push({
        code: Codes.OVERRIDDEN,
        severity: "info",
        message: `${resourceId(r)} is overridden by the one applied as ${by.source.file.replace(/^api:/, "")}`,
        hint: `\`skein delete ${r.kind} ${r.name}${r.namespace ? ` -n ${r.namespace}` : ""}\` goes back to this file's version`,
        file: r.source.file,
        line: r.source.line,
        column: r.source.column,
        resource: resourceId(r),
      });
    return !by;
  });
}

function findDuplicates(resources: readonly Resource[]): Diagnostic[] {
  const seen = new Map<string, Resource>();
  const out: Diagnostic[] = [];
  for (const r of resources) {
    const key = `${r.group}/${r.kind}/${r.namespace}/${r.name}`;
    const first = seen.get(key);
    if (first) {
      out.push({
        code: Codes.DUPLICATE_RESOURCE,
        severity: "error",
        message: `${resourceId(r)} is defined twice (first at ${first.source.file}:${first.source.line})`,
        hint: "give each resource a unique name in its namespace, or remove one copy",
        file: r.source.file,
        line: r.source.line,
        column: r.source.column,
        resource: resourceId(r),
      });
    } else seen.set(key, r);
  }
  return out;
}

const envelopeCache = new WeakMap<KindDefinition, z.ZodType>();
function envelope(def: KindDefinition): z.ZodType {
  let s = envelopeCache.get(def);
  if (!s) {
    s = obj({
      apiVersion: z.string(),
      kind: z.string(),
      metadata: def.defaultName ? metadata().partial({ name: true }).optional() : metadata(),
      spec: def.specOptional ? def.spec.optional() : def.spec,
      status: z.unknown().optional(),
    });
    envelopeCache.set(def, s);
  }
  return s;
}

/** Validates one Kubernetes-shaped document against its kind. */
export function decodeResource(
  doc: SourceDocument,
  kinds: KindRegistry,
): { resource?: Resource; diagnostics: Diagnostic[] } {
  const at = (path: (string | number)[]) => {
    const p = doc.positions.value(path);
    return { file: doc.file, line: p?.line ?? doc.start.line, column: p?.column ?? doc.start.column };
  };
  const v = doc.value;
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    return {
      diagnostics: [
        {
          code: Codes.NOT_A_RESOURCE,
          severity: "error",
          message: "this document is not a resource (expected a mapping with apiVersion and kind)",
          ...at([]),
        },
      ],
    };
  }
  const rec = v as Record<string, unknown>;
  const missing: Diagnostic[] = [];
  const absent = (["apiVersion", "kind"] as const).filter((f) => rec[f] === undefined);
  if (absent.length === 2) {
    missing.push({
      code: Codes.NOT_A_RESOURCE,
      severity: "error",
      message: "this document has neither apiVersion nor kind, and is not an AWS CloudFormation template",
      hint: "start a resource with apiVersion and kind (e.g. networking.istio.io/v1, VirtualService)",
      ...at([]),
    });
  }
  for (const f of ["apiVersion", "kind"] as const) {
    if (absent.length === 2) break;
    if (typeof rec[f] !== "string" || rec[f] === "") {
      missing.push({
        code: rec[f] === undefined ? Codes.REQUIRED : Codes.TYPE,
        severity: "error",
        message:
          rec[f] === undefined
            ? `required field "${f}" is missing: every resource needs apiVersion and kind`
            : `"${f}" must be a non-empty string`,
        hint: "for example apiVersion: networking.istio.io/v1 and kind: VirtualService",
        path: f,
        ...at(rec[f] === undefined ? [] : [f]),
      });
    }
  }
  if (missing.length) return { diagnostics: missing };
  const apiVersion = rec.apiVersion as string;
  const kind = rec.kind as string;
  const slash = apiVersion.lastIndexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const def = kinds.get(group, kind);
  if (!def) {
    const inGroup = kinds.kindsOf(group).map((d) => d.kind);
    const elsewhere = kinds.all().filter((d) => d.kind === kind);
    const guess = closest(kind, inGroup);
    return {
      diagnostics: [
        {
          code: Codes.UNKNOWN_KIND,
          severity: "error",
          message: `unknown kind "${kind}" in ${group ? `API group "${group}"` : "the core API group"}${guess ? `; did you mean "${guess}"?` : ""}`,
          hint: elsewhere.length
            ? `${kind} belongs to ${elsewhere.map((d) => `${d.group}/${d.versions.at(-1)}`).join(" or ")}`
            : inGroup.length
              ? `kinds in ${group}: ${inGroup.join(", ")}`
              : "see `skein kinds` for what Skein accepts",
          path: "kind",
          ...at(["kind"]),
        },
      ],
    };
  }
  if (!def.versions.includes(version)) {
    return {
      diagnostics: [
        {
          code: Codes.UNKNOWN_API_VERSION,
          severity: "error",
          message: `${kind} does not have version "${version}"`,
          hint: `use one of: ${def.versions.map((ver) => `${group}/${ver}`).join(", ")}`,
          path: "apiVersion",
          ...at(["apiVersion"]),
        },
      ],
    };
  }
  const meta = (rec.metadata ?? {}) as { name?: unknown; namespace?: unknown };
  const displayName = typeof meta.name === "string" ? meta.name : (def.defaultName ?? "?");
  const namespace = def.namespaced
    ? typeof meta.namespace === "string"
      ? meta.namespace
      : DEFAULT_NAMESPACE
    : "";
  const resourceName = namespace ? `${kind} ${namespace}/${displayName}` : `${kind} ${displayName}`;
  const r = validate(envelope(def), v, { positions: doc.positions, base: [], resource: resourceName });
  if (!r.ok) return { diagnostics: r.diagnostics };
  const out = r.value as {
    metadata?: { name?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
    spec?: unknown;
  };
  const name = out.metadata?.name ?? (def.defaultName as string);
  return {
    diagnostics: [],
    resource: {
      apiVersion,
      group,
      version,
      kind,
      name,
      namespace,
      labels: out.metadata?.labels ?? {},
      annotations: out.metadata?.annotations ?? {},
      spec: out.spec,
      raw: v,
      source: {
        kind,
        name,
        namespace,
        file: doc.file,
        line: doc.start.line,
        column: doc.start.column,
        basePath: [],
        positions: doc.positions,
      },
    },
  };
}
