import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  Route,
  type ValueBatchRequestSchema,
  type ValueBatchResponse,
} from "@valora/proto/valora/v1/valuation_pb";
import type { CallOptions } from "@valora/kit";
import type { RowResult } from "./store.js";
import type { ValueRows } from "./worker.js";

const ROUTES: Record<Route, string> = {
  [Route.UNSPECIFIED]: "",
  [Route.CHAMPION]: "champion",
  [Route.CANARY]: "canary",
  [Route.FALLBACK]: "fallback",
};

/**
 * Job rows valued through valora.v1.ValuationService/ValueBatch (the same validation, cache and
 * pipeline as single calls). Marked as job traffic: the worker meters its chunks exactly once.
 */
export function valueRowsWith(
  valueBatch: (
    req: MessageInitShape<typeof ValueBatchRequestSchema>,
    options?: CallOptions,
  ) => Promise<ValueBatchResponse>,
  timeoutMs = 60_000,
): ValueRows {
  return async (tenantId, assetClass, rows) => {
    const { results } = await valueBatch(
      { assetClass, items: rows.map((attributes) => ({ attributes })), lean: true },
      { timeoutMs, metadata: { "x-tenant-id": tenantId, "x-valora-usage": "job" } },
    );
    const out = new Array<RowResult>(rows.length);
    for (const r of results) {
      if (r.outcome.case === "valuation") {
        const v = r.outcome.value;
        out[r.index] = {
          value: v.value,
          low: v.interval?.low ?? 0,
          high: v.interval?.high ?? 0,
          coverage: v.interval?.coverage ?? 0,
          confidence: v.confidence,
          modelVersion: v.model?.version ?? "",
          route: ROUTES[v.model?.route ?? Route.UNSPECIFIED],
          ...(v.warnings.length
            ? { warnings: v.warnings.map((w) => ({ field: w.field, code: w.code })) }
            : {}),
        };
      } else if (r.outcome.case === "error") {
        const e = r.outcome.value;
        out[r.index] = {
          error: {
            code: e.code,
            message: e.violations.length
              ? e.violations.map((x) => `${x.field}: ${x.description}`).join("; ")
              : e.message,
          },
        };
      }
    }
    return out;
  };
}
