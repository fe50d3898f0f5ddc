// Request path normalisation, as Envoy's connection manager does it before any filter or route sees the path
// (ConnectionManagerUtility::maybeNormalizePath), so that authorization matches the path the application will
// serve: first escaped slashes (%2F, %5C) per path_with_escaped_slashes_action, then RFC 3986 normalisation
// when normalize_path is on (percent-encoded unreserved characters decoded, remaining escapes upper-cased,
// backslashes read as slashes, dot segments removed), then merge_slashes. The fragment is dropped (it is
// never part of a request target); the query is kept as is. The normalised path is what goes upstream.
import { type LocalReply, localReply } from "./local-reply.js";
import { ResponseFlag } from "./stream-info.js";

export type EscapedSlashesAction =
  | "KEEP_UNCHANGED"
  | "REJECT_REQUEST"
  | "UNESCAPE_AND_REDIRECT"
  | "UNESCAPE_AND_FORWARD";

/** The connection manager's path settings (HttpListenerConfig.pathNormalization). */
export interface PathNormalization {
  normalizePath: boolean;
  mergeSlashes: boolean;
  escapedSlashes: EscapedSlashesAction;
}

export type NormalizeResult =
  | { kind: "ok"; path: string }
  /** Answer with this (400 for a rejected path, 307 to the unescaped path). */
  | { kind: "reply"; reply: LocalReply };

/** Envoy's reply to a path it refuses to normalise or whose escaped slashes are rejected. */
export const REJECTED_PATH = localReply(
  400,
  "",
  ResponseFlag.DownstreamProtocolError,
  "path_normalization_failed",
);

function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2d || // -
    c === 0x2e || // .
    c === 0x5f || // _
    c === 0x7e // ~
  );
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

/** %2F and %5C (either case) → `/` and `\`; reports whether there were any. */
export function unescapeSlashes(path: string): { path: string; found: boolean } {
  if (!path.includes("%")) return { path, found: false };
  const out = path.replace(/%2f|%5c/gi, (m) => (m[2] === "f" || m[2] === "F" ? "/" : "\\"));
  return { path: out, found: out !== path };
}

/**
 * RFC 3986 section 6.2.2 on a path (no query): decodes %XX of unreserved characters, upper-cases the hex of
 * other escapes, turns `\` into `/` (as Envoy's URL canonicaliser does) and removes dot segments (5.2.4),
 * including `.`/`..` spelled with %2E. Undefined when the path is not a valid origin-form path.
 */
export function canonicalPath(path: string): string | undefined {
  if (path.charCodeAt(0) !== 0x2f && path.charCodeAt(0) !== 0x5c) return undefined;
  let decoded = "";
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25 /* % */) {
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return undefined; // a bare % is not a valid path
      const byte = hi * 16 + lo;
      decoded += isUnreserved(byte)
        ? String.fromCharCode(byte)
        : `%${path.slice(i + 1, i + 3).toUpperCase()}`;
      i += 2;
    } else if (c === 0x5c /* \ */) decoded += "/";
    else if (c < 0x21 || c === 0x7f)
      return undefined; // controls and spaces are not path characters
    else decoded += path[i];
  }
  return removeDotSegments(decoded);
}

/** RFC 3986 5.2.4 on an absolute path: `.` segments go, `..` removes the one before (not the root). */
export function removeDotSegments(path: string): string {
  if (!path.includes(".")) return path;
  const input = path.split("/");
  const out: string[] = [];
  // input[0] is "" (the path starts with "/").
  for (let i = 1; i < input.length; i++) {
    const seg = input[i] as string;
    const last = i === input.length - 1;
    if (seg === ".") {
      if (last) out.push("");
    } else if (seg === "..") {
      out.pop();
      if (last) out.push("");
    } else out.push(seg);
  }
  return `/${out.join("/")}`;
}

export function mergeSlashes(path: string): string {
  return path.includes("//") ? path.replace(/\/{2,}/g, "/") : path;
}

/**
 * The path Envoy forwards for `:path` under `n`: the fragment dropped, the path part normalised, the query
 * kept. A rejected path (escaped slashes under REJECT_REQUEST, or not normalisable) is a 400; unescaped
 * slashes under UNESCAPE_AND_REDIRECT are a 307 to the normalised path.
 */
export function normalizeRequestPath(raw: string, n: PathNormalization): NormalizeResult {
  if (raw === "*") return { kind: "ok", path: raw };
  let target = raw;
  const hash = target.indexOf("#");
  if (hash >= 0) target = target.slice(0, hash);
  const q = target.indexOf("?");
  let path = q >= 0 ? target.slice(0, q) : target;
  const query = q >= 0 ? target.slice(q) : "";
  let redirect = false;
  if (n.escapedSlashes !== "KEEP_UNCHANGED") {
    const u = unescapeSlashes(path);
    if (u.found) {
      if (n.escapedSlashes === "REJECT_REQUEST") return { kind: "reply", reply: REJECTED_PATH };
      path = u.path;
      redirect = n.escapedSlashes === "UNESCAPE_AND_REDIRECT";
    }
  }
  if (n.normalizePath) {
    const c = canonicalPath(path);
    if (c === undefined) return { kind: "reply", reply: REJECTED_PATH };
    path = c;
  }
  if (n.mergeSlashes) path = mergeSlashes(path);
  const out = path + query;
  if (redirect)
    return {
      kind: "reply",
      reply: localReply(307, "", 0, "path_redirect", { headers: { location: out } }),
    };
  return { kind: "ok", path: out };
}

/**
 * Normalises a request's path in place before its filter chain runs; false when the request was answered
 * instead (rejected path, redirect to the unescaped path).
 */
export function applyPathNormalization(
  req: { path: string; sendLocalReply(reply: LocalReply): void },
  n: PathNormalization,
): boolean {
  const result = normalizeRequestPath(req.path, n);
  if (result.kind === "reply") {
    req.sendLocalReply(result.reply);
    return false;
  }
  req.path = result.path;
  return true;
}
