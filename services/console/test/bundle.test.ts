import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "./support/browser.js";
import { buildFiles, bundleReport } from "../scripts/bundle-report.js";

describe("the console's build", () => {
  const dir = mkdtempSync(join(tmpdir(), "valora-console-build-"));
  beforeAll(() => buildConsole(dir), 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("loads under 250 KB of gzipped JavaScript at first; pages, charts and the map are lazy chunks", () => {
    const r = bundleReport(dir);
    process.stdout.write(`console bundle: ${JSON.stringify(r)}\n`);
    expect(r.initialJsGzipBytes).toBeLessThan(250 * 1024);
    // The charting library and h3 are not in the first load.
    expect(r.totalJsGzipBytes - r.initialJsGzipBytes).toBeGreaterThan(100 * 1024);
    expect(r.initialJsFiles.some((f) => /CartesianChart|CompsMap/.test(f))).toBe(false);
  });

  it("has no inline script (the CSP allows none) and carries no secret", () => {
    const html = readFileSync(join(dir, "index.html"), "utf8");
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    // Whatever the build ships (scripts, styles, source maps) holds no API key and no Stripe key.
    for (const f of buildFiles(dir)) {
      const text = readFileSync(f, "utf8");
      expect(/vk_[A-Za-z0-9]{10}_[A-Za-z0-9]{32}/.test(text), `an API key in ${f}`).toBe(false);
      expect(/[sr]k_(live|test)_[A-Za-z0-9]{8,}/.test(text), `a Stripe key in ${f}`).toBe(false);
    }
  });
});
