import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { seededRandom } from "@valora/kit/testing";
import { InferenceThread, localSession } from "../src/session.js";
import { writeFixtures } from "./fixtures.js";

const fx = writeFixtures();
const options = { intraOpNumThreads: 1, interOpNumThreads: 1 };

describe("onnxruntime on the inference thread (ORT_WORKER_THREAD)", () => {
  it("hosts several models on one worker, answers what the same sessions on this thread answer, reports onnxruntime errors, and reloads every session after its worker dies", async () => {
    const trees = readFileSync(fx.trees);
    const sklearn = readFileSync(fx.sklearnLike);
    const here = await localSession(trees, options);
    const thread = new InferenceThread();
    const [there, other] = await Promise.all([thread.load(trees, options), thread.load(sklearn, options)]);
    const worker = thread.current();
    try {
      expect(there.inputMetadata).toEqual(JSON.parse(JSON.stringify(here.inputMetadata)));
      expect(other.inputMetadata.map((m) => m.name)).toEqual(["float_input"]);
      const rnd = seededRandom(4);
      const data = Float32Array.from({ length: 40 * 6 }, () => rnd() * 10);
      const feeds = { features: { type: "float32", data, dims: [40, 6] } };
      const small = { float_input: { type: "float32", data: Float32Array.from([1, 2, 3]), dims: [1, 3] } };
      const [a, b, c] = await Promise.all([here.run(feeds), there.run(feeds), other.run(small)]);
      const expected = Array.from(a["value"]!.data as Float32Array);
      expect(Array.from(b["value"]!.data as Float32Array)).toEqual(expected);
      expect(b["value"]!.dims).toEqual([40, 1]);
      expect(c["variable"]!.dims).toEqual([1, 1]);
      await expect(
        there.run({ features: { type: "float32", data: new Float32Array(5), dims: [1, 5] } }),
      ).rejects.toThrow(/dimension|Got invalid|index/i);
      // A worker that dies is replaced: the next run starts a new one with both models loaded again.
      // (Killed while idle: onnxruntime-node aborts the whole process when its thread is torn down mid-run.)
      await worker.terminate();
      expect(Array.from((await there.run(feeds))["value"]!.data as Float32Array)).toEqual(expected);
      expect(thread.current()).not.toBe(worker);
      expect((await other.run(small))["variable"]!.data).toEqual(c["variable"]!.data);
      // A released session is gone from the worker; the last one stops it.
      await other.release();
      await expect(other.run(small)).rejects.toThrow(/no session/);
    } finally {
      await here.release();
      await there.release();
    }
  });

  it("refuses a model onnxruntime cannot load without harming the others", async () => {
    const thread = new InferenceThread();
    const good = await thread.load(readFileSync(fx.trees), options);
    try {
      await expect(thread.load(new Uint8Array([1, 2, 3, 4]), options)).rejects.toThrow(
        /protobuf|parse|load|model/i,
      );
      const data = new Float32Array(6);
      expect((await good.run({ features: { type: "float32", data, dims: [1, 6] } }))["value"]!.dims).toEqual([
        1, 1,
      ]);
    } finally {
      await good.release();
    }
  });
});
