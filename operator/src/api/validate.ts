import { ValoraError, type FieldViolation } from "@valora/kit";
import type { z } from "zod";
import { AssetPipeline } from "./asset-pipeline.js";
import { ValuationModel } from "./valuation-model.js";

/**
 * The CRD's CEL rules, restated for places with no API server in front (`valora render`, the local
 * file-backed store): the same objects are refused with the same messages.
 */
function celViolations(kind: string, obj: Record<string, unknown>): FieldViolation[] {
  const out: FieldViolation[] = [];
  if (kind === "ValuationModel") {
    const vm = obj as z.infer<typeof ValuationModel>;
    if (vm.spec.candidate && vm.spec.candidate.version === vm.spec.champion.version)
      out.push({
        field: "spec.candidate.version",
        description: "candidate.version must differ from champion.version",
      });
    for (const [path, ref] of [
      ["spec.champion.uri", vm.spec.champion],
      ["spec.candidate.uri", vm.spec.candidate],
    ] as const) {
      if (ref && !/^(file|https|s3):\/\//.test(ref.uri))
        out.push({ field: path, description: "uri must start with file://, https:// or s3://" });
    }
    const steps = vm.spec.candidate?.canary?.steps ?? [];
    if (steps.some((s, i) => i > 0 && s <= steps[i - 1]!))
      out.push({ field: "spec.candidate.canary.steps", description: "canary steps must be ascending" });
    for (const [path, s] of [["spec.serving", vm.spec.serving]] as const) {
      if (s && s.minReplicas > s.maxReplicas)
        out.push({ field: path, description: "minReplicas must not exceed maxReplicas" });
    }
  } else {
    const ap = obj as z.infer<typeof AssetPipeline>;
    ap.spec.input.fields.forEach((f, i) => {
      if (f.min !== undefined && f.max !== undefined && f.min > f.max)
        out.push({ field: `spec.input.fields[${i}]`, description: "min must not exceed max" });
      if (f.feature === undefined && f.oneHot === undefined)
        out.push({
          field: `spec.input.fields[${i}]`,
          description: "a field feeds a model feature: set feature or oneHot",
        });
    });
    const names = ap.spec.input.fields.map((f) => f.name);
    names.forEach((n, i) => {
      if (names.indexOf(n) !== i)
        out.push({ field: `spec.input.fields[${i}].name`, description: `duplicate field ${n}` });
    });
    const c = ap.spec.comparables;
    if (c?.mode === "geo" && (!c.latitude || !c.longitude))
      out.push({
        field: "spec.comparables",
        description: "geo comparables need latitude and longitude fields",
      });
  }
  return out;
}

const SCHEMAS = { ValuationModel, AssetPipeline } as const;
export type ValoraKind = keyof typeof SCHEMAS;
export type ValoraObject = z.infer<typeof ValuationModel> | z.infer<typeof AssetPipeline>;

/** Validates and defaults a ValuationModel or AssetPipeline; INVALID_ARGUMENT with every field at fault. */
export function validateObject(raw: unknown): ValoraObject {
  const kind = (raw as { kind?: unknown } | null)?.kind;
  if (kind !== "ValuationModel" && kind !== "AssetPipeline") {
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `kind ${JSON.stringify(kind)} is not a Valora kind (ValuationModel, AssetPipeline)`,
      { details: [{ field: "kind", description: "unknown kind" }] },
    );
  }
  const parsed = SCHEMAS[kind].safeParse(raw);
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => ({ field: i.path.join("."), description: i.message }));
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `${kind}: ${details.map((d) => `${d.field}: ${d.description}`).join("; ")}`,
      { details },
    );
  }
  const violations = celViolations(kind, parsed.data);
  if (violations.length > 0) {
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `${kind}: ${violations.map((d) => `${d.field}: ${d.description}`).join("; ")}`,
      { details: violations },
    );
  }
  return parsed.data;
}
