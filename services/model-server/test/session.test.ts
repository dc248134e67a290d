import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { seededRandom } from "@valora/kit/testing";
import { localSession, threadSession } from "../src/session.js";
import { writeFixtures } from "./fixtures.js";

const fx = writeFixtures();
const options = { intraOpNumThreads: 1, interOpNumThreads: 1 };

describe("onnxruntime on a worker thread (ORT_WORKER_THREAD=true)", () => {
  it("answers what the same session on this thread answers, reports onnxruntime errors, and reloads after its worker dies", async () => {
    const bytes = readFileSync(fx.trees);
    const here = await localSession(bytes, options);
    const there = await threadSession(bytes, options);
    try {
      expect(there.inputMetadata).toEqual(JSON.parse(JSON.stringify(here.inputMetadata)));
      const rnd = seededRandom(4);
      const data = Float32Array.from({ length: 40 * 6 }, () => rnd() * 10);
      const feeds = { features: { type: "float32", data, dims: [40, 6] } };
      const [a, b] = await Promise.all([here.run(feeds), there.run(feeds)]);
      expect(Array.from(b["value"]!.data as Float32Array)).toEqual(Array.from(a["value"]!.data as Float32Array));
      expect(b["value"]!.dims).toEqual([40, 1]);
      await expect(there.run({ features: { type: "float32", data: new Float32Array(5), dims: [1, 5] } })).rejects.toThrow(/dimension|Got invalid|index/i);
      // A worker that dies fails what was in flight; the next run loads the model on a new one.
      const first = there.worker();
      const inFlight = there.run(feeds).catch((err: unknown) => err);
      await first.terminate();
      const failed = await inFlight;
      if (failed instanceof Error) expect(failed.message).toMatch(/inference worker/);
      expect(Array.from((await there.run(feeds))["value"]!.data as Float32Array)).toEqual(Array.from(a["value"]!.data as Float32Array));
      expect(there.worker()).not.toBe(first);
    } finally {
      await here.release();
      await there.release();
    }
  });
});
