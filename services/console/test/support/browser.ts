import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";

/** Debian's chromium (never a downloaded browser); CHROMIUM_PATH points elsewhere. */
export const CHROMIUM = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
export const hasChromium = existsSync(CHROMIUM);

/** Why the browser tests cannot run here ("" when they can): no chromium, or valora not built. */
export const browserSkipReason = (bin: string): string =>
  !hasChromium
    ? "no chromium here (apt-get install chromium; .ci/run does)"
    : !existsSync(bin)
      ? "valora is not built (npm run build)"
      : "";

export const consoleRoot = join(import.meta.dirname, "..", "..");
/** Screenshots of every page land here (the README shows two of them). */
export const shotsDir = join(consoleRoot, "..", "..", "test-output", "console");

export function launch(): Promise<Browser> {
  mkdirSync(shotsDir, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-dev-shm-usage"] });
}

/** Builds the console from its sources into `outDir` (what the gateway serves), as `npm run build` does. */
export function buildConsole(outDir: string): void {
  const vite = join(createRequire(import.meta.url).resolve("vite/package.json"), "..", "bin", "vite.js");
  execFileSync(
    process.execPath,
    [vite, "build", "--outDir", outDir, "--emptyOutDir", "--logLevel", "error"],
    {
      cwd: consoleRoot,
      // vitest sets NODE_ENV=test, which would make this a development build.
      env: { ...process.env, NODE_ENV: "production" },
      stdio: "inherit",
    },
  );
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

/**
 * axe-core's serious and critical violations on the page as it stands. axe is evaluated through
 * the DevTools protocol, which the page's CSP does not govern (an injected script tag would be
 * refused, as it should be).
 */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (
      globalThis as unknown as { axe: { run: (o: unknown) => Promise<{ violations: AxeViolation[] }> } }
    ).axe;
    return (await axe.run({ resultTypes: ["violations"] })).violations;
  });
  return violations.filter((v) => v.impact === "serious" || v.impact === "critical");
}

/** Pure: violations as a readable list for an assertion message. */
export const describeViolations = (v: AxeViolation[]) =>
  v
    .map((x) => `${x.id} (${x.impact}): ${x.help} at ${x.nodes.map((n) => n.target.join(" ")).join(", ")}`)
    .join("\n");
