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
  run(
    feeds: Record<string, FeedTensor>,
  ): Promise<Record<string, { data: TensorData; dims: readonly number[] }>>;
  release(): Promise<void>;
}

type Outputs = Record<string, { data: TensorData; dims: number[] }>;
type Loaded = { inputs: ort.InferenceSession.ValueMetadata[]; outputs: ort.InferenceSession.ValueMetadata[] };

/** To the inference thread: every message names the session it is about and carries a call id. */
export type ToSessionWorker =
  | {
      kind: "load";
      id: number;
      session: number;
      bytes: Uint8Array;
      options: ort.InferenceSession.SessionOptions;
    }
  | { kind: "run"; id: number; session: number; feeds: Record<string, FeedTensor> }
  | { kind: "release"; id: number; session: number };
/** From the inference thread: the answer to call `id`. */
export type FromSessionWorker = { id: number; error?: string; loaded?: Loaded; outputs?: Outputs };

/** One onnxruntime run on plain tensors, the same on this thread and on a worker thread. */
export async function runOnPlainTensors(
  session: ort.InferenceSession,
  feeds: Record<string, FeedTensor>,
): Promise<Outputs> {
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds))
    tensors[name] = new ort.Tensor(t.type as "float32", t.data as Float32Array, t.dims);
  const results = await session.run(tensors);
  const out: Outputs = {};
  for (const [name, value] of Object.entries(results))
    out[name] = { data: value.data as TensorData, dims: value.dims.map(Number) };
  return out;
}

/** A session on this thread: run blocks the event loop for the length of the onnxruntime call. */
export async function localSession(
  bytes: Uint8Array,
  options: ort.InferenceSession.SessionOptions,
): Promise<ModelSession> {
  const session = await ort.InferenceSession.create(bytes, options);
  return {
    inputMetadata: session.inputMetadata,
    outputMetadata: session.outputMetadata,
    run: (feeds) => runOnPlainTensors(session, feeds),
    release: () => session.release(),
  };
}

/**
 * One worker thread holding the onnxruntime sessions of every model this process serves: the event
 * loop only posts feeds and receives outputs, so HTTP and gRPC handling overlap inference and use
 * a second core. One thread for all models, not one each: a thread per model cost +21 MB idle for
 * the two default models, and runs on 2 cores gain nothing from more threads. A worker that dies fails the calls in flight; the next call
 * starts a new one, which loads every live session again before it runs anything.
 */
export class InferenceThread {
  private worker: Worker | undefined;
  private readonly calls = new Map<
    number,
    { resolve: (m: FromSessionWorker) => void; reject: (e: Error) => void }
  >();
  private readonly sessions = new Map<
    number,
    { bytes: Uint8Array; options: ort.InferenceSession.SessionOptions }
  >();
  private nextId = 1;
  private nextSession = 1;

  /** The worker now running (started on demand); tests terminate it to see a crash handled. */
  current(): Worker {
    if (this.worker) return this.worker;
    const worker = compiledWorker("session-worker");
    worker.unref();
    this.worker = worker;
    worker.on("message", (m: FromSessionWorker) => {
      const call = this.calls.get(m.id);
      if (!call) return;
      this.calls.delete(m.id);
      if (m.error !== undefined) call.reject(new Error(m.error));
      else call.resolve(m);
    });
    const died = (why: string) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      for (const call of this.calls.values()) call.reject(new Error(`inference worker ${why}`));
      this.calls.clear();
    };
    worker.on("error", (err) => died(`failed: ${err.message}`));
    worker.on("exit", (code) => died(`exited with ${code}`));
    // The worker handles messages in order and each run waits for its session's load.
    for (const [session, { bytes, options }] of this.sessions)
      void this.send({ kind: "load", id: this.nextId++, session, bytes, options }).catch(() => undefined);
    return worker;
  }

  private send(message: ToSessionWorker): Promise<FromSessionWorker> {
    const worker = this.current();
    return new Promise((resolve, reject) => {
      this.calls.set(message.id, { resolve, reject });
      worker.postMessage(message);
    });
  }

  async load(bytes: Uint8Array, options: ort.InferenceSession.SessionOptions): Promise<ModelSession> {
    const session = this.nextSession++;
    const reply = this.send({ kind: "load", id: this.nextId++, session, bytes, options });
    this.sessions.set(session, { bytes, options });
    let loaded: Loaded;
    try {
      loaded = (await reply).loaded!;
    } catch (err) {
      this.sessions.delete(session);
      throw err;
    }
    return {
      inputMetadata: loaded.inputs,
      outputMetadata: loaded.outputs,
      run: async (feeds) => (await this.send({ kind: "run", id: this.nextId++, session, feeds })).outputs!,
      release: async () => {
        this.sessions.delete(session);
        if (this.sessions.size > 0) await this.send({ kind: "release", id: this.nextId++, session });
        else await this.close();
      },
    };
  }

  /**
   * Stops the worker (sessions loaded later start a new one), once the calls in flight have
   * settled or `graceMs` passed: onnxruntime-node aborts the process when a thread running a
   * session is torn down mid-run.
   */
  async close(graceMs = 5_000): Promise<void> {
    const deadline = Date.now() + graceMs;
    while (this.calls.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const worker = this.worker;
    this.worker = undefined;
    for (const call of this.calls.values()) call.reject(new Error("inference worker closed"));
    this.calls.clear();
    await worker?.terminate();
  }
}
