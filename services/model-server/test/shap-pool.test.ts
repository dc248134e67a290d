import { describe, expect, it } from "vitest";
import { seededRandom } from "@valora/kit";
import { compileTreeShap, shapValues } from "@valora/kit/onnx";
import { randomEnsemble } from "@valora/kit/testing";
import { ShapPool } from "../src/shap-pool.js";

describe("ShapPool: TreeSHAP on worker threads over shared tables", () => {
  const ensemble = randomEnsemble(5, { trees: 40, depth: 5, features: 6 });
  const tables = compileTreeShap(ensemble);
  const rnd = seededRandom(3);
  const rows = Array.from({ length: 20 }, () => Array.from({ length: 6 }, () => (rnd() < 0.1 ? Number.NaN : rnd() * 10)));
  const packed = () => Float64Array.from(rows.flat());

  it("answers what the event loop would, for concurrent requests spread over its workers, and after a worker dies", async () => {
    const pool = new ShapPool(2);
    try {
      pool.add("m@1", tables);
      const expected = rows.map((r) => shapValues(ensemble, r).contributions);
      const answers = await Promise.all(Array.from({ length: 6 }, () => pool.contributions("m@1", packed(), rows.length)));
      for (const out of answers) rows.forEach((_, r) => expected[r]!.forEach((v, j) => expect(out[r * 6 + j]).toBeCloseTo(v, 12)));
      // A worker that dies fails its requests and is replaced with the tables re-shared.
      const victim = (pool as unknown as { slots: { worker: { terminate(): Promise<number> } }[] }).slots[0]!.worker;
      await victim.terminate();
      await new Promise((r) => setTimeout(r, 50));
      const again = await Promise.all([pool.contributions("m@1", packed(), rows.length), pool.contributions("m@1", packed(), rows.length)]);
      for (const out of again) expect(out[0]).toBeCloseTo(expected[0]![0]!, 12);
      await expect(pool.contributions("ghost@1", packed(), 1)).rejects.toMatchObject({ code: "INTERNAL" });
    } finally {
      await pool.close();
    }
  });

  it("with no threads, explains in this thread", async () => {
    const pool = new ShapPool(0);
    pool.add("m@1", tables);
    const out = await pool.contributions("m@1", packed(), rows.length);
    expect(out[1]).toBeCloseTo(shapValues(ensemble, rows[0]!).contributions[1]!, 12);
    await pool.close();
  });
});
