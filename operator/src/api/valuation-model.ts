import { z } from "zod";
import { API_VERSION, Condition, ModelUri, ObjectMeta, Serving, Sha256, cel } from "./common.js";

export const ModelRef = z.object({
  version: z
    .string()
    .min(1)
    .max(63)
    .regex(/^[A-Za-z0-9]([-A-Za-z0-9._]*[A-Za-z0-9])?$/)
    .describe("Version label; unique per model."),
  uri: ModelUri,
  sha256: Sha256.optional(),
});

export const CanaryAnalysis = z
  .object({
    maxErrorRate: z
      .number()
      .min(0)
      .max(1)
      .default(0.01)
      .describe("Highest share of failed candidate requests in an interval."),
    maxLatencyP99Ms: z
      .number()
      .min(0)
      .default(50)
      .describe("Highest candidate p99 latency in an interval, in milliseconds."),
    maxMedianAbsDeltaPct: z
      .number()
      .min(0)
      .default(10)
      .describe("Highest median |candidate − champion| / champion over the interval's paired assets, in %."),
    minRequests: z
      .number()
      .int()
      .min(0)
      .default(50)
      .describe("Fewest candidate requests an interval needs before it can pass."),
    pairedSamplePercent: z
      .number()
      .int()
      .min(0)
      .max(100)
      .default(20)
      .describe(
        "Share of requests that pipelines also value with the other version (never awaited on the answer) " +
          "to compare candidate and champion on the same assets.",
      ),
    maxBiasPct: z
      .number()
      .min(0)
      .default(2)
      .describe("Highest |median (candidate − champion) / champion| over the paired assets, in %: the bias."),
    maxAbsDeltaP90Pct: z
      .number()
      .min(0)
      .default(10)
      .describe("Highest 90th percentile of |candidate − champion| / champion over the paired assets, in %."),
    minPairs: z
      .number()
      .int()
      .min(0)
      .default(50)
      .describe(
        "Fewest paired assets an interval needs before it can pass; a step never passes on no evidence.",
      ),
    maxInconclusiveIntervals: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe("Intervals a step may wait for enough requests and pairs before the canary fails."),
  })
  .describe("Checks every step must pass, read from real metrics.");

export const Backtest = z
  .object({
    sales: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(500)
      .describe("Most recent landed sales to value with both versions before any traffic moves."),
    since: z
      .string()
      .regex(/^\d{4}-\d{2}-\d{2}$/)
      .optional()
      .describe("Only sales on or after this day (YYYY-MM-DD)."),
    minSales: z
      .number()
      .int()
      .min(1)
      .default(30)
      .describe("Fewer eligible sales than this skips the backtest (reported in status), never blocks."),
    maxMdapeIncrease: z
      .number()
      .min(0)
      .default(0.5)
      .describe("Refuse the candidate when its MdAPE exceeds the champion's by more than this, in points."),
  })
  .describe(
    "Accuracy on recent sales before traffic: sales the versions were trained on (training lineage) are left out.",
  );

export const Candidate = ModelRef.extend({
  strategy: z
    .enum(["Canary", "Shadow"])
    .default("Canary")
    .describe(
      "Canary: the candidate takes a growing share of traffic. Shadow: it gets mirrored traffic only.",
    ),
  canary: z
    .object({
      steps: z
        .array(z.number().int().min(1).max(100))
        .min(1)
        .default([10, 25, 50, 100])
        .describe("Traffic percentages, ascending; reaching 100 promotes.")
        .meta({
          "x-kubernetes-list-type": "set",
          ...cel({ rule: "self.isSorted()", message: "canary steps must be ascending" }),
        }),
      interval: z
        .string()
        .regex(/^\d+(ms|s|m|h)$/)
        .default("1m")
        .describe("How long each step runs before its analysis, e.g. 30s, 5m."),
      analysis: CanaryAnalysis.optional(),
      autoPromote: z
        .boolean()
        .default(true)
        .describe("Promote when the last step passes; otherwise wait for a spec edit."),
    })
    .optional(),
  backtest: Backtest.optional(),
});

export const ValuationModelSpec = z
  .object({
    assetClass: z.string().min(1).describe("Asset class the model values (e.g. real-estate)."),
    champion: ModelRef.describe("The version serving traffic. Editing it is a declarative promotion."),
    candidate: Candidate.optional().describe("A version on trial, by canary or shadow."),
    serving: Serving.optional(),
  })
  .meta(
    cel({
      rule: "!has(self.candidate) || self.candidate.version != self.champion.version",
      message: "candidate.version must differ from champion.version",
    }),
  );

export const RouteWeight = z.object({
  version: z.string(),
  role: z.enum(["champion", "canary", "shadow"]),
  endpoint: z.string().describe("host:port of the version's gRPC Service."),
  weight: z.number().int().min(0).max(100).describe("Share of traffic in %, 0 for shadow."),
  pairedSamplePercent: z
    .number()
    .int()
    .min(0)
    .max(100)
    .optional()
    .describe("On a canary route: the share of requests pipelines also value with the other version."),
});

const Accuracy = z.object({ mdapePct: z.number(), ppe10Pct: z.number(), biasPct: z.number() });

export const BacktestStatus = z
  .object({
    passed: z.boolean(),
    skipped: z.boolean().describe("True when the backtest could not judge (too few sales, no pipeline)."),
    message: z.string(),
    at: z.string(),
    sales: z.number().int().describe("Recent landed sales valued by both versions."),
    excludedAsTraining: z.number().int().optional(),
    champion: Accuracy.optional(),
    candidate: Accuracy.optional(),
  })
  .describe("Both versions' accuracy on recent landed sales, measured before the candidate got traffic.");

export const AnalysisFigures = z.object({
  passed: z.boolean(),
  message: z.string(),
  at: z.string(),
  requests: z.number().int().optional(),
  errorRatePct: z.number().optional(),
  latencyP99Ms: z.number().optional(),
  pairs: z.number().int().optional().describe("Assets valued by both versions in the interval."),
  biasPct: z.number().optional().describe("Median (candidate − champion) / champion over the pairs, in %."),
  medianAbsDeltaPct: z.number().optional(),
  absDeltaP90Pct: z
    .number()
    .optional()
    .describe("90th percentile of |candidate − champion| / champion, in %."),
});

export const ValuationModelStatus = z.object({
  observedGeneration: z.number().int().optional(),
  conditions: z.array(Condition).optional(),
  champion: z
    .object({ version: z.string(), readyReplicas: z.number().int(), endpoint: z.string() })
    .optional(),
  candidate: z
    .object({
      version: z.string(),
      phase: z.enum(["Pending", "Progressing", "Paused", "Promoted", "RolledBack", "Shadowing"]),
      trafficPercent: z.number().int(),
      step: z.number().int(),
      stepStartedAt: z.string().optional(),
      inconclusiveIntervals: z
        .number()
        .int()
        .optional()
        .describe("Intervals this step has waited for enough requests and pairs."),
      lastAnalysis: AnalysisFigures.optional(),
      backtest: BacktestStatus.optional(),
    })
    .optional(),
  routing: z
    .array(RouteWeight)
    .optional()
    .describe("What pipelines read: endpoints and weights of every live version."),
});

export const ValuationModel = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("ValuationModel"),
  metadata: ObjectMeta,
  spec: ValuationModelSpec,
  status: ValuationModelStatus.optional(),
});

export type ValuationModel = z.infer<typeof ValuationModel>;
export type ValuationModelSpec = z.infer<typeof ValuationModelSpec>;
export type ValuationModelStatus = z.infer<typeof ValuationModelStatus>;
