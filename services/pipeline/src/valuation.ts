import {
  DegradedLog,
  ValoraError,
  domainWarnings,
  FULL_PARTS,
  inSpan,
  inSpanSync,
  intervalFor,
  quantilesFor,
  widened,
  type ResidualBands,
  type ValuationWarning,
  type ValuationParts,
  pairedDeltaPct,
  valuationAccuracy,
  type ValuationAccuracy,
  toValoraError,
  type Counter,
  type Histogram,
  type Logger,
} from "@valora/kit";
import { featureRow, toValue, type ModelSchema } from "./features.js";
import { explanationByField } from "./explanation.js";
import type { InputField, Normalised } from "./input.js";
import type { ExplanationOut, ModelClient } from "./model-client.js";
import { chooseRoute, pairedRoute, type Route } from "./routing.js";
import type { MarketIndex } from "./market-index.js";

export interface Comparable {
  id: string;
  price: number;
  adjustedPrice: number;
  distanceKm: number;
  similarity: number;
  soldAt?: string;
  attributes: Record<string, number | string | boolean>;
}

/** Comparable sales for a subject (the comparables engine, passed in). */
export interface ComparablesProvider {
  find(
    subject: { lat?: number; lon?: number; attributes: Record<string, number | string | boolean> },
    options?: { excludeId?: string; index?: MarketIndex },
  ): Comparable[];
}

export interface PipelineSpec {
  assetClass: string;
  currency: string;
  model: { name: string };
  input: { fields: InputField[] };
  comparables?: {
    mode: "geo" | "attributes";
    latitude?: string;
    longitude?: string;
    blend: number;
    similarity?: { field: string }[];
  };
  explain?: { topK: number };
  interval?: { coverage: number };
  fallback?: { mode: "comparables" | "none" };
}

export interface ValuationOut {
  assetClass: string;
  assetKey: string;
  value: number;
  currency: string;
  interval: { low: number; high: number; coverage: number };
  confidence: number;
  comparables: Comparable[];
  explanation?: ExplanationOut;
  model: { name: string; version: string; route: "champion" | "canary" | "fallback" };
  /** A stable code when the fallback answered (FALLBACK_REASONS), with its sentence. */
  fallbackReason?: FallbackReason;
  fallbackMessage?: string;
  /** Attributes outside the training domain (the interval is widened for them). */
  warnings: ValuationWarning[];
}

/**
 * Why a valuation came from comparables alone, as clients see it: a stable code and a sentence.
 * What actually failed (addresses, transport errors) goes to logs and traces, never to clients.
 */
export const FALLBACK_REASONS = {
  MODEL_UNAVAILABLE: "the model is unavailable; valued from comparable sales",
  MODEL_TIMEOUT: "the model did not answer in time; valued from comparable sales",
} as const;
export type FallbackReason = keyof typeof FALLBACK_REASONS;

/** Pure: the fallback reason of a failed model call's error code. */
export const fallbackReasonOf = (code: string): FallbackReason =>
  code === "DEADLINE_EXCEEDED" ? "MODEL_TIMEOUT" : "MODEL_UNAVAILABLE";

export interface PipelineDeps {
  spec: PipelineSpec;
  schema: ModelSchema;
  residualQuantiles: Record<string, number>;
  /** Residual quantiles per band of value (the model's valora.residual_bands), when it has them. */
  residualBands?: ResidualBands;
  routes: () => Route[];
  client: (route: Route) => ModelClient;
  comparables?: ComparablesProvider;
  /** The market series the AssetPipeline names (comparables.marketIndex), when loaded: comparable prices are time-adjusted with it. */
  marketIndex?: () => MarketIndex | undefined;
  /** Model residual (log actual/predicted) of a comparable sale under the champion, for correction. */
  residualOf?: (saleId: string) => number | undefined;
  logger: Logger;
  metrics?: {
    shadowDelta: Histogram<"model" | "version">;
    shadowErrors: Counter<"model" | "version">;
    pairedDelta: Histogram<"model" | "version" | "champion">;
    pairedAbsDelta: Histogram<"model" | "version" | "champion">;
    pairedErrors: Counter<"model" | "version">;
    fallbacks: Counter<"asset_class" | "reason">;
  };
  timeoutMs?: number;
  /** Rate-limited warnings of degraded answers (default: one on `logger`). */
  degraded?: DegradedLog;
}

/**
 * Pure: how much wider an interval is made for an asset with `outside` fields outside the training
 * domain — half as wide again per field, at most three times. Held-out assets outside the domain
 * err more (bench:accuracy reports their coverage); the widening keeps their interval honest and,
 * through the width, lowers their confidence.
 */
export const domainWidening = (outside: number): number => Math.min(3, 1 + 0.5 * outside);

/** Pure: confidence in (0, 1] from the interval's log width — narrow intervals, high confidence. */
export function confidenceOf(value: number, low: number, high: number): number {
  return value > 0 && low > 0 ? Math.min(1, Math.exp(-Math.log(high / low))) : 0;
}

/**
 * Pure: the model value corrected by its comparables' model residuals (log space), weighted by
 * similarity and scaled by `strength` (the AssetPipeline's `comparables.blend`, 0 = model only).
 * Held-out, this beat both the model alone and a blend of comparables' prices (bench:accuracy).
 */
export function residualCorrected(
  modelValue: number,
  comps: Comparable[],
  residualOf: (id: string) => number | undefined,
  strength: number,
): number {
  let w = 0;
  let r = 0;
  for (const c of comps) {
    const res = residualOf(c.id);
    if (res === undefined) continue;
    w += c.similarity;
    r += c.similarity * res;
  }
  return w > 0 ? modelValue * Math.exp((strength * r) / w) : modelValue;
}

/** One asset class's valuation: route, model + explanation, comparables, correction, interval, fallback. */
export class ValuationPipeline {
  private readonly degraded: DegradedLog;

  constructor(private readonly d: PipelineDeps) {
    this.degraded = d.degraded ?? new DegradedLog({ logger: d.logger });
  }

  async value(attrs: Normalised, assetKey: string): Promise<ValuationOut> {
    const [one] = await this.valueMany([{ attributes: attrs, assetKey }]);
    if (one instanceof Error) throw one;
    return one!;
  }

  /**
   * Values many assets with one model call and one explanation call per serving route (rather
   * than two calls per asset): what batches and bulk jobs go through. Each item succeeds or fails
   * on its own; a route whose model is unreachable answers its items from the fallback.
   */
  async valueMany(
    items: { attributes: Normalised; assetKey: string }[],
    options: { parts?: ValuationParts } = {},
  ): Promise<(ValuationOut | Error)[]> {
    const spec = this.d.spec;
    const c = spec.comparables;
    const width = this.d.schema.features.length;
    const coverage = spec.interval?.coverage ?? 0.8;
    // Comparables always correct the value; whether they and an explanation are returned is the caller's
    // choice (bulk jobs and value-only clients skip the explanation's cost).
    const parts = options.parts ?? FULL_PARTS;
    const topK = parts.explanation ? (spec.explain?.topK ?? 5) : 0;
    const out = new Array<ValuationOut | Error>(items.length);
    const groups = new Map<
      Route,
      {
        index: number;
        comps: Comparable[];
        row: Float32Array;
        attrs: Normalised;
        assetKey: string;
        warnings: ValuationWarning[];
      }[]
    >();
    let shadows: Route[] = [];
    const market = this.d.marketIndex?.();
    items.forEach((item, index) => {
      try {
        const attrs = item.attributes;
        const lat = c?.latitude ? attrs[c.latitude] : undefined;
        const lon = c?.longitude ? attrs[c.longitude] : undefined;
        const comps = inSpanSync("comparables", (span) => {
          const found =
            this.d.comparables?.find(
              {
                ...(typeof lat === "number" && typeof lon === "number" ? { lat, lon } : {}),
                attributes: attrs,
              },
              market ? { index: market } : {},
            ) ?? [];
          span.setAttribute("valora.comparables.found", found.length);
          return found;
        });
        const row = featureRow(this.d.schema, spec.input.fields, attrs);
        const route = inSpanSync("route", (span) => {
          const chosen = chooseRoute(this.d.routes(), item.assetKey);
          span.setAttributes({
            "valora.model.version": chosen.serve.version,
            "valora.route": chosen.serve.role === "canary" ? "canary" : "champion",
            "valora.shadows": chosen.shadows.length,
          });
          return chosen;
        });
        shadows = route.shadows;
        const g = groups.get(route.serve) ?? [];
        const warnings = domainWarnings(spec.input.fields, attrs);
        g.push({ index, comps, row, attrs, assetKey: item.assetKey, warnings });
        groups.set(route.serve, g);
      } catch (err) {
        out[index] = err instanceof Error ? err : new Error(String(err));
      }
    });
    await Promise.all(
      [...groups.entries()].map(async ([serve, members]) => {
        const timeoutMs = (this.d.timeoutMs ?? 1000) * Math.max(1, Math.ceil(members.length / 20));
        const rows = new Float32Array(members.length * width);
        members.forEach((m, k) => rows.set(m.row, k * width));
        const client = this.d.client(serve);
        try {
          // Explained: one call answers the predictions and every contribution (folded and cut here).
          const [predictions, explanations] = await inSpan(
            "model",
            async (): Promise<[Float32Array, (ExplanationOut | undefined)[] | undefined]> => {
              if (topK === 0) return [await client.predict(rows, width, timeoutMs), undefined];
              // An explanation that fails or is late (or a model server that predates the combined
              // call) costs the answer its explanation, not its value: the prediction is asked for
              // alone. A server that cannot be reached goes to the fallback at once.
              const r = await client.predictExplained(rows, width, timeoutMs).catch(async (err: unknown) => {
                if (toValoraError(err).code === "UNAVAILABLE") throw err;
                return { predictions: await client.predict(rows, width, timeoutMs), explanations: undefined };
              });
              const told = r.explanations?.map((e, k) =>
                explanationByField(
                  e,
                  this.d.schema.features,
                  members[k]!.row,
                  spec.input.fields,
                  members[k]!.attrs,
                  topK,
                ),
              );
              return [r.predictions, told];
            },
            {
              attributes: {
                "valora.model.name": spec.model.name,
                "valora.model.version": serve.version,
                "valora.rows": members.length,
                "valora.explain": topK > 0,
              },
            },
          );
          const modelValues = members.map((_, k) => toValue(this.d.schema, predictions[k]!));
          for (const s of shadows) this.shadow(s, rows, width, modelValues, serve);
          this.pair(serve, members, width, modelValues);
          members.forEach((m, k) => {
            const value =
              this.d.residualOf && c
                ? residualCorrected(modelValues[k]!, m.comps, this.d.residualOf, c.blend)
                : modelValues[k]!;
            const quantiles = quantilesFor(value, this.d.residualQuantiles, this.d.residualBands);
            const iv = widened(
              value,
              intervalFor(value, quantiles, coverage),
              domainWidening(m.warnings.length),
            );
            const explanation = explanations?.[k];
            out[m.index] = {
              assetClass: spec.assetClass,
              assetKey: m.assetKey,
              value,
              currency: spec.currency,
              interval: { ...iv, coverage },
              confidence: confidenceOf(value, iv.low, iv.high),
              comparables: parts.comparables ? this.shown(m.comps) : [],
              ...(explanation
                ? {
                    explanation: {
                      ...explanation,
                      outputScale: this.d.schema.targetTransform === "log" ? "log" : "identity",
                    },
                  }
                : {}),
              model: {
                name: spec.model.name,
                version: serve.version,
                route: serve.role === "canary" ? "canary" : "champion",
              },
              warnings: m.warnings,
            };
          });
        } catch (err) {
          const e = toValoraError(err);
          for (const m of members) {
            if (e.code !== "UNAVAILABLE" && e.code !== "DEADLINE_EXCEEDED") out[m.index] = e;
            else {
              try {
                const failure = { version: serve.version, code: e.code, detail: e.message };
                out[m.index] = {
                  ...this.fallback(spec, m.assetKey, m.comps, coverage, failure),
                  warnings: m.warnings,
                };
              } catch (fallbackErr) {
                out[m.index] = toValoraError(fallbackErr);
              }
            }
          }
        }
      }),
    );
    return out;
  }

  /**
   * Comparables as answered: each with the attributes it was compared on (similarity fields and
   * coordinates), not every field of the sale — the answer stays small and fast to encode.
   */
  private shown(comps: Comparable[]): Comparable[] {
    const c = this.d.spec.comparables;
    if (!c) return comps;
    const keep = [
      ...(c.similarity ?? []).map((s) => s.field),
      ...(c.latitude ? [c.latitude] : []),
      ...(c.longitude ? [c.longitude] : []),
    ];
    return comps.map((x) => ({
      ...x,
      attributes: Object.fromEntries(
        keep.filter((k) => x.attributes[k] !== undefined).map((k) => [k, x.attributes[k]!]),
      ),
    }));
  }

  /** Comparables-only answer when the model cannot be reached (spec.fallback.mode = comparables). */
  private fallback(
    spec: PipelineSpec,
    assetKey: string,
    comps: Comparable[],
    coverage: number,
    failure: { version: string; code: string; detail: string },
  ): Omit<ValuationOut, "warnings"> {
    const reason = fallbackReasonOf(failure.code);
    this.d.metrics?.fallbacks.inc({ asset_class: spec.assetClass, reason: reason.toLowerCase() });
    if ((spec.fallback?.mode ?? "comparables") === "none" || comps.length === 0) {
      this.d.logger.warn(
        { assetClass: spec.assetClass, ...failure },
        "model failed and no fallback answered",
      );
      const why =
        comps.length === 0 ? "there are no comparable sales to value from" : "no fallback is configured";
      throw new ValoraError("UNAVAILABLE", `the model is unavailable and ${why}; retry shortly`);
    }
    const w = comps.reduce((s, x) => s + x.similarity, 0);
    const mean = comps.reduce((s, x) => s + x.similarity * Math.log(x.adjustedPrice), 0) / w;
    const sd = Math.sqrt(
      comps.reduce((s, x) => s + x.similarity * (Math.log(x.adjustedPrice) - mean) ** 2, 0) / w,
    );
    const z = Math.SQRT2 * inverseErf(coverage);
    const value = Math.exp(mean);
    const interval = { low: Math.exp(mean - z * sd), high: Math.exp(mean + z * sd), coverage };
    // While a model is down every valuation takes this path: one line per 30 s, with a count.
    this.degraded.note(
      `model:${spec.model.name}@${failure.version}`,
      `answered from comparables (${reason})`,
      failure.detail,
    );
    return {
      assetClass: spec.assetClass,
      assetKey,
      value,
      currency: spec.currency,
      interval,
      confidence: confidenceOf(value, interval.low, interval.high) * 0.5,
      comparables: this.shown(comps),
      model: { name: spec.model.name, version: "", route: "fallback" },
      fallbackReason: reason,
      fallbackMessage: FALLBACK_REASONS[reason],
    };
  }

  /**
   * Mirrors rows to a shadow version; never awaited, never changes the answers; records |delta| %
   * per row, and the signed pair against the version that served (what the operator reports).
   */
  private shadow(route: Route, rows: Float32Array, width: number, served: number[], by: Route): void {
    const labels = { model: this.d.spec.model.name, version: route.version };
    // Its own span, ended when the shadow answers: never part of (nor holding) the answer.
    void inSpan(
      "shadow",
      () =>
        this.d
          .client(route)
          .predict(rows, width, (this.d.timeoutMs ?? 1000) * Math.max(1, Math.ceil(served.length / 20)))
          .then((out) =>
            served.forEach((v, k) => {
              const shadowValue = toValue(this.d.schema, out[k]!);
              this.d.metrics?.shadowDelta.observe(labels, (100 * Math.abs(shadowValue - v)) / v);
              this.recordPair(route, by, shadowValue, v);
            }),
          )
          .catch(() => this.d.metrics?.shadowErrors.inc(labels)),
      { attributes: { "valora.model.version": route.version, "valora.rows": served.length } },
    );
  }

  /**
   * The paired sample of a canary: the members in the sample are also valued by the other version
   * (never awaited, never changing an answer), and each pair's signed delta is recorded.
   */
  private pair(
    serve: Route,
    members: { row: Float32Array; assetKey: string }[],
    width: number,
    served: number[],
  ) {
    const routes = this.d.routes();
    let pair: ReturnType<typeof pairedRoute>;
    const sample: number[] = [];
    members.forEach((m, k) => {
      const p = pairedRoute(routes, serve, m.assetKey);
      if (!p) return;
      pair = p;
      sample.push(k);
    });
    if (!pair) return;
    const { other: o, candidate: c, champion: h } = pair;
    const rows = new Float32Array(sample.length * width);
    sample.forEach((k, i) => rows.set(members[k]!.row, i * width));
    const timeoutMs = (this.d.timeoutMs ?? 1000) * Math.max(1, Math.ceil(sample.length / 20));
    void inSpan(
      "paired",
      () =>
        this.d
          .client(o)
          .predict(rows, width, timeoutMs)
          .then((out) =>
            sample.forEach((k, i) => {
              const otherValue = toValue(this.d.schema, out[i]!);
              const [candidateValue, championValue] =
                o === c ? [otherValue, served[k]!] : [served[k]!, otherValue];
              this.recordPair(c, h, candidateValue, championValue);
            }),
          )
          .catch(() =>
            this.d.metrics?.pairedErrors.inc({ model: this.d.spec.model.name, version: o.version }),
          ),
      { attributes: { "valora.model.version": o.version, "valora.rows": sample.length } },
    );
  }

  /**
   * Values sales that happened with two versions of the model (as served: features from the
   * spec, model value before the comparables' correction, which both would get alike) and scores
   * each against the prices: a candidate's accuracy before it gets traffic.
   */
  async backtest(
    sales: { price: number; attributes: Record<string, number | string | boolean> }[],
    champion: Route,
    candidate: Route,
  ): Promise<{ champion: ValuationAccuracy; candidate: ValuationAccuracy }> {
    const width = this.d.schema.features.length;
    const rows = new Float32Array(sales.length * width);
    sales.forEach((s, k) =>
      rows.set(featureRow(this.d.schema, this.d.spec.input.fields, s.attributes), k * width),
    );
    const prices = sales.map((s) => s.price);
    const score = async (route: Route) => {
      const out = await this.d.client(route).predict(rows, width, 30_000);
      return valuationAccuracy(
        sales.map((_, k) => toValue(this.d.schema, out[k]!)),
        prices,
      );
    };
    const [a, b] = await Promise.all([score(champion), score(candidate)]);
    return { champion: a, candidate: b };
  }

  private recordPair(candidate: Route, champion: Route, candidateValue: number, championValue: number): void {
    if (!(championValue > 0) || !Number.isFinite(candidateValue)) return;
    const labels = { model: this.d.spec.model.name, version: candidate.version, champion: champion.version };
    const delta = pairedDeltaPct(candidateValue, championValue);
    this.d.metrics?.pairedDelta.observe(labels, delta);
    this.d.metrics?.pairedAbsDelta.observe(labels, Math.abs(delta));
  }
}

/** Winitzki's approximation of erf⁻¹, enough for interval z-scores. */
function inverseErf(x: number): number {
  const a = 0.147;
  const ln = Math.log(1 - x * x);
  const t = 2 / (Math.PI * a) + ln / 2;
  return Math.sign(x) * Math.sqrt(Math.sqrt(t * t - ln / a) - t);
}

/**
 * The champion's residual (log actual/predicted) for every known sale, predicted in batches: the
 * comparables' residuals correct a subject's value. Recomputed when the champion changes.
 */
export async function salesResiduals(
  sales: { id: string; price: number; attributes: Record<string, number | string | boolean> }[],
  schema: ModelSchema,
  fields: InputField[],
  client: ModelClient,
  batch = 512,
): Promise<Map<string, number>> {
  const width = schema.features.length;
  const out = new Map<string, number>();
  for (let i = 0; i < sales.length; i += batch) {
    const chunk = sales.slice(i, i + batch);
    const rows = new Float32Array(chunk.length * width);
    chunk.forEach((s, k) => rows.set(featureRow(schema, fields, s.attributes), k * width));
    const preds = await client.predict(rows, width, 10_000);
    chunk.forEach((s, k) => out.set(s.id, Math.log(s.price / toValue(schema, preds[k]!))));
  }
  return out;
}
