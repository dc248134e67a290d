import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RecordUsageRequestSchema } from "@valora/proto/valora/v1/usage_pb";
import type { UsageRecorder } from "@valora/kit";
import type { JobWorkerOptions } from "./jobs/worker.js";

type RecordUsage = (req: MessageInitShape<typeof RecordUsageRequestSchema>) => Promise<unknown>;

/** The job worker's meter: each chunk's valued rows as one `job_row` event keyed by job and chunk. */
export function jobRowUsage(recordUsage: RecordUsage): NonNullable<JobWorkerOptions["recordUsage"]> {
  return async (chunks) => {
    await recordUsage({
      events: chunks.map((u) => ({
        idempotencyKey: u.idempotencyKey,
        tenantId: u.tenantId,
        assetClass: u.assetClass,
        kind: "job_row",
        units: BigInt(u.units),
      })),
    });
  };
}

/** The orchestrator's meter for single and batch valuations (group-committed `valuation` events). */
export function valuationUsage(
  recorder: UsageRecorder,
): (tenantId: string, assetClass: string, units: number) => Promise<void> {
  return (tenantId, assetClass, units) => recorder.record(tenantId, assetClass, "valuation", units);
}
