import { exportJWK, generateKeyPair, SignJWT, createLocalJWKSet } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role } from "@valora/proto/valora/v1/tenants_pb";
import { DEFAULT_PLANS, PlanCatalog, createRedis, type Redis } from "@valora/kit";
import { seededRandom } from "@valora/kit/testing";
import { gunzipSync } from "node:zlib";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import { createClient, createGrpcServer, type ValoraError } from "@valora/kit";
import {
  Authenticator,
  grpcIngress,
  LocalQuotaCounter,
  LocalRateLimiter,
  RedisQuotaCounter,
  RedisRateLimiter,
  buildGateway,
  quotaPeriod,
} from "../src/index.js";
import { startStack, type Stack } from "./support/stack.js";

const url = process.env["DATABASE_URL"];
const redisUrl = process.env["REDIS_URL"];
const ROLES = ["admin", "manager", "viewer", "api", "auditor"] as const;
const ISSUER = "https://issuer.test/";

type Gateway = Awaited<ReturnType<typeof buildGateway>>;
const concrete = (route: string, id = "00000000-0000-4000-8000-000000000000") =>
  route
    .replace("::", "\u0000")
    .replace(/:(\w+)/g, (_m, name: string) =>
      name === "subject" ? "nobody" : name === "name" ? "autos" : id,
    )
    .replace("\u0000", ":");
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const car = (stack: Stack, i: number) => stack.sales[i]!.attributes;

describe.skipIf(!url)("gateway over real tenants, orchestrator, pipeline and model server", () => {
  let stack: Stack;
  let app: Gateway;
  let signJwt: (claims: Record<string, unknown>, expiresIn?: string) => Promise<string>;
  let redis: Redis | undefined;
  const keys: Record<string, Record<string, string>> = { a: {}, b: {} };
  const tenantIds: Record<string, string> = {};

  beforeAll(async () => {
    stack = await startStack(url!);
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" }] });
    signJwt = (claims, expiresIn = "5m") =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setIssuer(ISSUER)
        .setIssuedAt()
        .setExpirationTime(expiresIn)
        .sign(privateKey);
    redis = redisUrl ? createRedis({ url: redisUrl }) : undefined;
    if (redis && redis.status !== "ready") await new Promise((ok) => redis!.once("ready", ok));
    app = await buildGateway({
      base: stack.base,
      valuations: stack.valuations,
      tenants: stack.tenants,
      jobs: stack.jobs,
      auth: new Authenticator({
        tenants: stack.tenants,
        oidc: { issuer: ISSUER, keys: jwks, tenantClaim: "tenant", rolesClaim: "roles" },
        cacheTtlMs: 0,
      }),
      limiter: redis
        ? new RedisRateLimiter(redis, stack.base.logger, stack.base.registry, `valora-test-${process.pid}:`)
        : new LocalRateLimiter(),
      bodyLimit: 64 * 1024,
      quota: redis
        ? new RedisQuotaCounter(redis, stack.base.degraded, `valora-test-quota-${process.pid}:`)
        : new LocalQuotaCounter(),
      usage: stack.usage,
      tenantData: stack.tenantData,
      plans: new PlanCatalog([
        { ...DEFAULT_PLANS[0]!, monthlyValuations: 3 },
        {
          ...DEFAULT_PLANS[0]!,
          name: "homes",
          title: "Homes",
          monthlyValuations: 0,
          assetClasses: ["real-estate"],
        },
        ...DEFAULT_PLANS.slice(1),
      ]),
    });
    for (const t of ["a", "b"]) {
      const { tenant } = await stack.tenants.createTenant({
        name: `tenant-${t}-${process.pid}`,
        plan: "enterprise",
      });
      tenantIds[t] = tenant!.id;
      for (const role of ROLES) {
        const { secret } = await stack.tenants.createApiKey({
          actor: { tenantId: tenant!.id, subject: "user:setup", ip: "" },
          name: role,
          roles: [Role[role.toUpperCase() as keyof typeof Role]],
        });
        keys[t]![role] = secret;
      }
    }
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    redis?.disconnect();
    await stack?.close();
  });

  it("values a car through the full REST path, then from the cache, in the envelope", async () => {
    const body = { assetClass: "autos", attributes: car(stack, 3) };
    const res = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: bearer(keys["a"]!["api"]!),
      payload: body,
    });
    expect(res.statusCode).toBe(200);
    const { data, meta, error } = res.json<{
      data: Record<string, unknown> & {
        value: number;
        interval: { low: number; high: number };
        comparables: unknown[];
        explanation: { contributions: unknown[] };
        model: { version: string; route: string };
        cached: boolean;
      };
      meta: { requestId: string };
      error: null;
    }>();
    expect(error).toBeNull();
    expect(meta.requestId).toBe(res.headers["x-request-id"]);
    expect(data.value).toBeGreaterThan(data.interval.low);
    expect(data.value).toBeLessThan(data.interval.high);
    expect(data.comparables.length).toBeGreaterThan(0);
    expect(data.explanation.contributions.length).toBeGreaterThan(0);
    expect(data.model).toMatchObject({ name: "autos", version: "gm-v1", route: "champion" });
    expect(data.cached).toBe(false);
    expect(res.headers["ratelimit-limit"]).toBeDefined();
    const again = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: bearer(keys["a"]!["api"]!),
      payload: body,
    });
    expect(again.json<{ data: { cached: boolean; value: number } }>().data).toMatchObject({
      cached: true,
      value: data.value,
    });
  });

  it("answers only what `include` asks for, on single valuations and batches; a bad part is a 400 naming it", async () => {
    const post = (url: string, payload: Record<string, unknown>) =>
      app.inject({ method: "POST", url, headers: bearer(keys["a"]!["api"]!), payload });
    const valueOnly = await post("/v1/valuations", {
      assetClass: "autos",
      attributes: car(stack, 40),
      include: [],
    });
    expect(valueOnly.statusCode).toBe(200);
    const v = valueOnly.json<{ data: { value: number; comparables: unknown[]; explanation: unknown } }>()
      .data;
    expect(v).toMatchObject({ comparables: [], explanation: null });
    expect(v.value).toBeGreaterThan(0);
    const explained = await post("/v1/valuations", {
      assetClass: "autos",
      attributes: car(stack, 40),
      include: ["explanation"],
    });
    const e = explained.json<{
      data: { value: number; comparables: unknown[]; explanation: { contributions: unknown[] } };
    }>().data;
    expect(e.comparables).toEqual([]);
    expect(e.explanation.contributions.length).toBeGreaterThan(0);
    expect(e.value).toBeCloseTo(v.value, 6);
    const batch = await post("/v1/valuations:batch", {
      assetClass: "autos",
      items: [{ attributes: car(stack, 41) }],
      include: ["comparables"],
    });
    const b = batch.json<{
      data: { results: { valuation: { comparables: unknown[]; explanation: unknown } }[] };
    }>().data.results[0]!.valuation;
    expect(b.comparables.length).toBeGreaterThan(0);
    expect(b.explanation).toBeNull();
    const bad = await post("/v1/valuations", {
      assetClass: "autos",
      attributes: car(stack, 40),
      include: ["shap"],
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: { details: { field: string }[] } }>().error.details[0]!.field).toBe(
      "body.include.0",
    );
  });

  it("values batches item by item and names the bad field of a bad item", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/v1/valuations:batch",
      headers: bearer(keys["a"]!["manager"]!),
      payload: {
        assetClass: "autos",
        items: [{ attributes: car(stack, 1) }, { attributes: { ...car(stack, 2), mileage: "lots" } }],
      },
    });
    expect(res.statusCode).toBe(200);
    const results = res.json<{
      data: {
        results: { valuation: unknown; error: { code: string; details: { field: string }[] } | null }[];
      };
    }>().data.results;
    expect(results[0]!.valuation).not.toBeNull();
    expect(results[1]!.error).toMatchObject({
      code: "INVALID_ARGUMENT",
      details: [{ field: "items.1.attributes.mileage" }],
    });
  });

  it("refuses bad input with a stable code and the field at fault", async () => {
    const k = bearer(keys["a"]!["api"]!);
    const cases: [unknown, number, string, string | undefined][] = [
      [
        { assetClass: "autos", attributes: car(stack, 1), colour: "red" },
        400,
        "INVALID_ARGUMENT",
        "body.colour",
      ],
      [{ attributes: car(stack, 1) }, 400, "INVALID_ARGUMENT", "body.assetClass"],
      [
        { assetClass: "autos", attributes: { ...car(stack, 1), mileage: -5 } },
        400,
        "INVALID_ARGUMENT",
        "attributes.mileage",
      ],
      [{ assetClass: "boats", attributes: {} }, 404, "NOT_FOUND", "asset_class"],
    ];
    for (const [payload, status, code, field] of cases) {
      const res = await app.inject({
        method: "POST",
        url: "/v1/valuations",
        headers: k,
        payload: payload as Record<string, unknown>,
      });
      expect(res.statusCode, JSON.stringify(payload)).toBe(status);
      const { error } = res.json<{ error: { code: string; details: { field: string }[] } }>();
      expect(error.code).toBe(code);
      if (field) expect(error.details.map((d) => d.field)).toContain(field);
    }
    const notJson = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: { ...k, "content-type": "application/json" },
      payload: "{nope",
    });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json<{ error: { code: string } }>().error.code).toBe("INVALID_ARGUMENT");
    const big = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: { ...k, "content-type": "application/json" },
      payload: JSON.stringify({ assetClass: "autos", attributes: { x: "y".repeat(100_000) } }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json<{ error: { code: string } }>().error.code).toBe("PAYLOAD_TOO_LARGE");
    const text = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: { ...k, "content-type": "text/plain" },
      payload: "hello",
    });
    expect(text.statusCode).toBe(415);
  });

  it("every route declares its roles and refuses other roles (403) and anonymous callers (401)", async () => {
    const protectedRoutes = app.valoraRoutes.filter((r) => r.roles);
    expect(protectedRoutes.length).toBeGreaterThanOrEqual(15);
    const publicRoutes = app.valoraRoutes.filter((r) => !r.roles).map((r) => r.url);
    expect(
      publicRoutes.every((u) =>
        ["/openapi.json", "/healthz", "/readyz", "/metrics", "/v1/billing/webhook"].includes(u),
      ),
    ).toBe(true);
    for (const r of protectedRoutes) {
      const target = concrete(r.url);
      const anonymous = await app.inject({ method: r.method as "GET", url: target });
      expect(anonymous.statusCode, `${r.method} ${r.url} anonymous`).toBe(401);
      expect(anonymous.json<{ error: { code: string } }>().error.code).toBe("UNAUTHENTICATED");
      for (const role of ROLES) {
        const res = await app.inject({
          method: r.method as "GET",
          url: target,
          headers: bearer(keys["b"]![role]!),
        });
        const allowed = r.roles!.includes(role) && !r.platformAdmin;
        if (allowed) expect([401, 403], `${r.method} ${r.url} as ${role}`).not.toContain(res.statusCode);
        else {
          expect(res.statusCode, `${r.method} ${r.url} as ${role}`).toBe(403);
          expect(res.json<{ error: { code: string } }>().error.code).toBe("PERMISSION_DENIED");
        }
      }
    }
    const platform = await app.inject({
      method: "POST",
      url: "/v1/tenants",
      headers: bearer(stack.bootstrapKey),
      payload: { name: `made-${process.pid}` },
    });
    expect(platform.statusCode).toBe(201);
  });

  it("shows other tenants' objects as not found (404, not 403)", async () => {
    const admin = (t: string) => bearer(keys[t]!["admin"]!);
    const created = await app.inject({
      method: "POST",
      url: "/v1/api-keys",
      headers: admin("a"),
      payload: { name: "a-only", roles: ["viewer"] },
    });
    expect(created.statusCode).toBe(201);
    const { id, secret } = created.json<{ data: { id: string; secret: string } }>().data;
    expect(secret).toMatch(/^vk_/);
    const hook = await app.inject({
      method: "POST",
      url: "/v1/webhooks",
      headers: admin("a"),
      payload: { url: "http://127.0.0.1:9/hook", events: ["job.completed"] },
    });
    const hookId = hook.json<{ data: { id: string } }>().data.id;
    await app.inject({
      method: "PUT",
      url: "/v1/users/auth0%7Calice",
      headers: admin("a"),
      payload: { role: "viewer", email: "alice@example.com" },
    });
    for (const [method, path] of [
      ["DELETE", `/v1/api-keys/${id}`],
      ["DELETE", `/v1/webhooks/${hookId}`],
      ["GET", `/v1/webhooks/${hookId}/deliveries`],
      ["DELETE", "/v1/users/auth0%7Calice"],
    ] as const) {
      const res = await app.inject({ method, url: path, headers: admin("b") });
      expect(res.statusCode, `${method} ${path}`).toBe(404);
      expect(res.json<{ error: { code: string } }>().error.code).toBe("NOT_FOUND");
    }
    const listed = await app.inject({ method: "GET", url: "/v1/api-keys", headers: admin("b") });
    expect(listed.json<{ data: { id: string }[] }>().data.map((k) => k.id)).not.toContain(id);
    expect(JSON.stringify(listed.json())).not.toContain("vk_");
    const audit = await app.inject({
      method: "GET",
      url: "/v1/audit",
      headers: bearer(keys["b"]!["auditor"]!),
    });
    expect(audit.statusCode).toBe(200);
    expect(JSON.stringify(audit.json())).not.toContain(id);
    const own = await app.inject({
      method: "GET",
      url: "/v1/audit?action=apikey.create&limit=5",
      headers: admin("a"),
    });
    expect(own.json<{ data: { action: string; target: string; ip: string }[] }>().data[0]).toMatchObject({
      action: "apikey.create",
      target: `apikey/${id}`,
    });
    const revoked = await app.inject({ method: "DELETE", url: `/v1/api-keys/${id}`, headers: admin("a") });
    expect(revoked.json<{ data: { revokedAt: string | null } }>().data.revokedAt).not.toBeNull();
    const dead = await app.inject({ method: "GET", url: "/v1/tenant", headers: bearer(secret) });
    expect(dead.statusCode).toBe(401);
  });

  it("checks the plan's monthly quota before any work, and says when it resets", async () => {
    const { tenant } = await stack.tenants.createTenant({ name: `free-${process.pid}`, plan: "free" });
    const { secret } = await stack.tenants.createApiKey({
      actor: { tenantId: tenant!.id, subject: "user:setup", ip: "" },
      name: "k",
      roles: [Role.API],
    });
    const batch = await app.inject({
      method: "POST",
      url: "/v1/valuations:batch",
      headers: bearer(secret),
      payload: { assetClass: "autos", items: [{ attributes: car(stack, 1) }, { attributes: car(stack, 2) }] },
    });
    expect(batch.statusCode).toBe(200);
    const tooBig = await app.inject({
      method: "POST",
      url: "/v1/valuations:batch",
      headers: bearer(secret),
      payload: { assetClass: "autos", items: [{ attributes: car(stack, 1) }, { attributes: car(stack, 2) }] },
    });
    expect(tooBig.statusCode).toBe(429);
    const one = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: bearer(secret),
      payload: { assetClass: "autos", attributes: car(stack, 4) },
    });
    expect(one.statusCode).toBe(200);
    const over = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: bearer(secret),
      payload: { assetClass: "autos", attributes: car(stack, 4) },
    });
    expect(over.statusCode).toBe(429);
    const { error } = over.json<{ error: { code: string; message: string; details: { field: string }[] } }>();
    expect(error).toMatchObject({ code: "RESOURCE_EXHAUSTED", details: [{ field: "quota" }] });
    expect(error.message).toContain(quotaPeriod(new Date()).resetAt.toISOString());
  });

  it("enforces the plan's asset classes and bulk jobs, applies a plan change at the next request, and meters usage", async () => {
    const { tenant } = await stack.tenants.createTenant({ name: `homes-${process.pid}`, plan: "homes" });
    const actor = { tenantId: tenant!.id, subject: "user:setup", ip: "" };
    const admin = bearer(
      (await stack.tenants.createApiKey({ actor, name: "a", roles: [Role.ADMIN] })).secret,
    );
    const viewer = bearer(
      (await stack.tenants.createApiKey({ actor, name: "v", roles: [Role.VIEWER] })).secret,
    );
    const refused = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: admin,
      payload: { assetClass: "autos", attributes: car(stack, 3) },
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.json<{ error: { code: string; details: { field: string }[] } }>().error).toMatchObject({
      code: "PERMISSION_DENIED",
      details: [{ field: "assetClass" }],
    });
    const plans = await app.inject({ method: "GET", url: "/v1/plans", headers: viewer });
    expect(plans.json<{ data: { name: string }[] }>().data.map((p) => p.name)).toEqual([
      "free",
      "homes",
      "pro",
      "enterprise",
    ]);
    // Free has no bulk jobs.
    const freeTenant = (await stack.tenants.createTenant({ name: `nojobs-${process.pid}`, plan: "free" }))
      .tenant!;
    const freeKey = bearer(
      (
        await stack.tenants.createApiKey({
          actor: { ...actor, tenantId: freeTenant.id },
          name: "k",
          roles: [Role.API],
        })
      ).secret,
    );
    const job = await app.inject({
      method: "POST",
      url: "/v1/jobs?assetClass=autos",
      headers: { ...freeKey, "content-type": "text/csv" },
      payload: "mileage,cylinder,cruise,sound,leather\n8221,6,1,1,1\n",
    });
    expect(job.statusCode).toBe(403);
    expect(job.json<{ error: { details: { field: string }[] } }>().error.details[0]!.field).toBe("plan");

    const bad = await app.inject({
      method: "PUT",
      url: "/v1/billing/plan",
      headers: admin,
      payload: { plan: "gold" },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: { details: { field: string }[] } }>().error.details[0]!.field).toBe("plan");
    expect(
      (
        await app.inject({
          method: "PUT",
          url: "/v1/billing/plan",
          headers: viewer,
          payload: { plan: "pro" },
        })
      ).statusCode,
    ).toBe(403);
    const upgrade = await app.inject({
      method: "PUT",
      url: "/v1/billing/plan",
      headers: admin,
      payload: { plan: "pro" },
    });
    expect(upgrade.statusCode).toBe(200);
    expect(
      upgrade.json<{ data: { previousPlan: string; plan: { name: string }; billingEnabled: boolean } }>()
        .data,
    ).toMatchObject({ previousPlan: "homes", plan: { name: "pro" }, billingEnabled: false });

    const one = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: admin,
      payload: { assetClass: "autos", attributes: car(stack, 3) },
    });
    expect(one.statusCode).toBe(200);
    const batch = await app.inject({
      method: "POST",
      url: "/v1/valuations:batch",
      headers: admin,
      payload: {
        assetClass: "autos",
        items: [
          { attributes: car(stack, 3) },
          { attributes: { mileage: -5 } },
          { attributes: car(stack, 6) },
        ],
      },
    });
    expect(batch.statusCode).toBe(200);
    const usage = await app.inject({ method: "GET", url: "/v1/usage", headers: viewer });
    expect(usage.statusCode).toBe(200);
    const u = usage.json<{
      data: {
        from: string;
        to: string;
        total: number;
        plan: { name: string };
        days: { assetClass: string; kind: string; units: number }[];
      };
    }>().data;
    const today = new Date().toISOString().slice(0, 10);
    expect([u.from, u.to]).toEqual([`${today.slice(0, 7)}-01`, today]);
    // Three valued items (one cached), the invalid one free; the refused request not counted.
    expect(u).toMatchObject({
      total: 3,
      plan: { name: "pro" },
      days: [{ assetClass: "autos", kind: "valuation", units: 3 }],
    });
    const badRange = await app.inject({ method: "GET", url: "/v1/usage?from=2026-02-30", headers: viewer });
    expect(badRange.statusCode).toBe(400);
    expect(badRange.json<{ error: { details: { field: string }[] } }>().error.details[0]!.field).toBe("from");
    const audit = await app.inject({ method: "GET", url: "/v1/audit?action=tenant.plan", headers: admin });
    expect(
      audit.json<{ data: { action: string; details: Record<string, unknown> }[] }>().data[0],
    ).toMatchObject({ action: "tenant.plan", details: { plan: "pro", previous: "homes" } });
  });

  it("rate-limits a tenant with a token bucket: RateLimit-* headers, then 429 with Retry-After", async () => {
    const { tenant } = await stack.tenants.createTenant({ name: `limited-${process.pid}`, plan: "free" });
    const { secret } = await stack.tenants.createApiKey({
      actor: { tenantId: tenant!.id, subject: "user:setup", ip: "" },
      name: "k",
      roles: [Role.VIEWER],
    });
    const responses = [];
    for (let i = 0; i < 30; i++)
      responses.push(await app.inject({ method: "GET", url: "/v1/tenant", headers: bearer(secret) }));
    const first = responses[0]!;
    expect(first.statusCode).toBe(200);
    expect(first.headers["ratelimit-limit"]).toBe("20");
    expect(Number(first.headers["ratelimit-remaining"])).toBe(19);
    const limited = responses.filter((r) => r.statusCode === 429);
    expect(limited.length).toBeGreaterThanOrEqual(5);
    expect(Number(limited[0]!.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(limited[0]!.json<{ error: { code: string } }>().error.code).toBe("RESOURCE_EXHAUSTED");
  });

  it("publishes valuation.completed to the tenant's webhook, signed", async () => {
    const { createServer } = await import("node:http");
    const { verifyWebhook } = await import("@valora/tenants");
    const got: { headers: Record<string, unknown>; body: string }[] = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        got.push({ headers: req.headers, body });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    try {
      const { tenant } = await stack.tenants.createTenant({
        name: `hooked-${process.pid}`,
        plan: "enterprise",
      });
      const { secret: admin } = await stack.tenants.createApiKey({
        actor: { tenantId: tenant!.id, subject: "user:setup", ip: "" },
        name: "a",
        roles: [Role.ADMIN],
      });
      const port = (receiver.address() as { port: number }).port;
      const hook = await app.inject({
        method: "POST",
        url: "/v1/webhooks",
        headers: bearer(admin),
        payload: { url: `http://127.0.0.1:${port}/in`, events: ["valuation.completed"] },
      });
      expect(hook.statusCode).toBe(201);
      const signing = hook.json<{ data: { secret: string } }>().data.secret;
      const res = await app.inject({
        method: "POST",
        url: "/v1/valuations",
        headers: bearer(admin),
        payload: { assetClass: "autos", attributes: car(stack, 9) },
      });
      expect(res.statusCode).toBe(200);
      await expect.poll(() => got.length, { timeout: 10_000 }).toBe(1);
      const event = JSON.parse(got[0]!.body) as { type: string; data: { assetClass: string; value: number } };
      expect(event).toMatchObject({
        type: "valuation.completed",
        data: { assetClass: "autos", value: res.json<{ data: { value: number } }>().data.value },
      });
      expect(
        verifyWebhook(
          signing,
          got[0]!.body,
          String(got[0]!.headers["valora-signature"]),
          Math.floor(Date.now() / 1000),
        ),
      ).toBe(true);
    } finally {
      receiver.close();
    }
  });

  it("runs bulk CSV jobs: 202, progress events, results CSV, idempotency, tenant isolation", async () => {
    const k = { ...bearer(keys["a"]!["api"]!), "content-type": "text/csv" };
    const header = "mileage,cylinder,doors,cruise,sound,leather,make,body";
    const rows = stack.sales.slice(0, 30).map((s) =>
      header
        .split(",")
        .map((h) => {
          const v = s.attributes[h];
          return typeof v === "boolean" ? (v ? 1 : 0) : String(v);
        })
        .join(","),
    );
    const csv = [header, ...rows, "-5,6,4,1,0,0,1,0,0,0,0,0,0,0,0,1,0"].join("\n");
    const created = await app.inject({
      method: "POST",
      url: "/v1/jobs?assetClass=autos",
      headers: { ...k, "idempotency-key": "batch-7" },
      payload: csv,
    });
    expect(created.statusCode, created.body).toBe(202);
    const job = created.json<{ data: { id: string; totalRows: number; status: string } }>().data;
    expect(job.totalRows).toBe(31);
    expect(created.headers["location"]).toBe(`/v1/jobs/${job.id}`);
    const retried = await app.inject({
      method: "POST",
      url: "/v1/jobs?assetClass=autos",
      headers: { ...k, "idempotency-key": "batch-7" },
      payload: csv,
    });
    expect(retried.json<{ data: { id: string } }>().data.id).toBe(job.id);

    await app.listen({ host: "127.0.0.1", port: 0 });
    const address = app.server.address() as { port: number };
    const events = await fetch(`http://127.0.0.1:${address.port}/v1/jobs/${job.id}/events`, {
      headers: bearer(keys["a"]!["viewer"]!),
    });
    expect(events.headers.get("content-type")).toBe("text/event-stream");
    const text = await events.text();
    expect(text).toMatch(/event: done\ndata: .*"status":"succeeded"/);
    const status = await app.inject({
      method: "GET",
      url: `/v1/jobs/${job.id}`,
      headers: bearer(keys["a"]!["viewer"]!),
    });
    expect(
      status.json<{
        data: { doneRows: number; failedRows: number; invalidRows: number; timings: { runningMs: number } };
      }>().data,
    ).toMatchObject({ doneRows: 30, failedRows: 1, invalidRows: 1 });
    const results = await app.inject({
      method: "GET",
      url: `/v1/jobs/${job.id}/results`,
      headers: bearer(keys["a"]!["viewer"]!),
    });
    expect(results.headers["content-type"]).toContain("text/csv");
    const lines = results.body.trim().split("\n");
    expect(lines).toHaveLength(32);
    expect(lines[31]).toMatch(/^31,.*INVALID_ARGUMENT/);
    for (const [method, path] of [
      ["GET", `/v1/jobs/${job.id}`],
      ["GET", `/v1/jobs/${job.id}/results`],
      ["GET", `/v1/jobs/${job.id}/events`],
      ["DELETE", `/v1/jobs/${job.id}`],
    ] as const) {
      expect(
        (await app.inject({ method, url: path, headers: bearer(keys["b"]!["admin"]!) })).statusCode,
        `${method} ${path}`,
      ).toBe(404);
    }
    // The list of past jobs: newest first, paged without repeats, another tenant's never shown.
    const second = await app.inject({
      method: "POST",
      url: "/v1/jobs?assetClass=autos",
      headers: k,
      payload: [header, ...rows.slice(0, 2)].join("\n"),
    });
    const secondId = second.json<{ data: { id: string } }>().data.id;
    type Page = { data: { jobs: { id: string }[]; nextPageToken: string | null } };
    const page1 = (
      await app.inject({ method: "GET", url: "/v1/jobs?pageSize=1", headers: bearer(keys["a"]!["viewer"]!) })
    ).json<Page>().data;
    expect(page1.jobs.map((j) => j.id)).toEqual([secondId]);
    const page2 = (
      await app.inject({
        method: "GET",
        url: `/v1/jobs?pageSize=1&pageToken=${page1.nextPageToken}`,
        headers: bearer(keys["a"]!["viewer"]!),
      })
    ).json<Page>().data;
    expect(page2.jobs.map((j) => j.id)).toEqual([job.id]);
    const others = (
      await app.inject({ method: "GET", url: "/v1/jobs", headers: bearer(keys["b"]!["admin"]!) })
    ).json<Page>().data;
    expect(others.jobs.map((j) => j.id)).not.toContain(job.id);
    const badToken = await app.inject({
      method: "GET",
      url: "/v1/jobs?pageToken=bm9wZQ",
      headers: bearer(keys["a"]!["viewer"]!),
    });
    expect(badToken.statusCode).toBe(400);
    const noHeader = await app.inject({
      method: "POST",
      url: "/v1/jobs?assetClass=autos",
      headers: k,
      payload: "colour\nred\n",
    });
    expect(noHeader.statusCode).toBe(400);
    expect(noHeader.json<{ error: { details: { field: string }[] } }>().error.details[0]!.field).toBe(
      "header.mileage",
    );
  });

  it("limits a key to its asset classes", async () => {
    const { secret } = await stack.tenants.createApiKey({
      actor: { tenantId: tenantIds["a"]!, subject: "user:setup", ip: "" },
      name: "re-only",
      roles: [Role.API],
      assetClasses: ["real-estate"],
    });
    const res = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: bearer(secret),
      payload: { assetClass: "autos", attributes: car(stack, 1) },
    });
    expect(res.statusCode).toBe(404);
    const classes = await app.inject({ method: "GET", url: "/v1/asset-classes", headers: bearer(secret) });
    expect(classes.json<{ data: unknown[] }>().data).toEqual([]);
  });

  it("lists asset classes with the model feature each field feeds, and models with live performance", async () => {
    const res = await app.inject({
      method: "GET",
      url: "/v1/asset-classes",
      headers: bearer(keys["a"]!["viewer"]!),
    });
    const autos = res.json<{
      data: {
        name: string;
        fields: { name: string; type: string; required: boolean; feature: string; min?: number }[];
      }[];
    }>().data[0]!;
    expect(autos.name).toBe("autos");
    expect(autos.fields.find((f) => f.name === "mileage")).toMatchObject({
      type: "integer",
      required: true,
      feature: "Mileage",
      min: 0,
      training: { min: 266, max: 50387 },
    });
    expect(autos.fields.find((f) => f.name === "make")).toMatchObject({
      type: "string",
      training: { categories: ["Buick", "Cadillac", "Chevy", "Pontiac", "Saab", "Saturn"] },
      deprecatedAliases: ["buick", "cadillac", "chevy", "pontiac", "saab", "saturn"],
    });
    const perf = await app.inject({
      method: "GET",
      url: "/v1/models/autos/performance",
      headers: bearer(keys["a"]!["viewer"]!),
    });
    const model = perf.json<{
      data: { champion: { version: string }; performance: { version: string; requests: number }[] };
    }>().data;
    expect(model.champion.version).toBe("gm-v1");
    expect(model.performance.find((p) => p.version === "gm-v1")!.requests).toBeGreaterThan(0);
    expect(
      (
        await app.inject({
          method: "GET",
          url: "/v1/models/boats/performance",
          headers: bearer(keys["a"]!["viewer"]!),
        })
      ).statusCode,
    ).toBe(404);
  });

  it("accepts OIDC tokens verified against the issuer's JWKS, mapped to tenant and role by claims", async () => {
    const tenant = `tenant-a-${process.pid}`;
    const viewer = await signJwt({ sub: "auth0|viewer", tenant, roles: ["viewer"] });
    expect(
      (await app.inject({ method: "GET", url: "/v1/asset-classes", headers: bearer(viewer) })).statusCode,
    ).toBe(200);
    expect(
      (
        await app.inject({
          method: "POST",
          url: "/v1/valuations",
          headers: bearer(viewer),
          payload: { assetClass: "autos", attributes: car(stack, 1) },
        })
      ).statusCode,
    ).toBe(403);
    const me = await app.inject({ method: "GET", url: "/v1/tenant", headers: bearer(viewer) });
    expect(
      me.json<{ data: { name: string; principal: { subject: string; roles: string[] } } }>().data,
    ).toMatchObject({ name: tenant, principal: { subject: "user:auth0|viewer", roles: ["viewer"] } });
    for (const bad of [
      await signJwt({ sub: "x", tenant, roles: ["admin"] }, "-1m"),
      `${viewer.slice(0, -4)}AAAA`,
      await signJwt({ sub: "x", roles: ["admin"] }),
      "not.a.jwt",
    ]) {
      const res = await app.inject({ method: "GET", url: "/v1/tenant", headers: bearer(bad) });
      expect(res.statusCode).toBe(401);
    }
  });

  it("publishes an OpenAPI 3.1 document generated from the validating schemas, and browsable docs", async () => {
    const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json<{
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: {
              content: Record<
                string,
                {
                  schema: {
                    properties: Record<string, unknown>;
                    additionalProperties?: boolean;
                    required?: string[];
                  };
                }
              >;
            };
          }
        >
      >;
    }>();
    expect(doc.openapi).toBe("3.1.0");
    const post = doc.paths["/v1/valuations"]!["post"]!;
    const schema = post.requestBody!.content["application/json"]!.schema;
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["assetClass", "attributes"]));
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toContain("assetClass");
    for (const p of [
      "/v1/valuations:batch",
      "/v1/asset-classes",
      "/v1/models",
      "/v1/models/{name}/performance",
      "/v1/api-keys",
      "/v1/audit",
      "/v1/webhooks",
    ])
      expect(Object.keys(doc.paths)).toContain(p);
    const ui = await app.inject({ method: "GET", url: "/docs/" });
    expect(ui.statusCode).toBe(200);
    expect(ui.body).toContain("swagger");
  });

  it("survives thousands of malformed requests: all 4xx, still healthy, nothing written", async () => {
    const tables = [
      "tenants",
      "tenant_users",
      "api_keys",
      "webhooks",
      "webhook_events",
      "webhook_deliveries",
      "audit_log",
    ];
    const count = async () =>
      Object.fromEntries(
        await Promise.all(
          tables.map(
            async (t) =>
              [
                t,
                (await stack.pool.query<{ n: string }>(`SELECT count(*) AS n FROM ${t}`)).rows[0]!.n,
              ] as const,
          ),
        ),
      );
    const admin = bearer(keys["b"]!["admin"]!);
    await app.inject({ method: "GET", url: "/v1/tenant", headers: admin }); // the key's first use is audited once; do it before counting
    const before = await count();
    const rnd = seededRandom(7);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const junk = (depth = 0): unknown => {
      const r = rnd();
      if (depth > 2 || r < 0.2)
        return pick([
          null,
          true,
          -1,
          1e308,
          "",
          "x".repeat(Math.floor(rnd() * 300)),
          "vk_' OR 1=1 --",
          "<script>",
          "\u0000",
          NaN,
        ]);
      if (r < 0.5) return Array.from({ length: Math.floor(rnd() * 4) }, () => junk(depth + 1));
      return Object.fromEntries(
        Array.from({ length: Math.floor(rnd() * 4) }, () => [
          pick([
            "name",
            "roles",
            "url",
            "events",
            "role",
            "assetClass",
            "attributes",
            "items",
            "plan",
            "__proto__",
            "constructor",
            "zz",
          ]),
          junk(depth + 1),
        ]),
      );
    };
    const valid: Record<string, Record<string, unknown>> = {
      "/v1/valuations": { assetClass: "autos", attributes: car(stack, 5) },
      "/v1/valuations::batch": { assetClass: "autos", items: [{ attributes: car(stack, 5) }] },
      "/v1/api-keys": { name: "k", roles: ["api"] },
      "/v1/webhooks": { url: "https://hooks.example.com/x", events: ["job.completed"] },
      "/v1/tenants": { name: "fuzzed", plan: "free" },
      "/v1/users/:subject": { role: "viewer" },
    };
    // Near-valid bodies broken in one place: an unknown field, a wrong type, or a missing required field.
    const mutate = (body: Record<string, unknown>): Record<string, unknown> => {
      const keysOf = Object.keys(body);
      const m = rnd();
      if (m < 0.34) return { ...body, [pick(["extra", "isAdmin", "tenantId"])]: junk() };
      if (m < 0.67) return { ...body, [pick(keysOf)]: pick([42, [], { a: 1 }, true, "x".repeat(5000)]) };
      const copy = { ...body };
      delete copy[pick(keysOf)];
      return Object.keys(copy).length === keysOf.length ? { ...copy, extra: 1 } : copy;
    };
    const routes = app.valoraRoutes.filter((r) => r.roles && r.method !== "GET");
    const reads = app.valoraRoutes.filter((r) => r.roles && r.method === "GET");
    let sent = 0;
    const statuses = new Map<number, number>();
    for (let i = 0; i < 2500; i++) {
      const r = i % 5 === 0 ? pick(reads) : pick(routes);
      const kind = rnd();
      const target =
        kind < 0.1
          ? concrete(r.url, pick(["../../etc/passwd", "%00", "1 OR 1=1", "x".repeat(300), "-1"]))
          : concrete(r.url);
      // Reads are valid without a query, so each carries one that is not.
      const query =
        r.method === "GET" || kind < 0.3
          ? `?${pick(["limit=-1", "limit=abc", "unknown=1", "limit=99999", `before=${"9".repeat(40)}`])}`
          : "";
      let payload: string | undefined;
      let contentType = "application/json";
      if (r.method !== "GET" && r.method !== "DELETE") {
        const v = valid[r.url];
        const p = rnd();
        if (p < 0.45 && v) payload = JSON.stringify(mutate(v));
        else if (p < 0.75) payload = JSON.stringify(junk());
        else if (p < 0.85) payload = pick(["{", "[1,2", "nul", '"str', '{"a":}', ""]);
        else if (p < 0.95) {
          payload = "a=b";
          contentType = pick(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]);
        } else payload = JSON.stringify({ pad: "x".repeat(70_000) });
        if (payload !== undefined && (payload === "null" || payload === "{}") && v)
          payload = JSON.stringify(mutate(v));
      }
      const res = await app.inject({
        method: r.method as "POST",
        url: target + query,
        headers: { ...admin, ...(payload !== undefined ? { "content-type": contentType } : {}) },
        ...(payload !== undefined ? { payload } : {}),
      });
      sent++;
      statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      if (res.statusCode < 400 || res.statusCode >= 500)
        throw new Error(
          `${r.method} ${target + query} ${payload?.slice(0, 200)} -> ${res.statusCode} ${res.body.slice(0, 300)}`,
        );
      const body = res.json<{ error: { code: string } | null; data: null }>();
      expect(body.error?.code, `${r.method} ${target} ${res.statusCode} ${res.body}`).toBeTruthy();
    }
    expect(sent).toBe(2500);
    expect([...statuses.keys()].every((s) => s >= 400 && s < 500)).toBe(true);
    expect((await app.inject({ method: "GET", url: "/healthz" })).statusCode).toBe(200);
    expect(await count()).toEqual(before);
  }, 120_000);

  it("runs a tenant's whole lifecycle: onboard, isolation, suspend and resume (REST and gRPC), export, erasure", async () => {
    const root = bearer(stack.bootstrapKey);
    const json = <T>(r: { json: <U>() => U }) => r.json<{ data: T; error: { code: string } | null }>();
    // Onboard: the first admin key comes back once, and works.
    const made = await app.inject({
      method: "POST",
      url: "/v1/tenants",
      headers: root,
      payload: { name: `life-${process.pid}`, plan: "enterprise" },
    });
    expect(made.statusCode, made.body).toBe(201);
    const { tenant, apiKey } = json<{ tenant: { id: string; name: string }; apiKey: { secret: string } }>(
      made,
    ).data;
    const id = tenant.id;
    const mine = bearer(apiKey.secret);
    expect(
      json<{ id: string }>(await app.inject({ method: "GET", url: "/v1/tenant", headers: mine })).data.id,
    ).toBe(id);

    // It sees nothing of another tenant: jobs, audit, keys, webhooks, usage.
    const theirJob = await app.inject({
      method: "POST",
      url: "/v1/jobs?assetClass=autos",
      headers: { ...bearer(keys["a"]!["api"]!), "content-type": "text/csv" },
      payload: "mileage,cylinder,cruise,sound,leather,make,body\n8221,6,1,1,1,Saab,sedan\n",
    });
    const theirJobId = json<{ id: string }>(theirJob).data.id;
    expect(
      (await app.inject({ method: "GET", url: `/v1/jobs/${theirJobId}`, headers: mine })).statusCode,
    ).toBe(404);
    const audit = json<{ target: string }[]>(
      await app.inject({ method: "GET", url: "/v1/audit", headers: mine }),
    ).data;
    expect(audit.every((e) => !e.target.includes(tenantIds["a"]!) && !e.target.includes(theirJobId))).toBe(
      true,
    );
    expect(
      json<{ name: string }[]>(
        await app.inject({ method: "GET", url: "/v1/api-keys", headers: mine }),
      ).data.map((k) => k.name),
    ).toEqual(["first admin key"]);
    expect(
      json<unknown[]>(await app.inject({ method: "GET", url: "/v1/webhooks", headers: mine })).data,
    ).toEqual([]);
    expect(
      json<{ days: unknown[] }>(await app.inject({ method: "GET", url: "/v1/usage", headers: mine })).data
        .days,
    ).toEqual([]);

    // Its data: a valuation (usage), a user, a webhook and a delivery, a job and its results,
    // a logged valuation of a registered asset, a billing account.
    const car = {
      mileage: 8221,
      cylinder: 6,
      cruise: true,
      sound: true,
      leather: true,
      make: "Saab",
      body: "sedan",
    };
    const valued = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: mine,
      payload: { assetClass: "autos", attributes: car },
    });
    expect(valued.statusCode, valued.body).toBe(200);
    await app.inject({
      method: "PUT",
      url: "/v1/users/sso%7Cann",
      headers: mine,
      payload: { role: "viewer", email: "ann@example.com" },
    });
    await app.inject({
      method: "POST",
      url: "/v1/webhooks",
      headers: mine,
      payload: { url: "http://127.0.0.1:9/hook", events: ["job.completed"] },
    });
    await stack.tenants.publish({
      tenantId: id,
      eventId: "life-1",
      type: "job.completed",
      data: { jobId: "x" },
    });
    await stack.pool.query(
      "INSERT INTO valuation_log (asset_class, asset_id, model, model_version, value, tenant_id) VALUES ('autos', 'vin-1', 'autos', 'gm-v1', 1, $1)",
      [id],
    );
    await stack.pool.query("INSERT INTO billing_accounts (tenant_id, stripe_customer_id) VALUES ($1, $2)", [
      id,
      `cus_${process.pid}`,
    ]);
    const jobMeta = { metadata: { "x-tenant-id": id } };

    // Suspend: 403 TENANT_SUSPENDED on REST and gRPC at once; its jobs wait.
    const suspended = await app.inject({
      method: "POST",
      url: `/v1/tenants/${id}/suspend`,
      headers: root,
      payload: { reason: "unpaid" },
    });
    expect(json<{ status: string }>(suspended).data.status).toBe("suspended");
    const refused = await app.inject({
      method: "POST",
      url: "/v1/valuations",
      headers: mine,
      payload: { assetClass: "autos", attributes: car },
    });
    expect(refused.statusCode).toBe(403);
    expect(json(refused).error!.code).toBe("TENANT_SUSPENDED");
    const edge = createGrpcServer({
      ...stack.base,
      services: [
        grpcIngress({
          auth: new Authenticator({ tenants: stack.tenants, cacheTtlMs: 0 }),
          limiter: new LocalRateLimiter(),
          valuations: stack.valuations,
        }),
      ],
    });
    const grpc = createClient(ValuationService, `127.0.0.1:${await edge.listen("127.0.0.1:0")}`, {
      timeoutMs: 10_000,
    });
    try {
      const viaGrpc = await grpc
        .value(
          { assetClass: "autos", attributes: car },
          { metadata: { authorization: `Bearer ${apiKey.secret}` } },
        )
        .catch((e: unknown) => e as ValoraError);
      expect((viaGrpc as ValoraError).code).toBe("TENANT_SUSPENDED");
      const { job } = await stack.jobs.createJob(
        {
          assetClass: "autos",
          csv: Buffer.from(
            "mileage,cylinder,cruise,sound,leather,make,body\n1000,4,1,1,0,Chevy,coupe\n2000,4,1,1,0,Chevy,coupe\n",
          ),
        },
        jobMeta,
      );
      await new Promise((r) => setTimeout(r, 600));
      expect((await stack.jobs.getJob({ id: job!.id }, jobMeta)).job!.doneRows).toBe(0n);

      // Resume: all of it back; the held job runs.
      await app.inject({ method: "POST", url: `/v1/tenants/${id}/resume`, headers: root });
      await expect
        .poll(async () => (await stack.jobs.getJob({ id: job!.id }, jobMeta)).job!.doneRows, {
          timeout: 15_000,
        })
        .toBe(2n);
      const back = await grpc.value(
        { assetClass: "autos", attributes: car },
        { metadata: { authorization: `Bearer ${apiKey.secret}` } },
      );
      expect(back.valuation!.value).toBeGreaterThan(0);
    } finally {
      grpc.close();
      await edge.shutdown(1000);
    }
    const read = json<{
      keyCount: number;
      status: string;
      usageThisMonth: { units: Record<string, number> };
    }>(await app.inject({ method: "GET", url: `/v1/tenants/${id}`, headers: root })).data;
    expect(read).toMatchObject({ keyCount: 1, status: "active" });
    expect(read.usageThisMonth.units["valuation"]).toBeGreaterThanOrEqual(1);

    // Export: a job whose archive holds every kind of data held for the tenant, keys without secrets.
    const started = await app.inject({ method: "POST", url: `/v1/tenants/${id}/exports`, headers: root });
    expect(started.statusCode, started.body).toBe(202);
    const exportId = json<{ id: string }>(started).data.id;
    await expect
      .poll(
        async () =>
          json<{ status: string }>(
            await app.inject({ method: "GET", url: `/v1/tenants/${id}/exports/${exportId}`, headers: root }),
          ).data.status,
        { timeout: 15_000 },
      )
      .toBe("succeeded");
    const archive = await app.inject({
      method: "GET",
      url: `/v1/tenants/${id}/exports/${exportId}/archive`,
      headers: root,
    });
    expect(archive.headers["content-type"]).toBe("application/gzip");
    const doc = JSON.parse(gunzipSync(archive.rawPayload).toString()) as {
      format: string;
      sections: Record<string, unknown[]>;
    };
    expect(doc.format).toBe("valora.tenant-export/v1");
    for (const kind of [
      "tenants.users",
      "tenants.api_keys",
      "tenants.audit_log",
      "tenants.webhooks",
      "tenants.webhook_deliveries",
      "jobs.jobs",
      "jobs.job_rows",
      "ingest.valuation_log",
      "usage.usage_events",
      "usage.usage_daily",
      "billing.billing_accounts",
    ])
      expect(doc.sections[kind]?.length, kind).toBeGreaterThan(0);
    expect(JSON.stringify(doc.sections["tenants.api_keys"])).not.toMatch(/"hash"|vk_/);
    expect(JSON.stringify(doc.sections["tenants.webhooks"])).not.toMatch(/whsec_|"secret"/);

    // Erase: refused at once, then after the (zero) grace period every row of it is gone.
    const erased = await app.inject({
      method: "DELETE",
      url: `/v1/tenants/${id}?graceSeconds=0`,
      headers: root,
    });
    expect(erased.statusCode, erased.body).toBe(202);
    expect((await app.inject({ method: "GET", url: "/v1/tenant", headers: mine })).statusCode).toBe(401);
    const defaultDelete = await app.inject({
      method: "DELETE",
      url: `/v1/tenants/${(await stack.tenants.authenticate({ apiKey: stack.bootstrapKey, ip: "" })).principal!.tenantId}`,
      headers: root,
    });
    expect(defaultDelete.statusCode).toBe(400);
    expect(await app.valoraLifecycle.purgeDue()).toContain(id);
    const tables = await stack.pool.query<{ table_name: string }>(
      "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
    );
    expect(tables.rows.length).toBeGreaterThanOrEqual(20);
    const holding: string[] = [];
    for (const { table_name: t } of tables.rows) {
      const { rows } = await stack.pool.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${t}" x WHERE x::text LIKE $1`,
        [`%${id}%`],
      );
      if (rows[0]!.n > 0) holding.push(`${t}: ${rows[0]!.n}`);
    }
    expect(holding).toEqual([]);
    expect((await app.inject({ method: "GET", url: `/v1/tenants/${id}`, headers: root })).statusCode).toBe(
      404,
    );
  }, 60_000);
});

describe("principal cache", () => {
  it("serves a key from cache until its tenant changes, then asks the tenants service again", async () => {
    let calls = 0;
    let plan = "free";
    const tenants = {
      authenticate: async () => (
        calls++,
        {
          principal: {
            tenantId: "t1",
            tenantName: "t",
            subject: "key:1",
            roles: [Role.API],
            assetClasses: [],
            platformAdmin: false,
            plan,
          },
        }
      ),
      resolveSubject: async () => ({}),
    } as unknown as ConstructorParameters<typeof Authenticator>[0]["tenants"];
    const auth = new Authenticator({ tenants, cacheTtlMs: 60_000 });
    const key = "Bearer vk_abcdefghij_abcdefghijabcdefghijabcdefghijab";
    expect((await auth.authenticate(key, "")).plan).toBe("free");
    plan = "pro";
    expect((await auth.authenticate(key, "")).plan).toBe("free");
    auth.invalidateTenant("other");
    expect((await auth.authenticate(key, "")).plan).toBe("free");
    auth.invalidateTenant("t1");
    expect((await auth.authenticate(key, "")).plan).toBe("pro");
    expect(calls).toBe(2);
  });
});

describe("rate limits", () => {
  it("token buckets allow the burst, then refuse with Retry-After until tokens come back", async () => {
    let now = 1_000_000;
    const limiter = new LocalRateLimiter(() => now);
    const b = { rate: 2, burst: 5 };
    const first = await Promise.all(Array.from({ length: 5 }, () => limiter.take("t", b)));
    expect(first.every((d) => d.allowed)).toBe(true);
    const denied = await limiter.take("t", b);
    expect(denied).toMatchObject({ allowed: false, remaining: 0, retryAfter: 1 });
    now += 500;
    expect((await limiter.take("t", b)).allowed).toBe(true);
    expect((await limiter.take("other", b)).allowed).toBe(true);
  });

  it.skipIf(!redisUrl)("shares buckets in Redis across replicas (real Redis at REDIS_URL)", async () => {
    const r1 = createRedis({ url: redisUrl! });
    const r2 = createRedis({ url: redisUrl! });
    const { logger } = (await import("@valora/kit/testing")).captureLogs();
    const prefix = `valora-rl-test-${process.pid}-${Date.now()}:`;
    const a = new RedisRateLimiter(r1, logger, undefined, prefix);
    const b = new RedisRateLimiter(r2, logger, undefined, prefix);
    const bucket = { rate: 1, burst: 10 };
    await Promise.all(
      [r1, r2].map((r) =>
        r.status === "ready" ? Promise.resolve() : new Promise((ok) => r.once("ready", ok)),
      ),
    );
    const decisions = await Promise.all(
      Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).take("tenant:x", bucket)),
    );
    expect(decisions.filter((d) => d.allowed)).toHaveLength(10);
    expect(decisions.every((d) => d.source === "redis")).toBe(true);
    r1.disconnect();
    r2.disconnect();
  });

  it("falls back to local buckets when Redis is unreachable, counts it and logs it", async () => {
    const { captureLogs } = await import("@valora/kit/testing");
    const { logger, lines } = captureLogs();
    const { createRegistry } = await import("@valora/kit");
    const registry = createRegistry({ service: "t", collectDefault: false });
    const dead = createRedis({ url: "redis://127.0.0.1:1" });
    const limiter = new RedisRateLimiter(dead, logger, registry);
    const decisions = await Promise.all(
      Array.from({ length: 4 }, () => limiter.take("t", { rate: 1, burst: 3 })),
    );
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false]);
    expect(decisions.every((d) => d.source === "local")).toBe(true);
    expect(await registry.getSingleMetricAsString("valora_rate_limit_fallback_total")).toMatch(/ 4$/m);
    expect(lines.filter((l) => String(l["msg"]).includes("Redis unreachable"))).toHaveLength(1);
    dead.disconnect();
  });
});
