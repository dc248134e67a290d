import type { Tensor } from "./tensors.js";
import { DATATYPES } from "./datatypes.js";

export interface BatchingOptions {
  /** Most rows one onnxruntime run takes. */
  maxBatchSize: number;
  /** Longest a request waits for others to join its batch. */
  maxDelayMicros: number;
  /** onnxruntime runs in flight per model; requests arriving meanwhile queue up and batch. */
  maxConcurrentRuns?: number;
}

export type RunFn = (inputs: Tensor[]) => Promise<Tensor[]>;

interface Pending {
  inputs: Tensor[];
  rows: number;
  enqueued: bigint;
  started?: BatchStarted;
  resolve: (outputs: Tensor[]) => void;
  reject: (err: unknown) => void;
}

/** Told when a request's batch starts: how long it queued and what it runs with (for its trace). */
export type BatchStarted = (b: { queuedSeconds: number; rows: number; requests: number }) => void;

export interface BatchObserver {
  batch(rows: number, requests: number): void;
  queueDelay(seconds: number): void;
}

/** Concatenates same-named tensors along dimension 0 (pure). */
export function concatRows(parts: Tensor[][]): Tensor[] {
  const first = parts[0]!;
  return first.map((t, k) => {
    const rows = parts.reduce((s, p) => s + p[k]!.shape[0]!, 0);
    const rowSize = t.shape.slice(1).reduce((a, b) => a * b, 1);
    const data = DATATYPES[t.datatype].alloc(rows * rowSize);
    let offset = 0;
    for (const p of parts) {
      (data as Float32Array).set(p[k]!.data as Float32Array, offset);
      offset += p[k]!.data.length;
    }
    return { name: t.name, datatype: t.datatype, shape: [rows, ...t.shape.slice(1)], data };
  });
}

/** Splits batch outputs back per request by their row counts (pure; views, no copies). */
export function splitRows(outputs: Tensor[], rowCounts: number[]): Tensor[][] {
  const result: Tensor[][] = rowCounts.map(() => []);
  for (const out of outputs) {
    const rowSize = out.shape.slice(1).reduce((a, b) => a * b, 1);
    let row = 0;
    rowCounts.forEach((n, i) => {
      const data = out.data.subarray(row * rowSize, (row + n) * rowSize);
      result[i]!.push({ name: out.name, datatype: out.datatype, shape: [n, ...out.shape.slice(1)], data });
      row += n;
    });
  }
  return result;
}

/**
 * Dynamic batching for one model: concurrent requests coalesce into one run of up to
 * maxBatchSize rows, flushed when full, when the oldest request has waited maxDelayMicros, or as
 * soon as a run slot frees up with work queued. Inputs must share every dimension but the first.
 */
export class Batcher {
  private queue: Pending[] = [];
  private queuedRows = 0;
  private running = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private readonly maxRuns: number;

  constructor(
    private readonly run: RunFn,
    private readonly options: BatchingOptions,
    private readonly observer?: BatchObserver,
  ) {
    this.maxRuns = options.maxConcurrentRuns ?? 2;
  }

  submit(inputs: Tensor[], started?: BatchStarted): Promise<Tensor[]> {
    const rows = inputs[0]?.shape[0] ?? 0;
    if (rows >= this.options.maxBatchSize || this.options.maxBatchSize <= 1) {
      this.observer?.batch(rows, 1);
      started?.({ queuedSeconds: 0, rows, requests: 1 });
      return this.run(inputs);
    }
    return new Promise((resolve, reject) => {
      this.queue.push({
        inputs,
        rows,
        enqueued: process.hrtime.bigint(),
        ...(started ? { started } : {}),
        resolve,
        reject,
      });
      this.queuedRows += rows;
      this.schedule();
    });
  }

  /**
   * When to start a run: at once (after this event-loop turn, so requests that arrived together
   * batch together) when the model is idle or the queue holds a full batch; when a run is already
   * in flight, wait up to maxDelayMicros for the batch to fill before using another run slot.
   * An idle model thus adds no delay, and a busy one trades a bounded delay for bigger batches.
   */
  private schedule(): void {
    if (this.queue.length === 0 || this.running >= this.maxRuns) return;
    const full = this.queuedRows >= this.options.maxBatchSize;
    if (full || this.running === 0 || this.options.maxDelayMicros <= 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      if (!this.immediate) {
        this.immediate = setImmediate(() => {
          this.immediate = undefined;
          this.flush();
        });
      }
      return;
    }
    this.timer ??= setTimeout(
      () => {
        this.timer = undefined;
        this.flush();
      },
      Math.max(1, this.options.maxDelayMicros / 1000),
    );
  }

  private flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.queue.length === 0 || this.running >= this.maxRuns) return;
    const batch: Pending[] = [];
    let rows = 0;
    while (this.queue.length > 0 && rows + this.queue[0]!.rows <= this.options.maxBatchSize) {
      const p = this.queue.shift()!;
      batch.push(p);
      rows += p.rows;
    }
    if (batch.length === 0) batch.push(this.queue.shift()!);
    this.queuedRows -= batch.reduce((s, p) => s + p.rows, 0);
    const now = process.hrtime.bigint();
    for (const p of batch) {
      const queuedSeconds = Number(now - p.enqueued) / 1e9;
      this.observer?.queueDelay(queuedSeconds);
      p.started?.({ queuedSeconds, rows, requests: batch.length });
    }
    this.observer?.batch(rows, batch.length);
    this.running++;
    const compatible = batch.every((p) => sameTrailingShapes(p.inputs, batch[0]!.inputs));
    const work = compatible
      ? this.runBatch(batch)
      : Promise.all(batch.map((p) => this.run(p.inputs).then(p.resolve, p.reject)));
    void work.finally(() => {
      this.running--;
      // Work that queued while this run was busy goes next.
      this.schedule();
    });
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    try {
      const inputs = batch.length === 1 ? batch[0]!.inputs : concatRows(batch.map((p) => p.inputs));
      const outputs = await this.run(inputs);
      const split =
        batch.length === 1
          ? [outputs]
          : splitRows(
              outputs,
              batch.map((p) => p.rows),
            );
      batch.forEach((p, i) => p.resolve(split[i]!));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}

function sameTrailingShapes(a: Tensor[], b: Tensor[]): boolean {
  return (
    a.length === b.length &&
    a.every((t, i) => t.name === b[i]!.name && t.shape.slice(1).join(",") === b[i]!.shape.slice(1).join(","))
  );
}
