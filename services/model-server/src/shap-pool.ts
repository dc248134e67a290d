import type { Worker } from "node:worker_threads";
import { ValoraError } from "@valora/kit";
import { packedShap, shareTreeShap, type CompiledTreeShap } from "@valora/kit/onnx";
import type { FromWorker, ToWorker } from "./shap-worker.js";
import { compiledWorker } from "./worker-file.js";

interface Job {
  resolve: (contributions: Float64Array) => void;
  reject: (err: unknown) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Job>;
}

/**
 * Exact TreeSHAP off the event loop: `threads` worker threads share every model's leaf tables
 * (SharedArrayBuffer, one copy in memory) and take each request's rows whole, least busy first.
 * With 0 threads, or before a model's tables are registered, rows are explained in this thread.
 * A worker that dies fails its own requests and is replaced.
 */
export class ShapPool {
  private readonly slots: Slot[] = [];
  private readonly tables = new Map<string, CompiledTreeShap>();
  private nextId = 1;
  private closed = false;

  constructor(threads: number) {
    for (let i = 0; i < threads; i++) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = compiledWorker("shap-worker");
    const slot: Slot = { worker, pending: new Map() };
    worker.on("message", (m: FromWorker) => {
      const job = slot.pending.get(m.id);
      if (!job) return;
      slot.pending.delete(m.id);
      if ("error" in m) job.reject(new ValoraError("INTERNAL", m.error));
      else job.resolve(m.contributions);
    });
    const fail = (err: unknown) => {
      for (const job of slot.pending.values())
        job.reject(
          new ValoraError(
            "INTERNAL",
            `explain worker failed: ${err instanceof Error ? err.message : String(err)}`,
          ),
        );
      slot.pending.clear();
      const at = this.slots.indexOf(slot);
      if (at >= 0 && !this.closed) {
        const next = this.spawn();
        for (const [key, tables] of this.tables)
          next.worker.postMessage({ kind: "add", key, tables } satisfies ToWorker);
        this.slots[at] = next;
      }
    };
    worker.on("error", fail);
    worker.on("exit", (code) => {
      if (!this.closed && code !== 0) fail(new Error(`exited with ${code}`));
    });
    worker.unref();
    return slot;
  }

  /**
   * Shares a model's tables with every worker and returns the copy it holds (on SharedArrayBuffers
   * when there are workers): keep that one and drop the original.
   */
  add(key: string, tables: CompiledTreeShap): CompiledTreeShap {
    const shared = this.slots.length > 0 ? shareTreeShap(tables) : tables;
    this.tables.set(key, shared);
    for (const s of this.slots) s.worker.postMessage({ kind: "add", key, tables: shared } satisfies ToWorker);
    return shared;
  }

  /** Contributions (rows × featureCount, packed) of rows packed the same way. */
  contributions(key: string, rows: Float64Array, count: number): Promise<Float64Array> {
    const tables = this.tables.get(key);
    if (!tables) return Promise.reject(new ValoraError("INTERNAL", `no TreeSHAP tables for ${key}`));
    if (this.slots.length === 0) return Promise.resolve(packedShap(tables, rows, count));
    const slot = this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ kind: "explain", id, key, rows, count } satisfies ToWorker, [
        rows.buffer as ArrayBuffer,
      ]);
    });
  }

  has(key: string): boolean {
    return this.tables.has(key);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
    this.slots.length = 0;
  }
}
