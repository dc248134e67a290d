import type * as ort from "onnxruntime-node";
import { ValoraError } from "@valora/kit";
import { META } from "@valora/kit/onnx";
import { datatypeOfOrt } from "./datatypes.js";
import type { TensorSpec } from "./tensors.js";
import { localSession, type InferenceThread, type ModelSession } from "./session.js";
import { readModelOffThread, type ModelFacts } from "./model-reader.js";
import { widenExplainer, type TreeExplainer } from "./tree-explainer.js";

export { treeExplainer, type TreeExplainer } from "./tree-explainer.js";

export interface SessionOptions {
  intraOpThreads?: number;
  interOpThreads?: number;
  /** The inference thread sessions run on, off the event loop (none: on the calling thread). */
  thread?: InferenceThread;
}

/** One model version in memory: its onnxruntime session, declared tensors, metadata and explainer. */
export interface LoadedModel {
  name: string;
  version: string;
  sha256: string;
  session: ModelSession;
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  metadata: Record<string, string>;
  /** Feature names in input order, from the model's metadata or f0..fN. */
  featureNames: string[];
  /** What TreeSHAP needs to explain the model, or why it cannot be explained. */
  explainer: TreeExplainer | string;
  /** True when every input has a dynamic leading (batch) dimension, so requests can be coalesced. */
  batchable: boolean;
}

function specsOf(
  metadata: readonly ort.InferenceSession.ValueMetadata[],
  kind: string,
  model: string,
): TensorSpec[] {
  return metadata.map((m) => {
    if (!m.isTensor)
      throw new ValoraError("FAILED_PRECONDITION", `model ${model}: ${kind} "${m.name}" is not a tensor`);
    const datatype = datatypeOfOrt(m.type);
    if (!datatype)
      throw new ValoraError(
        "FAILED_PRECONDITION",
        `model ${model}: ${kind} "${m.name}" has type ${m.type}, which is not served`,
      );
    return { name: m.name, datatype, shape: m.shape.map((d) => (typeof d === "number" && d >= 0 ? d : -1)) };
  });
}

export async function loadModel(
  name: string,
  version: string,
  bytes: Uint8Array,
  sha256: string,
  options: SessionOptions = {},
): Promise<LoadedModel> {
  // The graph is read first, on a worker whose garbage is gone before onnxruntime loads its copy.
  let facts: ModelFacts;
  try {
    facts = await readModelOffThread(bytes);
  } catch (err) {
    throw new ValoraError(
      "FAILED_PRECONDITION",
      `model ${name}: cannot read it as ONNX: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  let session: ModelSession;
  try {
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: options.intraOpThreads ?? 1,
      interOpNumThreads: options.interOpThreads ?? 1,
      graphOptimizationLevel: "all",
      executionMode: "sequential",
    };
    session = await (options.thread
      ? options.thread.load(bytes, sessionOptions)
      : localSession(bytes, sessionOptions));
  } catch (err) {
    throw new ValoraError(
      "FAILED_PRECONDITION",
      `model ${name}: onnxruntime cannot load it: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
  let inputs: TensorSpec[], outputs: TensorSpec[];
  try {
    inputs = specsOf(session.inputMetadata, "input", name);
    outputs = specsOf(session.outputMetadata, "output", name);
  } catch (err) {
    await session.release();
    throw err;
  }
  const { metadata } = facts;
  // Explain every column the input carries, even trailing ones no tree splits on.
  const inputWidth = inputs[0]?.shape[1] ?? -1;
  const explainer =
    typeof facts.explainer === "string" ? facts.explainer : widenExplainer(facts.explainer, inputWidth);
  const width = typeof explainer === "string" ? inputWidth : explainer.featureCount;
  let featureNames = Array.from({ length: Math.max(0, width) }, (_, i) => `f${i}`);
  const declared = metadata[META.features];
  if (declared) {
    try {
      const parsed: unknown = JSON.parse(declared);
      if (
        Array.isArray(parsed) &&
        parsed.length === featureNames.length &&
        parsed.every((s) => typeof s === "string")
      )
        featureNames = parsed;
    } catch {
      // A malformed optional annotation leaves the positional names in place.
    }
  }
  return {
    name,
    version,
    sha256,
    session,
    inputs,
    outputs,
    metadata,
    featureNames,
    explainer,
    batchable: inputs.length > 0 && inputs.every((i) => i.shape.length >= 1 && i.shape[0] === -1),
  };
}
