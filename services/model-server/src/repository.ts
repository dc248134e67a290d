import { ValoraError, type Logger } from "@valora/kit";
import { shapKey } from "./explain.js";
import type { ShapPool } from "./shap-pool.js";
import { Batcher, type BatchingOptions } from "./batcher.js";
import { loadModel, type LoadedModel, type SessionOptions } from "./loaded-model.js";
import type { ModelMetrics } from "./metrics.js";
import type { ModelLocation, ModelSource } from "./model-source.js";
import { DATATYPES } from "./datatypes.js";
import type { FeedTensor } from "./session.js";
import type { Tensor } from "./tensors.js";

export interface ModelSpec extends ModelLocation {
  name: string;
  version: string;
}

export interface ServedModel {
  model: LoadedModel;
  batcher: Batcher;
  /** Runs the session on already-validated tensors (the batcher calls it). */
  run(inputs: Tensor[]): Promise<Tensor[]>;
}

type Entry =
  | { state: "loading"; spec: ModelSpec }
  | { state: "failed"; spec: ModelSpec; error: string }
  | { state: "ready"; spec: ModelSpec; served: ServedModel };

export interface RepositoryDeps {
  source: ModelSource;
  logger: Logger;
  metrics: ModelMetrics;
  session?: SessionOptions;
  batching: BatchingOptions;
  /** Worker threads explanations run on; each loaded tree ensemble's tables are shared with them. */
  shap?: ShapPool;
}

/** The models this server hosts, by name and version; the newest registered version is the default. */
export class ModelRepository {
  private readonly entries = new Map<string, Map<string, Entry>>();

  constructor(private readonly deps: RepositoryDeps) {}

  /** Registers a model and loads it; resolves when loaded, rejects (and records why) when it cannot be. */
  async register(spec: ModelSpec): Promise<void> {
    const versions = this.entries.get(spec.name) ?? new Map<string, Entry>();
    this.entries.set(spec.name, versions);
    versions.set(spec.version, { state: "loading", spec });
    const started = Date.now();
    try {
      const { bytes, sha256, cached } = await this.deps.source.load(spec);
      const model = await loadModel(spec.name, spec.version, bytes, sha256, this.deps.session);
      const run = async (inputs: Tensor[]): Promise<Tensor[]> => runSession(model, inputs);
      const labels = { model: spec.name, version: spec.version };
      const batcher = new Batcher(run, this.deps.batching, {
        batch: (rows, requests) => {
          this.deps.metrics.batchRows.observe(labels, rows);
          this.deps.metrics.batchRequests.observe(labels, requests);
        },
        queueDelay: (s) => this.deps.metrics.queueDelay.observe(labels, s),
      });
      // TreeSHAP tables are built at load (not on the first explain) and shared with the workers.
      // The explainer keeps the pool's copy (shared with its workers); the one built at load is dropped.
      if (typeof model.explainer !== "string" && model.explainer.tables && this.deps.shap)
        model.explainer.tables = this.deps.shap.add(shapKey(model), model.explainer.tables);
      versions.set(spec.version, { state: "ready", spec, served: { model, batcher, run } });
      this.deps.metrics.ready.set(labels, 1);
      this.deps.logger.info(
        {
          model: spec.name,
          version: spec.version,
          sha256,
          cached,
          ms: Date.now() - started,
          inputs: model.inputs,
          outputs: model.outputs,
          explain:
            typeof model.explainer === "string"
              ? model.explainer
              : `tree_shap (${model.explainer.trees} trees, covers ${model.explainer.coverSource})`,
        },
        "model loaded",
      );
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      versions.set(spec.version, { state: "failed", spec, error: message });
      this.deps.metrics.ready.set({ model: spec.name, version: spec.version }, 0);
      this.deps.logger.error(
        { model: spec.name, version: spec.version, uri: spec.uri, err: message },
        "model failed to load",
      );
      throw err;
    }
  }

  get(name: string, version?: string): ServedModel {
    const versions = this.entries.get(name);
    if (!versions)
      throw new ValoraError("NOT_FOUND", `model "${name}" is not served here`, {
        details: [{ field: "model_name", description: "unknown model" }],
      });
    const key = version ? version : [...versions.keys()].at(-1)!;
    const entry = versions.get(key);
    if (!entry)
      throw new ValoraError(
        "NOT_FOUND",
        `version "${version}" of model "${name}" is not served here (have ${[...versions.keys()].join(", ")})`,
        { details: [{ field: "model_version", description: "unknown version" }] },
      );
    if (entry.state === "loading")
      throw new ValoraError("UNAVAILABLE", `model "${name}" version "${key}" is still loading`);
    if (entry.state === "failed")
      throw new ValoraError("UNAVAILABLE", `model "${name}" version "${key}" failed to load: ${entry.error}`);
    return entry.served;
  }

  isReady(name: string, version?: string): boolean {
    try {
      this.get(name, version);
      return true;
    } catch {
      return false;
    }
  }

  versions(name: string): string[] {
    return [...(this.entries.get(name)?.keys() ?? [])];
  }

  /** Ready only when every registered model version has loaded. */
  allReady(): boolean {
    let any = false;
    for (const versions of this.entries.values()) {
      for (const e of versions.values()) {
        any = true;
        if (e.state !== "ready") return false;
      }
    }
    return any;
  }

  list(): { name: string; version: string; state: Entry["state"]; error?: string }[] {
    return [...this.entries.values()].flatMap((versions) =>
      [...versions.values()].map((e) => ({
        name: e.spec.name,
        version: e.spec.version,
        state: e.state,
        ...(e.state === "failed" ? { error: e.error } : {}),
      })),
    );
  }

  async close(): Promise<void> {
    for (const versions of this.entries.values()) {
      for (const e of versions.values()) if (e.state === "ready") await e.served.model.session.release();
    }
    await this.deps.shap?.close();
  }
}

async function runSession(model: LoadedModel, inputs: Tensor[]): Promise<Tensor[]> {
  const feeds: Record<string, FeedTensor> = {};
  for (const t of inputs) feeds[t.name] = { type: DATATYPES[t.datatype].ort, data: t.data, dims: t.shape };
  let results: Awaited<ReturnType<LoadedModel["session"]["run"]>>;
  try {
    results = await model.session.run(feeds);
  } catch (err) {
    // onnxruntime rejects what passed our checks only for model-specific constraints (e.g. a
    // dimension two inputs must share): the caller's input is at fault, not the server.
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `model ${model.name}: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  return model.outputs.map((spec) => {
    const value = results[spec.name]!;
    return { name: spec.name, datatype: spec.datatype, shape: value.dims.map(Number), data: value.data };
  });
}
