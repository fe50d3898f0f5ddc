// The accepted configuration and the one path every change goes through: read all sources, check them
// as a whole (schemas and cross-resource analysis), then either accept the new set or reject it with
// its diagnostics and keep the last good one in force.
import { EventEmitter } from "node:events";
import type { Resource } from "../api/resource.js";
import { type Diagnostic, hasErrors } from "../lib/diagnostics.js";
import { checkTexts } from "../model/check.js";
import type { MeshModel } from "../model/types.js";
import { type AppliedStore, type DirectorySource, hashSources, type SourceText } from "./sources.js";

export interface AcceptedConfig {
  /** Hash of every source text: changes exactly when the configuration does. */
  version: string;
  resources: Resource[];
  model: MeshModel;
  /** Warnings and infos of the accepted set (errors never get this far). */
  diagnostics: Diagnostic[];
  acceptedAt: Date;
}

export interface Rejection {
  trigger: string;
  diagnostics: Diagnostic[];
  at: Date;
}

export interface Outcome {
  accepted: boolean;
  /** The version in force afterwards. */
  version?: string;
  diagnostics: Diagnostic[];
  /** Nothing changed (same texts as the version in force). */
  unchanged?: boolean;
}

export interface ConfigEvents {
  accepted: [AcceptedConfig];
  rejected: [Rejection];
}

export class ConfigPipeline extends EventEmitter<ConfigEvents> {
  current?: AcceptedConfig;
  lastRejection?: Rejection;
  rejections = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly directory: DirectorySource | undefined,
    readonly applied: AppliedStore,
  ) {
    super();
  }

  /** Runs one change at a time, in order. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async fileSources(): Promise<SourceText[]> {
    return this.directory ? (await this.directory.read()).sources : [];
  }

  private consider(trigger: string, sources: SourceText[]): Outcome {
    const version = hashSources(sources);
    if (this.current?.version === version)
      return { accepted: true, version, diagnostics: [], unchanged: true };
    const result = checkTexts(sources, { analyze: true, overlay: (file) => file.startsWith("api:") });
    if (hasErrors(result.diagnostics) || !result.model) {
      const rejection = { trigger, diagnostics: result.diagnostics, at: new Date() };
      this.lastRejection = rejection;
      this.rejections++;
      this.emit("rejected", rejection);
      return { accepted: false, version: this.current?.version, diagnostics: result.diagnostics };
    }
    this.current = {
      version,
      resources: result.resources,
      model: result.model,
      diagnostics: result.diagnostics,
      acceptedAt: new Date(),
    };
    this.emit("accepted", this.current);
    return { accepted: true, version, diagnostics: result.diagnostics };
  }

  /** Re-reads the directory (on start and whenever it changes). */
  reload(trigger = "directory changed"): Promise<Outcome> {
    return this.serial(async () =>
      this.consider(trigger, [...(await this.fileSources()), ...this.applied.sources()]),
    );
  }

  /** Applies a YAML text as `name`: replaces what was applied under that name and same-named resources. */
  apply(name: string, text: string): Promise<Outcome> {
    return this.serial(async () => {
      const next = this.applied.candidate(name, text);
      const outcome = this.consider(`apply ${name}`, [...(await this.fileSources()), ...next]);
      if (outcome.accepted && !outcome.unchanged) await this.applied.replaceAll(next);
      return outcome;
    });
  }

  /** Deletes a resource that was applied through the API (a watched file's version of it, if any, returns). */
  delete(
    kind: string,
    namespace: string,
    name: string,
  ): Promise<Outcome & { found: boolean; source?: string }> {
    return this.serial(async () => {
      const removal = this.applied.without(kind, namespace, name);
      if (!removal) return { accepted: false, found: false, diagnostics: [], version: this.current?.version };
      const outcome = this.consider(`delete ${kind} ${namespace}/${name}`, [
        ...(await this.fileSources()),
        ...removal.next,
      ]);
      if (outcome.accepted) await this.applied.replaceAll(removal.next);
      return { ...outcome, found: true, source: removal.source };
    });
  }
}
