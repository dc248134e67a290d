import { ComparablesIndex, type ComparablesSpec, type Sale } from "@valora/comparables";
import type { DegradedLog, Logger, ResidualBands } from "@valora/kit";
import { modelSchemaFrom } from "./features.js";
import type { MarketIndex } from "./market-index.js";
import type { pipelineMetrics } from "./metrics.js";
import type { ModelClient } from "./model-client.js";
import type { Route } from "./routing.js";
import { ValuationPipeline, salesResiduals, type PipelineSpec } from "./valuation.js";

/** An AssetPipeline spec as the runtime reads it (the CR's comparables settings included). */
export type AssetPipelineSpec = PipelineSpec & {
  comparables?: NonNullable<PipelineSpec["comparables"]> &
    Omit<ComparablesSpec, "mode"> & { marketIndex?: string; soldAt?: { year: string; month: string } };
  cache?: { ttlSeconds: number };
};

export interface AssembleOptions {
  spec: AssetPipelineSpec;
  /** The champion model's metadata (ONNX metadata_props): feature schema, residual quantiles. */
  metadata: Record<string, string>;
  /** Comparable sales of the asset class (none: no comparables). */
  sales: Sale[];
  routes: () => Route[];
  client: (route: Route) => ModelClient;
  /** The champion's client: comparables' model residuals are computed with it. */
  champion: ModelClient;
  marketIndex?: () => MarketIndex | undefined;
  logger: Logger;
  metrics?: ReturnType<typeof pipelineMetrics>;
  timeoutMs?: number;
  degraded?: DegradedLog;
}

export interface AssembledPipeline {
  pipeline: ValuationPipeline;
  /**
   * Newly landed sales join the comparables without a rebuild: their model residuals are
   * computed with the champion first, so they correct values like the sales loaded at start.
   * Returns how many were new.
   */
  addSales(sales: Sale[]): Promise<number>;
}

/** One asset class's pipeline from its spec, model metadata and sales: what pipeline pods build. */
export async function assemblePipeline(o: AssembleOptions): Promise<AssembledPipeline> {
  const schema = modelSchemaFrom(o.metadata, 0);
  const cmp = o.spec.comparables;
  const residuals =
    cmp && o.sales.length > 0
      ? await salesResiduals(o.sales, schema, o.spec.input.fields, o.champion)
      : new Map<string, number>();
  const index = cmp ? new ComparablesIndex(o.sales, cmp) : undefined;
  const pipeline = new ValuationPipeline({
    spec: o.spec,
    schema,
    residualQuantiles: JSON.parse(o.metadata["valora.residual_quantiles"] ?? "{}") as Record<string, number>,
    ...(o.metadata["valora.residual_bands"]
      ? { residualBands: JSON.parse(o.metadata["valora.residual_bands"]) as ResidualBands }
      : {}),
    routes: o.routes,
    client: o.client,
    ...(index ? { comparables: index, residualOf: (id: string) => residuals.get(id) } : {}),
    ...(o.marketIndex ? { marketIndex: o.marketIndex } : {}),
    logger: o.logger,
    ...(o.metrics ? { metrics: o.metrics } : {}),
    ...(o.timeoutMs ? { timeoutMs: o.timeoutMs } : {}),
    ...(o.degraded ? { degraded: o.degraded } : {}),
  });
  return {
    pipeline,
    async addSales(sales) {
      if (!index || !cmp) return 0;
      for (const [id, r] of await salesResiduals(sales, schema, o.spec.input.fields, o.champion))
        residuals.set(id, r);
      return index.add(sales);
    },
  };
}
