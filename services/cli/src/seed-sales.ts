import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Pool, RowFilter } from "@valora/kit";
import { insertSales, salesFromCsv, type Sale } from "@valora/comparables";
import type { AssetPipelineSpec } from "@valora/pipeline";

/**
 * Seeds the `sales` table of an asset class from the data its model was trained on
 * (`<modelsDir>/<assetClass>/model-card.json` names the file under `<modelsDir>/data/`), with the
 * columns its AssetPipeline reads. Idempotent; nothing when the class has no such card or data.
 */
export async function seedSales(
  pool: Pool,
  spec: AssetPipelineSpec,
  modelsDir: string,
): Promise<{ seeded: number; sales: number; sample?: Record<string, unknown>; card?: ModelCard }> {
  const cardFile = join(modelsDir, spec.assetClass, "model-card.json");
  if (!existsSync(cardFile)) return { seeded: 0, sales: 0 };
  const card = JSON.parse(readFileSync(cardFile, "utf8")) as ModelCard;
  const data = join(modelsDir, "data", card.data.name);
  if (!existsSync(data)) return { seeded: 0, sales: 0, card };
  const cmp = spec.comparables;
  const column = (field?: string) => spec.input.fields.find((f) => f.name === field)?.feature;
  const lat = column(cmp?.latitude);
  const lon = column(cmp?.longitude);
  const year = column(cmp?.soldAt?.year);
  const month = column(cmp?.soldAt?.month);
  const sales: Sale[] = salesFromCsv(readFileSync(data, "utf8"), {
    idPrefix: spec.assetClass,
    target: card.data.target.name,
    fields: spec.input.fields,
    ...(lat ? { latitude: lat } : {}),
    ...(lon ? { longitude: lon } : {}),
    ...(year && month ? { year, month } : {}),
    ...(card.data.excludedRows ? { excludeRows: card.data.excludedRows.filter } : {}),
  });
  const seeded = await insertSales(pool, spec.assetClass, sales, "seed");
  return { seeded, sales: sales.length, card, ...(sales[0] ? { sample: sales[0].attributes } : {}) };
}

/** The parts of a model card (model-card.json) the platform reads. */
export interface ModelCard {
  version: string;
  data: {
    name: string;
    sha256: string;
    target: { name: string };
    excludedRows?: { filter: RowFilter; count: number };
  };
  [k: string]: unknown;
}
