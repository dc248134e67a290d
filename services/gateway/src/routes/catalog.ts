import type { FastifyPluginAsync } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import type { IngestService, RealisedPeriod } from "@valora/proto/valora/v1/ingest_pb";
import { ValoraError, okEnvelope, type Client } from "@valora/kit";
import { ROLE_SETS, mayValue } from "../auth.js";
import { ErrorEnvelope, envelopeOf } from "../schemas.js";

const ROLES_READ = ROLE_SETS.read;

const Field = z.object({
  name: z.string(),
  type: z.string(),
  required: z.boolean(),
  enum: z.array(z.string()).optional().describe("Validity: the values a closed domain allows"),
  min: z.number().optional().describe("Validity: below it, a 400"),
  max: z.number().optional().describe("Validity: above it, a 400"),
  feature: z.string().optional().describe("The model feature it feeds (absent for a one-hot field)"),
  training: z
    .object({
      min: z.number().optional(),
      max: z.number().optional(),
      categories: z.array(z.string()).optional(),
    })
    .optional()
    .describe("The training domain: outside it, valued with a warning (refused when strict)"),
  strict: z.boolean().optional(),
  default: z
    .union([z.string(), z.number(), z.boolean()])
    .optional()
    .describe("Used when a request leaves the field out"),
  deprecatedAliases: z
    .array(z.string())
    .optional()
    .describe("Old attribute names still read, with a warning"),
});
const AssetClass = z.object({
  name: z.string(),
  model: z.string(),
  currency: z.string(),
  geo: z
    .object({ latitudeField: z.string(), longitudeField: z.string(), h3Resolution: z.number().int() })
    .nullable()
    .describe("Comparables found by location: the fields holding it and the H3 grid's resolution"),
  fields: z.array(Field),
});
const Performance = z.object({
  version: z.string(),
  role: z.string(),
  requests: z.number(),
  errors: z.number(),
  fallbacks: z.number(),
  latencyP50Ms: z.number(),
  latencyP99Ms: z.number(),
});
const Model = z.object({
  name: z.string(),
  assetClass: z.string(),
  champion: z.object({ version: z.string() }),
  candidate: z.object({ version: z.string(), strategy: z.string(), trafficPercent: z.number() }).nullable(),
  candidateAnalysis: z
    .object({
      version: z.string(),
      phase: z.string(),
      passed: z.boolean(),
      message: z.string(),
      at: z.string(),
      pairs: z.number(),
      biasPct: z.number().describe("Median (candidate − champion) / champion over the paired assets, in %"),
      medianAbsDeltaPct: z.number(),
      absDeltaP90Pct: z.number().describe("90th percentile of |candidate − champion| / champion, in %"),
    })
    .nullable()
    .describe("The operator's last judgement of the candidate (also after a rollback or promotion)"),
  performance: z.array(Performance),
});
const NameParam = z.strictObject({ name: z.string().min(1).max(100) });
const Realised = z.object({
  modelVersion: z.string(),
  month: z.string().nullable(),
  count: z.number(),
  mdapePct: z.number(),
  ppe10Pct: z.number(),
});
const ModelPerformance = Model.extend({
  realised: z
    .object({
      periods: z.array(Realised),
      overall: z.array(Realised),
      drift: z.boolean(),
      driftThresholdMdapePct: z.number(),
    })
    .nullable()
    .describe(
      "Accuracy against real outcomes: valuations of registered assets scored when their sales landed (null without the ingest service).",
    ),
});

export const catalogRoutes: FastifyPluginAsync<{
  valuations: Client<typeof ValuationService>;
  ingest?: Client<typeof IngestService>;
  timeoutMs: number;
}> = async (fastify, o) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();

  const models = async () =>
    (await o.valuations.listModels({}, { timeoutMs: o.timeoutMs })).models.map((m) => ({
      name: m.name,
      assetClass: m.assetClass,
      champion: { version: m.championVersion },
      candidate: m.candidateVersion
        ? {
            version: m.candidateVersion,
            strategy: m.candidateStrategy,
            trafficPercent: m.candidateTrafficPercent,
          }
        : null,
      candidateAnalysis: m.candidateAnalysis
        ? {
            version: m.candidateAnalysis.version,
            phase: m.candidateAnalysis.phase,
            passed: m.candidateAnalysis.passed,
            message: m.candidateAnalysis.message,
            at: m.candidateAnalysis.at,
            pairs: m.candidateAnalysis.pairs,
            biasPct: m.candidateAnalysis.biasPct,
            medianAbsDeltaPct: m.candidateAnalysis.medianAbsDeltaPct,
            absDeltaP90Pct: m.candidateAnalysis.absDeltaP90Pct,
          }
        : null,
      performance: m.performance.map((p) => ({
        version: p.version,
        role: p.role,
        requests: Number(p.requests),
        errors: Number(p.errors),
        fallbacks: Number(p.fallbacks),
        latencyP50Ms: p.latencyP50Ms,
        latencyP99Ms: p.latencyP99Ms,
      })),
    }));

  app.get(
    "/v1/asset-classes",
    {
      config: { roles: ROLES_READ },
      schema: {
        tags: ["catalog"],
        summary: "Asset classes and their input fields",
        response: { 200: envelopeOf(z.array(AssetClass)), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const { assetClasses } = await o.valuations.listAssetClasses({}, { timeoutMs: o.timeoutMs });
      return okEnvelope(
        assetClasses
          .filter((a) => mayValue(req.principal!, a.name))
          .map((a) => ({
            name: a.name,
            model: a.model,
            currency: a.currency,
            geo: a.geo
              ? {
                  latitudeField: a.geo.latitudeField,
                  longitudeField: a.geo.longitudeField,
                  h3Resolution: a.geo.h3Resolution,
                }
              : null,
            fields: a.fields.map((f) => ({
              name: f.name,
              type: f.type,
              required: f.required,
              ...(f.enum.length ? { enum: f.enum } : {}),
              ...(f.min !== undefined ? { min: f.min } : {}),
              ...(f.max !== undefined ? { max: f.max } : {}),
              ...(f.feature ? { feature: f.feature } : {}),
              ...(f.trainingMin !== undefined || f.trainingMax !== undefined || f.categories.length
                ? {
                    training: {
                      ...(f.trainingMin !== undefined ? { min: f.trainingMin } : {}),
                      ...(f.trainingMax !== undefined ? { max: f.trainingMax } : {}),
                      ...(f.categories.length ? { categories: f.categories } : {}),
                    },
                  }
                : {}),
              ...(f.strict ? { strict: true } : {}),
              ...(f.defaultJson ? { default: JSON.parse(f.defaultJson) as string | number | boolean } : {}),
              ...(f.deprecatedAliases.length ? { deprecatedAliases: f.deprecatedAliases } : {}),
            })),
          })),
        req.id,
      );
    },
  );

  app.get(
    "/v1/models",
    {
      config: { roles: ROLES_READ },
      schema: {
        tags: ["catalog"],
        summary: "Models: champion, candidate rollout and live performance",
        response: { 200: envelopeOf(z.array(Model)), "4xx": ErrorEnvelope },
      },
    },
    async (req) =>
      okEnvelope(
        (await models()).filter((m) => mayValue(req.principal!, m.assetClass)),
        req.id,
      ),
  );

  app.get(
    "/v1/models/:name/performance",
    {
      config: { roles: ROLES_READ },
      schema: {
        tags: ["catalog"],
        summary: "Live performance of a model's champion and candidate, and its realised accuracy over time",
        params: NameParam,
        response: { 200: envelopeOf(ModelPerformance), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const m = (await models()).find(
        (x) => x.name === req.params.name && mayValue(req.principal!, x.assetClass),
      );
      if (!m) throw new ValoraError("NOT_FOUND", `model "${req.params.name}" not found`);
      const r = o.ingest
        ? await o.ingest.realisedPerformance({ model: m.name }, { timeoutMs: o.timeoutMs })
        : undefined;
      const row = (p: RealisedPeriod) => ({
        modelVersion: p.modelVersion,
        month: p.month || null,
        count: p.count,
        mdapePct: p.mdape,
        ppe10Pct: p.ppe10,
      });
      return okEnvelope(
        {
          ...m,
          realised: r
            ? {
                periods: r.periods.map(row),
                overall: r.overall.map(row),
                drift: r.drift,
                driftThresholdMdapePct: r.driftThresholdMdape,
              }
            : null,
        },
        req.id,
      );
    },
  );
};
