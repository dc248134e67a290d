import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Route, type Valuation } from "@valora/proto/valora/v1/valuation_pb";
import type { z } from "zod";
import type { Valuation as ValuationJson } from "./schemas.js";

const ROUTE_NAMES: Record<Route, "champion" | "canary" | "fallback"> = {
  [Route.UNSPECIFIED]: "champion",
  [Route.CHAMPION]: "champion",
  [Route.CANARY]: "canary",
  [Route.FALLBACK]: "fallback",
};

type FallbackReason = "MODEL_UNAVAILABLE" | "MODEL_TIMEOUT";

/** Pure: the REST fallback code of a valuation's (a code the API does not document reads as unavailable). */
const fallbackReasonOf = (reason: string): FallbackReason | null => {
  if (!reason) return null;
  return reason === "MODEL_TIMEOUT" ? reason : "MODEL_UNAVAILABLE";
};

type WarningCode = "OUTSIDE_TRAINING_RANGE" | "UNSEEN_CATEGORY" | "DEPRECATED_ATTRIBUTE";
const WARNING_CODES = new Set<string>(["OUTSIDE_TRAINING_RANGE", "UNSEEN_CATEGORY", "DEPRECATED_ATTRIBUTE"]);
/** Pure: a warning's REST code (one the API does not document reads as outside the training range). */
const warningCodeOf = (code: string): WarningCode =>
  WARNING_CODES.has(code) ? (code as WarningCode) : "OUTSIDE_TRAINING_RANGE";

/** Pure: a protobuf timestamp as ISO 8601, null when absent (REST answers). */
export const iso = (t: Timestamp | undefined): string | null => (t ? timestampDate(t).toISOString() : null);

const comparablesJson = (v: Valuation) =>
  v.comparables.map((c) => ({
    id: c.id,
    price: c.price,
    adjustedPrice: c.adjustedPrice,
    distanceKm: c.distanceKm,
    similarity: c.similarity,
    soldAt: c.soldAt ? timestampDate(c.soldAt).toISOString().slice(0, 10) : null,
    attributes: c.attributes ?? {},
  }));
const explanationJson = (v: Valuation) =>
  v.explanation
    ? {
        baseValue: v.explanation.baseValue,
        output: v.explanation.output,
        method: v.explanation.method,
        scale: v.explanation.outputScale === "log" ? ("log" as const) : ("identity" as const),
        contributions: v.explanation.contributions.map((c) => ({
          feature: c.feature,
          value: c.value,
          contribution: c.contribution,
          field: c.field || null,
          category: c.category || null,
        })),
      }
    : null;
// The fields around comparables and explanation, in the order of the REST shape.
const headJson = (v: Valuation) => ({
  assetClass: v.assetClass,
  assetKey: v.assetKey,
  value: v.value,
  currency: v.currency,
  interval: { low: v.interval?.low ?? 0, high: v.interval?.high ?? 0, coverage: v.interval?.coverage ?? 0 },
  confidence: v.confidence,
});
/** Pure: the REST shape of the model that valued it. */
export const modelJson = (v: Valuation) => ({
  name: v.model?.name ?? "",
  version: v.model?.version ?? "",
  route: ROUTE_NAMES[v.model?.route ?? Route.UNSPECIFIED],
});
const tailJson = (v: Valuation) => ({
  model: modelJson(v),
  cached: v.cached,
  fallbackReason: fallbackReasonOf(v.fallbackReason),
  fallbackMessage: v.fallbackMessage || null,
  warnings: v.warnings.map((w) => ({ field: w.field, code: warningCodeOf(w.code), message: w.message })),
});

/** Pure: the REST shape of a valuation (camelCase, ISO dates, route names rather than enum numbers). */
export function valuationJson(v: Valuation): z.infer<typeof ValuationJson> {
  return { ...headJson(v), comparables: comparablesJson(v), explanation: explanationJson(v), ...tailJson(v) };
}

// JSON text of the comparables and explanation of cached valuations, by the (shared, never
// mutated) decoded messages the orchestrator's cache hands out.
const texts = new WeakMap<object, string>();
function memoText(key: object | undefined, cached: boolean, make: () => unknown): string {
  if (!cached || !key) return JSON.stringify(make());
  let text = texts.get(key);
  if (text === undefined) texts.set(key, (text = JSON.stringify(make())));
  return text;
}

/**
 * JSON.stringify(valuationJson(v)), the same text, without re-encoding a cached valuation's
 * comparables and explanation on every hit (they are most of its ~3 KB and most of its numbers:
 * turning doubles into text was a tenth of a cached valuation's cost).
 */
export function valuationText(v: Valuation): string {
  const head = JSON.stringify(headJson(v));
  const tail = JSON.stringify(tailJson(v));
  const comparables = memoText(v.comparables, v.cached, () => comparablesJson(v));
  const explanation = memoText(v.explanation, v.cached, () => explanationJson(v));
  return `${head.slice(0, -1)},"comparables":${comparables},"explanation":${explanation},${tail.slice(1)}`;
}
