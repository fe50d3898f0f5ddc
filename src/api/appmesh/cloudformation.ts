// Reads AWS App Mesh CloudFormation: a full template (`Resources:` and the other template sections) or
// the multi-document form where every top-level key is a logical ID (`Mesh: {Type: AWS::AppMesh::Mesh,
// Properties: …}`). All claimed documents of a file form one template, so references resolve across
// them. Intrinsic functions are resolved before validation:
//
// - `Ref` returns what CloudFormation returns: for an AWS::AppMesh::* resource its ARN (every App Mesh
//   type documents Ref as the ARN), for a parameter its `Default`. Where a field expects the *name* of
//   the referenced App Mesh object (`MeshName: !Ref Mesh`) AWS would reject the ARN at deploy time;
//   Skein uses the name and says so (SKEIN_I_CFN_REF_ARN, an info: it works in Skein, not in AWS).
// - Pseudo parameters resolve to fixed placeholders, the same on every run: AWS::Region "us-east-1",
//   AWS::AccountId "123456789012", AWS::Partition "aws", AWS::URLSuffix "amazonaws.com",
//   AWS::StackName "skein", AWS::StackId (an ARN for that stack), AWS::NotificationARNs [];
//   AWS::NoValue removes the property, as in CloudFormation. ARNs and Uids built for `Ref`/`Fn::GetAtt`
//   use the same placeholders.
// - `Fn::GetAtt` supports the documented attributes of each App Mesh type (and `Name` of an
//   AWS::ServiceDiscovery::Service, which App Mesh templates use for Cloud Map); `Fn::Sub` (both forms,
//   `${Name}`, `${Name.Attr}`, `${!Literal}`) and `Fn::Join` are evaluated. Any other function is an
//   error: Skein cannot evaluate conditions, imports or mappings.
//
// A value that cannot be resolved is reported once, where it is written, and replaced by a placeholder;
// schema errors caused only by that placeholder are not reported again, and lowering and analysis skip
// the field (see `unresolvedPaths`). Optional App Mesh names that are left out (CloudFormation would
// generate one) default to the logical ID. Non-App Mesh resources are accepted with a SKEIN_W_NO_EFFECT
// warning; only their references are checked.
import { z } from "zod";
import { type Diagnostic, formatPath } from "../../lib/diagnostics.js";
import { closest } from "../../lib/suggest.js";
import { Codes } from "../codes.js";
import type { TemplateDecoder } from "../load.js";
import type { Resource } from "../resource.js";
import { obj, validate } from "../schema.js";
import type { PathSegment, SourceDocument } from "../yaml.js";
import { CFN_TYPE_INFO, CFN_TYPES, type CfnTypeInfo, NAME_FIELDS } from "./cfn-resources.js";

export const CFN_GROUP = "cloudformation";
/** Annotation listing (as JSON) the field paths, relative to the resource, that could not be resolved. */
export const UNRESOLVED_ANNOTATION = "cloudformation.skein.dev/unresolved";

export const PLACEHOLDER_REGION = "us-east-1";
export const PLACEHOLDER_ACCOUNT = "123456789012";
export const PSEUDO_PARAMETERS: Record<string, unknown> = {
  "AWS::Region": PLACEHOLDER_REGION,
  "AWS::AccountId": PLACEHOLDER_ACCOUNT,
  "AWS::Partition": "aws",
  "AWS::URLSuffix": "amazonaws.com",
  "AWS::StackName": "skein",
  "AWS::StackId": `arn:aws:cloudformation:${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}:stack/skein/00000000-0000-0000-0000-000000000000`,
  "AWS::NotificationARNs": [],
  "AWS::NoValue": null,
};

const TEMPLATE_SECTIONS = [
  "AWSTemplateFormatVersion",
  "Description",
  "Metadata",
  "Parameters",
  "Rules",
  "Mappings",
  "Conditions",
  "Transform",
  "Resources",
  "Outputs",
];

const SHORT_TAG: Record<string, string> = {
  Ref: "!Ref",
  "Fn::GetAtt": "!GetAtt",
  "Fn::Sub": "!Sub",
  "Fn::Join": "!Join",
  "Fn::Select": "!Select",
  "Fn::Split": "!Split",
  "Fn::ImportValue": "!ImportValue",
  "Fn::FindInMap": "!FindInMap",
  "Fn::If": "!If",
  "Fn::Equals": "!Equals",
  "Fn::Not": "!Not",
  "Fn::And": "!And",
  "Fn::Or": "!Or",
  "Fn::Base64": "!Base64",
  "Fn::GetAZs": "!GetAZs",
};

const resourceEnvelope = obj({
  Type: z.string().min(1),
  Properties: z.record(z.string(), z.unknown()).optional(),
  DependsOn: z.union([z.string(), z.array(z.string())]).optional(),
  Metadata: z.unknown().optional(),
  Condition: z.string().optional(),
  DeletionPolicy: z.enum(["Delete", "Retain", "RetainExceptOnCreate", "Snapshot"]).optional(),
  UpdateReplacePolicy: z.enum(["Delete", "Retain", "Snapshot"]).optional(),
  CreationPolicy: z.unknown().optional(),
  UpdatePolicy: z.unknown().optional(),
});

const parameterSchema = obj({
  Type: z.string().min(1),
  Default: z
    .union([z.string(), z.number(), z.boolean(), z.array(z.union([z.string(), z.number()]))])
    .optional(),
  Description: z.string().optional(),
  AllowedValues: z.array(z.union([z.string(), z.number()])).optional(),
  AllowedPattern: z.string().optional(),
  ConstraintDescription: z.string().optional(),
  MaxLength: z.number().int().optional(),
  MinLength: z.number().int().optional(),
  MaxValue: z.number().optional(),
  MinValue: z.number().optional(),
  NoEcho: z.union([z.boolean(), z.string()]).optional(),
});

const outputSchema = obj({
  Description: z.unknown().optional(),
  Value: z.unknown(),
  Export: obj({ Name: z.unknown() }).optional(),
  Condition: z.string().optional(),
});

const PARAMETER_TYPE =
  /^(String|Number|CommaDelimitedList|List<Number>|List<AWS::[A-Za-z0-9:]+>|AWS::[A-Za-z0-9]+(::[A-Za-z0-9]+)+|AWS::SSM::Parameter::Value<.+>)$/;

/** A value that could not be resolved; `text` stands in for it, `cycle` marks a circular reference. */
class Unresolved {
  constructor(
    readonly text: string,
    readonly cycle = false,
    /** A cycle already reported at an outer site. */
    readonly reported = false,
  ) {}
}
const NO_VALUE = Symbol("AWS::NoValue");

interface Entry {
  id: string;
  type: string;
  info?: CfnTypeInfo;
  props?: Record<string, unknown>;
  doc: SourceDocument;
  /** Path of the resource entry in its document. */
  path: PathSegment[];
  /** Validated envelope and a known App Mesh type: becomes a Resource. */
  emit: boolean;
}

interface Parameter {
  name: string;
  type: string;
  default?: unknown;
  doc: SourceDocument;
  path: PathSegment[];
}

interface Site {
  doc: SourceDocument;
  path: PathSegment[];
  resource?: string;
}

interface Ctx {
  report: boolean;
  /** `logicalId.Property` being resolved, for cycle detection. */
  stack: Set<string>;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** The intrinsic function key of a mapping like `{Ref: x}` or `{"Fn::Sub": …}`, if it is one. */
function intrinsicKey(v: Record<string, unknown>): string | undefined {
  const k = Object.keys(v);
  return k.length === 1 && (k[0] === "Ref" || k[0]?.startsWith("Fn::")) ? k[0] : undefined;
}

function isTemplate(v: Record<string, unknown>): boolean {
  return Object.keys(v).some((k) => TEMPLATE_SECTIONS.includes(k));
}

/** Field paths (formatted, relative to the resource) that could not be resolved. */
export function unresolvedPaths(r: Resource): Set<string> {
  const raw = r.annotations[UNRESOLVED_ANNOTATION];
  if (!raw) return new Set();
  try {
    const list: unknown = JSON.parse(raw);
    return new Set(Array.isArray(list) ? list.filter((x): x is string => typeof x === "string") : []);
  } catch {
    return new Set();
  }
}

/** A deterministic stand-in for an App Mesh Uid, derived from the ARN. */
function placeholderUid(arn: string): string {
  const hash = (seed: number) => {
    let h = seed >>> 0;
    for (let i = 0; i < arn.length; i++) h = Math.imul(h ^ arn.charCodeAt(i), 16777619) >>> 0;
    return h.toString(16).padStart(8, "0");
  };
  const a = hash(2166136261);
  const b = hash(0x9747b28c);
  return `${a}-${b.slice(0, 4)}-4${b.slice(5, 8)}-8${a.slice(0, 3)}-${b}${a.slice(4, 8)}`;
}

class Template {
  readonly diagnostics: Diagnostic[] = [];
  readonly resources = new Map<string, Entry>();
  readonly parameters = new Map<string, Parameter>();
  private readonly memo = new Map<string, unknown>();

  // ── Reading the documents ──────────────────────────────────────────────────────────────────────

  read(docs: readonly SourceDocument[]): void {
    const outputs: { doc: SourceDocument; value: unknown }[] = [];
    for (const doc of docs) {
      const v = doc.value as Record<string, unknown>;
      if (!isTemplate(v)) {
        for (const [id, entry] of Object.entries(v)) this.addResource(doc, [id], id, entry);
        continue;
      }
      for (const [k, section] of Object.entries(v)) {
        if (!TEMPLATE_SECTIONS.includes(k)) {
          const guess = closest(k, TEMPLATE_SECTIONS);
          this.push(doc, [k], true, {
            code: Codes.UNKNOWN_FIELD,
            severity: "error",
            message: `unknown template section "${k}"${guess ? `; did you mean "${guess}"?` : ""}`,
            hint: `template sections: ${TEMPLATE_SECTIONS.join(", ")}`,
            path: formatPath([k]),
          });
          continue;
        }
        if (k === "AWSTemplateFormatVersion" && section !== "2010-09-09")
          this.push(doc, [k], false, {
            code: Codes.INVALID,
            severity: "error",
            message: `AWSTemplateFormatVersion ${JSON.stringify(section)} is not a template format version`,
            hint: 'the only template format version is "2010-09-09"',
            path: k,
          });
        if (k === "Transform")
          this.push(doc, [k], false, {
            code: Codes.NO_EFFECT,
            severity: "warning",
            message: "the template Transform is not applied: Skein reads the template as written",
            hint: "expand the transform first (for example with `aws cloudformation package`/`sam build`)",
            path: k,
          });
        if (k === "Resources" || k === "Parameters" || k === "Outputs") {
          if (!isRecord(section)) {
            this.push(doc, [k], false, {
              code: Codes.TYPE,
              severity: "error",
              message: `${k} must be a mapping of logical IDs`,
              path: k,
            });
            continue;
          }
          if (k === "Resources")
            for (const [id, entry] of Object.entries(section)) this.addResource(doc, [k, id], id, entry);
          else if (k === "Parameters")
            for (const [name, p] of Object.entries(section)) this.addParameter(doc, [k, name], name, p);
          else outputs.push({ doc, value: section });
        }
      }
    }
    for (const { doc, value } of outputs) this.checkOutputs(doc, value as Record<string, unknown>);
  }

  private addResource(doc: SourceDocument, path: PathSegment[], id: string, raw: unknown): void {
    if (!/^[A-Za-z0-9]+$/.test(id))
      this.push(doc, path, true, {
        code: Codes.NAME,
        severity: "error",
        message: `"${id}" is not a valid logical ID`,
        hint: "logical IDs use only letters and digits (A-Z, a-z, 0-9)",
      });
    const first = this.resources.get(id) ?? this.parameters.get(id);
    if (first) {
      const at = first.doc.positions.keyOf(first.path);
      this.push(doc, path, true, {
        code: Codes.DUPLICATE_RESOURCE,
        severity: "error",
        message: `logical ID "${id}" is defined twice (first at ${first.doc.file}:${at?.line ?? "?"})`,
        hint: "logical IDs are unique across the whole template, parameters included; rename one",
      });
      return;
    }
    if (!isRecord(raw)) {
      this.push(doc, path, false, {
        code: Codes.TYPE,
        severity: "error",
        message: `resource "${id}" must be a mapping with Type and Properties`,
      });
      return;
    }
    const r = validate(resourceEnvelope, raw, { positions: doc.positions, base: path, resource: id });
    const type = typeof raw.Type === "string" ? raw.Type : undefined;
    if (!r.ok) this.diagnostics.push(...r.diagnostics);
    if (!type) return;
    const resource = `${type} ${id}`;
    const props = isRecord(raw.Properties) ? raw.Properties : undefined;
    // Own properties only: a Type like "constructor" must not reach Object.prototype.
    const info = Object.hasOwn(CFN_TYPE_INFO, type) ? CFN_TYPE_INFO[type] : undefined;
    let emit = r.ok && info !== undefined;
    if (!info) {
      const appMeshTypes = Object.values(CFN_TYPES) as string[];
      if (/appmesh/i.test(type)) {
        const guess = closest(type, appMeshTypes);
        this.push(doc, [...path, "Type"], false, {
          code: Codes.CFN_TYPE,
          severity: "error",
          message: `unknown App Mesh resource type "${type}"${guess ? `; did you mean "${guess}"?` : ""}`,
          hint: `App Mesh types: ${appMeshTypes.join(", ")}`,
          resource,
        });
      } else if (
        /^(AWS|Alexa)::[A-Za-z0-9]+::[A-Za-z0-9]+(::[A-Za-z0-9]+)?$|^Custom::[A-Za-z0-9_@-]+$/.test(type)
      ) {
        this.push(doc, [...path, "Type"], false, {
          code: Codes.NO_EFFECT,
          severity: "warning",
          message: `${type} is accepted and ignored: Skein acts only on AWS::AppMesh::* resources`,
          resource,
        });
      } else {
        this.push(doc, [...path, "Type"], false, {
          code: Codes.CFN_TYPE,
          severity: "error",
          message: `"${type}" is not a CloudFormation resource type`,
          hint: "types look like AWS::AppMesh::VirtualNode",
          resource,
        });
      }
      emit = false;
    }
    if (typeof raw.Condition === "string")
      this.push(doc, [...path, "Condition"], false, {
        code: Codes.NO_EFFECT,
        severity: "warning",
        message: `Condition "${raw.Condition}" is not evaluated: Skein always includes this resource`,
        resource,
      });
    this.resources.set(id, { id, type, info, props, doc, path, emit });
  }

  private addParameter(doc: SourceDocument, path: PathSegment[], name: string, raw: unknown): void {
    const r = validate(parameterSchema, raw, {
      positions: doc.positions,
      base: path,
      resource: `parameter ${name}`,
    });
    if (!r.ok) {
      this.diagnostics.push(...r.diagnostics);
      return;
    }
    const p = r.value;
    if (!PARAMETER_TYPE.test(p.Type)) {
      const guess = closest(p.Type, ["String", "Number", "CommaDelimitedList", "List<Number>"]);
      this.push(doc, [...path, "Type"], false, {
        code: Codes.INVALID,
        severity: "error",
        message: `"${p.Type}" is not a parameter type${guess ? `; did you mean "${guess}"?` : ""}`,
        hint: "use String, Number, CommaDelimitedList, List<Number> or an AWS-specific type",
      });
    }
    if (
      p.AllowedValues &&
      p.Default !== undefined &&
      !p.AllowedValues.map(String).includes(String(p.Default))
    )
      this.push(doc, [...path, "Default"], false, {
        code: Codes.ENUM,
        severity: "error",
        message: `Default ${JSON.stringify(p.Default)} is not one of the parameter's AllowedValues`,
        hint: `allowed values: ${p.AllowedValues.join(", ")}`,
      });
    const first = this.parameters.get(name) ?? this.resources.get(name);
    if (first) {
      const at = first.doc.positions.keyOf(first.path);
      this.push(doc, path, true, {
        code: Codes.DUPLICATE_RESOURCE,
        severity: "error",
        message: `logical ID "${name}" is defined twice (first at ${first.doc.file}:${at?.line ?? "?"})`,
        hint: "logical IDs are unique across the whole template, parameters included; rename one",
      });
      return;
    }
    this.parameters.set(name, { name, type: p.Type, default: p.Default, doc, path });
  }

  private checkOutputs(doc: SourceDocument, outputs: Record<string, unknown>): void {
    for (const [name, raw] of Object.entries(outputs)) {
      const path = ["Outputs", name];
      const r = validate(outputSchema, raw, {
        positions: doc.positions,
        base: path,
        resource: `output ${name}`,
      });
      if (!r.ok) this.diagnostics.push(...r.diagnostics);
      else this.scan(raw, { doc, path, resource: `output ${name}` });
    }
  }

  // ── Emitting resources ──────────────────────────────────────────────────────────────────────────

  emit(): Resource[] {
    const out: Resource[] = [];
    for (const e of this.resources.values()) {
      const site: Site = { doc: e.doc, path: [...e.path, "Properties"], resource: `${e.type} ${e.id}` };
      this.checkDependsOn(e);
      if (!e.info) {
        if (e.props) this.scan(e.props, site);
        continue;
      }
      const resolved = this.resolve(e.props ?? {}, site, { report: true, stack: new Set() }, true);
      const unresolved: PathSegment[][] = [];
      const props = replaceUnresolved(resolved, [], unresolved);
      if (!e.emit) continue;
      const base = [...e.path, "Properties"];
      const r = validate(e.info.properties, props, {
        positions: e.doc.positions,
        base,
        resource: site.resource,
      });
      if (!r.ok) {
        const caused = unresolved.map((p) => formatPath([...base, ...p]));
        this.diagnostics.push(
          ...r.diagnostics.filter(
            (d) =>
              !caused.some((c) => d.path === c || d.path?.startsWith(`${c}.`) || d.path?.startsWith(`${c}[`)),
          ),
        );
        continue;
      }
      const at = e.doc.positions.keyOf(e.path);
      out.push({
        apiVersion: CFN_GROUP,
        group: CFN_GROUP,
        version: "",
        kind: e.type,
        name: e.id,
        namespace: "",
        labels: {},
        annotations: unresolved.length
          ? {
              [UNRESOLVED_ANNOTATION]: JSON.stringify(
                unresolved.map((p) => formatPath(["Properties", ...p])),
              ),
            }
          : {},
        spec: r.value,
        raw: this.rawEntry(e),
        source: {
          kind: e.type,
          name: e.id,
          namespace: "",
          file: e.doc.file,
          line: at?.line,
          column: at?.column,
          basePath: e.path,
          positions: e.doc.positions,
        },
      });
    }
    return out;
  }

  private checkDependsOn(e: Entry): void {
    const raw = this.rawEntry(e)?.DependsOn;
    const list = typeof raw === "string" ? [raw] : Array.isArray(raw) ? raw : [];
    list.forEach((dep, i) => {
      if (typeof dep !== "string" || this.resources.has(dep)) return;
      const path = typeof raw === "string" ? [...e.path, "DependsOn"] : [...e.path, "DependsOn", i];
      const guess = closest(dep, [...this.resources.keys()]);
      this.push(e.doc, path, false, {
        code: Codes.CFN_REF_UNRESOLVED,
        severity: "error",
        message: `DependsOn names "${dep}", which is not defined in the template${guess ? `; did you mean "${guess}"?` : ""}`,
        hint: "DependsOn lists logical IDs of resources in this template",
        resource: `${e.type} ${e.id}`,
      });
    });
  }

  private rawEntry(e: Entry): Record<string, unknown> | undefined {
    let v: unknown = e.doc.value;
    for (const seg of e.path) v = isRecord(v) ? v[seg as string] : undefined;
    return isRecord(v) ? v : undefined;
  }

  // ── Resolution ───────────────────────────────────────────────────────────────────────────────────

  /** Resolves intrinsics in `value`. `direct`: the value is a whole field (not inside Fn::Sub/Join). */
  private resolve(value: unknown, site: Site, ctx: Ctx, direct: boolean): unknown {
    if (Array.isArray(value)) {
      const out: unknown[] = [];
      value.forEach((item, i) => {
        const v = this.resolve(item, { ...site, path: [...site.path, i] }, ctx, direct);
        if (v !== NO_VALUE) out.push(v);
      });
      return out;
    }
    if (!isRecord(value)) return value;
    const fn = intrinsicKey(value);
    if (fn) return this.intrinsic(fn, value[fn], site, ctx, direct);
    const keys = Object.keys(value);
    const stray = keys.find((k) => k === "Ref" || k.startsWith("Fn::"));
    if (stray) {
      this.error(ctx, site, stray, Codes.CFN_INTRINSIC, `${stray} must be the only key of its mapping`, {
        hint: `move the other keys (${keys.filter((k) => k !== stray).join(", ")}) out of this mapping`,
      });
      return new Unresolved(`${SHORT_TAG[stray] ?? stray} …`);
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const v = this.resolve(value[k], { ...site, path: [...site.path, k] }, ctx, direct);
      if (v !== NO_VALUE)
        Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }

  private intrinsic(fn: string, arg: unknown, site: Site, ctx: Ctx, direct: boolean): unknown {
    const argBase = this.isLongForm(site, fn) ? [...site.path, fn] : site.path;
    let r: unknown;
    switch (fn) {
      case "Ref":
        r = this.ref(arg, site, ctx, direct);
        break;
      case "Fn::GetAtt":
        r = this.getAtt(arg, site, argBase, ctx);
        break;
      case "Fn::Sub":
        r = this.sub(arg, site, argBase, ctx);
        break;
      case "Fn::Join":
        r = this.join(arg, site, argBase, ctx);
        break;
      default: {
        const short = SHORT_TAG[fn] ?? fn;
        this.error(ctx, site, fn, Codes.CFN_INTRINSIC, `${fn} is not supported: Skein cannot evaluate it`, {
          hint:
            fn === "Fn::ImportValue"
              ? "other stacks' exports are not visible to Skein; write the value directly or pass it in as a Parameter with a Default"
              : "Skein evaluates Ref, Fn::GetAtt, Fn::Sub and Fn::Join; write the value this function produces directly",
        });
        return new Unresolved(`${short} …`);
      }
    }
    // A circular reference is reported once, at the outermost site that reports.
    if (ctx.report && r instanceof Unresolved && r.cycle && !r.reported) {
      this.error(ctx, site, fn, Codes.CFN_REF_UNRESOLVED, `circular reference: ${r.text} depends on itself`, {
        hint: "break the cycle by writing one of the names directly",
      });
      return new Unresolved(r.text, true, true);
    }
    return r;
  }

  /** `at`: the function whose position errors point at (Fn::Sub for `${Name}` inside a Sub). */
  private ref(arg: unknown, site: Site, ctx: Ctx, direct: boolean, at = "Ref"): unknown {
    if (typeof arg !== "string" || arg === "") {
      this.error(
        ctx,
        site,
        at,
        Codes.CFN_INTRINSIC,
        "Ref takes the name of a parameter or a resource's logical ID",
      );
      return new Unresolved("!Ref");
    }
    const text = `!Ref ${arg}`;
    if (arg.startsWith("AWS::")) {
      if (arg === "AWS::NoValue") return NO_VALUE;
      if (Object.hasOwn(PSEUDO_PARAMETERS, arg)) return PSEUDO_PARAMETERS[arg];
      const guess = closest(arg, Object.keys(PSEUDO_PARAMETERS));
      this.error(
        ctx,
        site,
        at,
        Codes.CFN_REF_UNRESOLVED,
        `"${arg}" is not a pseudo parameter${guess ? `; did you mean "${guess}"?` : ""}`,
        { hint: `pseudo parameters: ${Object.keys(PSEUDO_PARAMETERS).join(", ")}` },
      );
      return new Unresolved(text);
    }
    const param = this.parameters.get(arg);
    if (param) return this.parameterValue(param, site, ctx, text, at);
    const entry = this.resources.get(arg);
    if (!entry) return this.notDefined(arg, site, at, ctx, text, true);
    if (!entry.info) return this.notModelled(entry, site, at, ctx, text);
    const field = [...site.path].reverse().find((s): s is string => typeof s === "string");
    if (direct && field && Object.hasOwn(NAME_FIELDS, field) && NAME_FIELDS[field] === entry.info.kind) {
      const name = this.nameOf(entry, ctx);
      if (name instanceof Unresolved) return name;
      const attr = entry.info.kind === "Mesh" ? "MeshName" : entry.info.nameProperty;
      this.note(
        ctx,
        site,
        "Ref",
        Codes.CFN_REF_ARN,
        `!Ref ${arg} returns the ${entry.info.kind}'s ARN in CloudFormation, not its name; Skein uses the name "${name}" here, but AWS would reject the ARN in ${field}`,
        `to deploy this template on AWS too, write !GetAtt ${arg}.${attr}`,
      );
      return name;
    }
    return this.arnOf(entry, ctx);
  }

  private getAtt(arg: unknown, site: Site, argBase: PathSegment[], ctx: Ctx): unknown {
    let id: unknown;
    let attr: unknown;
    if (typeof arg === "string" && arg.includes(".")) {
      const dot = arg.indexOf(".");
      id = arg.slice(0, dot);
      attr = arg.slice(dot + 1);
    } else if (Array.isArray(arg) && arg.length === 2) {
      id = arg[0];
      attr = isRecord(arg[1]) ? this.resolve(arg[1], { ...site, path: [...argBase, 1] }, ctx, false) : arg[1];
    }
    if (attr instanceof Unresolved) return attr;
    if (typeof id !== "string" || typeof attr !== "string" || id === "" || attr === "") {
      this.error(ctx, site, "Fn::GetAtt", Codes.CFN_INTRINSIC, "Fn::GetAtt takes [LogicalId, Attribute]", {
        hint: "write !GetAtt LogicalId.Attribute",
      });
      return new Unresolved("!GetAtt");
    }
    return this.attribute(id, attr, site, ctx);
  }

  private attribute(id: string, attr: string, site: Site, ctx: Ctx, fn = "Fn::GetAtt"): unknown {
    const text = `!GetAtt ${id}.${attr}`;
    const entry = this.resources.get(id);
    if (!entry) {
      if (this.parameters.has(id)) {
        this.error(ctx, site, fn, Codes.CFN_GETATT, `"${id}" is a parameter, which has no attributes`, {
          hint: `write !Ref ${id}`,
        });
        return new Unresolved(text);
      }
      return this.notDefined(id, site, fn, ctx, text, false);
    }
    if (!entry.info) {
      if (entry.type === "AWS::ServiceDiscovery::Service" && attr === "Name") {
        const name = this.propOf(entry, "Name", ctx);
        if (typeof name === "string" || name instanceof Unresolved) return name;
      }
      return this.notModelled(entry, site, fn, ctx, text);
    }
    if (!entry.info.attributes.includes(attr)) {
      const guess = closest(attr, entry.info.attributes);
      this.error(
        ctx,
        site,
        fn,
        Codes.CFN_GETATT,
        `${entry.type} has no attribute "${attr}"${guess ? `; did you mean "${guess}"?` : ""}`,
        { hint: `attributes of ${entry.type}: ${entry.info.attributes.join(", ")}` },
      );
      return new Unresolved(text);
    }
    switch (attr) {
      case "Arn":
        return this.arnOf(entry, ctx);
      case "MeshName":
        return this.meshNameOf(entry, ctx);
      case "MeshOwner":
        return entry.info.kind === "Mesh" || entry.props?.MeshOwner === undefined
          ? PLACEHOLDER_ACCOUNT
          : this.stringProp(entry, "MeshOwner", ctx);
      case "ResourceOwner":
        return PLACEHOLDER_ACCOUNT;
      case "Uid": {
        const arn = this.arnOf(entry, ctx);
        return typeof arn === "string" ? placeholderUid(arn) : arn;
      }
      default:
        return attr === entry.info.nameProperty ? this.nameOf(entry, ctx) : this.stringProp(entry, attr, ctx);
    }
  }

  private sub(arg: unknown, site: Site, argBase: PathSegment[], ctx: Ctx): unknown {
    let template: unknown = arg;
    const vars = new Map<string, unknown>();
    if (Array.isArray(arg)) {
      template = arg[0];
      if (arg.length !== 2 || !isRecord(arg[1])) template = undefined;
      else
        for (const [k, v] of Object.entries(arg[1]))
          vars.set(k, this.resolve(v, { ...site, path: [...argBase, 1, k] }, ctx, false));
    }
    if (typeof template !== "string") {
      this.error(
        ctx,
        site,
        "Fn::Sub",
        Codes.CFN_INTRINSIC,
        "Fn::Sub takes a string, or [string, {Name: value}]",
      );
      return new Unresolved("!Sub");
    }
    let out = "";
    let failed: Unresolved | undefined;
    let last = 0;
    for (const m of template.matchAll(/\$\{([^}]*)\}/g)) {
      out += template.slice(last, m.index);
      last = (m.index ?? 0) + m[0].length;
      const name = (m[1] ?? "").trim();
      if (name.startsWith("!")) {
        out += `\${${name.slice(1)}}`;
        continue;
      }
      if (!name) {
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub placeholder.
        this.error(ctx, site, "Fn::Sub", Codes.CFN_INTRINSIC, "Fn::Sub has an empty ${}", {
          // biome-ignore lint/suspicious/noTemplateCurlyInString: CloudFormation Fn::Sub placeholders.
          hint: "name a parameter, resource or Name.Attribute inside ${…}, or write ${!Literal} for a literal",
        });
        failed ??= new Unresolved(`!Sub ${template}`);
        continue;
      }
      let v: unknown;
      if (vars.has(name)) v = vars.get(name);
      else if (!name.startsWith("AWS::") && name.includes(".")) {
        const dot = name.indexOf(".");
        v = this.attribute(name.slice(0, dot), name.slice(dot + 1), site, ctx, "Fn::Sub");
      } else v = this.ref(name, site, ctx, false, "Fn::Sub");
      const s = this.asString(v, `\${${name}}`, site, "Fn::Sub", ctx);
      if (s instanceof Unresolved) failed ??= s;
      else out += s;
    }
    out += template.slice(last);
    return failed ? new Unresolved(`!Sub ${template}`, failed.cycle, failed.reported) : out;
  }

  private join(arg: unknown, site: Site, argBase: PathSegment[], ctx: Ctx): unknown {
    if (!Array.isArray(arg) || arg.length !== 2 || typeof arg[0] !== "string") {
      this.error(ctx, site, "Fn::Join", Codes.CFN_INTRINSIC, "Fn::Join takes [delimiter, [values…]]");
      return new Unresolved("!Join");
    }
    const delimiter = arg[0];
    const list = this.resolve(arg[1], { ...site, path: [...argBase, 1] }, ctx, false);
    if (list instanceof Unresolved) return list;
    if (!Array.isArray(list)) {
      this.error(ctx, site, "Fn::Join", Codes.CFN_INTRINSIC, "the second element of Fn::Join must be a list");
      return new Unresolved("!Join");
    }
    const parts: string[] = [];
    for (const item of list) {
      const s = this.asString(item, "an element", site, "Fn::Join", ctx);
      if (s instanceof Unresolved) return new Unresolved(`!Join [${delimiter}, …]`, s.cycle, s.reported);
      parts.push(s);
    }
    return parts.join(delimiter);
  }

  private asString(v: unknown, what: string, site: Site, fn: string, ctx: Ctx): string | Unresolved {
    if (v instanceof Unresolved) return v;
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") return String(v);
    const got =
      v === NO_VALUE
        ? "AWS::NoValue"
        : Array.isArray(v)
          ? "a list"
          : v === undefined || v === null
            ? "nothing"
            : "a mapping";
    this.error(ctx, site, fn, Codes.CFN_INTRINSIC, `${what} of ${fn} resolves to ${got}, not a string`);
    return new Unresolved(SHORT_TAG[fn] ?? fn);
  }

  private parameterValue(p: Parameter, site: Site, ctx: Ctx, text: string, at: string): unknown {
    if (p.type.startsWith("AWS::SSM::Parameter::Value<")) {
      this.error(
        ctx,
        site,
        at,
        Codes.CFN_REF_UNRESOLVED,
        `parameter "${p.name}" is read from SSM at deploy time`,
        {
          hint: "Skein cannot read SSM; use a String parameter with a Default",
        },
      );
      return new Unresolved(text);
    }
    if (p.default === undefined) {
      this.error(ctx, site, at, Codes.CFN_REF_UNRESOLVED, `parameter "${p.name}" has no Default`, {
        hint: `Skein resolves parameters to their Default; add Default: <value> to ${p.name}`,
      });
      return new Unresolved(text);
    }
    const d = p.default;
    if (p.type === "CommaDelimitedList" || p.type.startsWith("List<"))
      return Array.isArray(d) ? d.map(String) : String(d).split(",");
    // CloudFormation passes Number parameters as strings and converts them back for numeric properties;
    // the net effect is the number.
    if (p.type === "Number" && !Number.isNaN(Number(d))) return Number(d);
    return Array.isArray(d) ? d.join(",") : String(d);
  }

  private notDefined(
    id: string,
    site: Site,
    fn: string,
    ctx: Ctx,
    text: string,
    withParameters: boolean,
  ): Unresolved {
    const candidates = [...this.resources.keys(), ...(withParameters ? this.parameters.keys() : [])];
    const guess = closest(id, candidates);
    this.error(
      ctx,
      site,
      fn,
      Codes.CFN_REF_UNRESOLVED,
      `${text}: "${id}" is not defined in the template${guess ? `; did you mean "${guess}"?` : ""}`,
      {
        hint: withParameters
          ? `define a resource or parameter named ${id}, or reference one that exists`
          : `define a resource named ${id}, or reference one that exists`,
      },
    );
    return new Unresolved(text);
  }

  private notModelled(entry: Entry, site: Site, fn: string, ctx: Ctx, text: string): Unresolved {
    this.error(
      ctx,
      site,
      fn,
      Codes.CFN_REF_UNRESOLVED,
      `${text}: "${entry.id}" is an ${entry.type}, which Skein does not model, so its value is unknown`,
      { hint: "write the value App Mesh needs here directly, or pass it in as a Parameter with a Default" },
    );
    return new Unresolved(text);
  }

  // ── Values of other resources ───────────────────────────────────────────────────────────────────

  /** A property of another resource, resolved silently (its own pass reports its problems). */
  private propOf(entry: Entry, prop: string, ctx: Ctx): unknown {
    const memoKey = `${entry.id}.${prop}`;
    if (this.memo.has(memoKey)) return this.memo.get(memoKey);
    if (ctx.stack.has(memoKey)) return new Unresolved(`!GetAtt ${memoKey}`, true);
    const raw = entry.props?.[prop];
    if (raw === undefined) return undefined;
    ctx.stack.add(memoKey);
    const site: Site = { doc: entry.doc, path: [...entry.path, "Properties", prop] };
    const v = this.resolve(raw, site, { report: false, stack: ctx.stack }, true);
    ctx.stack.delete(memoKey);
    this.memo.set(memoKey, v);
    return v;
  }

  private stringProp(entry: Entry, prop: string, ctx: Ctx): unknown {
    const v = this.propOf(entry, prop, ctx);
    return typeof v === "string" || v instanceof Unresolved
      ? v
      : new Unresolved(`!GetAtt ${entry.id}.${prop}`);
  }

  private nameOf(entry: Entry, ctx: Ctx): string | Unresolved {
    const prop = (entry.info as CfnTypeInfo).nameProperty;
    const v = this.propOf(entry, prop, ctx);
    if (v === undefined) return entry.id;
    return typeof v === "string" || v instanceof Unresolved
      ? v
      : new Unresolved(`!GetAtt ${entry.id}.${prop}`);
  }

  private meshNameOf(entry: Entry, ctx: Ctx): unknown {
    return entry.info?.kind === "Mesh" ? this.nameOf(entry, ctx) : this.stringProp(entry, "MeshName", ctx);
  }

  private arnOf(entry: Entry, ctx: Ctx): string | Unresolved {
    const info = entry.info as CfnTypeInfo;
    const mesh = this.meshNameOf(entry, ctx);
    const name = this.nameOf(entry, ctx);
    const parent = info.parentProperty ? this.stringProp(entry, info.parentProperty, ctx) : undefined;
    for (const part of [mesh, name, parent]) if (part instanceof Unresolved) return part;
    let arn = `arn:aws:appmesh:${PLACEHOLDER_REGION}:${PLACEHOLDER_ACCOUNT}:mesh/${mesh as string}`;
    if (info.parentArnSegment) arn += `/${info.parentArnSegment}/${parent as string}`;
    if (info.arnSegment) arn += `/${info.arnSegment}/${name as string}`;
    return arn;
  }

  // ── Reference checks where nothing is resolved (ignored resources, Outputs) ────────────────────

  private scan(value: unknown, site: Site): void {
    if (Array.isArray(value)) {
      value.forEach((v, i) => {
        this.scan(v, { ...site, path: [...site.path, i] });
      });
      return;
    }
    if (!isRecord(value)) return;
    const fn = intrinsicKey(value);
    const ctx: Ctx = { report: true, stack: new Set() };
    if (fn === "Ref" && typeof value.Ref === "string") {
      const id = value.Ref;
      if (!id.startsWith("AWS::") && !this.parameters.has(id) && !this.resources.has(id))
        this.notDefined(id, site, fn, ctx, `!Ref ${id}`, true);
      return;
    }
    if (fn === "Fn::GetAtt") {
      const arg = value[fn];
      const [id, attr] =
        typeof arg === "string" && arg.includes(".")
          ? [arg.slice(0, arg.indexOf(".")), arg.slice(arg.indexOf(".") + 1)]
          : Array.isArray(arg)
            ? arg
            : [];
      if (typeof id === "string" && typeof attr === "string") this.checkAttribute(id, attr, site, fn, ctx);
      return;
    }
    if (fn === "Fn::Sub") {
      const arg = value[fn];
      const template = Array.isArray(arg) ? arg[0] : arg;
      const vars = Array.isArray(arg) && isRecord(arg[1]) ? arg[1] : {};
      if (typeof template === "string")
        for (const m of template.matchAll(/\$\{([^}!][^}]*)\}/g)) {
          const name = (m[1] ?? "").trim();
          if (Object.hasOwn(vars, name) || name.startsWith("AWS::")) continue;
          const dot = name.indexOf(".");
          if (dot > 0) this.checkAttribute(name.slice(0, dot), name.slice(dot + 1), site, fn, ctx);
          else if (!this.parameters.has(name) && !this.resources.has(name))
            this.notDefined(name, site, fn, ctx, `\${${name}}`, true);
        }
    }
    const base = fn && this.isLongForm(site, fn) ? [...site.path, fn] : site.path;
    for (const [k, v] of Object.entries(value))
      this.scan(v, { ...site, path: fn ? base : [...site.path, k] });
  }

  private checkAttribute(id: string, attr: string, site: Site, fn: string, ctx: Ctx): void {
    const entry = this.resources.get(id);
    if (!entry) {
      this.notDefined(id, site, fn, ctx, `!GetAtt ${id}.${attr}`, false);
      return;
    }
    if (entry.info && !entry.info.attributes.includes(attr)) {
      const guess = closest(attr, entry.info.attributes);
      this.error(
        ctx,
        site,
        fn,
        Codes.CFN_GETATT,
        `${entry.type} has no attribute "${attr}"${guess ? `; did you mean "${guess}"?` : ""}`,
        { hint: `attributes of ${entry.type}: ${entry.info.attributes.join(", ")}` },
      );
    }
  }

  // ── Diagnostics ────────────────────────────────────────────────────────────────────────────────

  /** Long form (`Fn::GetAtt: [A, B]`) has its own key in the document; the short form (`!GetAtt A.B`) does not. */
  private isLongForm(site: Site, fn: string): boolean {
    const own = site.doc.positions.value(site.path);
    return site.doc.positions.value([...site.path, fn]) !== own;
  }

  /**
   * Where an intrinsic is written: the `Fn::…` key of the long form, or the `!Tag` of the short form.
   * The YAML reader records a tagged value's position after its tag, so the tag is found one space
   * before the value (or after `key: ` when the value starts on a later line).
   */
  private intrinsicPosition(site: Site, fn: string): { line?: number; column?: number } {
    const positions = site.doc.positions;
    if (this.isLongForm(site, fn)) return positions.keyOf([...site.path, fn]) ?? {};
    const own = positions.value(site.path);
    if (!own) return {};
    const keyPos = positions.keyOf(site.path);
    const last = site.path[site.path.length - 1];
    if (keyPos && keyPos !== own && keyPos.line < own.line && typeof last === "string")
      return { line: keyPos.line, column: keyPos.column + last.length + 2 };
    const tag = SHORT_TAG[fn] ?? fn;
    return { line: own.line, column: Math.max(1, own.column - tag.length - 1) };
  }

  private error(
    ctx: Ctx,
    site: Site,
    fn: string,
    code: string,
    message: string,
    extra: { hint?: string } = {},
  ): void {
    if (!ctx.report) return;
    this.diagnostics.push({
      code,
      severity: "error",
      message,
      hint: extra.hint,
      file: site.doc.file,
      ...this.intrinsicPosition(site, fn),
      path: formatPath(site.path),
      resource: site.resource,
    });
  }

  private note(ctx: Ctx, site: Site, fn: string, code: string, message: string, hint: string): void {
    if (!ctx.report) return;
    this.diagnostics.push({
      code,
      severity: "info",
      message,
      hint,
      file: site.doc.file,
      ...this.intrinsicPosition(site, fn),
      path: formatPath(site.path),
      resource: site.resource,
    });
  }

  /** A diagnostic at a key (`atKey`) or value of `path` in `doc`. */
  private push(doc: SourceDocument, path: PathSegment[], atKey: boolean, d: Omit<Diagnostic, "file">): void {
    const pos = atKey ? doc.positions.keyOf(path) : doc.positions.value(path);
    this.diagnostics.push({
      path: formatPath(path),
      ...d,
      file: doc.file,
      line: pos?.line,
      column: pos?.column,
    });
  }
}

/** Replaces Unresolved markers by their text, collecting their paths. */
function replaceUnresolved(v: unknown, path: PathSegment[], out: PathSegment[][]): unknown {
  if (v instanceof Unresolved) {
    out.push(path);
    return v.text;
  }
  if (Array.isArray(v)) return v.map((x, i) => replaceUnresolved(x, [...path, i], out));
  if (isRecord(v)) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v))
      Object.defineProperty(o, k, {
        value: replaceUnresolved(x, [...path, k], out),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    return o;
  }
  return v;
}

export const cloudFormationDecoder: TemplateDecoder = {
  name: "cloudformation",
  types: Object.values(CFN_TYPES),
  claims(doc: SourceDocument): boolean {
    const v = doc.value;
    if (!isRecord(v) || "apiVersion" in v || "kind" in v) return false;
    if (isTemplate(v)) return true;
    return Object.values(v).some(
      (e) => isRecord(e) && typeof e.Type === "string" && /^(AWS|Custom|Alexa)::/.test(e.Type),
    );
  },
  decode(docs: SourceDocument[]) {
    const template = new Template();
    template.read(docs);
    const resources = template.emit();
    return { resources, diagnostics: template.diagnostics };
  },
};
