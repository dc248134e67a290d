/**
 * Worker thread holding one onnxruntime session, so inference runs off the event loop
 * (onnxruntime-node's run is synchronous on the calling thread). Messages: ToSessionWorker in,
 * FromSessionWorker out.
 */
import { parentPort } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { runOnPlainTensors, type FromSessionWorker, type ToSessionWorker } from "./session.js";

let session: ort.InferenceSession | undefined;

const post = (m: FromSessionWorker) => parentPort!.postMessage(m);

parentPort?.on("message", (m: ToSessionWorker) => {
  void (async () => {
    if (m.kind === "load") {
      try {
        session = await ort.InferenceSession.create(m.bytes, m.options);
        post({ kind: "loaded", inputs: [...session.inputMetadata], outputs: [...session.outputMetadata] });
      } catch (err) {
        post({ kind: "failed", error: err instanceof Error ? err.message : String(err) });
      }
      return;
    }
    try {
      post({ kind: "result", id: m.id, outputs: await runOnPlainTensors(session!, m.feeds) });
    } catch (err) {
      post({ kind: "result", id: m.id, error: err instanceof Error ? err.message : String(err) });
    }
  })();
});
