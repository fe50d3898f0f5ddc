// Where configuration comes from: a watched directory of YAML files, and resources applied through the
// HTTP API (kept in a state directory so a restart loses nothing that was accepted).
import { createHash } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { listConfigFiles } from "../api/load.js";

export interface SourceText {
  file: string;
  text: string;
}

/** A directory of YAML files, read whole on every change (editors save by rename; events get lost). */
export class DirectorySource {
  private watcher?: FSWatcher;
  private poll?: NodeJS.Timeout;
  constructor(
    readonly dir: string,
    private readonly pollMs = 2000,
  ) {}

  async read(): Promise<{ sources: SourceText[]; unreadable: string[] }> {
    const { files, diagnostics } = await listConfigFiles([this.dir]);
    const sources: SourceText[] = [];
    const unreadable = diagnostics.map((d) => d.message);
    for (const file of files) {
      try {
        sources.push({ file, text: await readFile(file, "utf8") });
      } catch (err) {
        unreadable.push(`${file}: ${(err as Error).message}`);
      }
    }
    return { sources, unreadable };
  }

  /** Calls `onChange` (at most every few ms) when anything under the directory may have changed. */
  watch(onChange: () => void): void {
    let last = "";
    const fingerprint = async () => {
      const { sources } = await this.read();
      return hashSources(sources);
    };
    void fingerprint().then((f) => {
      last = f;
    });
    const check = async () => {
      const f = await fingerprint();
      if (f !== last) {
        last = f;
        onChange();
      }
    };
    try {
      this.watcher = watch(this.dir, { recursive: true }, () => void check());
      this.watcher.on("error", () => undefined);
    } catch {
      // No recursive watch on this platform: the poll below still notices changes.
    }
    this.poll = setInterval(() => void check(), this.pollMs);
    this.poll.unref();
  }

  close(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
  }
}

/** Identity of a Kubernetes-shaped document, or undefined for anything else (e.g. a template). */
export function documentIdentity(
  value: unknown,
): { kind: string; namespace?: string; name: string } | undefined {
  if (!value || typeof value !== "object" || Array.isArray(value)) return undefined;
  const v = value as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  if (typeof v.kind !== "string" || typeof v.metadata?.name !== "string") return undefined;
  return {
    kind: v.kind,
    name: v.metadata.name,
    namespace: typeof v.metadata.namespace === "string" ? v.metadata.namespace : undefined,
  };
}

/** Resources applied through the API, by the file name they were applied as (like kubectl's). */
export class AppliedStore {
  private readonly texts = new Map<string, string>();
  constructor(private readonly stateDir?: string) {}

  private get dir(): string | undefined {
    return this.stateDir ? join(this.stateDir, "applied") : undefined;
  }

  async load(): Promise<void> {
    const dir = this.dir;
    if (!dir) return;
    await mkdir(dir, { recursive: true });
    const { files } = await listConfigFiles([dir]);
    for (const f of files)
      this.texts.set(
        decodeURIComponent(f.slice(dir.length + 1).replace(/\.yaml$/, "")),
        await readFile(f, "utf8"),
      );
  }

  sources(): SourceText[] {
    return [...this.texts].map(([name, text]) => ({ file: `api:${name}`, text }));
  }

  /**
   * The sources as they would be with `text` applied as `name`: it replaces what was applied under that
   * name, and any resource it defines leaves the other applied sources (kubectl's upsert by identity).
   */
  candidate(name: string, text: string): SourceText[] {
    const ids = new Set(identitiesIn(text));
    const next = new Map<string, string>();
    for (const [n, t] of this.texts) {
      if (n === name) continue;
      const rest = removeDocuments(t, (id) => ids.has(idKey(id)));
      if (rest !== undefined) next.set(n, rest);
    }
    next.set(name, text);
    return [...next].map(([n, t]) => ({ file: `api:${n}`, text: t }));
  }

  async put(name: string, text: string): Promise<void> {
    this.texts.set(name, text);
    await this.persist(name);
  }

  /** Texts with the named resource removed; undefined when no applied source defines it. */
  without(kind: string, namespace: string, name: string): { source: string; next: SourceText[] } | undefined {
    const key = idKey({ kind, namespace, name });
    for (const [src, text] of this.texts) {
      if (!identitiesIn(text).includes(key)) continue;
      const next = new Map(this.texts);
      const rest = removeDocuments(text, (id) => idKey(id) === key);
      if (rest === undefined) next.delete(src);
      else next.set(src, rest);
      return { source: src, next: [...next].map(([n, t]) => ({ file: `api:${n}`, text: t })) };
    }
    return undefined;
  }

  async replaceAll(next: SourceText[]): Promise<void> {
    const names = new Set(next.map((s) => s.file.replace(/^api:/, "")));
    for (const n of [...this.texts.keys()]) {
      if (!names.has(n)) {
        this.texts.delete(n);
        if (this.dir) await rm(join(this.dir, `${encodeURIComponent(n)}.yaml`), { force: true });
      }
    }
    for (const s of next) await this.put(s.file.replace(/^api:/, ""), s.text);
  }

  private async persist(name: string): Promise<void> {
    const dir = this.dir;
    if (!dir) return;
    await mkdir(dir, { recursive: true });
    const file = join(dir, `${encodeURIComponent(name)}.yaml`);
    // Write then rename, so a crash never leaves half a file behind.
    await writeFile(`${file}.tmp`, this.texts.get(name) ?? "", { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }
}

const idKey = (id: { kind: string; namespace?: string; name: string }) =>
  `${id.kind}\u0000${id.namespace ?? "default"}\u0000${id.name}`;

function documentsOf(text: string) {
  const docs = parseAllDocuments(text);
  return Array.isArray(docs) ? docs : [];
}

function identitiesIn(text: string): string[] {
  return documentsOf(text).flatMap((d) => {
    const id = documentIdentity(d.toJS());
    return id ? [idKey(id)] : [];
  });
}

/** The text without the documents `drop` selects; the text itself when none; undefined when none are left. */
function removeDocuments(
  text: string,
  drop: (id: { kind: string; namespace?: string; name: string }) => boolean,
): string | undefined {
  const docs = documentsOf(text);
  const keep = docs.filter((d) => {
    const id = documentIdentity(d.toJS());
    return !(id && drop(id));
  });
  if (keep.length === docs.length) return text;
  if (keep.length === 0) return undefined;
  return keep.map((d) => d.toString()).join("---\n");
}

export function hashSources(sources: readonly SourceText[]): string {
  const h = createHash("sha256");
  for (const s of [...sources].sort((a, b) => a.file.localeCompare(b.file))) {
    h.update(s.file);
    h.update("\u0000");
    h.update(s.text);
    h.update("\u0000");
  }
  return h.digest("hex").slice(0, 16);
}
