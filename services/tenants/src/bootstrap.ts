import type { TenantRow, TenantStore } from "./store.js";

export const DEFAULT_TENANT = "default";

/**
 * First start: the platform's `default` tenant and an admin key for it. The key comes from
 * VALORA_BOOTSTRAP_API_KEY when set (idempotent), otherwise one is generated when the tenant has
 * no key yet and returned so the caller prints it once — it is never shown again.
 */
export async function bootstrap(
  store: TenantStore,
  options: { apiKey?: string; plan?: string },
): Promise<{ tenant: TenantRow; generatedKey?: string }> {
  const tenant =
    (await store.tenant(DEFAULT_TENANT)) ??
    (await store
      .createTenant(undefined, DEFAULT_TENANT, options.plan ?? "enterprise", true)
      .catch(async (err: unknown) => {
        // Another replica created it first.
        const t = await store.tenant(DEFAULT_TENANT);
        if (!t) throw err;
        return t;
      }));
  const actor = { tenantId: tenant.id, subject: "system:bootstrap", ip: "" };
  if (options.apiKey) {
    await store.importApiKey(actor, "bootstrap", options.apiKey, ["admin"]);
    return { tenant };
  }
  if ((await store.listApiKeys(tenant.id)).length > 0) return { tenant };
  const { secret } = await store.createApiKey(actor, "bootstrap", ["admin"], []);
  return { tenant, generatedKey: secret };
}
