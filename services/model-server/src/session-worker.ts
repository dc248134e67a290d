/**
 * Worker thread holding one onnxruntime session, so inference runs off the event loop
 * (onnxruntime-node's run is synchronous on the calling thread). Messages: ToSessionWorker in,
 * FromSessionWorker out.
 */
import { parentPort } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import type { FeedTensor, FromSessionWorker, ToSessionWorker } from "./session.js";

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
    if (m.kind === "release") {
      await session?.release();
      session = undefined;
      post({ kind: "released" });
      return;
    }
    try {
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, t] of Object.entries<FeedTensor>(m.feeds)) feeds[name] = new ort.Tensor(t.type as "float32", t.data as Float32Array, t.dims);
      const results = await session!.run(feeds);
      const out: Record<string, { data: FeedTensor["data"]; dims: number[] }> = {};
      for (const [name, value] of Object.entries(results)) out[name] = { data: value.data as FeedTensor["data"], dims: value.dims.map(Number) };
      post({ kind: "result", id: m.id, outputs: out });
    } catch (err) {
      post({ kind: "result", id: m.id, error: err instanceof Error ? err.message : String(err) });
    }
  })();
});
