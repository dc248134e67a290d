/**
 * npm run bench:accuracy — held-out accuracy of model + comparables blending. Splits each dataset
 * 80/20 with a fixed seed, trains on the 80% (as `make models` does), and values the 20% with the
 * model, the comparables (from the 80% sales), and their log-space blend; reports MdAPE, PPE10 and
 * the coverage of the nominal 80% interval. Rows `make models` leaves out (`--exclude-rows`: sales
 * that are not arm's length) are left out of training, comparables and scoring, as a ratio study
 * does; the model's figures over every held-out sale are printed too. Prints figures; asserts nothing.
 */
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { intervalFor, seededRandom, type RowFilter } from "@valora/kit";
import { predict } from "@valora/kit/onnx";
import {
  ComparablesIndex,
  comparablesEstimate,
  salesFromCsv,
  type ComparablesSpec,
  type SeedField,
} from "@valora/comparables";
import { residualCorrected } from "@valora/pipeline";
import { accuracy, encodeRows, keepRows, parseCsv, trainModel } from "@valora/trainer";

interface Case {
  name: string;
  csv: string;
  manifest: string;
  target: string;
  exclude: string[];
  params: Record<string, number>;
  /** As scripts/build-models.sh passes --exclude-rows. */
  excludeRows?: RowFilter;
  geo?: { latitude: string; longitude: string; year: string; month: string };
}

const cases: Case[] = [
  {
    name: "real-estate",
    csv: "models/data/ames.csv",
    manifest: "manifests/real-estate.yaml",
    target: "Sale_Price",
    exclude: ["Sale_Type", "Sale_Condition"],
    excludeRows: { Sale_Condition: ["Abnorml", "Family", "Alloca", "AdjLand"] },
    params: { huberDelta: 0.05 },
    geo: { latitude: "Latitude", longitude: "Longitude", year: "Year_Sold", month: "Mo_Sold" },
  },
  {
    name: "autos",
    csv: "models/data/car_prices.csv",
    manifest: "manifests/autos.yaml",
    target: "Price",
    exclude: [],
    params: { maxDepth: 3, minChildSamples: 3, colsample: 0.7, subsample: 0.8 },
  },
];

for (const c of cases) {
  const text = readFileSync(c.csv, "utf8");
  const lines = text.trimEnd().split("\n");
  const header = lines[0]!;
  const rnd = seededRandom(2024);
  const parsed = parseCsv(text); // one record per line in these files
  const order = lines
    .slice(1)
    .map((l, i) => ({ l, i, rec: parsed.records[i]!, r: rnd() }))
    .sort((a, b) => a.r - b.r);
  const cut = Math.floor(order.length * 0.8);
  const csvOf = (rows: typeof order) =>
    `${header}\n${rows
      .sort((a, b) => a.i - b.i)
      .map((x) => x.l)
      .join("\n")}\n`;
  // The split is made over every sale; the rows the trainer leaves out are then left out of both sides.
  const qualified = (rows: typeof order) => {
    const kept = new Set(
      keepRows(
        parsed.header,
        rows.map((x) => x.rec),
        c.excludeRows,
      ),
    );
    return rows.filter((x) => kept.has(x.rec));
  };
  const trainCsv = csvOf(qualified(order.slice(0, cut)));
  const testAllCsv = csvOf(order.slice(cut));
  const testCsv = csvOf(qualified(order.slice(cut)));
  const started = Date.now();
  const out = trainModel({
    csv: trainCsv,
    target: c.target,
    logTarget: true,
    exclude: c.exclude,
    seed: 42,
    params: c.params,
  });
  const ap = parseAllDocuments(readFileSync(c.manifest, "utf8"))[1]!.toJS() as {
    spec: {
      input: { fields: SeedField[] };
      comparables: ComparablesSpec & { blend: number };
      interval?: { coverage: number };
    };
  };
  const seed = (csv: string, prefix: string) =>
    salesFromCsv(csv, { idPrefix: prefix, target: c.target, fields: ap.spec.input.fields, ...(c.geo ?? {}) });
  const width = out.card.data.columns.length;
  const modelValues = (csv: string) => {
    const { header: h, records } = parseCsv(csv);
    const rows = encodeRows(out.card.data.columns, h, records);
    return records.map((_, i) => predict(out.ensemble, rows.subarray(i * width, (i + 1) * width)));
  };
  const trainSales = seed(trainCsv, "train");
  const index = new ComparablesIndex(trainSales, ap.spec.comparables);
  // The champion's residuals on the known (training) sales, as the pipeline computes them.
  const residual = new Map(
    modelValues(trainCsv).map((p, i) => [trainSales[i]!.id, Math.log(trainSales[i]!.price) - p]),
  );
  const subjects = seed(testCsv, "test");
  const model = modelValues(testCsv).map(Math.exp);
  const found = subjects.map((s) =>
    index.find({ ...(s.lat !== undefined ? { lat: s.lat, lon: s.lon! } : {}), attributes: s.attributes }),
  );
  const comps = found.map((f, i) => comparablesEstimate(f)?.value ?? model[i]!);
  const strengths = [...new Set([0.15, 0.3, 0.5, 0.75, 1, ap.spec.comparables.blend])].sort((a, b) => a - b);
  const coverage = ap.spec.interval?.coverage ?? 0.8;
  const fmt = (
    label: string,
    pred: number[],
    withInterval = false,
    actual = subjects.map((s) => s.price),
  ) => {
    const a = accuracy(actual, pred);
    const covered = withInterval
      ? pred.filter((v, i) => {
          const iv = intervalFor(v, out.card.residualQuantiles, coverage);
          return actual[i]! >= iv.low && actual[i]! <= iv.high;
        }).length
      : 0;
    console.log(
      `  ${label.padEnd(34)} MdAPE ${a.mdape.toFixed(2)}%  PPE10 ${a.ppe10.toFixed(1)}%  PPE20 ${a.ppe20.toFixed(1)}%${withInterval ? `  ${Math.round(coverage * 100)}% interval covers ${((100 * covered) / pred.length).toFixed(1)}%` : ""}`,
    );
  };
  const all = parseCsv(testAllCsv);
  const left = all.records.length - subjects.length;
  console.log(
    `${c.name}: trained on ${out.card.data.rows}, held out ${subjects.length}${left ? ` (+${left} not arm's length, scored only in the last line)` : ""}, ${out.card.hyperParameters.rounds} trees (${((Date.now() - started) / 1000).toFixed(1)} s)`,
  );
  fmt("model", model, true);
  fmt("comparables only", comps);
  for (const k of strengths)
    fmt(
      `model x comps residuals ${k}${k === ap.spec.comparables.blend ? " (manifest)" : ""}`,
      model.map((m, i) => residualCorrected(m, found[i]!, (id) => residual.get(id), k)),
      true,
    );
  if (left) {
    const ti = all.header.indexOf(c.target);
    fmt(
      "model, every held-out sale",
      modelValues(testAllCsv).map(Math.exp),
      true,
      all.records.map((r) => Number(r[ti])),
    );
  }
}
