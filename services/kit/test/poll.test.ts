import { describe, expect, it } from "vitest";
import { pollEvery } from "../src/index.js";
import { captureLogs } from "../src/testing.js";

describe("pollEvery", () => {
  it("repeats the step, survives failures logging them at most every 30 s, and stops promptly", async () => {
    const { logger, lines } = captureLogs();
    let runs = 0;
    const poller = pollEvery(
      async () => {
        runs++;
        if (runs % 2 === 0) throw new Error(`boom ${runs}`);
      },
      { intervalMs: 5, logger, message: "step failed" },
    );
    await expect.poll(() => runs, { timeout: 2000 }).toBeGreaterThan(6);
    const started = Date.now();
    const slow = pollEvery(async () => undefined, { intervalMs: 60_000, logger, message: "x" });
    await slow.stop();
    expect(Date.now() - started).toBeLessThan(1000);
    await poller.stop();
    const after = runs;
    await new Promise((r) => setTimeout(r, 30));
    expect(runs).toBe(after);
    expect(lines.filter((l) => l["msg"] === "step failed")).toHaveLength(1);
  });
});
