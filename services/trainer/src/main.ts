import { mkdir, readFile, writeFile } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createHash } from "node:crypto";
import { SingleBar } from "cli-progress";
import { ValoraError, type RowFilter } from "@valora/kit";
import { keepRows, parseCsv } from "./dataset.js";
import { pipelineFields, isLatitudeColumn, isLongitudeColumn, renderManifests } from "./manifests.js";
import { trainModel } from "./train.js";
import { DEFAULT_PARAMS, type GbmParams } from "./gbm.js";

const kebab = (s: string): string => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

const USAGE = `usage: valora train --data FILE.csv --target COLUMN --out DIR [--log-target] [--exclude COL ...] [--exclude-rows COL=V1,V2 ...]
                    [--seed N] [--folds K] [--model-version V] [--emit-manifests --asset-class NAME [--manifests-dir DIR] [--model-uri URI] [--currency USD]
                    [--one-hot NAME=COL1,COL2,... ...]]
                    hyper-parameters: ${Object.entries(DEFAULT_PARAMS)
                      .map(([k, v]) => `--${kebab(k)} ${v}`)
                      .join(" ")}`;

const EXAMPLE = `Trains gradient-boosted trees on a CSV into ONNX with a model card (cross-validated
accuracy and residual quantiles for intervals: 10 folds under 1,000 rows, else 5); with
--emit-manifests, also a ValuationModel and an AssetPipeline for the asset class. Each field gets
its validity (breaking it is a 400) and its training domain (outside it, a valuation with a
warning); groups of 0/1 columns with one 1 per row become one categorical field (detected, or
named with --one-hot make=Buick,Cadillac,...).

example:
  valora train --data models/data/car_prices.csv --target Price --log-target --seed 42 \\
    --out models/autos-v2 --model-version gm-v2 --emit-manifests --asset-class autos`;

/** `valora train`: CSV in, model.onnx and model-card.json out (and CRs with --emit-manifests). */
export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: "string" },
      target: { type: "string" },
      out: { type: "string" },
      "log-target": { type: "boolean", default: false },
      exclude: { type: "string", multiple: true, default: [] },
      "exclude-rows": { type: "string", multiple: true, default: [] },
      "one-hot": { type: "string", multiple: true, default: [] },
      seed: { type: "string", default: "42" },
      folds: { type: "string" },
      "model-version": { type: "string" },
      "emit-manifests": { type: "boolean", default: false },
      "asset-class": { type: "string" },
      "model-uri": { type: "string" },
      "manifests-dir": { type: "string" },
      currency: { type: "string", default: "USD" },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
      ...Object.fromEntries(Object.keys(DEFAULT_PARAMS).map((k) => [kebab(k), { type: "string" as const }])),
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n\n${EXAMPLE}\n`);
    return;
  }
  if (!values.data || !values.target || !values.out)
    throw new ValoraError("INVALID_ARGUMENT", `--data, --target and --out are required\n${USAGE}`);
  if (values["emit-manifests"] && !values["asset-class"])
    throw new ValoraError("INVALID_ARGUMENT", `--emit-manifests needs --asset-class NAME\n${USAGE}`);
  const seed = Number(values.seed);
  if (!Number.isInteger(seed))
    throw new ValoraError("INVALID_ARGUMENT", `--seed ${values.seed} is not an integer`);
  const folds = values.folds === undefined ? undefined : Number(values.folds);
  if (folds !== undefined && (!Number.isInteger(folds) || folds < 2))
    throw new ValoraError("INVALID_ARGUMENT", `--folds ${values.folds} is not an integer of at least 2`, {
      details: [{ field: "folds", description: "an integer of at least 2" }],
    });
  const params: Partial<GbmParams> = {};
  for (const key of Object.keys(DEFAULT_PARAMS) as (keyof GbmParams)[]) {
    const raw = (values as Record<string, unknown>)[kebab(key)];
    if (typeof raw !== "string") continue;
    const v = Number(raw);
    if (!Number.isFinite(v) || v < 0)
      throw new ValoraError("INVALID_ARGUMENT", `--${kebab(key)} ${raw} is not a non-negative number`);
    params[key] = v;
  }
  const exclude = values.exclude
    .flatMap((e) => e.split(","))
    .map((e) => e.trim())
    .filter(Boolean);
  const excludeRows: RowFilter = {};
  for (const rule of values["exclude-rows"]) {
    const eq = rule.indexOf("=");
    const column = rule.slice(0, eq).trim();
    const listed = rule
      .slice(eq + 1)
      .split(",")
      .map((v) => v.trim())
      .filter(Boolean);
    if (eq <= 0 || listed.length === 0)
      throw new ValoraError("INVALID_ARGUMENT", `--exclude-rows ${rule}: expected COLUMN=VALUE[,VALUE...]`, {
        details: [{ field: "exclude-rows", description: "expected COLUMN=VALUE[,VALUE...]" }],
      });
    excludeRows[column] = [...(excludeRows[column] ?? []), ...listed];
  }
  const csv = await readFile(values.data, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new ValoraError("NOT_FOUND", `cannot read ${values.data}: ${err.code ?? err.message}`);
  });

  const interactive = process.stderr.isTTY && !process.env["CI"] && !values.quiet;
  const bar = interactive
    ? new SingleBar(
        { format: "{stage} |{bar}| {value}/{total} rounds  valid loss {loss}", hideCursor: true },
        undefined,
      )
    : undefined;
  let stage = "";
  const started = Date.now();
  const output = trainModel({
    csv,
    target: values.target,
    logTarget: values["log-target"],
    exclude,
    excludeRows,
    seed,
    ...(folds !== undefined ? { folds } : {}),
    params,
    dataName: basename(values.data),
    ...(values["model-version"] ? { version: values["model-version"] } : {}),
    onProgress: (s, round, max, loss) => {
      if (!bar) return;
      if (s !== stage) {
        if (stage) bar.stop();
        stage = s;
        bar.start(max, 0, { stage: s.padEnd(10), loss: "-" });
      }
      if (round % 10 === 0 || round === max)
        bar.update(round, { stage: s.padEnd(10), loss: loss === undefined ? "-" : loss.toFixed(5) });
    },
  });
  bar?.stop();

  await mkdir(values.out, { recursive: true });
  const modelPath = join(values.out, "model.onnx");
  await writeFile(modelPath, output.onnx);
  await writeFile(join(values.out, "model-card.json"), `${JSON.stringify(output.card, null, 2)}\n`);
  const sha256 = createHash("sha256").update(output.onnx).digest("hex");
  const cv = output.card.crossValidation;
  process.stdout.write(
    `trained ${output.card.hyperParameters.rounds} trees on ${output.card.data.rows} rows${output.card.data.excludedRows ? ` (${output.card.data.excludedRows.count} left out by --exclude-rows)` : ""} in ${((Date.now() - started) / 1000).toFixed(1)} s\n` +
      `${cv.folds}-fold CV: MdAPE ${cv.mdape.toFixed(2)}%  PPE10 ${cv.ppe10.toFixed(1)}%  PPE20 ${cv.ppe20.toFixed(1)}%  RMSE(log) ${cv.rmseLog.toFixed(4)}  80% interval coverage ${cv.intervalCoverage80.toFixed(1)}%\n` +
      `wrote ${modelPath} (sha256 ${sha256}) and model-card.json\n`,
  );

  if (values["emit-manifests"]) {
    const assetClass = values["asset-class"]!;
    const parsed = parseCsv(csv);
    const header = parsed.header;
    const records = keepRows(header, parsed.records, excludeRows);
    const oneHot = values["one-hot"].map((rule) => {
      const eq = rule.indexOf("=");
      const columns = rule
        .slice(eq + 1)
        .split(",")
        .map((c) => c.trim())
        .filter(Boolean);
      if (eq <= 0 || columns.length < 2)
        throw new ValoraError("INVALID_ARGUMENT", `--one-hot ${rule}: expected NAME=COLUMN,COLUMN[,...]`, {
          details: [{ field: "one-hot", description: "expected NAME=COLUMN,COLUMN[,...]" }],
        });
      return { name: rule.slice(0, eq).trim(), columns };
    });
    let emitted: ReturnType<typeof pipelineFields>;
    try {
      emitted = pipelineFields(header, records, output, { target: values.target, exclude, oneHot });
    } catch (err) {
      throw new ValoraError("INVALID_ARGUMENT", `--one-hot: ${(err as Error).message}`, {
        details: [{ field: "one-hot", description: (err as Error).message }],
      });
    }
    for (const g of emitted.groups)
      process.stdout.write(`one-hot field ${g.name}: ${g.columns.join(", ")}\n`);
    const latitude = header.find(isLatitudeColumn);
    const longitude = header.find(isLongitudeColumn);
    const soldYear = header.find((h) => /^(year|yr)_?sold$|^sale_?year$/i.test(h));
    const soldMonth = header.find((h) => /^(mo|month)_?sold$|^sale_?month$/i.test(h));
    const yaml = renderManifests({
      assetClass,
      version: output.card.version,
      uri: values["model-uri"] ?? `file://${resolve(modelPath)}`,
      sha256,
      currency: values.currency,
      fields: emitted.fields,
      target: values.target,
      ...(latitude && longitude ? { geo: { latitude, longitude } } : {}),
      ...(soldYear && soldMonth ? { soldAt: { year: soldYear, month: soldMonth } } : {}),
    });
    const manifestPath = join(values["manifests-dir"] ?? values.out, `${assetClass}.yaml`);
    await mkdir(dirname(manifestPath), { recursive: true });
    await writeFile(manifestPath, yaml);
    process.stdout.write(`wrote ${manifestPath} (ValuationModel + AssetPipeline)\n`);
  }
}
