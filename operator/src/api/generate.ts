import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import { ASSET_PIPELINE_CRD, VALUATION_MODEL_CRD } from "./crd.js";

/** The generated CRD files, by name (pure; the drift test compares them with crds/). */
export function crdFiles(): Record<string, string> {
  const header = "# Generated from operator/src/api by `npm run crds`. Do not edit.\n";
  return {
    "valuationmodels.valora.dev.yaml": header + stringify(VALUATION_MODEL_CRD(), { lineWidth: 0 }),
    "assetpipelines.valora.dev.yaml": header + stringify(ASSET_PIPELINE_CRD(), { lineWidth: 0 }),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\//, "")) && process.argv[2]) {
  const dir = process.argv[2];
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(crdFiles())) writeFileSync(join(dir, name), text);
  process.stdout.write(`wrote ${Object.keys(crdFiles()).join(", ")} to ${dir}\n`);
}
