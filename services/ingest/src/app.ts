import type { Pool, ServiceBase, ServiceRegistration } from "@valora/kit";
import { gauge } from "@valora/kit";
import type { ClassSchema } from "./contract.js";
import { ingestService, type IngestServiceDeps } from "./service.js";
import { IngestStore, migrateIngest } from "./store.js";

export interface IngestApp {
  service: ServiceRegistration;
  store: IngestStore;
  start(): Promise<void>;
}

/** The ingest service from its dependencies (`valora up` composes it; a pod main would too). */
export function createIngest(
  base: Pick<ServiceBase, "logger" | "registry">,
  o: {
    pool: Pool;
    schema: (assetClass: string) => ClassSchema | undefined;
    classOfModel: (model: string) => string | undefined;
    onDrift?: IngestServiceDeps["onDrift"];
  },
): IngestApp {
  const store = new IngestStore(o.pool);
  const realised = gauge(
    base.registry,
    "valora_realised_mdape_percent",
    "Realised MdAPE of a model version in the latest month with scored valuations.",
    ["model", "version"],
  );
  const drifting = gauge(
    base.registry,
    "valora_model_drift",
    "1 while a model's realised MdAPE is above its contract's threshold.",
    ["model"],
  );
  return {
    store,
    service: ingestService({
      pool: o.pool,
      store,
      schema: o.schema,
      classOfModel: o.classOfModel,
      logger: base.logger,
      onDrift: (e) => {
        realised.set({ model: e.model, version: e.modelVersion }, e.mdape);
        drifting.set({ model: e.model }, 1);
        base.logger.warn(e, "model drift: realised MdAPE above the contract's threshold");
        o.onDrift?.(e);
      },
    }),
    async start() {
      const applied = await migrateIngest(o.pool);
      if (applied.length > 0) base.logger.info({ migrations: applied }, "ingest schema migrated");
    },
  };
}

type DriftEvent = Parameters<NonNullable<IngestServiceDeps["onDrift"]>>[0];

/**
 * The drift announcement: a `model.drift` event to every tenant whose valuations of the model
 * were scored, once per model, version and month (the event id makes repeats no-ops).
 */
export function driftAnnouncer(
  pool: Pool,
  publish: (e: { tenantId: string; eventId: string; type: string; data: DriftEvent }) => Promise<unknown>,
  logger: Pick<ServiceBase["logger"], "warn">,
): (e: DriftEvent) => void {
  return (e) =>
    void pool
      .query<{ tenant_id: string }>(
        "SELECT DISTINCT tenant_id FROM valuation_log WHERE model = $1 AND tenant_id <> ''",
        [e.model],
      )
      .then(({ rows }) =>
        Promise.all(
          rows.map((r) =>
            publish({
              tenantId: r.tenant_id,
              eventId: `drift-${e.model}-${e.modelVersion}-${e.month}`,
              type: "model.drift",
              data: e,
            }),
          ),
        ),
      )
      .catch((err: unknown) => logger.warn({ err }, "could not announce model drift"));
}
