import { parseAllDocuments, stringify } from "yaml";
import { ValoraError } from "@valora/kit";
import { validateObject } from "../api/index.js";
import { pipelineObjects, type PipelineDefaults } from "./asset-pipeline/desired.js";
import type { K8sObject } from "./shared.js";
import { liveVersions, versionObjects, type ServingDefaults } from "./valuation-model/desired.js";

/**
 * Pure: every object the operator would create for the Valora resources in a YAML stream (for
 * GitOps review with `valora render -f`). Documents of other kinds pass through untouched.
 */
export function renderObjects(
  yamlText: string,
  defaults: ServingDefaults & PipelineDefaults,
  namespace = "default",
): K8sObject[] {
  const docs = parseAllDocuments(yamlText);
  const out: K8sObject[] = [];
  docs.forEach((doc, i) => {
    if (doc.errors.length > 0)
      throw new ValoraError("INVALID_ARGUMENT", `document ${i + 1}: ${doc.errors[0]!.message}`, {
        details: [{ field: `documents[${i}]`, description: "not YAML" }],
      });
    const raw: unknown = doc.toJS();
    if (!raw) return;
    const kind = (raw as { kind?: unknown }).kind;
    if (kind !== "ValuationModel" && kind !== "AssetPipeline") return;
    const obj = validateObject(raw);
    obj.metadata.namespace ??= namespace;
    if (obj.kind === "ValuationModel")
      out.push(...liveVersions(obj).flatMap((v) => versionObjects(obj, v, defaults)));
    else out.push(...pipelineObjects(obj, defaults));
  });
  return out;
}

export function renderYaml(objects: K8sObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
}
