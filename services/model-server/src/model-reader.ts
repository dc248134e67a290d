/**
 * What a model server needs from an ONNX file besides the onnxruntime session: its metadata and
 * how to explain it. Reading it means parsing the whole graph — for a forest of a few thousand
 * trees, a hundred MB or more of short-lived JS objects — so it is done on a short-lived worker
 * thread: the garbage dies with the worker's heap at once instead of staying resident in the
 * server's until V8 gets round to shrinking it, and the event loop keeps answering health checks
 * meanwhile. Only the metadata and the leaf tables (on SharedArrayBuffers) come back.
 */
import { locateTreeEnsemble, metadataOf, parseModel } from "@valora/kit/onnx";
import { treeExplainer, type TreeExplainer } from "./tree-explainer.js";
import { compiledWorker } from "./worker-file.js";

export interface ModelFacts {
  metadata: Record<string, string>;
  /** Over the columns the trees split on: widen it to the session's input (widenExplainer). */
  explainer: TreeExplainer | string;
}

export type ToReader = { bytes: Uint8Array };
export type FromReader =
  | { facts: ModelFacts; needsTrees?: undefined }
  | { needsTrees: true; metadata: Record<string, string> }
  | { error: string };

/**
 * Pure apart from parsing: metadata and explainer of a model. With `shared`, leaf tables are
 * built on SharedArrayBuffers; forests whose tables are too large keep their parsed trees, which
 * cannot cross threads (`needsTrees`: the caller reads the model itself).
 */
export function readModel(bytes: Uint8Array, shared: boolean): FromReader {
  const proto = parseModel(bytes);
  const metadata = metadataOf(proto);
  const located = locateTreeEnsemble(proto);
  if (typeof located === "string") return { facts: { metadata, explainer: located } };
  const explainer = treeExplainer(located.ensemble, located.ensemble.featureCount, { shared });
  if (!explainer.tables && shared) return { needsTrees: true, metadata };
  return { facts: { metadata, explainer } };
}

// One model read at a time: each parse peaks at many times the model's size, and models load together.
let queue: Promise<unknown> = Promise.resolve();

/**
 * readModel on a worker thread that exits when done, one model at a time; very large forests,
 * whose parsed trees must stay, are read again on this thread.
 */
export function readModelOffThread(bytes: Uint8Array): Promise<ModelFacts> {
  const read = queue.then(() => readOnWorker(bytes));
  queue = read.catch(() => undefined);
  return read;
}

async function readOnWorker(bytes: Uint8Array): Promise<ModelFacts> {
  const worker = compiledWorker("model-reader-worker", { youngGenerationMb: null });
  try {
    const reply = await new Promise<FromReader>((resolve, reject) => {
      worker.once("message", resolve);
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`model reader exited with ${code}`)));
      worker.postMessage({ bytes } satisfies ToReader);
    });
    if ("error" in reply) throw new Error(reply.error);
    if (reply.needsTrees) {
      const here = readModel(bytes, false);
      if ("error" in here || here.needsTrees) throw new Error("model could not be read");
      return here.facts;
    }
    return reply.facts;
  } finally {
    await worker.terminate();
  }
}
