import { describe, expect, it } from "vitest";
import { WorkQueue } from "../src/index.js";

describe("WorkQueue", () => {
  it("de-duplicates keys and never hands one key to two workers at once", async () => {
    const q = new WorkQueue();
    q.add("a");
    q.add("a");
    q.add("b");
    expect(q.length).toBe(2);
    const first = await q.get();
    expect(first).toBe("a");
    q.add("a"); // changed while processing: re-queued when done, not handed out now
    expect(await q.get()).toBe("b");
    expect(q.length).toBe(0);
    q.done("a");
    expect(await q.get()).toBe("a");
  });

  it("backs off exponentially per key and forgets on success", () => {
    const q = new WorkQueue({ baseDelayMs: 10, maxDelayMs: 50 });
    expect([
      q.addRateLimited("k"),
      q.addRateLimited("k"),
      q.addRateLimited("k"),
      q.addRateLimited("k"),
    ]).toEqual([10, 20, 40, 50]);
    q.forget("k");
    expect(q.failuresOf("k")).toBe(0);
    q.shutDown();
  });

  it("keeps the earliest of several delayed adds: a quick retry does not wait behind a long requeue", async () => {
    const q = new WorkQueue();
    q.addAfter("k", 60_000);
    q.addAfter("k", 10);
    q.addAfter("k", 30_000);
    const started = Date.now();
    expect(await q.get()).toBe("k");
    expect(Date.now() - started).toBeLessThan(5_000);
    q.shutDown();
  });

  it("delivers delayed keys, and returns undefined to waiting workers on shutdown", async () => {
    const q = new WorkQueue();
    q.addAfter("later", 20);
    expect(await q.get()).toBe("later");
    const waiting = q.get();
    q.shutDown();
    expect(await waiting).toBeUndefined();
  });
});
