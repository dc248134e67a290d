import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Browser } from "playwright-core";
import { bin, stop, up, type Banner } from "../../cli/test/support/platform.js";
import { browserSkipReason, buildConsole, launch } from "./support/browser.js";
import { startOidcProvider } from "./support/oidc-provider.js";

const why = browserSkipReason(bin);

describe.skipIf(why !== "")(
  `console sign-in with OIDC (authorization code + PKCE)${why ? `: skipped, ${why}` : ""}`,
  () => {
    const dir = mkdtempSync(join(tmpdir(), "valora-console-oidc-"));
    let idp: Awaited<ReturnType<typeof startOidcProvider>>;
    let child: ChildProcess;
    let banner: Banner;
    let browser: Browser;

    beforeAll(async () => {
      idp = await startOidcProvider({ sub: "alice@example.com", tenant: "default", roles: ["admin"] });
      buildConsole(join(dir, "console"));
      ({ child, banner } = await up(join(dir, "data"), {
        CONSOLE_DIR: join(dir, "console"),
        OIDC_ISSUER: idp.issuer,
        CONSOLE_OIDC_CLIENT_ID: idp.clientId,
      }));
      browser = await launch();
    }, 180_000);

    afterAll(async () => {
      await browser?.close();
      if (child && child.exitCode === null) await stop(child);
      await idp?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("signs in through the identity provider and calls the API with its access token", async () => {
      const page = await browser.newPage();
      page.setDefaultTimeout(15_000);
      await page.goto(banner.rest + "/");
      await page.getByRole("button", { name: "Sign in with your organisation" }).click();
      await page.getByRole("button", { name: "Sign out" }).waitFor();
      // Back on the console, signed in as the token's subject, with the code gone from the URL.
      expect(new URL(page.url()).search).toBe("");
      const sent = idp.requests.at(-1)!;
      expect(sent.get("redirect_uri")).toBe(`${banner.rest}/auth/callback`);
      expect(sent.get("code_challenge_method")).toBe("S256");
      expect(sent.get("code_challenge")).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const stored = await page.evaluate(
        () =>
          JSON.parse(sessionStorage.getItem("valora.credential") ?? "{}") as {
            kind?: string;
            token?: string;
          },
      );
      expect(stored.kind).toBe("oidc");
      const me = await fetch(`${banner.rest}/v1/tenant`, {
        headers: { authorization: `Bearer ${stored.token!}` },
      });
      expect(((await me.json()) as { data: { principal: { subject: string } } }).data.principal.subject).toBe(
        "user:alice@example.com",
      );
      await page.close();
    });

    it("opens the issuer's origin to the console's CSP, and nothing else", async () => {
      const res = await fetch(banner.rest + "/", { headers: { accept: "text/html" } });
      const csp = res.headers.get("content-security-policy")!;
      expect(csp).toContain(`connect-src 'self' ${idp.issuer};`);
      expect(csp).toContain("script-src 'self';");
    });
  },
);
