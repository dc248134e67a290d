/**
 * Worker thread of the ShapPool: holds shared TreeSHAP tables by key and answers
 * { id, key, rows (packed), count } with the packed contributions (rows × features).
 */
import { parentPort } from "node:worker_threads";
import { packedShap, type CompiledTreeShap } from "@valora/kit/onnx";

const tables = new Map<string, CompiledTreeShap>();

export type ToWorker = { kind: "add"; key: string; tables: CompiledTreeShap } | { kind: "explain"; id: number; key: string; rows: Float64Array; count: number };
export type FromWorker = { id: number; contributions: Float64Array } | { id: number; error: string };

parentPort?.on("message", (m: ToWorker) => {
  if (m.kind === "add") tables.set(m.key, m.tables);
  else {
    const c = tables.get(m.key);
    if (!c) {
      parentPort!.postMessage({ id: m.id, error: `no TreeSHAP tables for ${m.key}` } satisfies FromWorker);
      return;
    }
    const out = packedShap(c, m.rows, m.count);
    parentPort!.postMessage({ id: m.id, contributions: out } satisfies FromWorker, [out.buffer as ArrayBuffer]);
  }
});
