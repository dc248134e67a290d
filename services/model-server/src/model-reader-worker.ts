/** Worker thread of readModelOffThread (model-reader.ts): reads one model, answers, and is terminated. */
import { parentPort } from "node:worker_threads";
import { readModel, type FromReader, type ToReader } from "./model-reader.js";

parentPort?.once("message", (m: ToReader) => {
  try {
    parentPort!.postMessage(readModel(m.bytes, true));
  } catch (err) {
    parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) } satisfies FromReader);
  }
});
