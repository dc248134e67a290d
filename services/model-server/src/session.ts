import type { Worker } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import type { TensorData } from "./datatypes.js";
import { compiledWorker } from "./worker-file.js";

/** An input or output tensor as plain data (what crosses to a worker thread). */
export interface FeedTensor {
  type: string;
  data: TensorData;
  dims: number[];
}

/** What the model server needs of an onnxruntime session, in this thread or on a worker thread. */
export interface ModelSession {
  inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  outputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  run(feeds: Record<string, FeedTensor>): Promise<Record<string, { data: TensorData; dims: readonly number[] }>>;
  release(): Promise<void>;
}

export type ToSessionWorker = { kind: "load"; bytes: Uint8Array; options: ort.InferenceSession.SessionOptions } | { kind: "run"; id: number; feeds: Record<string, FeedTensor> };
export type FromSessionWorker =
  | { kind: "loaded"; inputs: ort.InferenceSession.ValueMetadata[]; outputs: ort.InferenceSession.ValueMetadata[] }
  | { kind: "failed"; error: string }
  | { kind: "result"; id: number; outputs?: Record<string, { data: TensorData; dims: number[] }>; error?: string };

/** One onnxruntime run on plain tensors, the same on this thread and on a worker thread. */
export async function runOnPlainTensors(session: ort.InferenceSession, feeds: Record<string, FeedTensor>): Promise<Record<string, { data: TensorData; dims: number[] }>> {
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) tensors[name] = new ort.Tensor(t.type as "float32", t.data as Float32Array, t.dims);
  const results = await session.run(tensors);
  const out: Record<string, { data: TensorData; dims: number[] }> = {};
  for (const [name, value] of Object.entries(results)) out[name] = { data: value.data as TensorData, dims: value.dims.map(Number) };
  return out;
}

/** A session on this thread: run blocks the event loop for the length of the onnxruntime call. */
export async function localSession(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ModelSession> {
  const session = await ort.InferenceSession.create(bytes, options);
  return {
    inputMetadata: session.inputMetadata,
    outputMetadata: session.outputMetadata,
    run: (feeds) => runOnPlainTensors(session, feeds),
    release: () => session.release(),
  };
}

/**
 * A session on its own worker thread: the event loop only posts feeds and receives outputs, so
 * HTTP and gRPC handling overlap inference and use a second core. A worker that dies fails the
 * runs in flight; the next run loads the model again on a new worker.
 */
export async function threadSession(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ModelSession & { worker(): Worker }> {
  let worker: Worker;
  let ready: Promise<void> = Promise.resolve();
  let nextId = 1;
  const pending = new Map<number, { resolve: (v: Record<string, { data: TensorData; dims: number[] }>) => void; reject: (e: Error) => void }>();
  let released = false;
  const start = (): Promise<FromSessionWorker & { kind: "loaded" }> =>
    new Promise((resolve, reject) => {
      worker = compiledWorker("session-worker");
      worker.unref();
      const onLoad = (m: FromSessionWorker) => {
        if (m.kind === "loaded") resolve(m);
        else if (m.kind === "failed") reject(new Error(m.error));
      };
      worker.once("message", onLoad);
      worker.on("message", (m: FromSessionWorker) => {
        if (m.kind !== "result") return;
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        if (m.error !== undefined) p.reject(new Error(m.error));
        else p.resolve(m.outputs!);
      });
      const died = (why: string) => {
        for (const p of pending.values()) p.reject(new Error(`inference worker ${why}`));
        pending.clear();
        if (!released) ready = start().then(() => undefined, () => undefined);
      };
      worker.on("error", (err) => died(`failed: ${err.message}`));
      worker.on("exit", (code) => {
        if (!released && code !== 0) died(`exited with ${code}`);
      });
      worker.postMessage({ kind: "load", bytes, options } satisfies ToSessionWorker);
    });
  const loaded = await start();
  return {
    inputMetadata: loaded.inputs,
    outputMetadata: loaded.outputs,
    worker: () => worker,
    async run(feeds) {
      await ready;
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ kind: "run", id, feeds } satisfies ToSessionWorker);
      });
    },
    async release() {
      released = true;
      await worker.terminate();
    },
  };
}
