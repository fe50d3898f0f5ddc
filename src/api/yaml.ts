// YAML → plain values with a position for every field, so any later error can name file:line:column.
// CloudFormation short-form intrinsics (!Ref, !GetAtt, !Sub, …) become their long forms ({Ref: x}, …).
import {
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  type Document as YamlDocument,
  type Node as YamlNode,
} from "yaml";
import type { Diagnostic, SourcePosition } from "../lib/diagnostics.js";
import { Codes } from "./codes.js";

export type PathSegment = string | number;

/** Positions of values and keys inside one document, by field path. */
export class PositionIndex {
  private readonly values = new Map<string, SourcePosition>();
  private readonly keys = new Map<string, SourcePosition>();
  constructor(readonly file: string) {}
  static key(path: readonly PathSegment[]): string {
    return path.join("\u0000");
  }
  setValue(path: readonly PathSegment[], pos: SourcePosition): void {
    this.values.set(PositionIndex.key(path), pos);
  }
  setKey(path: readonly PathSegment[], pos: SourcePosition): void {
    this.keys.set(PositionIndex.key(path), pos);
  }
  /** The position of the value at `path`, or of its nearest ancestor that exists. */
  value(path: readonly PathSegment[]): SourcePosition | undefined {
    for (let n = path.length; n >= 0; n--) {
      const p = this.values.get(PositionIndex.key(path.slice(0, n)));
      if (p) return p;
    }
    return undefined;
  }
  /** The position of the key that names `path` (for unknown-field errors), else of the value. */
  keyOf(path: readonly PathSegment[]): SourcePosition | undefined {
    return this.keys.get(PositionIndex.key(path)) ?? this.value(path);
  }
}

/** One YAML document of one file, converted. */
export interface SourceDocument {
  file: string;
  /** 0-based index of the document in its file. */
  index: number;
  value: unknown;
  positions: PositionIndex;
  /** Position of the document's first content. */
  start: SourcePosition;
}

/** CloudFormation short forms and the long form each one stands for. */
const CFN_TAGS: Record<string, string> = {
  "!Ref": "Ref",
  "!GetAtt": "Fn::GetAtt",
  "!Sub": "Fn::Sub",
  "!Join": "Fn::Join",
  "!Select": "Fn::Select",
  "!Split": "Fn::Split",
  "!ImportValue": "Fn::ImportValue",
  "!FindInMap": "Fn::FindInMap",
  "!If": "Fn::If",
  "!Equals": "Fn::Equals",
  "!Not": "Fn::Not",
  "!And": "Fn::And",
  "!Or": "Fn::Or",
  "!Base64": "Fn::Base64",
  "!GetAZs": "Fn::GetAZs",
  "!Condition": "Condition",
};

const MAX_ALIAS_EXPANSIONS = 1000;
const MAX_DEPTH = 200;

/** Parses every document of a YAML text. Never throws: problems come back as diagnostics. */
export function parseYaml(
  text: string,
  file: string,
): { documents: SourceDocument[]; diagnostics: Diagnostic[] } {
  const lineCounter = new LineCounter();
  const diagnostics: Diagnostic[] = [];
  const documents: SourceDocument[] = [];
  let docs: YamlDocument.Parsed[];
  try {
    docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  } catch (err) {
    diagnostics.push({
      code: Codes.YAML_SYNTAX,
      severity: "error",
      message: `cannot parse YAML: ${(err as Error).message}`,
      file,
      line: 1,
      column: 1,
    });
    return { documents, diagnostics };
  }
  const posAt = (offset: number | undefined): SourcePosition => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return { file, line, column: col };
  };
  // parseAllDocuments returns an EmptyStream (an array with .empty) for empty input.
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, index) => {
    let broken = false;
    for (const e of doc.errors) {
      broken = true;
      const p = posAt(e.pos[0]);
      diagnostics.push({
        code: Codes.YAML_SYNTAX,
        severity: "error",
        message: firstLine(e.message),
        hint: "fix the YAML syntax at this position",
        file,
        line: p.line,
        column: p.column,
      });
    }
    if (broken) return;
    if (doc.contents === null) return; // an empty document (comments only, or `---` at the end)
    const positions = new PositionIndex(file);
    const converter = new Converter(doc, positions, posAt, diagnostics, file);
    const value = converter.convert(doc.contents, []);
    documents.push({ file, index, value, positions, start: posAt(doc.contents.range?.[0]) });
  });
  return { documents, diagnostics };
}

function firstLine(s: string): string {
  const i = s.indexOf("\n");
  return i < 0 ? s : s.slice(0, i);
}

class Converter {
  private aliasCount = 0;
  constructor(
    private readonly doc: YamlDocument.Parsed,
    private readonly positions: PositionIndex,
    private readonly posAt: (offset: number | undefined) => SourcePosition,
    private readonly diagnostics: Diagnostic[],
    private readonly file: string,
  ) {}

  convert(node: unknown, path: PathSegment[], depth = 0): unknown {
    if (depth > MAX_DEPTH) {
      this.fail(node, "document nests too deeply");
      return null;
    }
    if (isAlias(node)) {
      if (++this.aliasCount > MAX_ALIAS_EXPANSIONS) {
        this.fail(node, `more than ${MAX_ALIAS_EXPANSIONS} alias expansions`);
        return null;
      }
      const target = node.resolve(this.doc);
      if (!target) {
        this.fail(node, `unresolved alias *${node.source}`);
        return null;
      }
      this.positions.setValue(path, this.posAt((node as YamlNode).range?.[0]));
      return this.convert(target, path, depth + 1);
    }
    const yamlNode = node as YamlNode | null;
    if (yamlNode && "range" in yamlNode && yamlNode.range)
      this.positions.setValue(path, this.posAt(yamlNode.range[0]));
    const tag = yamlNode && "tag" in yamlNode ? yamlNode.tag : undefined;
    const value = this.plain(node, path, depth);
    if (tag && tag in CFN_TAGS) {
      const long = CFN_TAGS[tag] as string;
      // `!GetAtt A.B` is the short form of `Fn::GetAtt: [A, B]`.
      if (long === "Fn::GetAtt" && typeof value === "string") {
        const dot = value.indexOf(".");
        return { [long]: dot < 0 ? [value] : [value.slice(0, dot), value.slice(dot + 1)] };
      }
      return { [long]: value };
    }
    if (tag?.startsWith("!")) {
      this.fail(node, `unsupported YAML tag ${tag}`);
    }
    return value;
  }

  private plain(node: unknown, path: PathSegment[], depth: number): unknown {
    if (node === null || node === undefined) return null;
    if (isScalar(node)) return node.value;
    if (isMap(node)) {
      const out: Record<string, unknown> = {};
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const keyNode = pair.key;
        const rawKey = isScalar(keyNode) ? keyNode.value : keyNode;
        if (rawKey !== null && typeof rawKey === "object") {
          this.fail(keyNode, "mapping keys must be plain strings");
          continue;
        }
        if (isScalar(keyNode) && keyNode.value === "<<") {
          this.fail(keyNode, "YAML merge keys (<<) are not supported");
          continue;
        }
        const key = String(rawKey);
        const childPath = [...path, key];
        if (keyNode && typeof keyNode === "object" && "range" in keyNode && keyNode.range) {
          this.positions.setKey(childPath, this.posAt((keyNode as YamlNode).range?.[0]));
        }
        // defineProperty: a key named __proto__ stays an ordinary field.
        Object.defineProperty(out, key, {
          value: this.convert(pair.value, childPath, depth + 1),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    if (isSeq(node)) {
      return node.items.map((item, i) => this.convert(item, [...path, i], depth + 1));
    }
    return null;
  }

  private fail(node: unknown, message: string): void {
    const range = node && typeof node === "object" && "range" in node ? (node as YamlNode).range : undefined;
    const p = this.posAt(range?.[0]);
    this.diagnostics.push({
      code: Codes.YAML_SYNTAX,
      severity: "error",
      message,
      file: this.file,
      line: p.line,
      column: p.column,
    });
  }
}
