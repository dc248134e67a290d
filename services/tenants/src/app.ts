import {
  tenantDataService,
  type Pool,
  type ServiceBase,
  type ServiceRegistration,
  type TenantDataOptions,
} from "@valora/kit";
import { TENANT_TABLES, TenantLifecycle } from "./lifecycle.js";
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
  /** valora.v1.TenantDataService: the tenant's rows for exports, and its purge once due. */
  data: ServiceRegistration;
  /** The same as options, to combine with other services' shares of one database. */
  dataOptions: TenantDataOptions;
  store: TenantStore;
  lifecycle: TenantLifecycle;
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
  const lifecycle = new TenantLifecycle(o.pool);
  const dataOptions: TenantDataOptions = {
    pool: o.pool,
    tables: TENANT_TABLES,
    guard: (id) => lifecycle.checkDue(id),
    afterPurge: (db, id, counts) => TenantLifecycle.recordErasure(db, id, counts),
  };
  return {
    service: tenantService({ store, lifecycle, webhooks: o.webhooks, worker }),
    data: tenantDataService(dataOptions),
    dataOptions,
    store,
    lifecycle,
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
