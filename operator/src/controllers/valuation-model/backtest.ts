import { PipelineService } from "@valora/proto/valora/v1/pipeline_pb";
import { createClient } from "@valora/kit";
import type { BacktestResult } from "./rollout.js";

/** Asks an asset class's pipeline to value recent landed sales with two versions of its model. */
export interface BacktestSource {
  run(i: {
    /** host:port of the pipeline's gRPC Service. */
    endpoint: string;
    assetClass: string;
    champion: { version: string; endpoint: string };
    candidate: { version: string; endpoint: string };
    maxSales: number;
    since?: string;
  }): Promise<BacktestResult>;
}

/** valora.v1.PipelineService/Backtest over gRPC: the pipeline has the sales, features and model clients. */
export class GrpcBacktest implements BacktestSource {
  async run(i: Parameters<BacktestSource["run"]>[0]): Promise<BacktestResult> {
    const client = createClient(PipelineService, i.endpoint, { timeoutMs: 60_000 });
    try {
      const r = await client.backtest({
        assetClass: i.assetClass,
        champion: i.champion,
        candidate: i.candidate,
        maxSales: i.maxSales,
        since: i.since ?? "",
      });
      const accuracy = (a: typeof r.champion) =>
        a ? { mdapePct: a.mdapePct, ppe10Pct: a.ppe10Pct, biasPct: a.biasPct } : undefined;
      const champion = accuracy(r.champion);
      const candidate = accuracy(r.candidate);
      return {
        sales: r.sales,
        excludedAsTraining: r.excludedAsTraining,
        ...(champion ? { champion } : {}),
        ...(candidate ? { candidate } : {}),
      };
    } finally {
      client.close();
    }
  }
}
