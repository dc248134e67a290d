import { z } from "zod";

/** REST shapes: the same zod schemas validate requests and produce the OpenAPI document. */

export const AttributeValue = z.union([z.number(), z.string().max(1000), z.boolean(), z.null()]);
export const Attributes = z
  .record(z.string().max(100), AttributeValue)
  .describe("Asset attributes named as the asset class's input fields (GET /v1/asset-classes)");

const Include = z
  .array(z.enum(["explanation", "comparables"]))
  .max(2)
  .describe(
    "What the answer includes besides the value, interval and confidence; absent: both. [] answers the value alone, for less CPU",
  );

export const ValuationRequest = z.strictObject({
  assetClass: z.string().min(1).max(100).describe("Name of an asset class, e.g. real-estate or autos"),
  attributes: Attributes.optional(),
  assetId: z
    .string()
    .max(200)
    .optional()
    .describe("Id of an asset in the registry, used when attributes are absent"),
  skipCache: z.boolean().optional().describe("Value afresh (the result still refreshes the cache)"),
  include: Include.optional(),
});

export const BatchRequest = z.strictObject({
  assetClass: z.string().min(1).max(100),
  items: z
    .array(z.strictObject({ attributes: Attributes.optional(), assetId: z.string().max(200).optional() }))
    .min(1)
    .max(100),
  skipCache: z.boolean().optional(),
  include: Include.optional(),
});

const Contribution = z.object({
  feature: z
    .string()
    .describe("The model feature, or the field for a one-hot group folded into one contribution"),
  value: z
    .number()
    .describe("The value the model saw (for a one-hot group: 1 when a known category was sent, else 0)"),
  contribution: z.number(),
  field: z.string().nullable().describe("The asset class's input field the feature reads"),
  category: z.string().nullable().describe("The category sent, for a categorical field"),
});
export const Valuation = z.object({
  assetClass: z.string(),
  assetKey: z.string(),
  value: z.number(),
  currency: z.string(),
  interval: z.object({ low: z.number(), high: z.number(), coverage: z.number() }),
  confidence: z.number(),
  comparables: z.array(
    z.object({
      id: z.string(),
      price: z.number(),
      adjustedPrice: z.number(),
      distanceKm: z.number(),
      similarity: z.number(),
      soldAt: z.string().nullable(),
      attributes: z.record(z.string(), z.unknown()),
    }),
  ),
  explanation: z
    .object({
      baseValue: z.number(),
      output: z.number(),
      method: z.string(),
      scale: z
        .enum(["log", "identity"])
        .describe(
          "log: output is ln(value) and each contribution multiplies the value by exp(contribution); identity: output is the value",
        ),
      contributions: z.array(Contribution),
    })
    .nullable(),
  model: z.object({
    name: z.string(),
    version: z.string(),
    route: z.enum(["champion", "canary", "fallback"]),
  }),
  cached: z.boolean(),
  fallbackReason: z
    .enum(["MODEL_UNAVAILABLE", "MODEL_TIMEOUT"])
    .nullable()
    .describe("Why comparables alone valued the asset (route fallback): a stable code"),
  fallbackMessage: z.string().nullable().describe("The fallback reason in a sentence"),
  warnings: z
    .array(
      z.object({
        field: z.string().describe("The attribute at fault, e.g. attributes.mileage"),
        code: z.enum(["OUTSIDE_TRAINING_RANGE", "UNSEEN_CATEGORY", "DEPRECATED_ATTRIBUTE"]),
        message: z.string(),
      }),
    )
    .describe(
      "Valued anyway, but: attributes outside the training domain (wider interval, lower confidence) or deprecated attribute names",
    ),
});

const Meta = z.object({ requestId: z.string(), timestamp: z.string() });
const ErrorBody = z.object({
  code: z.string(),
  message: z.string(),
  details: z.array(z.object({ field: z.string(), description: z.string() })),
});

/** `{data, meta, error}` with `data` typed for the OpenAPI document. */
export const envelopeOf = <T extends z.ZodType>(data: T) =>
  z.object({ data: data.nullable(), meta: Meta, error: ErrorBody.nullable() });
export const ErrorEnvelope = z.object({ data: z.null(), meta: Meta, error: ErrorBody });

export const RoleName = z.enum(["admin", "manager", "viewer", "api", "auditor"]);
export const IdParam = z.strictObject({ id: z.string().min(1).max(100) });

export const CreateKey = z.strictObject({
  name: z.string().min(1).max(100),
  roles: z.array(RoleName).min(1).max(5),
  assetClasses: z
    .array(z.string().min(1).max(100))
    .max(100)
    .optional()
    .describe("Restrict the key to these asset classes; all when absent"),
});
export const PutUser = z.strictObject({ email: z.string().max(320).optional(), role: RoleName });
export const CreateTenant = z.strictObject({
  name: z.string().min(2).max(63),
  plan: z.enum(["free", "pro", "enterprise"]).optional(),
});
export const CreateWebhook = z.strictObject({
  url: z.string().min(1).max(2000),
  events: z
    .array(z.enum(["valuation.completed", "job.completed", "model.promoted"]))
    .min(1)
    .max(3),
});
export const AuditQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  before: z.string().max(30).optional(),
  action: z.string().max(100).optional(),
});
export const NoQuery = z.strictObject({});
