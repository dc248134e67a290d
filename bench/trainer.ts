/**
 * npm run bench:trainer — wall time to train the default real-estate model (5-fold CV plus the
 * final fit) from models/data/ames.csv with the parameters `make models` uses. Prints figures.
 */
import { readFileSync } from "node:fs";
import { trainModel } from "@valora/trainer";

const csv = readFileSync("models/data/ames.csv", "utf8");
const started = process.hrtime.bigint();
const out = trainModel({
  csv,
  target: "Sale_Price",
  logTarget: true,
  exclude: ["Sale_Type", "Sale_Condition"],
  seed: 42,
  version: "ames-v1",
  dataName: "ames.csv",
});
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const cv = out.card.crossValidation;
console.log(
  `Ames (${out.card.data.rows} rows, ${out.card.features.length} features): ${seconds.toFixed(1)} s for 5-fold CV + final fit (${out.card.hyperParameters.rounds} trees; rounds per fold ${out.card.hyperParameters.roundsPerFold.join(", ")})`,
);
console.log(
  `CV MdAPE ${cv.mdape.toFixed(2)}%  PPE10 ${cv.ppe10.toFixed(1)}%  PPE20 ${cv.ppe20.toFixed(1)}%  RMSE(log) ${cv.rmseLog.toFixed(4)}  80% interval coverage ${cv.intervalCoverage80.toFixed(1)}%`,
);
