import { z } from "zod";
import { API_VERSION, Condition, ObjectMeta, Serving, cel } from "./common.js";

export const InputField = z
  .object({
    name: z
      .string()
      .regex(/^[a-z][a-z0-9_]*$/)
      .describe("Field name in requests (snake_case)."),
    type: z.enum(["number", "integer", "string", "boolean"]),
    required: z.boolean().default(false),
    min: z.number().optional().describe("Validity: the least value such an asset can have; below it, a 400."),
    max: z
      .number()
      .optional()
      .describe("Validity: the greatest value such an asset can have; above it, a 400."),
    enum: z
      .array(z.string())
      .optional()
      .describe(
        "Validity of a string field whose domain is closed: the values it can take; others are a 400.",
      ),
    feature: z
      .string()
      .min(1)
      .optional()
      .describe("Model feature (training column) the field feeds; absent when oneHot maps the field."),
    oneHot: z
      .record(z.string(), z.string())
      .optional()
      .describe(
        "A categorical field the model sees as one-hot features: value -> feature (1 for the value's feature, 0 for the others; all 0 when absent or unseen).",
      ),
    aliases: z
      .record(z.string(), z.string())
      .optional()
      .describe(
        "Deprecated attribute names read as a value of this field when true (buick: true reads as make: Buick), answered with a DEPRECATED_ATTRIBUTE warning.",
      ),
    training: z
      .object({
        min: z.number().optional(),
        max: z.number().optional(),
        categories: z.array(z.string()).optional(),
      })
      .optional()
      .describe(
        "The training domain (what the model saw), written by valora train: outside it an asset is still valued, with an OUTSIDE_TRAINING_RANGE or UNSEEN_CATEGORY warning, a wider interval and a lower confidence.",
      ),
    strict: z
      .boolean()
      .optional()
      .describe("Refuse (400) values outside the training domain instead of valuing them with a warning."),
    default: z
      .union([z.number(), z.string(), z.boolean()])
      .optional()
      .meta({ "x-kubernetes-int-or-string": true }),
  })
  .meta(
    cel(
      {
        rule: "!has(self.min) || !has(self.max) || self.min <= self.max",
        message: "min must not exceed max",
      },
      {
        rule: "has(self.feature) || has(self.oneHot)",
        message: "a field feeds a model feature: set feature or oneHot",
      },
    ),
  );

export const Comparables = z
  .object({
    mode: z
      .enum(["geo", "attributes"])
      .describe("geo: nearest sales by H3 grid distance; attributes: similarity only (e.g. vehicles)."),
    latitude: z.string().optional().describe("Input field holding latitude (geo mode)."),
    longitude: z.string().optional().describe("Input field holding longitude (geo mode)."),
    h3Resolution: z.number().int().min(0).max(15).default(8),
    maxRings: z.number().int().min(0).max(50).default(6),
    count: z.number().int().min(1).max(50).default(8),
    maxAgeMonths: z.number().int().min(1).default(60),
    similarity: z.array(z.object({ field: z.string(), weight: z.number().min(0) })).default([]),
    blend: z
      .number()
      .min(0)
      .max(1)
      .default(0.1)
      .describe("Weight of the comparables estimate in the final value."),
    marketIndex: z
      .string()
      .optional()
      .describe(
        "Market series (GET /v1/market/series) used to time-adjust comparable prices, e.g. sales-index.real-estate.",
      ),
    soldAt: z
      .object({ year: z.string(), month: z.string() })
      .optional()
      .describe(
        "Input fields holding the year and month of a sale, so comparables can be aged and time-adjusted.",
      ),
  })
  .meta(
    cel({
      rule: "self.mode != 'geo' || (has(self.latitude) && has(self.longitude))",
      message: "geo comparables need latitude and longitude fields",
    }),
  );

export const DataContract = z
  .object({
    price: z
      .object({ min: z.number().min(0).optional(), max: z.number().min(0).optional() })
      .optional()
      .describe("Range of a sale price (or a listing's asking price)."),
    ranges: z
      .record(z.string(), z.object({ min: z.number().optional(), max: z.number().optional() }))
      .optional()
      .describe(
        "Per input field, the range landed records must respect; the field's own min/max when absent.",
      ),
    required: z
      .array(z.string())
      .optional()
      .describe("Input fields every record must carry, beyond those the pipeline requires."),
    maxAgeDays: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe("Freshness: sales older than this when they land are refused."),
    maxFutureDays: z
      .number()
      .int()
      .min(0)
      .default(1)
      .describe("Sales dated later than this after landing are refused."),
    driftMdapePct: z
      .number()
      .min(0)
      .max(100)
      .default(15)
      .describe("Realised MdAPE (percent, latest month) above which drift is reported."),
    onViolation: z
      .enum(["quarantineBatch", "dropRecords"])
      .default("quarantineBatch")
      .describe(
        "quarantineBatch: a batch with any invalid record lands nothing; dropRecords: the valid records land, the refused ones stay in bronze and are reported. Records outside the training domain are valid: they land, flagged.",
      ),
  })
  .describe(
    "Data contract for ingested sales and listings: types, enums and required fields come from spec.input.fields, ids must be unique within a batch.",
  );

export const AssetPipelineSpec = z.object({
  assetClass: z.string().min(1),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/)
    .default("USD"),
  model: z.object({ name: z.string().min(1).describe("ValuationModel this pipeline routes to.") }),
  input: z.object({
    fields: z
      .array(InputField)
      .min(1)
      .meta({ "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"] }),
  }),
  comparables: Comparables.optional(),
  explain: z.object({ topK: z.number().int().min(0).max(50).default(5) }).optional(),
  interval: z.object({ coverage: z.number().min(0.5).max(0.99).default(0.8) }).optional(),
  fallback: z.object({ mode: z.enum(["comparables", "none"]).default("comparables") }).optional(),
  cache: z.object({ ttlSeconds: z.number().int().min(0).default(3600) }).optional(),
  contract: DataContract.optional(),
  serving: Serving.optional(),
});

export const AssetPipelineStatus = z.object({
  observedGeneration: z.number().int().optional(),
  conditions: z.array(Condition).optional(),
  model: z.object({ name: z.string(), championVersion: z.string().optional() }).optional(),
  readyReplicas: z.number().int().optional(),
});

export const AssetPipeline = z.object({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal("AssetPipeline"),
  metadata: ObjectMeta,
  spec: AssetPipelineSpec,
  status: AssetPipelineStatus.optional(),
});

export type AssetPipeline = z.infer<typeof AssetPipeline>;
export type AssetPipelineSpec = z.infer<typeof AssetPipelineSpec>;
