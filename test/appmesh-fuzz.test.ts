// The CloudFormation resolver under random intrinsic functions: Ref, Fn::GetAtt, Fn::Sub and Fn::Join
// (and unsupported ones) with random arguments, nested, referencing each other and themselves, planted
// anywhere in a valid template. Nothing may throw; every problem is a coded diagnostic with a position.
// Seeded, so a failure reproduces from the printed seed and round.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parse, stringify } from "yaml";
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

const base = parse(
  readFileSync(new URL("./fixtures/appmesh/shop-template.yaml", import.meta.url), "utf8"),
) as {
  Resources: Record<string, unknown>;
};
const NAMES = [
  ...Object.keys(base.Resources),
  "MeshNameParam",
  "ServicePort",
  "AWS::Region",
  "AWS::NoValue",
  "Nope",
  "",
];
const ATTRS = ["Arn", "MeshName", "VirtualNodeName", "VirtualRouterName", "Uid", "MeshOwner", "Bogus", ""];
const FNS = ["Fn::If", "Fn::Select", "Fn::ImportValue", "Fn::FindInMap", "Fn::Base64"];

function intrinsic(rnd: () => number, depth: number): unknown {
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)] as T;
  const leaf = () => (rnd() < 0.5 ? pick(NAMES) : rnd() < 0.5 ? Math.floor(rnd() * 100) : [pick(NAMES)]);
  const arg = () => (depth > 3 || rnd() < 0.4 ? leaf() : intrinsic(rnd, depth + 1));
  switch (Math.floor(rnd() * 7)) {
    case 0:
      return { Ref: rnd() < 0.8 ? pick(NAMES) : arg() };
    case 1:
      return {
        "Fn::GetAtt":
          rnd() < 0.7 ? [pick(NAMES), pick(ATTRS)] : rnd() < 0.5 ? `${pick(NAMES)}.${pick(ATTRS)}` : arg(),
      };
    case 2: {
      const tpl = `x-\${${pick(NAMES)}}-\${${pick(NAMES)}.${pick(ATTRS)}}-\${!L}-\${}`;
      return { "Fn::Sub": rnd() < 0.5 ? tpl : [tpl, { [pick(NAMES)]: arg() }] };
    }
    case 3:
      return { "Fn::Join": rnd() < 0.7 ? [pick(["", "/", ","]), [arg(), arg(), leaf()]] : arg() };
    case 4:
      return { [pick(FNS)]: [arg(), arg()] };
    case 5:
      return { Ref: pick(NAMES), Extra: arg() };
    default:
      return { "Fn::Sub": [arg(), arg()] };
  }
}

/** Replaces a random value somewhere under `v` with an intrinsic. */
function plant(v: unknown, rnd: () => number, depth = 0): unknown {
  if (rnd() < 0.15 || depth > 8) return intrinsic(rnd, 0);
  if (Array.isArray(v)) return v.map((x) => (rnd() < 0.5 ? plant(x, rnd, depth + 1) : x));
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = rnd() < 0.3 ? plant(x, rnd, depth + 1) : x;
    return out;
  }
  return v;
}

const SEED = Number(process.env.SKEIN_FUZZ_SEED ?? 20261127);
const ROUNDS = Number(process.env.SKEIN_FUZZ_ROUNDS ?? 800);

test(`fuzz: ${ROUNDS} templates with random intrinsics never throw (seed ${SEED})`, () => {
  const rnd = mulberry32(SEED);
  let reported = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const doc = structuredClone(base);
    const ids = Object.keys(doc.Resources);
    for (let k = 0; k < 3; k++) {
      const id = ids[Math.floor(rnd() * ids.length)] as string;
      doc.Resources[id] = plant(doc.Resources[id], rnd);
    }
    const text = stringify(doc);
    let result: ReturnType<typeof checkTexts>;
    try {
      result = checkTexts([{ file: `cfn-${i}.yaml`, text }], { analyze: true });
    } catch (err) {
      assert.fail(`round ${i} (seed ${SEED}) threw ${(err as Error).stack}\n--- input ---\n${text}`);
    }
    for (const d of result.diagnostics) {
      assert.match(d.code, /^SKEIN_[EWI]_[A-Z0-9_]+$/, `round ${i}: bad code ${d.code}`);
      assert.ok(d.file && d.line !== undefined, `round ${i}: diagnostic without a position: ${d.message}`);
    }
    if (result.diagnostics.some((d) => d.severity === "error")) reported++;
  }
  assert.ok(reported > ROUNDS / 2, `only ${reported} of ${ROUNDS} rounds produced errors`);
});

test("names that are Object.prototype members are ordinary names (found by the fuzz test)", () => {
  const r = checkTexts(
    [
      {
        file: "proto.yaml",
        text: `Resources:
  A:
    Type: constructor
  B:
    Type: AWS::AppMesh::Mesh
    Properties:
      MeshName: !Sub ["\${toString}-\${__proto__}", { __proto__: x }]
  C:
    Type: AWS::AppMesh::VirtualService
    Properties:
      MeshName: !GetAtt arn:aws:appmesh:us-east-1:1:mesh/m/constructor/x.Arn
      VirtualServiceName: v
      Spec: {}
`,
      },
    ],
    { analyze: true },
  );
  assert.deepEqual(
    r.diagnostics.map((d) => `${d.code}@${d.line}`),
    ["SKEIN_E_CFN_TYPE@3", "SKEIN_E_CFN_REF_UNRESOLVED@7", "SKEIN_E_CFN_REF_UNRESOLVED@11"],
  );
  assert.match(r.diagnostics[1]?.message ?? "", /"toString" is not defined in the template/);
});
