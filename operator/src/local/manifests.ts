import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, watch, type FSWatcher } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import type { Logger } from "@valora/kit";
import { validateObject } from "../api/index.js";
import type { LocalApiServer, Obj } from "./apiserver.js";

export const SOURCE_ANNOTATION = "valora.dev/manifest";

export interface ManifestDoc {
  obj: Obj;
  file: string;
}

/**
 * Pure: the ValuationModels and AssetPipelines of one YAML file, validated as the API server
 * would validate them (schema and CEL rules); other kinds (a kind cluster config, Helm values)
 * are skipped. Throws on the first invalid document, naming the file, the object and the field.
 */
export function parseManifest(file: string, text: string, namespace: string): Obj[] {
  const out: Obj[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
    const raw = doc.toJS() as Partial<Obj> | null;
    if (!raw || raw.apiVersion !== "valora.dev/v1alpha1") continue;
    try {
      validateObject(raw);
    } catch (err) {
      throw new Error(
        `${file}: ${raw.kind} ${raw.metadata?.name ?? "(no name)"}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
    const metadata = {
      ...raw.metadata!,
      namespace: raw.metadata!.namespace ?? namespace,
      annotations: {
        ...((raw.metadata!["annotations"] as Record<string, string> | undefined) ?? {}),
        [SOURCE_ANNOTATION]: file,
      },
    };
    out.push({ ...(raw as Obj), metadata });
  }
  return out;
}

/**
 * `kubectl apply --prune` of a folder of manifests, kept running: every *.yaml / *.yml file at the
 * top of the folder is applied to the local API server at start and again whenever it changes
 * (objects it no longer holds are deleted). A file that does not parse or validate is refused as a
 * whole, with the reason in the log, and what it applied before stays.
 */
export class ManifestSync {
  private hashes = new Map<string, string>();
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly o: { dir: string; api: LocalApiServer; namespace: string; logger: Logger }) {}

  /** Applies every file; the errors of refused files (empty when all applied). */
  syncAll(): string[] {
    const errors: string[] = [];
    const files = existsSync(this.o.dir)
      ? readdirSync(this.o.dir)
          .filter((f) => /\.ya?ml$/.test(f))
          .sort()
      : [];
    for (const f of files) {
      const err = this.syncFile(f);
      if (err) errors.push(err);
    }
    for (const gone of [...this.hashes.keys()].filter((f) => !files.includes(f))) this.prune(gone, new Set());
    return errors;
  }

  watch(): void {
    this.watcher = watch(this.o.dir, () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.syncAll(), 200);
    });
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }

  private syncFile(file: string): string | undefined {
    let text: string;
    try {
      text = readFileSync(join(this.o.dir, file), "utf8");
    } catch {
      return undefined; // removed between listing and reading: the next sync prunes it
    }
    const hash = createHash("sha256").update(text).digest("hex");
    if (this.hashes.get(file) === hash) return undefined;
    let objects: Obj[];
    try {
      objects = parseManifest(file, text, this.o.namespace);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.o.logger.error(
        { manifest: file, err: message },
        "manifest refused; its objects keep their last applied spec",
      );
      this.hashes.set(file, hash);
      return message;
    }
    this.hashes.set(file, hash);
    const kept = new Set<string>();
    for (const obj of objects) {
      const plural = obj.kind === "ValuationModel" ? "valuationmodels" : "assetpipelines";
      kept.add(`${plural}/${obj.metadata.namespace}/${obj.metadata.name}`);
      const existing = this.o.api.get(plural, obj.metadata.namespace!, obj.metadata.name);
      const same =
        existing &&
        JSON.stringify(existing["spec"]) === JSON.stringify(obj["spec"]) &&
        JSON.stringify(existing.metadata["labels"] ?? {}) === JSON.stringify(obj.metadata["labels"] ?? {});
      if (same) continue;
      this.o.api.put(obj);
      this.o.logger.info(
        {
          manifest: file,
          kind: obj.kind,
          name: `${obj.metadata.namespace}/${obj.metadata.name}`,
          generation: this.o.api.get(plural, obj.metadata.namespace!, obj.metadata.name)?.metadata[
            "generation"
          ],
        },
        existing ? "manifest changed: applied" : "manifest applied",
      );
    }
    this.prune(file, kept);
    return undefined;
  }

  /** Deletes what a file applied before and holds no more. */
  private prune(file: string, kept: Set<string>): void {
    for (const plural of ["valuationmodels", "assetpipelines"]) {
      for (const o of this.o.api.list(plural)) {
        const key = `${plural}/${o.metadata.namespace}/${o.metadata.name}`;
        if (
          (o.metadata["annotations"] as Record<string, string> | undefined)?.[SOURCE_ANNOTATION] === file &&
          !kept.has(key)
        ) {
          this.o.api.delete(plural, o.metadata.namespace, o.metadata.name);
          this.o.logger.info(
            { manifest: file, kind: o.kind, name: `${o.metadata.namespace}/${o.metadata.name}` },
            "removed from its manifest: deleted",
          );
        }
      }
    }
    if (kept.size === 0 && !existsSync(join(this.o.dir, file))) this.hashes.delete(file);
  }
}
