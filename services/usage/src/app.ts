import type { Pool, ServiceBase, ServiceRegistration } from "@valora/kit";
import { migrateUsage } from "./migrations.js";
import { usageService } from "./service.js";
import { UsageStore } from "./store.js";

export interface UsageApp {
  service: ServiceRegistration;
  store: UsageStore;
  start(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The usage service from its dependencies; `main` and `valora up` both use it. Idempotency keys
 * are kept `keyRetentionDays` (far longer than any retry) and then forgotten; daily totals stay.
 */
export function createUsage(
  base: Pick<ServiceBase, "logger">,
  o: { pool: Pool; keyRetentionDays?: number },
): UsageApp {
  const store = new UsageStore(o.pool);
  let timer: NodeJS.Timeout | undefined;
  const purge = () =>
    store
      .purgeKeys(o.keyRetentionDays ?? 7)
      .then((n) => n > 0 && base.logger.info({ purged: n }, "usage idempotency keys purged"))
      .catch((err: unknown) => base.logger.warn({ err }, "usage key purge failed"));
  return {
    service: usageService({ store }),
    store,
    async start() {
      const applied = await migrateUsage(o.pool);
      if (applied.length > 0) base.logger.info({ migrations: applied }, "usage schema migrated");
      timer = setInterval(() => void purge(), 3_600_000);
      timer.unref();
    },
    async close() {
      if (timer) clearInterval(timer);
    },
  };
}
