/**
 * Worker thread of the ShapPool: holds shared TreeSHAP tables by key and answers
 * { id, key, rows (packed), count } with the packed contributions (rows × features).
 * Requests that queue up while it computes are answered together: their rows go through one
 * leaf-major pass per model (each leaf's table entries read once for all of them).
 */
import { parentPort } from "node:worker_threads";
import { packedShap, type CompiledTreeShap } from "@valora/kit/onnx";
import { coalesceRows } from "./shap-batch.js";

const tables = new Map<string, CompiledTreeShap>();

export type ToWorker =
  | { kind: "add"; key: string; tables: CompiledTreeShap }
  | { kind: "explain"; id: number; key: string; rows: Float64Array; count: number };
export type FromWorker = { id: number; contributions: Float64Array } | { id: number; error: string };
type Explain = Extract<ToWorker, { kind: "explain" }>;

let queue: Explain[] = [];

function answer(): void {
  const jobs = queue;
  queue = [];
  const byKey = new Map<string, Explain[]>();
  for (const job of jobs) {
    const group = byKey.get(job.key);
    if (group) group.push(job);
    else byKey.set(job.key, [job]);
  }
  for (const [key, group] of byKey) {
    const c = tables.get(key);
    if (!c) {
      for (const job of group)
        parentPort!.postMessage({ id: job.id, error: `no TreeSHAP tables for ${key}` } satisfies FromWorker);
      continue;
    }
    let parts: Float64Array[];
    try {
      const { rows, count, split } = coalesceRows(group, c.featureCount);
      parts = split(packedShap(c, rows, count));
    } catch (err) {
      // Every request of the batch is answered, with the error, rather than left to time out.
      for (const job of group)
        parentPort!.postMessage({
          id: job.id,
          error: err instanceof Error ? err.message : String(err),
        } satisfies FromWorker);
      continue;
    }
    group.forEach((job, i) =>
      parentPort!.postMessage({ id: job.id, contributions: parts[i]! } satisfies FromWorker, [
        parts[i]!.buffer as ArrayBuffer,
      ]),
    );
  }
}

parentPort?.on("message", (m: ToWorker) => {
  if (m.kind === "add") tables.set(m.key, m.tables);
  else {
    // Messages already waiting are delivered before the check phase: they join this batch.
    if (queue.length === 0) setImmediate(answer);
    queue.push(m);
  }
});
