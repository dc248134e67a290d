import type { ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { bin, root, stop, up, type Banner } from "../../cli/test/support/platform.js";
import { CAR } from "../../../e2e/support.js";
import {
  buildConsole,
  describeViolations,
  browserSkipReason,
  launch,
  seriousViolations,
  shotsDir,
} from "./support/browser.js";

const why = browserSkipReason(bin);

describe.skipIf(why !== "")(
  `the console in a real browser against valora up${why ? `: skipped, ${why}` : ""}`,
  () => {
    const dir = mkdtempSync(join(tmpdir(), "valora-console-"));
    const manifests = join(dir, "manifests");
    const consoleDir = join(dir, "console");
    let child: ChildProcess;
    let banner: Banner;
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    const pageErrors: string[] = [];

    beforeAll(async () => {
      cpSync(join(root, "manifests"), manifests, { recursive: true });
      buildConsole(consoleDir);
      ({ child, banner } = await up(join(dir, "data"), {
        VALORA_MANIFESTS: manifests,
        CONSOLE_DIR: consoleDir,
      }));
      browser = await launch();
      context = await browser.newContext({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
      page = await context.newPage();
      page.setDefaultTimeout(15_000);
      page.on("pageerror", (e) => pageErrors.push(String(e)));
      page.on("console", (m) => {
        // A refused request is logged by the browser; CSP violations and script errors are what matter.
        if (m.type() === "error" && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text());
      });
    }, 180_000);

    afterAll(async () => {
      await browser?.close();
      if (child && child.exitCode === null) await stop(child);
      rmSync(dir, { recursive: true, force: true });
    });

    const shot = (name: string) => page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage: true });
    /** Opens a page by its URL, signed in (the header's Sign out is there) with its title shown. */
    const go = async (path: string) => {
      const signedIn = await page.evaluate(() => sessionStorage.length > 0).catch(() => false);
      if (!signedIn) {
        await page.goto(banner.rest + "/");
        await page.getByLabel("API key").fill(banner.apiKey!);
        await page.getByRole("button", { name: "Sign in" }).click();
        await page.getByRole("button", { name: "Sign out" }).waitFor();
      }
      await page.goto(banner.rest + path);
      await page.getByRole("button", { name: "Sign out" }).waitFor();
      await page.getByRole("heading", { level: 2 }).first().waitFor();
    };
    const expectAccessible = async (where: string) => {
      const v = await seriousViolations(page);
      expect(v, `${where}:\n${describeViolations(v)}`).toEqual([]);
    };

    it("signs in with an API key kept in session storage only, and refuses a wrong one with the API's message", async () => {
      await page.goto(banner.rest + "/");
      await expect.poll(() => page.getByLabel("API key").isVisible()).toBe(true);
      await expectAccessible("sign-in");
      await shot("sign-in");
      await page.getByLabel("API key").fill("vk_wrongwrong_0123456789abcdef0123456789abcdef");
      await page.getByRole("button", { name: "Sign in" }).click();
      await expect.poll(() => page.getByRole("alert").innerText()).toContain("UNAUTHENTICATED");
      await page.getByLabel("API key").fill(banner.apiKey!);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("heading", { name: "Value an asset" }).waitFor();
      const stored = await page.evaluate(() => ({
        session: sessionStorage.length,
        local: localStorage.length,
        url: location.href,
      }));
      expect(stored).toMatchObject({ session: 1, local: 0 });
      expect(stored.url).not.toContain(banner.apiKey!);
      // A reload keeps the tab signed in; the page's own URL is served by the SPA fallback.
      await page.reload();
      await page.getByRole("heading", { name: "Value an asset" }).waitFor();
    });

    it("values a house: value on its interval, warnings, the waterfall, the comparables and their map", async () => {
      await go("/value");
      await page.getByRole("combobox", { name: "Asset class" }).click();
      await page.getByRole("option", { name: "real-estate" }).click();
      await page.getByRole("button", { name: "Fill with an example" }).click();
      await page.getByRole("button", { name: "Value", exact: true }).click();
      await page.getByTestId("value").waitFor();
      expect(await page.getByTestId("value").innerText()).toMatch(/^\$\d{2,3},\d{3}$/);
      await page.getByTestId("waterfall").locator("svg .recharts-bar-rectangle").first().waitFor();
      expect(await page.getByTestId("waterfall").locator(".recharts-bar-rectangle").count()).toBeGreaterThan(
        3,
      );
      await page.getByTestId("comps-map").waitFor();
      expect(await page.getByTestId("comps-map").locator("polygon").count()).toBeGreaterThan(0);
      expect(await page.getByTestId("comps-map").locator("circle").count()).toBeGreaterThan(2);
      expect(await page.getByTestId("comparables").locator("tbody tr").count()).toBeGreaterThan(0);
      await expectAccessible("value");
      await shot("valuation");
      await page.getByTestId("valuation-result").screenshot({ path: join(shotsDir, "valuation-result.png") });
      // A validity breach comes back as the API's 400 with the field named.
      await page.getByRole("textbox", { name: "Gr liv area" }).fill("-5");
      await page.getByRole("button", { name: "Value", exact: true }).click();
      await expect.poll(() => page.getByRole("alert").first().innerText()).toContain("gr_liv_area");
    });

    it("runs a 1,000-row CSV job: checked before upload, a live bar to 100%, results downloaded", async () => {
      const classes = (await (
        await fetch(`${banner.rest}/v1/asset-classes`, {
          headers: { authorization: `Bearer ${banner.apiKey!}` },
        })
      ).json()) as {
        data: { name: string; fields: { name: string; training?: { categories?: string[] } }[] }[];
      };
      const autos = classes.data.find((c) => c.name === "autos")!;
      const cats = (f: string) => autos.fields.find((x) => x.name === f)!.training!.categories!;
      const makes = cats("make");
      const bodies = cats("body");
      const rows = Array.from({ length: 1000 }, (_, i) =>
        [
          5000 + ((i * 37) % 40000),
          [4, 6, 8][i % 3],
          i % 2 ? 4 : 2,
          1,
          i % 2,
          (i >> 1) % 2,
          makes[i % makes.length],
          bodies[i % bodies.length],
        ].join(","),
      );
      const csv = join(dir, "cars.csv");
      writeFileSync(csv, ["mileage,cylinder,doors,cruise,sound,leather,make,body", ...rows].join("\n"));
      await go("/jobs");
      await page.getByRole("combobox", { name: "Asset class" }).click();
      await page.getByRole("option", { name: "autos" }).click();
      await page.getByTestId("csv-input").setInputFiles(csv);
      await expect.poll(() => page.getByTestId("csv-check").innerText()).toContain("1,000 rows");
      await page.getByRole("button", { name: "Start the job" }).click();
      await page.getByTestId("job-status").waitFor();
      await expect
        .poll(() => page.getByTestId("job-progress").innerText(), { timeout: 60_000 })
        .toContain("1,000 of 1,000 rows (100%)");
      await expect.poll(() => page.getByTestId("job-status").innerText()).toMatch(/succeeded/i);
      await expectAccessible("job");
      await shot("job-done");
      const [download] = await Promise.all([
        page.waitForEvent("download"),
        page.getByRole("button", { name: "Download results" }).click(),
      ]);
      const lines = readFileSync(await download.path(), "utf8")
        .trim()
        .split("\n");
      expect(lines).toHaveLength(1001);
      await go("/jobs");
      await expect.poll(() => page.getByRole("table").innerText()).toMatch(/autos\s+succeeded/i);
      await expectAccessible("jobs");
      await shot("jobs-list");
    }, 90_000);

    it("creates a key with its secret shown once, and revokes it", async () => {
      await go("/account/keys");
      await page.getByRole("textbox", { name: "Name" }).fill("console-e2e");
      await page.getByRole("button", { name: "Create key" }).click();
      const secret = await page.getByTestId("secret").innerText();
      expect(secret).toMatch(/^vk_/);
      const works = await fetch(`${banner.rest}/v1/models`, {
        headers: { authorization: `Bearer ${secret}` },
      });
      expect(works.status).toBe(200);
      await page.getByRole("button", { name: "Done" }).click();
      await page.getByRole("dialog").waitFor({ state: "hidden" });
      await expectAccessible("keys");
      await shot("key-created");
      page.once("dialog", (d) => void d.accept());
      await page.getByRole("button", { name: "Revoke console-e2e" }).click();
      await expect.poll(() => page.getByTestId("keys").innerText()).toMatch(/console-e2e[\s\S]*revoked/i);
      const refused = await fetch(`${banner.rest}/v1/models`, {
        headers: { authorization: `Bearer ${secret}` },
      });
      expect(refused.status).toBe(401);
    });

    it("shows a canary's step move on the Models page after the CR is edited", async () => {
      await go("/models");
      const file = join(manifests, "autos.yaml");
      const text = readFileSync(file, "utf8");
      const champion = /champion:\n\s+version: (\S+)\n\s+uri: (\S+)\n\s+sha256: (\S+)/.exec(text)!;
      const candidate = [
        "  candidate:",
        "    version: gm-v1-rebuilt",
        `    uri: ${champion[2]}`,
        `    sha256: ${champion[3]}`,
        "    canary:",
        "      steps: [50, 100]",
        "      interval: 5s",
        "      analysis:",
        "        minRequests: 5",
        "        minPairs: 5",
        "        pairedSamplePercent: 100",
        "        maxLatencyP99Ms: 5000",
      ].join("\n");
      writeFileSync(file, text.replace("\n  serving:", `\n${candidate}\n  serving:`));
      // Traffic for the analysis, as clients would send it.
      let stopLoad = false;
      const load = (async () => {
        for (let i = 0; !stopLoad; i++)
          await fetch(`${banner.rest}/v1/valuations`, {
            method: "POST",
            headers: { authorization: `Bearer ${banner.apiKey!}`, "content-type": "application/json" },
            body: JSON.stringify({
              assetClass: "autos",
              // Distinct cars (uncached), so each request reaches both versions' analysis.
              attributes: { ...CAR, mileage: 10_000 + i },
            }),
          }).catch(() => undefined);
      })();
      try {
        const card = page.getByTestId("model-autos");
        await expect.poll(() => card.innerText(), { timeout: 60_000 }).toContain("Candidate traffic: 50%");
        await expectAccessible("models");
        await shot("models-canary");
        // The figure for the README: once the first paired valuations are in (if the step has not moved yet).
        await expect
          .poll(() => card.innerText(), { timeout: 20_000 })
          .toMatch(/[1-9]\d* paired valuations|100%/)
          .catch(() => undefined);
        await card.screenshot({ path: join(shotsDir, "models-canary-card.png") });
        await expect
          .poll(() => card.innerText(), { timeout: 90_000 })
          .toMatch(/Candidate traffic: 100%|CHAMPION GM-V1-REBUILT|champion gm-v1-rebuilt/i);
      } finally {
        stopLoad = true;
        await load;
      }
    }, 180_000);

    it("every page answers by URL, keyboard-reachable, without serious accessibility violations, at 1280 and 390 px", async () => {
      for (const [width, suffix] of [
        [1280, ""],
        [390, "-390"],
      ] as const) {
        await page.setViewportSize({ width, height: 844 });
        for (const path of [
          "/value",
          "/jobs",
          "/models",
          "/data",
          "/market",
          "/account/keys",
          "/account/users",
          "/account/webhooks",
          "/account/audit",
          "/account/usage",
          "/account/plan",
        ]) {
          await go(path);
          await page.waitForLoadState("networkidle");
          await expectAccessible(`${path} at ${width}px`);
          await shot(`${path.slice(1).replace("/", "-")}${suffix}`);
          // Nothing wider than the screen: the layout holds at a phone's width.
          const overflow = await page.evaluate(
            () => document.documentElement.scrollWidth - window.innerWidth,
          );
          expect(overflow, `${path} at ${width}px overflows by ${overflow}px`).toBeLessThanOrEqual(1);
        }
      }
      // The first control is reachable by Tab (a skip or the menu), as keyboard users need.
      await page.setViewportSize({ width: 1280, height: 900 });
      await go("/models");
      await page.keyboard.press("Tab");
      expect(await page.evaluate(() => document.activeElement?.tagName)).toMatch(/^(A|BUTTON|INPUT)$/);
      expect(pageErrors).toEqual([]);
    }, 120_000);
  },
);
