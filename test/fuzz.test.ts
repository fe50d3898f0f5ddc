// Fuzz-style robustness: thousands of mutated documents (text-level and value-level mutations of the
// seed patterns and examples) must never make the loader, lowering or analysis throw. Every problem
// must come back as a diagnostic with a SKEIN_ code and a file. Mutations come from a seeded PRNG, so a
// failure is reproducible from the printed seed and index.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parse, stringify } from "yaml";
import { SkeinError } from "../src/lib/diagnostics.js";
import { checkTexts } from "../src/model/check.js";

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function corpus(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith(".yaml")) out.push(readFileSync(p, "utf8"));
    }
  };
  walk(new URL("./fixtures", import.meta.url).pathname);
  walk(new URL("../examples", import.meta.url).pathname);
  return out;
}

const JUNK = [
  ":",
  "{",
  "}",
  "[",
  "]",
  "-",
  "!",
  "&a",
  "*a",
  "#",
  "'",
  '"',
  "\n",
  "  ",
  "\t",
  "!Ref ",
  "!GetAtt x.",
  "<<: ",
  "%",
  "|",
  ">",
  "?",
  "\\u0000",
];
const VALUES: unknown[] = [
  null,
  true,
  0,
  -1,
  Number.POSITIVE_INFINITY,
  3.5,
  "",
  "10x",
  "*",
  "a/b/c",
  [],
  {},
  [1, "a"],
  { x: { y: [] } },
  "__proto__",
  "150",
  { Ref: "Nope" },
  { "Fn::GetAtt": ["A"] },
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation !Sub placeholder.
  { "Fn::Sub": ["${X}", 3] },
  { "Fn::If": [] },
];

function mutateText(text: string, rnd: () => number): string {
  const lines = text.split("\n");
  const n = 1 + Math.floor(rnd() * 3);
  for (let k = 0; k < n; k++) {
    const i = Math.floor(rnd() * lines.length);
    const line = lines[i] ?? "";
    const op = Math.floor(rnd() * 6);
    if (op === 0) lines.splice(i, 1);
    else if (op === 1) lines.splice(i, 0, line);
    else if (op === 2) lines[i] = `  ${line}`;
    else if (op === 3) lines[i] = line.replace(/^\s+/, "");
    else {
      const at = Math.floor(rnd() * (line.length + 1));
      const junk = JUNK[Math.floor(rnd() * JUNK.length)] as string;
      lines[i] =
        op === 4 ? line.slice(0, at) + junk + line.slice(at) : line.slice(0, at) + line.slice(at + 1);
    }
  }
  return lines.join("\n");
}

function mutateValue(v: unknown, rnd: () => number, depth = 0): unknown {
  if (depth > 12) return v;
  if (Array.isArray(v)) {
    if (v.length && rnd() < 0.15) return VALUES[Math.floor(rnd() * VALUES.length)];
    return v.map((x) => mutateValue(x, rnd, depth + 1));
  }
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const r = rnd();
      if (r < 0.05) continue; // drop the field
      if (r < 0.1)
        out[`${k}x`] = x; // misspell it
      else if (r < 0.18) out[k] = VALUES[Math.floor(rnd() * VALUES.length)];
      else out[k] = mutateValue(x, rnd, depth + 1);
    }
    return out;
  }
  return rnd() < 0.2 ? VALUES[Math.floor(rnd() * VALUES.length)] : v;
}

const SEED = Number(process.env.SKEIN_FUZZ_SEED ?? 20261126);
const ROUNDS = Number(process.env.SKEIN_FUZZ_ROUNDS ?? 3000);

test(`fuzz: ${ROUNDS} mutated documents never throw and always yield coded diagnostics (seed ${SEED})`, () => {
  const rnd = mulberry32(SEED);
  const docs = corpus();
  assert.ok(docs.length >= 8, "the corpus holds the seed patterns and the examples");
  let withErrors = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const base = docs[i % docs.length] as string;
    let text: string;
    if (i % 2 === 0) text = mutateText(base, rnd);
    else {
      // Value-level mutation of every document in the file, re-serialised.
      try {
        text = base
          .split(/^---$/m)
          .map((d) => stringify(mutateValue(parse(d), rnd)))
          .join("---\n");
      } catch {
        text = mutateText(base, rnd);
      }
    }
    let result: ReturnType<typeof checkTexts>;
    try {
      result = checkTexts([{ file: `fuzz-${i}.yaml`, text }], { analyze: true });
    } catch (err) {
      if (err instanceof SkeinError) continue;
      assert.fail(`round ${i} (seed ${SEED}) threw ${(err as Error).stack}\n--- input ---\n${text}`);
    }
    for (const d of result.diagnostics) {
      assert.match(d.code, /^SKEIN_[EWI]_[A-Z0-9_]+$/, `round ${i}: bad code ${d.code}`);
      assert.ok(d.file, `round ${i}: diagnostic without a file: ${d.message}`);
      assert.ok(d.message.length > 0);
    }
    if (result.diagnostics.some((d) => d.severity === "error")) withErrors++;
  }
  // The mutations must actually break most inputs, or this test proves nothing.
  assert.ok(withErrors > ROUNDS / 2, `only ${withErrors} of ${ROUNDS} mutated inputs produced errors`);
});

test("alias bombs and deep nesting are refused, not expanded", () => {
  const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 0; i < 8; i++) {
    const prev = String.fromCharCode(97 + i);
    const next = String.fromCharCode(98 + i);
    bomb.push(
      `${next}: &${next} [*${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}, *${prev}]`,
    );
  }
  const r = checkTexts([{ file: "bomb.yaml", text: bomb.join("\n") }], { analyze: true });
  assert.ok(r.diagnostics.some((d) => d.code === "SKEIN_E_YAML_SYNTAX"));
  const deep = `${"[".repeat(500)}${"]".repeat(500)}`;
  const r2 = checkTexts([{ file: "deep.yaml", text: deep }], { analyze: true });
  assert.ok(r2.diagnostics.some((d) => d.severity === "error"));
});
