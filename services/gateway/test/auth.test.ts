import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { PrincipalSchema, Role } from "@valora/proto/valora/v1/tenants_pb";
import { ValoraError } from "@valora/kit";
import { Authenticator, type AuthenticatorOptions } from "../src/auth.js";

/** The tenants service as the gateway sees it, answering from a script the test changes. */
function tenantsAnswering(answer: () => "ok" | "down" | "revoked") {
  const calls = { n: 0 };
  const tenants: AuthenticatorOptions["tenants"] = {
    authenticate: async () => {
      calls.n++;
      const a = answer();
      if (a === "down") throw new ValoraError("UNAVAILABLE", "the database is unavailable; retry shortly");
      if (a === "revoked") return { principal: undefined } as never;
      const principal = create(PrincipalSchema, {
        tenantId: "t1",
        tenantName: "acme",
        subject: "key:1",
        roles: [Role.API],
        plan: "pro",
      });
      return { principal } as never;
    },
    resolveSubject: async () => ({}) as never,
  };
  return { tenants, calls };
}

describe("API keys while the tenants service is down (stale-if-error)", () => {
  it("keeps a resolved key working for the grace period, then refuses it; refusals are never served stale", async () => {
    let now = 0;
    let state: "ok" | "down" | "revoked" = "ok";
    const { tenants, calls } = tenantsAnswering(() => state);
    const auth = new Authenticator({ tenants, cacheTtlMs: 5000, staleIfErrorMs: 300_000, now: () => now });
    const key = "vk_abc_secret";
    expect((await auth.authenticate(`Bearer ${key}`, "::1")).tenantName).toBe("acme");
    now = 4000;
    await auth.authenticate(`Bearer ${key}`, "::1");
    expect(calls.n).toBe(1); // fresh: from the cache
    state = "down";
    now = 60_000;
    expect((await auth.authenticate(`Bearer ${key}`, "::1")).tenantId).toBe("t1");
    now = 5000 + 300_000 + 1;
    const late = await auth.authenticate(`Bearer ${key}`, "::1").catch((e: unknown) => e);
    expect(late).toMatchObject({ code: "UNAVAILABLE" });
    // A key never resolved before is not let in during an outage.
    const unknown = await auth.authenticate("Bearer vk_new_secret", "::1").catch((e: unknown) => e);
    expect(unknown).toMatchObject({ code: "UNAVAILABLE" });
    // Back up: a revoked key is refused at once, whatever was cached.
    state = "revoked";
    const revoked = await auth.authenticate(`Bearer ${key}`, "::1").catch((e: unknown) => e);
    expect(revoked).toMatchObject({ code: "UNAUTHENTICATED" });
  });
});
