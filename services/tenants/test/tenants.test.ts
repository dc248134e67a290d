import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Role, TenantService } from "@valora/proto/valora/v1/tenants_pb";
import { TenantDataService } from "@valora/proto/valora/v1/tenant_data_pb";
import {
  createClient,
  createGrpcServer,
  createPgPool,
  createServiceBase,
  type Client,
  type GrpcServer,
  type Pool,
  type ValoraError,
} from "@valora/kit";
import { captureLogs, freshDatabase } from "@valora/kit/testing";
import {
  apiKeyPrefix,
  checkWebhookUrl,
  createTenants,
  erasedTarget,
  generateApiKey,
  retryDelaySeconds,
  signWebhook,
  verifyWebhook,
  type TenantsApp,
} from "../src/index.js";

describe("keys and webhook signing (pure)", () => {
  it("generates well-formed keys whose prefix finds them and whose hash is not the key", () => {
    const a = generateApiKey();
    const b = generateApiKey();
    expect(a.key).toMatch(/^vk_[A-Za-z0-9]{10}_[A-Za-z0-9]{32}$/);
    expect(apiKeyPrefix(a.key)).toBe(a.prefix);
    expect(a.key).not.toBe(b.key);
    expect(a.hash.toString("hex")).not.toContain(a.key);
    expect(apiKeyPrefix("vk_short_x")).toBeUndefined();
    expect(apiKeyPrefix(`${a.key} `)).toBeUndefined();
  });

  it("signs webhooks so receivers can verify them, and refuses tampering and replays", () => {
    const header = signWebhook("whsec_x", '{"a":1}', 1_000_000);
    expect(verifyWebhook("whsec_x", '{"a":1}', header, 1_000_010)).toBe(true);
    expect(verifyWebhook("whsec_x", '{"a":2}', header, 1_000_010)).toBe(false);
    expect(verifyWebhook("whsec_y", '{"a":1}', header, 1_000_010)).toBe(false);
    expect(verifyWebhook("whsec_x", '{"a":1}', header, 1_000_000 + 301)).toBe(false);
  });

  it("backs off exponentially up to an hour", () => {
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds(n, 5))).toEqual([5, 10, 20, 40]);
    expect(retryDelaySeconds(30)).toBe(3600);
  });

  it("refuses webhook URLs that point inside the network unless allowed", () => {
    const strict = { allowHttp: false, allowPrivate: false };
    expect(checkWebhookUrl("https://hooks.example.com/x", strict)).toBe("https://hooks.example.com/x");
    for (const bad of [
      "http://hooks.example.com/",
      "https://127.0.0.1/",
      "https://10.1.2.3/",
      "https://[::1]/",
      "https://localhost/",
      "https://169.254.169.254/latest",
      "https://u:p@example.com/",
      "not a url",
    ]) {
      expect(() => checkWebhookUrl(bad, strict), bad).toThrow(/webhook url/);
    }
    expect(checkWebhookUrl("http://127.0.0.1:9/x", { allowHttp: true, allowPrivate: true })).toBe(
      "http://127.0.0.1:9/x",
    );
  });
});

const url = process.env["DATABASE_URL"];
describe.skipIf(!url)("tenant service over gRPC with real Postgres", () => {
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let app: TenantsApp;
  let server: GrpcServer;
  let client: Client<typeof TenantService>;
  let bootstrapKey: string;
  let serverPort: number;
  const received: { headers: IncomingMessage["headers"]; body: string }[] = [];
  let failNext = 0;
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      if (failNext > 0) {
        failNext--;
        res.writeHead(500).end();
        return;
      }
      received.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });

  beforeAll(async () => {
    db = await freshDatabase(url!);
    pool = createPgPool({ url: db.url, max: 4 });
    const { logger } = captureLogs();
    const base = createServiceBase({ name: "tenants-test", logger });
    app = createTenants(base, {
      pool,
      webhooks: { allowHttp: true, allowPrivate: true, baseDelaySeconds: 0.2 },
    });
    const started = await app.start();
    bootstrapKey = started.generatedKey!;
    server = createGrpcServer({ ...base, services: [app.service, app.data] });
    serverPort = await server.listen("127.0.0.1:0");
    client = createClient(TenantService, `127.0.0.1:${serverPort}`, {
      timeoutMs: 5000,
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
  });
  afterAll(async () => {
    client?.close();
    await server?.shutdown(1000);
    await app?.close();
    await pool?.end();
    await db?.drop();
    receiver.close();
  });

  it("bootstraps the default tenant with one admin key, once", async () => {
    expect(bootstrapKey).toMatch(/^vk_/);
    const { principal } = await client.authenticate({ apiKey: bootstrapKey, ip: "10.0.0.1" });
    expect(principal).toMatchObject({ tenantName: "default", roles: [Role.ADMIN], platformAdmin: true });
    const again = await app.start();
    expect(again.generatedKey).toBeUndefined();
    await app.close();
    expect((await client.listApiKeys({ tenantId: principal!.tenantId })).apiKeys).toHaveLength(1);
  });

  it("creates keys shown once, stores only a hash, records use, and revokes them", async () => {
    const { tenant } = await client.createTenant({ name: "acme", plan: "pro" });
    const actor = { tenantId: tenant!.id, subject: "user:alice", ip: "192.0.2.7" };
    const created = await client.createApiKey({
      actor,
      name: "ci",
      roles: [Role.API],
      assetClasses: ["autos"],
    });
    expect(created.secret).toMatch(/^vk_/);
    const stored = await pool.query<{ hash: Buffer }>("SELECT hash FROM api_keys WHERE id = $1", [
      created.apiKey!.id,
    ]);
    expect(stored.rows[0]!.hash.toString("utf8")).not.toContain(created.secret);
    expect(JSON.stringify((await pool.query("SELECT * FROM api_keys")).rows)).not.toContain(created.secret);

    const { principal } = await client.authenticate({ apiKey: created.secret, ip: "203.0.113.9" });
    expect(principal).toMatchObject({
      tenantId: tenant!.id,
      tenantName: "acme",
      subject: `key:${created.apiKey!.id}`,
      roles: [Role.API],
      assetClasses: ["autos"],
      plan: "pro",
      platformAdmin: false,
    });
    await client.authenticate({ apiKey: created.secret, ip: "203.0.113.9" });
    // The tenant's first admin key (minted when it was created) and this one.
    const listed = (await client.listApiKeys({ tenantId: tenant!.id })).apiKeys;
    expect(listed.map((k) => k.name).sort()).toEqual(["first admin key", created.apiKey!.name].sort());
    expect(listed.find((k) => k.id === created.apiKey!.id)!.lastUsedAt).toBeDefined();
    const uses = (await client.listAudit({ tenantId: tenant!.id, action: "apikey.use" })).entries;
    expect(uses).toHaveLength(1); // at most one use row a minute
    expect(uses[0]).toMatchObject({ actor: `key:${created.apiKey!.id}`, ip: "203.0.113.9" });

    const wrong = created.secret.slice(0, -1) + (created.secret.endsWith("a") ? "b" : "a");
    await expect(client.authenticate({ apiKey: wrong, ip: "" })).rejects.toMatchObject({
      code: "UNAUTHENTICATED",
    });
    await client.revokeApiKey({ actor, id: created.apiKey!.id });
    await expect(client.authenticate({ apiKey: created.secret, ip: "" })).rejects.toMatchObject({
      code: "UNAUTHENTICATED",
    });
    const actions = (await client.listAudit({ tenantId: tenant!.id })).entries.map((e) => e.action);
    expect(actions).toEqual([
      "apikey.revoke",
      "apikey.use",
      "apikey.create",
      "apikey.create",
      "tenant.create",
    ]);
  });

  it("hides other tenants' objects as not found", async () => {
    const a = (await client.createTenant({ name: "tenant-a" })).tenant!;
    const b = (await client.createTenant({ name: "tenant-b" })).tenant!;
    const key = await client.createApiKey({
      actor: { tenantId: a.id, subject: "user:x", ip: "" },
      name: "k",
      roles: [Role.VIEWER],
    });
    const err = (await client
      .revokeApiKey({ actor: { tenantId: b.id, subject: "user:y", ip: "" }, id: key.apiKey!.id })
      .catch((e: unknown) => e)) as ValoraError;
    expect(err.code).toBe("NOT_FOUND");
    await expect(
      client.revokeApiKey({ actor: { tenantId: b.id, subject: "user:y", ip: "" }, id: "not-a-uuid" }),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect((await client.listApiKeys({ tenantId: b.id })).apiKeys.map((k) => k.name)).toEqual([
      "first admin key",
    ]);
    expect(
      (await client.listAudit({ tenantId: b.id })).entries.every((e) => !e.target.includes(key.apiKey!.id)),
    ).toBe(true);
  });

  it("refuses bad input with field-level errors", async () => {
    await expect(client.createTenant({ name: "Not Valid!" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      details: [{ field: "name" }],
    });
    await expect(client.createTenant({ name: "acme" })).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    const t = (await client.createTenant({ name: "inputs" })).tenant!;
    const actor = { tenantId: t.id, subject: "user:x", ip: "" };
    await expect(client.createApiKey({ actor, name: "", roles: [Role.API] })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      details: [{ field: "name" }],
    });
    await expect(client.createApiKey({ actor, name: "x", roles: [] })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      details: [{ field: "roles" }],
    });
    await expect(client.createApiKey({ name: "x", roles: [Role.API] })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      details: [{ field: "actor" }],
    });
    await expect(
      client.createWebhook({ actor, url: "http://127.0.0.1/", events: ["nope"] }),
    ).rejects.toMatchObject({ code: "INVALID_ARGUMENT", details: [{ field: "events" }] });
    await expect(client.listAudit({ tenantId: t.id, before: "x" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      details: [{ field: "before" }],
    });
  });

  it("maps OIDC subjects to roles: the user record wins over the token's roles", async () => {
    const t = (await client.createTenant({ name: "oidc" })).tenant!;
    await client.putUser({
      actor: { tenantId: t.id, subject: "user:admin", ip: "" },
      subject: "auth0|bob",
      email: "bob@example.com",
      role: Role.AUDITOR,
    });
    expect(
      (await client.resolveSubject({ tenant: "oidc", subject: "auth0|bob", tokenRoles: [Role.ADMIN] }))
        .principal!.roles,
    ).toEqual([Role.AUDITOR]);
    expect(
      (await client.resolveSubject({ tenant: t.id, subject: "auth0|carol", tokenRoles: [Role.VIEWER] }))
        .principal!.roles,
    ).toEqual([Role.VIEWER]);
    await expect(
      client.resolveSubject({ tenant: "oidc", subject: "auth0|dave", tokenRoles: [] }),
    ).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
    await expect(
      client.resolveSubject({ tenant: "nobody", subject: "x", tokenRoles: [Role.ADMIN] }),
    ).rejects.toMatchObject({ code: "UNAUTHENTICATED" });
  });

  it("delivers signed webhooks once per event id, retrying failures with backoff, and records deliveries", async () => {
    const t = (await client.createTenant({ name: "hooks" })).tenant!;
    const actor = { tenantId: t.id, subject: "user:admin", ip: "" };
    const port = (receiver.address() as AddressInfo).port;
    const { webhook, secret } = await client.createWebhook({
      actor,
      url: `http://127.0.0.1:${port}/hook`,
      events: ["job.completed"],
    });
    failNext = 1;
    expect(
      (
        await client.publish({
          tenantId: t.id,
          eventId: "job-1",
          type: "job.completed",
          data: { jobId: "1" },
        })
      ).deliveries,
    ).toBe(1);
    expect(
      (
        await client.publish({
          tenantId: t.id,
          eventId: "job-1",
          type: "job.completed",
          data: { jobId: "1" },
        })
      ).deliveries,
    ).toBe(0);
    expect(
      (await client.publish({ tenantId: t.id, eventId: "m-1", type: "model.promoted", data: {} })).deliveries,
    ).toBe(0);
    const deadline = Date.now() + 10_000;
    while (received.length === 0 && Date.now() < deadline) {
      await app.worker.drain();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(received).toHaveLength(1);
    const got = received[0]!;
    expect(got.headers["valora-event-id"]).toBe("job-1");
    expect(
      verifyWebhook(secret, got.body, String(got.headers["valora-signature"]), Math.floor(Date.now() / 1000)),
    ).toBe(true);
    expect(JSON.parse(got.body)).toMatchObject({ id: "job-1", type: "job.completed", data: { jobId: "1" } });
    const [delivery] = (await client.listDeliveries({ tenantId: t.id, webhookId: webhook!.id })).deliveries;
    expect(delivery).toMatchObject({
      eventId: "job-1",
      status: "delivered",
      attempts: 2,
      lastStatusCode: 204,
    });
    await expect(
      client.listDeliveries({
        tenantId: (await client.createTenant({ name: "other" })).tenant!.id,
        webhookId: webhook!.id,
      }),
    ).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("onboards a tenant with a first admin key shown once, or an invitation; a platform admin mints keys for it", async () => {
    const platform = (await client.authenticate({ apiKey: bootstrapKey, ip: "" })).principal!;
    const admin = { tenantId: platform.tenantId, subject: "user:root", ip: "198.51.100.1" };
    const made = await client.createTenant({ actor: admin, name: "onboarded", plan: "pro" });
    expect(made.tenant).toMatchObject({ name: "onboarded", plan: "pro", status: "active", keyCount: 1 });
    expect(made.firstKey).toMatchObject({ roles: [Role.ADMIN] });
    const first = await client.authenticate({ apiKey: made.firstKeySecret, ip: "" });
    expect(first.principal).toMatchObject({
      tenantId: made.tenant!.id,
      roles: [Role.ADMIN],
      platformAdmin: false,
    });
    // With OIDC: an invitation instead of a key; the subject's first token gets its role.
    const invited = await client.createTenant({
      actor: admin,
      name: "invited",
      adminSubject: "auth0|ann",
      adminRole: Role.ADMIN,
    });
    expect(invited.firstKeySecret).toBe("");
    expect(invited.invitation).toMatchObject({ subject: "auth0|ann", role: Role.ADMIN });
    expect(
      (await client.resolveSubject({ tenant: "invited", subject: "auth0|ann" })).principal!.roles,
    ).toEqual([Role.ADMIN]);
    // A tenant that lost its admins' keys gets one from the platform, audited in both logs.
    const minted = await client.createTenantApiKey({
      actor: admin,
      tenantId: invited.tenant!.id,
      name: "recovery",
      roles: [Role.ADMIN],
    });
    expect((await client.authenticate({ apiKey: minted.secret, ip: "" })).principal!.tenantId).toBe(
      invited.tenant!.id,
    );
    const theirs = (await client.listAudit({ tenantId: invited.tenant!.id })).entries;
    expect(theirs.find((e) => e.action === "apikey.create")).toMatchObject({ actor: "platform:user:root" });
    const ours = (await client.listAudit({ tenantId: platform.tenantId })).entries;
    expect(ours.find((e) => e.action === "apikey.create")?.target).toBe(
      `tenant/${invited.tenant!.id}/apikey/${minted.apiKey!.id}`,
    );
  });

  it("lists tenants paged and filtered, and changes name and plan (audited)", async () => {
    const platform = (await client.authenticate({ apiKey: bootstrapKey, ip: "" })).principal!;
    const admin = { tenantId: platform.tenantId, subject: "user:root", ip: "" };
    for (const n of ["page-a", "page-b", "page-c"])
      await client.createTenant({ actor: admin, name: n, plan: "enterprise" });
    const first = await client.listTenants({ name: "page-", pageSize: 2 });
    expect(first.tenants.map((t) => t.name)).toEqual(["page-a", "page-b"]);
    const second = await client.listTenants({ name: "page-", pageSize: 2, pageToken: first.nextPageToken });
    expect(second.tenants.map((t) => t.name)).toEqual(["page-c"]);
    expect(second.nextPageToken).toBe("");
    expect(
      (await client.listTenants({ name: "page-", plan: "enterprise" })).tenants.map((t) => t.name),
    ).toEqual(["page-a", "page-b", "page-c"]);
    const renamed = await client.updateTenant({
      actor: admin,
      tenantId: first.tenants[0]!.id,
      name: "page-z",
      plan: "free",
    });
    expect(renamed.tenant).toMatchObject({ name: "page-z", plan: "free" });
    expect(
      (await client.listAudit({ tenantId: first.tenants[0]!.id, action: "tenant.update" })).entries[0]!
        .details,
    ).toMatchObject({
      name: { from: "page-a", to: "page-z" },
      plan: { from: "enterprise", to: "free" },
    });
    await expect(
      client.updateTenant({ actor: admin, tenantId: first.tenants[1]!.id, name: "page-z" }),
    ).rejects.toMatchObject({
      code: "ALREADY_EXISTS",
    });
  });

  it("suspends: keys and tokens refused with TENANT_SUSPENDED, webhooks held; resume restores both", async () => {
    const platform = (await client.authenticate({ apiKey: bootstrapKey, ip: "" })).principal!;
    const admin = { tenantId: platform.tenantId, subject: "user:root", ip: "" };
    const made = await client.createTenant({ actor: admin, name: "paused-co" });
    const id = made.tenant!.id;
    await client.putUser({
      actor: { tenantId: id, subject: "user:x", ip: "" },
      subject: "sso|bob",
      role: Role.VIEWER,
    });
    const port = (receiver.address() as AddressInfo).port;
    await client.createWebhook({
      actor: { tenantId: id, subject: "user:x", ip: "" },
      url: `http://127.0.0.1:${port}/paused`,
      events: ["job.completed"],
    });
    const suspended = await client.suspendTenant({ actor: admin, tenantId: id, reason: "unpaid invoice" });
    expect(suspended.tenant).toMatchObject({ status: "suspended", suspendReason: "unpaid invoice" });
    await expect(client.authenticate({ apiKey: made.firstKeySecret, ip: "" })).rejects.toMatchObject({
      code: "TENANT_SUSPENDED",
      message: expect.stringContaining("unpaid invoice"),
    });
    await expect(client.resolveSubject({ tenant: "paused-co", subject: "sso|bob" })).rejects.toMatchObject({
      code: "TENANT_SUSPENDED",
    });
    const before = received.length;
    await client.publish({ tenantId: id, eventId: "held-1", type: "job.completed", data: {} });
    await app.worker.drain();
    await new Promise((r) => setTimeout(r, 300));
    await app.worker.drain();
    expect(received.length).toBe(before); // held while suspended
    await client.resumeTenant({ actor: admin, tenantId: id });
    expect((await client.authenticate({ apiKey: made.firstKeySecret, ip: "" })).principal!.tenantId).toBe(id);
    const deadline = Date.now() + 5000;
    while (received.length === before && Date.now() < deadline) {
      await app.worker.drain();
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(received.at(-1)!.headers["valora-event-id"]).toBe("held-1");
    const actions = (await client.listAudit({ tenantId: id })).entries.map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["tenant.suspend", "tenant.resume"]));
    await expect(client.suspendTenant({ actor: admin, tenantId: platform.tenantId })).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
    });
    await expect(client.eraseTenant({ actor: admin, tenantId: platform.tenantId })).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
    });
  });

  it("erases: credentials refused at once, cancellable in the grace period, purged after it with one record left", async () => {
    const platform = (await client.authenticate({ apiKey: bootstrapKey, ip: "" })).principal!;
    const admin = { tenantId: platform.tenantId, subject: "user:root", ip: "" };
    const made = await client.createTenant({ actor: admin, name: "leaving" });
    const id = made.tenant!.id;
    const marked = await client.eraseTenant({ actor: admin, tenantId: id });
    expect(marked.tenant!.status).toBe("erasing");
    const week = marked.tenant!.eraseAfter!.seconds - BigInt(Math.floor(Date.now() / 1000));
    expect(Number(week)).toBeGreaterThan(7 * 86400 - 60);
    await expect(client.authenticate({ apiKey: made.firstKeySecret, ip: "" })).rejects.toMatchObject({
      code: "UNAUTHENTICATED",
    });
    const data = createClient(TenantDataService, `127.0.0.1:${serverPort}`, { timeoutMs: 5000 });
    try {
      await expect(data.purgeTenantData({ tenantId: id })).rejects.toMatchObject({
        code: "FAILED_PRECONDITION",
      });
      expect((await client.cancelErasure({ actor: admin, tenantId: id })).tenant!.status).toBe("active");
      expect((await client.authenticate({ apiKey: made.firstKeySecret, ip: "" })).principal!.tenantId).toBe(
        id,
      );
      await client.eraseTenant({ actor: admin, tenantId: id, graceSeconds: 0n });
      expect((await client.listTenants({ dueForErasure: true })).tenants.map((t) => t.id)).toEqual([id]);
      const exported = await data.exportTenantData({ tenantId: id });
      expect(exported.sections.find((x) => x.name === "tenants.api_keys")!.rows).toBe(1n);
      expect(
        Buffer.from(exported.sections.find((x) => x.name === "tenants.api_keys")!.ndjson).toString(),
      ).not.toMatch(/hash/);
      const { counts } = await data.purgeTenantData({
        tenantId: id,
        purgedElsewhere: [{ name: "jobs.jobs", rows: 2n }],
      });
      expect(counts.find((c) => c.name === "tenants.tenant")!.rows).toBe(1n);
      expect(await client.getTenant({ tenantId: id }).catch((e: ValoraError) => e.code)).toBe("NOT_FOUND");
      const leftovers = await pool.query(
        "SELECT count(*)::int AS n FROM audit_log WHERE tenant_id::text = $1 OR target LIKE '%' || $1 || '%' OR details::text LIKE '%' || $1 || '%'",
        [id],
      );
      expect(leftovers.rows[0].n).toBe(0);
      // The platform's own audit rows about it remain, naming it by the digest (no id, no name).
      const platformRows = (await client.listAudit({ tenantId: platform.tenantId })).entries.filter(
        (e) => e.target === erasedTarget(id),
      );
      expect(platformRows.map((e) => e.action)).toEqual(
        expect.arrayContaining([
          "tenant.create",
          "tenant.erase.requested",
          "tenant.erase.cancelled",
          "tenant.erase.purged",
        ]),
      );
      expect(JSON.stringify(platformRows.map((e) => [e.target, e.details]))).not.toContain('"leaving"');
      const record = (await client.listAudit({ tenantId: platform.tenantId, action: "tenant.erase.purged" }))
        .entries[0]!;
      expect(record.target).toBe(erasedTarget(id));
      expect(record.details).toMatchObject({
        counts: { "jobs.jobs": 2, "tenants.tenant": 1, "tenants.api_keys": 1 },
      });
      // Idempotent: a second purge of a tenant already gone finds nothing and records nothing.
      expect((await data.purgeTenantData({ tenantId: id })).counts.every((c) => c.rows === 0n)).toBe(true);
    } finally {
      data.close();
    }
  });
});
