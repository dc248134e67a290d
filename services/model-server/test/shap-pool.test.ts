import { describe, expect, it } from "vitest";
import { seededRandom } from "@valora/kit";
import { compileTreeShap, shapValues } from "@valora/kit/onnx";
import { randomEnsemble } from "@valora/kit/testing";
import { ShapPool } from "../src/shap-pool.js";
import { coalesceRows } from "../src/shap-batch.js";

describe("ShapPool: TreeSHAP on worker threads over shared tables", () => {
  const ensemble = randomEnsemble(5, { trees: 40, depth: 5, features: 6 });
  const tables = compileTreeShap(ensemble);
  const rnd = seededRandom(3);
  const rows = Array.from({ length: 20 }, () =>
    Array.from({ length: 6 }, () => (rnd() < 0.1 ? Number.NaN : rnd() * 10)),
  );
  const packed = () => Float64Array.from(rows.flat());

  it("answers what the event loop would, for concurrent requests spread over its workers, and after a worker dies", async () => {
    const pool = new ShapPool(2);
    try {
      pool.add("m@1", tables);
      const expected = rows.map((r) => shapValues(ensemble, r).contributions);
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => pool.contributions("m@1", packed(), rows.length)),
      );
      for (const out of answers)
        rows.forEach((_, r) => expected[r]!.forEach((v, j) => expect(out[r * 6 + j]).toBeCloseTo(v, 12)));
      // A worker that dies fails its requests and is replaced with the tables re-shared.
      const victim = (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots[0]!
        .worker;
      await victim.terminate();
      await new Promise((r) => setTimeout(r, 50));
      const again = await Promise.all([
        pool.contributions("m@1", packed(), rows.length),
        pool.contributions("m@1", packed(), rows.length),
      ]);
      for (const out of again) expect(out[0]).toBeCloseTo(expected[0]![0]!, 12);
      await expect(pool.contributions("ghost@1", packed(), 1)).rejects.toMatchObject({ code: "INTERNAL" });
    } finally {
      await pool.close();
    }
  });

  it("answers requests of different sizes that queue up together, each with its own rows", async () => {
    const pool = new ShapPool(1);
    try {
      pool.add("m@1", tables);
      const sizes = [1, 3, 20, 2, 1, 7, 20, 1];
      let from = 0;
      const requests = sizes.map((n) => {
        const mine = Array.from({ length: n }, (_, i) => rows[(from + i) % rows.length]!);
        from += n;
        return mine;
      });
      const answers = await Promise.all(
        requests.map((mine) => pool.contributions("m@1", Float64Array.from(mine.flat()), mine.length)),
      );
      requests.forEach((mine, q) => {
        expect(answers[q]).toHaveLength(mine.length * 6);
        mine.forEach((x, r) =>
          shapValues(ensemble, x).contributions.forEach((v, j) =>
            expect(answers[q]![r * 6 + j]).toBeCloseTo(v, 12),
          ),
        );
      });
    } finally {
      await pool.close();
    }
  });

  it("coalesces packed rows and cuts the answer back per request", () => {
    const jobs = [
      { rows: Float64Array.of(1, 2, 3, 4), count: 2 },
      { rows: Float64Array.of(5, 6), count: 1 },
    ];
    const { rows: block, count, split } = coalesceRows(jobs, 2);
    expect(count).toBe(3);
    expect([...block]).toEqual([1, 2, 3, 4, 5, 6]);
    const parts = split(Float64Array.of(10, 20, 30, 40, 50, 60));
    expect(parts.map((p) => [...p])).toEqual([
      [10, 20, 30, 40],
      [50, 60],
    ]);
    expect(parts[0]!.buffer).not.toBe(parts[1]!.buffer);
  });

  it("with no threads, explains in this thread", async () => {
    const pool = new ShapPool(0);
    pool.add("m@1", tables);
    const out = await pool.contributions("m@1", packed(), rows.length);
    expect(out[1]).toBeCloseTo(shapValues(ensemble, rows[0]!).contributions[1]!, 12);
    await pool.close();
  });
});
