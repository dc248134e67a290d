import { z } from "zod";
import { GROUP, VERSION } from "./common.js";
import { AssetPipelineSpec, AssetPipelineStatus } from "./asset-pipeline.js";
import { ValuationModelSpec, ValuationModelStatus } from "./valuation-model.js";

type Json = Record<string, unknown>;

/**
 * Turns a JSON Schema produced by zod into a Kubernetes structural schema: no $schema, no
 * propertyNames, no `additionalProperties: false`, and values that may take several shapes
 * (anyOf) kept as preserve-unknown-fields, since structural schemas cannot express unions.
 */
export function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (!node || typeof node !== "object") return node;
  const src = node as Json;
  if (Array.isArray(src["anyOf"]) || Array.isArray(src["oneOf"])) {
    const out: Json = { "x-kubernetes-preserve-unknown-fields": true };
    if (src["description"]) out["description"] = src["description"];
    return out;
  }
  const out: Json = {};
  for (const [k, v] of Object.entries(src)) {
    if (k === "$schema" || k === "propertyNames" || k === "x-kubernetes-int-or-string") continue;
    if (k === "additionalProperties" && v === false) continue;
    out[k] =
      k === "properties"
        ? Object.fromEntries(Object.entries(v as Json).map(([p, s]) => [p, structural(s)]))
        : structural(v);
  }
  return out;
}

export function openApiSchema(schema: z.ZodType): Json {
  return structural(z.toJSONSchema(schema, { io: "input", unrepresentable: "any" })) as Json;
}

export interface CrdOptions {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  printerColumns: { name: string; type: string; jsonPath: string; description?: string; priority?: number }[];
}

/** The CustomResourceDefinition for one kind (pure; `npm run crds` writes it to crds/). */
export function buildCrd(o: CrdOptions): Json {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${o.plural}.${GROUP}`, labels: { "app.kubernetes.io/part-of": "valora" } },
    spec: {
      group: GROUP,
      scope: "Namespaced",
      names: {
        kind: o.kind,
        listKind: `${o.kind}List`,
        plural: o.plural,
        singular: o.singular,
        shortNames: o.shortNames,
        categories: ["valora"],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: o.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: "object",
              description: o.description,
              required: ["spec"],
              properties: {
                apiVersion: {
                  type: "string",
                  description: "APIVersion defines the versioned schema of this representation of an object.",
                },
                kind: {
                  type: "string",
                  description:
                    "Kind is a string value representing the REST resource this object represents.",
                },
                metadata: { type: "object" },
                spec: openApiSchema(o.spec),
                status: openApiSchema(o.status),
              },
            },
          },
        },
      ],
    },
  };
}

export const VALUATION_MODEL_CRD = (): Json =>
  buildCrd({
    kind: "ValuationModel",
    plural: "valuationmodels",
    singular: "valuationmodel",
    shortNames: ["vm"],
    description:
      "A valuation model served by Valora: a champion version and optionally a candidate on canary or shadow trial.",
    spec: ValuationModelSpec,
    status: ValuationModelStatus,
    printerColumns: [
      { name: "Champion", type: "string", jsonPath: ".status.champion.version" },
      { name: "Candidate", type: "string", jsonPath: ".status.candidate.version" },
      {
        name: "Traffic",
        type: "integer",
        jsonPath: ".status.candidate.trafficPercent",
        description: "Candidate traffic %",
      },
      { name: "Phase", type: "string", jsonPath: ".status.candidate.phase" },
      {
        name: "Bias%",
        type: "number",
        jsonPath: ".status.candidate.lastAnalysis.biasPct",
        description: "Median (candidate − champion) / champion over the last step's paired assets",
      },
      {
        name: "AbsDeltaP90%",
        type: "number",
        jsonPath: ".status.candidate.lastAnalysis.absDeltaP90Pct",
        description:
          "90th percentile of |candidate − champion| / champion over the last step's paired assets",
      },
      {
        name: "Champ-MdAPE%",
        type: "number",
        jsonPath: ".status.candidate.backtest.champion.mdapePct",
        description: "The champion's MdAPE on recent landed sales (backtest)",
      },
      {
        name: "Cand-MdAPE%",
        type: "number",
        jsonPath: ".status.candidate.backtest.candidate.mdapePct",
        description: "The candidate's MdAPE on the same sales, before it got traffic (backtest)",
      },
      { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
    ],
  });

export const ASSET_PIPELINE_CRD = (): Json =>
  buildCrd({
    kind: "AssetPipeline",
    plural: "assetpipelines",
    singular: "assetpipeline",
    shortNames: ["ap"],
    description:
      "How one asset class is valued: its input schema, model, comparables, explanation, interval, fallback and cache.",
    spec: AssetPipelineSpec,
    status: AssetPipelineStatus,
    printerColumns: [
      { name: "Asset-Class", type: "string", jsonPath: ".spec.assetClass" },
      { name: "Model", type: "string", jsonPath: ".spec.model.name" },
      { name: "Champion", type: "string", jsonPath: ".status.model.championVersion" },
      { name: "Ready", type: "string", jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
    ],
  });
