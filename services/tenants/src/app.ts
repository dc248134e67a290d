import { type Pool, type ServiceBase, type ServiceRegistration } from "@valora/kit";
import { bootstrap } from "./bootstrap.js";
import { migrateTenants } from "./migrations.js";
import { tenantService } from "./service.js";
import { TenantStore } from "./store.js";
import { DeliveryWorker } from "./webhooks.js";

export interface TenantsOptions {
  pool: Pool;
  webhooks: { allowHttp: boolean; allowPrivate: boolean; maxAttempts?: number; baseDelaySeconds?: number };
  bootstrapApiKey?: string;
}

export interface TenantsApp {
  service: ServiceRegistration;
  store: TenantStore;
  worker: DeliveryWorker;
  /** Migrates, bootstraps the default tenant, starts webhook delivery. Returns a generated bootstrap key, if any. */
  start(): Promise<{ generatedKey?: string }>;
  close(): Promise<void>;
}

/** The tenants service built from its dependencies; `main` and `valora up` both use it. */
export function createTenants(base: Pick<ServiceBase, "logger" | "registry">, o: TenantsOptions): TenantsApp {
  const store = new TenantStore(o.pool);
  const worker = new DeliveryWorker({
    pool: o.pool,
    logger: base.logger,
    registry: base.registry,
    ...(o.webhooks.maxAttempts ? { maxAttempts: o.webhooks.maxAttempts } : {}),
    ...(o.webhooks.baseDelaySeconds ? { baseDelaySeconds: o.webhooks.baseDelaySeconds } : {}),
  });
  return {
    service: tenantService({ store, webhooks: o.webhooks, worker }),
    store,
    worker,
    async start() {
      const applied = await migrateTenants(o.pool);
      if (applied.length > 0) base.logger.info({ migrations: applied }, "tenants schema migrated");
      const { generatedKey } = await bootstrap(store, o.bootstrapApiKey ? { apiKey: o.bootstrapApiKey } : {});
      worker.start();
      return generatedKey ? { generatedKey } : {};
    },
    close: () => worker.stop(),
  };
}
