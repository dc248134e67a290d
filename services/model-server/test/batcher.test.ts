import { describe, expect, it } from "vitest";
import { Batcher, type Tensor } from "../src/index.js";

const row = (v: number): Tensor[] => [
  { name: "x", datatype: "FP32", shape: [1, 2], data: new Float32Array([v, v * 10]) },
];

/** Doubles every value; records the batch sizes it saw. */
function doubling(delayMs = 1) {
  const batches: number[] = [];
  const run = async (inputs: Tensor[]): Promise<Tensor[]> => {
    batches.push(inputs[0]!.shape[0]!);
    await new Promise((r) => setTimeout(r, delayMs));
    const x = inputs[0]!.data as Float32Array;
    return [{ name: "y", datatype: "FP32", shape: [inputs[0]!.shape[0]!, 2], data: x.map((v) => v * 2) }];
  };
  return { run, batches };
}

describe("Batcher", () => {
  it("coalesces concurrent requests into batches of at most maxBatchSize and splits results back", async () => {
    const { run, batches } = doubling(5);
    const b = new Batcher(run, { maxBatchSize: 4, maxDelayMicros: 2000, maxConcurrentRuns: 1 });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => b.submit(row(i))));
    results.forEach((r, i) => expect(Array.from(r[0]!.data as Float32Array)).toEqual([2 * i, 20 * i]));
    expect(batches.every((n) => n <= 4)).toBe(true);
    expect(batches.reduce((a, c) => a + c, 0)).toBe(10);
    expect(batches.length).toBeLessThanOrEqual(4);
  });

  it("flushes a lone request after maxDelayMicros", async () => {
    const { run, batches } = doubling();
    const b = new Batcher(run, { maxBatchSize: 64, maxDelayMicros: 1000 });
    const r = await b.submit(row(3));
    expect(Array.from(r[0]!.data as Float32Array)).toEqual([6, 60]);
    expect(batches).toEqual([1]);
  });

  it("runs a request at least maxBatchSize rows on its own", async () => {
    const { run, batches } = doubling();
    const b = new Batcher(run, { maxBatchSize: 2, maxDelayMicros: 1000 });
    const big: Tensor[] = [{ name: "x", datatype: "FP32", shape: [3, 2], data: new Float32Array(6).fill(1) }];
    const r = await b.submit(big);
    expect(r[0]!.shape).toEqual([3, 2]);
    expect(batches).toEqual([3]);
  });

  it("rejects every request of a failed batch, and keeps serving", async () => {
    let fail = true;
    const b = new Batcher(
      async (inputs) => {
        if (fail) throw new Error("boom");
        return inputs;
      },
      { maxBatchSize: 8, maxDelayMicros: 1000 },
    );
    const settled = await Promise.allSettled([b.submit(row(1)), b.submit(row(2))]);
    expect(settled.map((s) => s.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    expect((await b.submit(row(5)))[0]!.shape).toEqual([1, 2]);
  });
});
