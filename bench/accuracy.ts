/**
 * npm run bench:accuracy — held-out accuracy of model + comparables blending. Splits each dataset
 * 80/20 with a fixed seed, trains on the 80% (as `make models` does), and values the 20% with the
 * model, the comparables (from the 80% sales), and their log-space blend; reports MdAPE, PPE10 and
 * the coverage of the nominal 80% interval. Prints figures; asserts nothing.
 */
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { intervalFor, seededRandom } from "@valora/kit";
import { predict } from "@valora/kit/onnx";
import { ComparablesIndex, comparablesEstimate, salesFromCsv, type ComparablesSpec, type SeedField } from "@valora/comparables";
import { accuracy, encodeRows, parseCsv, trainModel } from "@valora/trainer";

interface Case {
  name: string;
  csv: string;
  manifest: string;
  target: string;
  exclude: string[];
  params: Record<string, number>;
  geo?: { latitude: string; longitude: string; year: string; month: string };
}

const cases: Case[] = [
  { name: "real-estate", csv: "models/data/ames.csv", manifest: "manifests/real-estate.yaml", target: "Sale_Price", exclude: ["Sale_Type", "Sale_Condition"], params: {}, geo: { latitude: "Latitude", longitude: "Longitude", year: "Year_Sold", month: "Mo_Sold" } },
  { name: "autos", csv: "models/data/car_prices.csv", manifest: "manifests/autos.yaml", target: "Price", exclude: [], params: { maxDepth: 3, minChildSamples: 3, colsample: 0.7, subsample: 0.8 } },
];

for (const c of cases) {
  const text = readFileSync(c.csv, "utf8");
  const lines = text.trimEnd().split("\n");
  const header = lines[0]!;
  const rnd = seededRandom(2024);
  const order = lines.slice(1).map((l, i) => ({ l, i, r: rnd() })).sort((a, b) => a.r - b.r);
  const cut = Math.floor(order.length * 0.8);
  const train = order.slice(0, cut).sort((a, b) => a.i - b.i);
  const test = order.slice(cut).sort((a, b) => a.i - b.i);
  const trainCsv = `${header}\n${train.map((x) => x.l).join("\n")}\n`;
  const testCsv = `${header}\n${test.map((x) => x.l).join("\n")}\n`;
  const started = Date.now();
  const out = trainModel({ csv: trainCsv, target: c.target, logTarget: true, exclude: c.exclude, seed: 42, params: c.params });
  const ap = parseAllDocuments(readFileSync(c.manifest, "utf8"))[1]!.toJS() as { spec: { input: { fields: SeedField[] }; comparables: ComparablesSpec & { blend: number } } };
  const seed = (csv: string, prefix: string) => salesFromCsv(csv, { idPrefix: prefix, target: c.target, fields: ap.spec.input.fields, ...(c.geo ?? {}) });
  const index = new ComparablesIndex(seed(trainCsv, "train"), ap.spec.comparables);
  const subjects = seed(testCsv, "test");
  const { header: h, records } = parseCsv(testCsv);
  const rows = encodeRows(out.card.data.columns, h, records);
  const width = out.card.data.columns.length;
  // Model residuals of the training sales, for residual correction by comparables.
  const { header: th, records: trecs } = parseCsv(trainCsv);
  const trows = encodeRows(out.card.data.columns, th, trecs);
  const trainSales = seed(trainCsv, "train");
  const residual = new Map(trainSales.map((s, i) => [s.id, Math.log(s.price) - predict(out.ensemble, trows.subarray(i * width, (i + 1) * width))]));
  const corrected: number[] = [];
  const actual: number[] = [];
  const model: number[] = [];
  const comps: number[] = [];
  const blends: Record<string, number[]> = {};
  const blendLevels = [0.1, 0.15, 0.2, 0.3];
  let covered = 0;
  subjects.forEach((s, i) => {
    const m = Math.exp(predict(out.ensemble, rows.subarray(i * width, (i + 1) * width)));
    const found = index.find({ ...(s.lat !== undefined ? { lat: s.lat, lon: s.lon! } : {}), attributes: s.attributes });
    const est = comparablesEstimate(found);
    const w = found.reduce((a, f) => a + f.similarity, 0);
    corrected.push(w > 0 ? m * Math.exp(found.reduce((a, f) => a + f.similarity * (residual.get(f.id) ?? 0), 0) / w) : m);
    actual.push(s.price);
    model.push(m);
    comps.push(est?.value ?? m);
    for (const b of blendLevels) (blends[b] ??= []).push(est ? Math.exp((1 - b) * Math.log(m) + b * Math.log(est.value)) : m);
    const iv = intervalFor(m, out.card.residualQuantiles, 0.8);
    if (s.price >= iv.low && s.price <= iv.high) covered++;
  });
  const fmt = (label: string, pred: number[]) => {
    const a = accuracy(actual, pred);
    console.log(`  ${label.padEnd(24)} MdAPE ${a.mdape.toFixed(2)}%  PPE10 ${a.ppe10.toFixed(1)}%  PPE20 ${a.ppe20.toFixed(1)}%`);
  };
  console.log(`${c.name}: trained on ${train.length}, held out ${test.length} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  fmt("model", model);
  fmt("comparables only", comps);
  fmt("model x comps residuals", corrected);
  for (const b of blendLevels) fmt(`blend ${b}${b === ap.spec.comparables.blend ? " (manifest)" : ""}`, blends[b]!);
  console.log(`  nominal 80% interval (model) covers ${((100 * covered) / subjects.length).toFixed(1)}% of held-out sales`);
}
