import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { ASSET_PIPELINE_CRD, VALUATION_MODEL_CRD } from "./crd.js";
import { crdReferenceDocument } from "./reference.js";

/** The generated CRD files, by name (pure; the drift test compares them with crds/). */
export function crdFiles(): Record<string, string> {
  const header = "# Generated from operator/src/api by `npm run crds`. Do not edit.\n";
  return {
    "valuationmodels.valora.dev.yaml": header + stringify(VALUATION_MODEL_CRD(), { lineWidth: 0 }),
    "assetpipelines.valora.dev.yaml": header + stringify(ASSET_PIPELINE_CRD(), { lineWidth: 0 }),
  };
}

/** docs/reference/crds.md, generated from the same CRDs (pure; a drift test compares it). */
export function crdReferenceMarkdown(): string {
  return crdReferenceDocument([VALUATION_MODEL_CRD(), ASSET_PIPELINE_CRD()]);
}

function writeTo(target: string): void {
  if (target.endsWith(".md")) {
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, crdReferenceMarkdown());
    process.stdout.write(`wrote ${target}\n`);
    return;
  }
  mkdirSync(target, { recursive: true });
  for (const [name, text] of Object.entries(crdFiles())) writeFileSync(join(target, name), text);
  process.stdout.write(`wrote ${Object.keys(crdFiles()).join(", ")} to ${target}\n`);
}

// `node generate.js <dir>|<file.md> ...`: CRD YAML into each directory, the reference into each .md.
const invokedDirectly = process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/.*\//, ""));
if (invokedDirectly) for (const target of process.argv.slice(2)) writeTo(target);
