import { timestampDate } from "@bufbuild/protobuf/wkt";
import { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { ValoraError, implement, type ServiceRegistration } from "@valora/kit";
import { dayOf, usageRange } from "./dates.js";
import type { UsageEventRow, UsageStore } from "./store.js";

export const USAGE_KINDS = ["valuation", "job_row"] as const;
const MAX_EVENTS = 10_000;

export interface UsageServiceDeps {
  store: UsageStore;
  now?: () => Date;
}

/** valora.v1.UsageService over the store. Callers are trusted services (orchestrator, job workers, billing). */
export function usageService(d: UsageServiceDeps): ServiceRegistration {
  const now = d.now ?? (() => new Date());
  return implement(UsageService, {
    async recordUsage(req) {
      if (req.events.length > MAX_EVENTS)
        throw new ValoraError("INVALID_ARGUMENT", `at most ${MAX_EVENTS} events per call`, {
          details: [{ field: "events", description: `${req.events.length} sent` }],
        });
      const rows: UsageEventRow[] = req.events.map((e, i) => {
        const bad = (field: string, description: string) =>
          new ValoraError("INVALID_ARGUMENT", `events[${i}].${field}: ${description}`, {
            details: [{ field: `events.${i}.${field}`, description }],
          });
        if (!e.idempotencyKey || e.idempotencyKey.length > 200)
          throw bad("idempotency_key", "required, at most 200 characters");
        if (!e.tenantId) throw bad("tenant_id", "required");
        if (!e.assetClass) throw bad("asset_class", "required");
        if (!(USAGE_KINDS as readonly string[]).includes(e.kind))
          throw bad("kind", `one of ${USAGE_KINDS.join(", ")}`);
        if (e.units <= 0n || e.units > 1_000_000_000n) throw bad("units", "a positive count");
        return {
          idempotencyKey: e.idempotencyKey,
          tenantId: e.tenantId,
          assetClass: e.assetClass,
          kind: e.kind,
          units: Number(e.units),
          day: dayOf(e.at ? timestampDate(e.at) : now()),
        };
      });
      const recorded = await d.store.record(rows);
      return { recorded, duplicates: rows.length - recorded };
    },
    async queryUsage(req) {
      if (!req.tenantId)
        throw new ValoraError("INVALID_ARGUMENT", "tenant_id required", {
          details: [{ field: "tenant_id", description: "required" }],
        });
      const { from, to } = usageRange(req.from, req.to, now());
      const days = await d.store.query(req.tenantId, from, to, req.assetClass || undefined);
      return {
        days: days.map((x) => ({ ...x, units: BigInt(x.units) })),
        total: BigInt(days.reduce((s, x) => s + x.units, 0)),
        from,
        to,
      };
    },
  });
}
