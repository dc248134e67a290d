import { dnsLabel, type InputField } from "@valora/kit";
import type { AssetClassEntry, CandidateStatusObject } from "./service.js";

/** The parts of the custom resources the orchestrator reads (what the operator and users write). */
export interface AssetPipelineObject {
  metadata: { name: string; namespace?: string };
  spec: {
    assetClass: string;
    currency?: string;
    model: { name: string };
    input: { fields: InputField[] };
    cache?: { ttlSeconds?: number };
    comparables?: { mode?: string; latitude?: string; longitude?: string; h3Resolution?: number };
  };
}
export interface ValuationModelObject {
  metadata: { name: string };
  spec: { champion: { version: string }; candidate?: { strategy?: string } };
  status?: {
    champion?: { version: string };
    routing?: { version: string; role: "champion" | "canary" | "shadow"; endpoint: string; weight: number }[];
    candidate?: CandidateStatusObject;
  };
}

export interface CatalogClass {
  entry: AssetClassEntry;
  /** The AssetPipeline's name: its pipeline Service is named after it. */
  pipeline: string;
}

/**
 * Pure: the orchestrator's catalog from the namespace's AssetPipelines and ValuationModels. The
 * champion version is the one the operator reports serving (status), else the one declared; the
 * routes are the ValuationModel's `status.routing`.
 */
export function catalogFrom(
  pipelines: AssetPipelineObject[],
  models: ValuationModelObject[],
): Map<string, CatalogClass> {
  const byName = new Map(models.map((m) => [m.metadata.name, m]));
  const out = new Map<string, CatalogClass>();
  for (const ap of pipelines) {
    const vm = byName.get(ap.spec.model.name);
    const routes = vm?.status?.routing ?? [];
    out.set(ap.spec.assetClass, {
      pipeline: ap.metadata.name,
      entry: {
        model: ap.spec.model.name,
        currency: ap.spec.currency ?? "USD",
        fields: ap.spec.input.fields,
        ...(geoOf(ap) ? { geo: geoOf(ap)! } : {}),
        cacheTtlSeconds: ap.spec.cache?.ttlSeconds ?? 3600,
        championVersion: () => vm?.status?.champion?.version ?? vm?.spec.champion.version,
        routes: () => routes,
        candidateStrategy: () => vm?.spec.candidate?.strategy,
        candidateStatus: () => vm?.status?.candidate,
      },
    });
  }
  return out;
}

/** Pure: where an AssetPipeline finds comparables by location, if it does. */
function geoOf(ap: AssetPipelineObject): AssetClassEntry["geo"] {
  const c = ap.spec.comparables;
  if (c?.mode !== "geo" || !c.latitude || !c.longitude) return undefined;
  return { latitude: c.latitude, longitude: c.longitude, h3Resolution: c.h3Resolution ?? 8 };
}

/**
 * Pure: the pipeline Service address of an AssetPipeline, from a template with {name} and
 * {namespace}; {name} is the Service name the operator gives (`dnsLabel("pipeline", name)`).
 */
export function pipelineAddress(template: string, name: string, namespace: string): string {
  return template.replaceAll("{name}", dnsLabel("pipeline", name)).replaceAll("{namespace}", namespace);
}
