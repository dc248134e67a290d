/**
 * The inference thread (InferenceThread in session.ts): holds the onnxruntime sessions of every
 * model the server hosts, so inference runs off the event loop (onnxruntime-node's run is
 * synchronous on the calling thread). Messages: ToSessionWorker in, FromSessionWorker out.
 */
import { parentPort } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import { runOnPlainTensors, type FromSessionWorker, type ToSessionWorker } from "./session.js";

// Loading is asynchronous: a run that arrives meanwhile waits for its session.
const sessions = new Map<number, Promise<ort.InferenceSession>>();

const post = (m: FromSessionWorker) => parentPort!.postMessage(m);
const failure = (err: unknown) => (err instanceof Error ? err.message : String(err));

async function handle(m: ToSessionWorker): Promise<FromSessionWorker> {
  switch (m.kind) {
    case "load": {
      const loading = ort.InferenceSession.create(m.bytes, m.options);
      sessions.set(m.session, loading);
      const session = await loading.catch((err: unknown) => {
        sessions.delete(m.session);
        throw err;
      });
      return {
        id: m.id,
        loaded: { inputs: [...session.inputMetadata], outputs: [...session.outputMetadata] },
      };
    }
    case "run": {
      const session = sessions.get(m.session);
      if (!session) throw new Error(`no session ${m.session} on the inference thread`);
      return { id: m.id, outputs: await runOnPlainTensors(await session, m.feeds) };
    }
    case "release": {
      const session = sessions.get(m.session);
      sessions.delete(m.session);
      await session?.then(
        (s) => s.release(),
        () => undefined,
      );
      return { id: m.id };
    }
  }
}

parentPort?.on("message", (m: ToSessionWorker) => {
  handle(m).then(post, (err: unknown) => post({ id: m.id, error: failure(err) }));
});
