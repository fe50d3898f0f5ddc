// String, header and query-parameter matchers, and regular expressions. Envoy's regexes are RE2; the sidecar
// runs them as JavaScript RegExps, so each pattern is translated from RE2 syntax (named groups, \A \z \Q..\E,
// POSIX classes, leading flags, RE2's `.` and `\s`) and refused when it is not RE2 (backreferences,
// lookaround: Envoy rejects those too) or when JavaScript cannot express it (scoped flags, \C).
import type { HeaderMatcher__Output } from "../../xds/generated/envoy/config/route/v3/HeaderMatcher.js";
import type { QueryParameterMatcher__Output } from "../../xds/generated/envoy/config/route/v3/QueryParameterMatcher.js";
import type { RegexMatcher__Output } from "../../xds/generated/envoy/type/matcher/v3/RegexMatcher.js";
import type { StringMatcher__Output } from "../../xds/generated/envoy/type/matcher/v3/StringMatcher.js";
import { ProxyConfigCodes } from "./codes.js";
import { type At, headerName, names, onlyFields } from "./fields.js";
import type { HeaderMatcher, QueryParameterMatcher, StringMatcher } from "./types.js";

/** RE2's limit on a counted repetition ({n,m}). */
const MAX_REPEAT = 1000;

class RegexError extends Error {}

// RE2's POSIX classes ([[:alpha:]]), as JavaScript class contents.
const POSIX: Record<string, string> = {
  alnum: "0-9A-Za-z",
  alpha: "A-Za-z",
  ascii: "\\x00-\\x7F",
  blank: "\\t ",
  cntrl: "\\x00-\\x1F\\x7F",
  digit: "0-9",
  graph: "!-~",
  lower: "a-z",
  print: " -~",
  punct: "!-\\/:-@\\[-`{-~",
  space: "\\t\\n\\v\\f\\r ",
  upper: "A-Z",
  word: "0-9A-Za-z_",
  xdigit: "0-9A-Fa-f",
};

// Unicode general categories RE2 accepts by short name; any other \p{Name} is a script.
const CATEGORIES = new Set(
  "C Cc Cf Co Cs L Ll Lm Lo Lt Lu M Mc Me Mn N Nd Nl No P Pc Pd Pe Pf Pi Po Ps S Sc Sk Sm So Z Zl Zp Zs Any".split(
    " ",
  ),
);

// Characters that must be escaped to be literal outside / inside a JavaScript class under the `u` flag.
const SYNTAX = new Set([..."^$\\.*+?()[]{}|/"]);
const CLASS_SYNTAX = new Set([..."\\]-^["]);

function literal(ch: string, inClass: boolean): string {
  return (inClass ? CLASS_SYNTAX : SYNTAX).has(ch) ? `\\${ch}` : ch;
}

function codePointEscape(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

interface Translated {
  source: string;
  flags: string;
}

/**
 * RE2 syntax → a JavaScript pattern for the `u` flag (code points, as RE2 matches UTF-8). Throws RegexError
 * with the reason for what RE2 rejects or JavaScript cannot do.
 */
function translate(src: string): Translated {
  let i = 0;
  let flags = "";
  // Flags may lead the pattern ((?i)abc); JavaScript only has whole-pattern flags.
  for (let m = /^\(\?([a-zA-Z-]+)\)/.exec(src); m; m = /^\(\?([a-zA-Z-]+)\)/.exec(src.slice(i))) {
    for (const f of m[1] as string) {
      if (f === "i" || f === "m" || f === "s") {
        if (!flags.includes(f)) flags += f;
      } else if (f === "U") throw new RegexError("the U (ungreedy) flag has no JavaScript equivalent");
      else if (f === "-") throw new RegexError("clearing flags ((?-...)) is not supported");
      else throw new RegexError(`unknown flag ${f} in (?${m[1]})`);
    }
    i += m[0].length;
  }
  const dotAll = flags.includes("s");
  let out = "";
  while (i < src.length) {
    const ch = src[i] as string;
    if (ch === "\\") {
      const e = escapeAt(src, i, false);
      out += e.text;
      i = e.next;
    } else if (ch === "[") {
      const c = charClass(src, i);
      out += c.text;
      i = c.next;
    } else if (ch === "(") {
      const g = group(src, i);
      out += g.text;
      i = g.next;
    } else if (ch === "{") {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i));
      if (m) {
        const lo = Number(m[1]);
        const hi = m[3] ? Number(m[3]) : lo;
        if (lo > MAX_REPEAT || hi > MAX_REPEAT)
          throw new RegexError(`repetition ${m[0]} exceeds RE2's limit of ${MAX_REPEAT}`);
        if (m[3] && hi < lo) throw new RegexError(`bad repetition ${m[0]}: the maximum is below the minimum`);
        out += m[0];
        i += m[0].length;
      } else {
        // RE2 reads a `{` that starts no repetition as a literal.
        out += "\\{";
        i++;
      }
    } else if (ch === "}" || ch === "]") {
      out += `\\${ch}`;
      i++;
    } else if (ch === ".") {
      // RE2's `.` excludes only \n (JavaScript's also excludes \r, \u2028, \u2029).
      out += dotAll ? "." : "[^\\n]";
      i++;
    } else {
      const cp = src.codePointAt(i) as number;
      const text = String.fromCodePoint(cp);
      out += text === "/" ? "\\/" : text;
      i += text.length;
    }
  }
  return { source: out, flags };
}

function group(src: string, i: number): { text: string; next: number } {
  const rest = src.slice(i);
  if (!rest.startsWith("(?")) return { text: "(", next: i + 1 };
  if (rest.startsWith("(?:")) return { text: "(?:", next: i + 3 };
  const named = /^\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
  if (named) return { text: `(?<${named[1]}>`, next: i + named[0].length };
  if (/^\(\?(=|!|<=|<!)/.test(rest))
    throw new RegexError("lookaround assertions are not RE2 (Envoy rejects them)");
  if (rest.startsWith("(?P=") || rest.startsWith("(?P>"))
    throw new RegexError("backreferences are not RE2 (Envoy rejects them)");
  if (/^\(\?[a-zA-Z-]+[:)]/.test(rest))
    throw new RegexError(
      "flags are only supported at the very start of the pattern (JavaScript has no scoped flags); write (?i) first or spell the cases out",
    );
  throw new RegexError(`unsupported group syntax ${rest.slice(0, 4)}`);
}

function escapeAt(src: string, i: number, inClass: boolean): { text: string; next: number } {
  const c = src[i + 1];
  if (c === undefined) throw new RegexError("trailing backslash");
  const next = i + 2;
  switch (c) {
    case "d":
    case "D":
    case "w":
    case "W":
      return { text: `\\${c}`, next };
    case "s":
      // RE2's \s is [\t\n\f\r ]; JavaScript's also takes \v and Unicode spaces.
      return { text: inClass ? "\\t\\n\\f\\r " : "[\\t\\n\\f\\r ]", next };
    case "S":
      return { text: inClass ? "\\S" : "[^\\t\\n\\f\\r ]", next };
    case "b":
    case "B":
      if (inClass) throw new RegexError(`\\${c} is not allowed in a character class`);
      return { text: `\\${c}`, next };
    case "A":
      if (inClass) throw new RegexError("\\A is not allowed in a character class");
      return { text: "(?<![\\s\\S])", next };
    case "z":
      if (inClass) throw new RegexError("\\z is not allowed in a character class");
      return { text: "(?![\\s\\S])", next };
    case "a":
      return { text: "\\x07", next };
    case "f":
    case "n":
    case "r":
    case "t":
    case "v":
      return { text: `\\${c}`, next };
    case "x": {
      const braced = /^\{([0-9A-Fa-f]+)\}/.exec(src.slice(next));
      if (braced) {
        const cp = Number.parseInt(braced[1] as string, 16);
        if (cp > 0x10ffff) throw new RegexError(`\\x{${braced[1]}} is beyond Unicode`);
        return { text: codePointEscape(cp), next: next + braced[0].length };
      }
      const two = /^[0-9A-Fa-f]{2}/.exec(src.slice(next));
      if (!two) throw new RegexError("\\x needs two hex digits or {hex}");
      return { text: `\\x${two[0]}`, next: next + 2 };
    }
    case "p":
    case "P": {
      let name: string;
      let end: number;
      if (src[next] === "{") {
        const close = src.indexOf("}", next);
        if (close < 0) throw new RegexError(`unterminated \\${c}{`);
        name = src.slice(next + 1, close);
        end = close + 1;
      } else {
        name = src[next] ?? "";
        end = next + 1;
      }
      let negate = c === "P";
      if (name.startsWith("^")) {
        negate = !negate;
        name = name.slice(1);
      }
      if (!/^[A-Za-z_]+$/.test(name)) throw new RegexError(`bad Unicode class name ${JSON.stringify(name)}`);
      const property = CATEGORIES.has(name) ? name : `Script=${name}`;
      return { text: `\\${negate ? "P" : "p"}{${property}}`, next: end };
    }
    case "Q": {
      const close = src.indexOf("\\E", next);
      const text = src.slice(next, close < 0 ? src.length : close);
      const lit = [...text].map((ch) => literal(ch, inClass)).join("");
      return { text: inClass ? lit : `(?:${lit})`, next: close < 0 ? src.length : close + 2 };
    }
    case "0": {
      // Octal: \0, \012 (RE2 reads up to three digits).
      const m = /^[0-7]{0,2}/.exec(src.slice(next)) as RegExpExecArray;
      return { text: codePointEscape(Number.parseInt(`0${m[0]}`, 8)), next: next + m[0].length };
    }
    case "C":
      throw new RegexError("\\C (any byte) cannot be expressed in JavaScript");
    default:
      break;
  }
  if (/[1-7]/.test(c)) {
    const m = /^[0-7]{1,2}/.exec(src.slice(next));
    // A lone \1..\7 is a backreference; with more octal digits RE2 reads an octal escape.
    if (!m) throw new RegexError(`backreferences (\\${c}) are not RE2 (Envoy rejects them)`);
    return { text: codePointEscape(Number.parseInt(c + m[0], 8)), next: next + m[0].length };
  }
  if (c === "8" || c === "9" || c === "k")
    throw new RegexError(`backreferences (\\${c}) are not RE2 (Envoy rejects them)`);
  // RE2 allows escaping any punctuation, and nothing else.
  if (/[A-Za-z0-9]/.test(c)) throw new RegexError(`invalid escape \\${c}`);
  const cp = src.codePointAt(i + 1) as number;
  const ch = String.fromCodePoint(cp);
  return { text: literal(ch, inClass), next: i + 1 + ch.length };
}

function charClass(src: string, start: number): { text: string; next: number } {
  let i = start + 1;
  let negated = false;
  if (src[i] === "^") {
    negated = true;
    i++;
  }
  let body = "";
  let first = true;
  let items = 0;
  let negatedPosix: string | undefined;
  while (true) {
    if (i >= src.length) throw new RegexError("missing ] at the end of a character class");
    const ch = src[i] as string;
    // RE2: a `]` right after `[` or `[^` is a literal.
    if (ch === "]" && !first) break;
    first = false;
    items++;
    const posix = /^\[:(\^?)([a-z]+):\]/.exec(src.slice(i));
    if (posix) {
      const set = POSIX[posix[2] as string];
      if (set === undefined) throw new RegexError(`unknown POSIX class [:${posix[2]}:]`);
      if (posix[1]) negatedPosix = set;
      else body += set;
      i += posix[0].length;
      continue;
    }
    if (ch === "\\") {
      const e = escapeAt(src, i, true);
      body += e.text;
      i = e.next;
      continue;
    }
    if (ch === "-") {
      // A range dash between two atoms stays a dash; at either end it is a literal.
      const atEnd = src[i + 1] === "]";
      body += body === "" || atEnd ? "\\-" : "-";
      i++;
      continue;
    }
    const cp = src.codePointAt(i) as number;
    const text = String.fromCodePoint(cp);
    body += literal(text, true);
    i += text.length;
  }
  if (negatedPosix !== undefined) {
    // [[:^alpha:]] alone is [^A-Za-z]; mixed with other items it needs class subtraction, which `u` lacks.
    if (items !== 1 || negated)
      throw new RegexError("a negated POSIX class ([:^name:]) is only supported as the whole class");
    return { text: `[^${negatedPosix}]`, next: i + 1 };
  }
  return { text: `[${negated ? "^" : ""}${body}]`, next: i + 1 };
}

export type RegexMode =
  /** Must match the whole input (RE2 FullMatch: Envoy's route, header and string matchers). */
  | "full"
  /** Finds every match (regex_rewrite's GlobalReplace). */
  | "global";

/** Compiles an RE2 pattern into a RegExp, or fails at `at` with SKEIN_E_PROXY_CONFIG_REGEX. */
export function compileRegex(pattern: string, at: At, mode: RegexMode): RegExp {
  let t: Translated;
  try {
    t = translate(pattern);
  } catch (e) {
    if (e instanceof RegexError)
      return at.fail(ProxyConfigCodes.REGEX, `regex ${JSON.stringify(pattern)}: ${e.message}`);
    throw e;
  }
  let source = t.source;
  if (mode === "full") {
    // With the m flag ^ and $ match at line breaks, so anchor on the input's ends explicitly.
    source = t.flags.includes("m") ? `(?<![\\s\\S])(?:${source})(?![\\s\\S])` : `^(?:${source})$`;
  }
  try {
    return new RegExp(source, `${t.flags}u${mode === "global" ? "g" : ""}`);
  } catch (e) {
    return at.fail(
      ProxyConfigCodes.REGEX,
      `regex ${JSON.stringify(pattern)} cannot be compiled: ${(e as Error).message.replace(/^Invalid regular expression: /, "")}`,
    );
  }
}

const REGEX_MATCHER_FIELDS = names("regex", "googleRe2");

export function compileRegexMatcher(
  m: RegexMatcher__Output | null | undefined,
  at: At,
  mode: RegexMode,
): RegExp {
  if (!m) return at.invalid("a regex is required");
  // google_re2 only selected RE2 (and a program size limit); RE2 is the only engine anyway.
  onlyFields("envoy.type.matcher.v3.RegexMatcher", m, REGEX_MATCHER_FIELDS, at);
  if (m.regex === "") return at.field("regex").invalid("must not be empty");
  return compileRegex(m.regex, at.field("regex"), mode);
}

/**
 * RE2's rewrite string (\0–\9 name groups, \\ a backslash) as a String.prototype.replace replacement
 * ($0 is $&, $1..$9, $$ a dollar). Groups beyond those the regex has are refused, as RE2 does.
 */
export function compileSubstitution(substitution: string, regex: RegExp, at: At): string {
  const groups =
    (new RegExp(`${regex.source}|`, regex.flags.replace("g", "")).exec("") as RegExpExecArray).length - 1;
  let out = "";
  for (let i = 0; i < substitution.length; i++) {
    const ch = substitution[i] as string;
    if (ch === "$") out += "$$";
    else if (ch !== "\\") out += ch;
    else {
      const n = substitution[i + 1];
      if (n === "\\") out += "\\";
      else if (n !== undefined && /[0-9]/.test(n)) {
        if (Number(n) > groups)
          at.fail(ProxyConfigCodes.REGEX, `substitution uses \\${n} but the regex has only ${groups} groups`);
        out += n === "0" ? "$&" : `$${n}`;
      } else
        at.fail(
          ProxyConfigCodes.REGEX,
          `invalid rewrite escape \\${n ?? ""} in substitution (use \\0-\\9 or \\\\)`,
        );
      i++;
    }
  }
  return out;
}

const STRING_MATCHER_FIELDS = names("exact", "prefix", "suffix", "contains", "safeRegex", "ignoreCase");

/** Envoy StringMatcher → StringMatcher (ignore_case values lower-cased once here). */
export function compileStringMatcher(m: StringMatcher__Output | null | undefined, at: At): StringMatcher {
  if (!m) return at.invalid("a string matcher is required");
  onlyFields("envoy.type.matcher.v3.StringMatcher", m, STRING_MATCHER_FIELDS, at);
  const ignoreCase = m.ignoreCase === true;
  const text = (v: string) => (ignoreCase ? v.toLowerCase() : v);
  switch (m.matchPattern) {
    case "exact":
      return { kind: "exact", value: text(m.exact ?? ""), ignoreCase };
    case "prefix":
    case "suffix":
    case "contains": {
      const value = m[m.matchPattern] ?? "";
      if (value === "") at.field(m.matchPattern).invalid("must not be empty");
      return { kind: m.matchPattern, value: text(value), ignoreCase };
    }
    case "safeRegex":
      if (ignoreCase)
        at.field("ignoreCase").invalid("has no effect with safe_regex (Envoy rejects the combination)");
      return { kind: "regex", regex: compileRegexMatcher(m.safeRegex, at.field("safeRegex"), "full") };
    default:
      return at.invalid("match_pattern is required (exact, prefix, suffix, contains or safe_regex)");
  }
}

const HEADER_MATCHER_FIELDS = names(
  "name",
  "exactMatch",
  "safeRegexMatch",
  "presentMatch",
  "prefixMatch",
  "suffixMatch",
  "containsMatch",
  "stringMatch",
  "invertMatch",
);

/** Envoy HeaderMatcher (including its deprecated *_match forms) → HeaderMatcher. */
export function compileHeaderMatcher(h: HeaderMatcher__Output, at: At): HeaderMatcher {
  onlyFields("envoy.config.route.v3.HeaderMatcher", h, HEADER_MATCHER_FIELDS, at);
  const name = headerName(h.name, at.field("name"));
  const invert = h.invertMatch === true;
  const s = (kind: "exact" | "prefix" | "suffix" | "contains", value: string): HeaderMatcher => ({
    name,
    match: { kind, value, ignoreCase: false },
    invert,
  });
  switch (h.headerMatchSpecifier) {
    case "exactMatch":
      return s("exact", h.exactMatch ?? "");
    case "prefixMatch":
    case "suffixMatch":
    case "containsMatch": {
      const value = h[h.headerMatchSpecifier] ?? "";
      if (value === "") at.field(h.headerMatchSpecifier).invalid("must not be empty");
      return s(h.headerMatchSpecifier.replace("Match", "") as "prefix" | "suffix" | "contains", value);
    }
    case "safeRegexMatch":
      return {
        name,
        match: {
          kind: "regex",
          regex: compileRegexMatcher(h.safeRegexMatch, at.field("safeRegexMatch"), "full"),
        },
        invert,
      };
    case "stringMatch":
      return { name, match: compileStringMatcher(h.stringMatch, at.field("stringMatch")), invert };
    case "presentMatch":
      return { name, present: h.presentMatch === true, invert };
    default:
      // No specifier: the header must be present.
      return { name, invert };
  }
}

const QUERY_MATCHER_FIELDS = names("name", "stringMatch", "presentMatch");

export function compileQueryParameterMatcher(
  q: QueryParameterMatcher__Output,
  at: At,
): QueryParameterMatcher {
  onlyFields("envoy.config.route.v3.QueryParameterMatcher", q, QUERY_MATCHER_FIELDS, at);
  if (q.name === "") at.field("name").invalid("must not be empty");
  if (q.queryParameterMatchSpecifier === "stringMatch")
    return { name: q.name, match: compileStringMatcher(q.stringMatch, at.field("stringMatch")) };
  if (q.queryParameterMatchSpecifier === "presentMatch" && q.presentMatch !== true)
    at.field("presentMatch").unsupported("present_match: false (parameter must be absent) is not supported");
  return { name: q.name };
}
