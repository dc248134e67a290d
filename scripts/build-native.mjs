#!/usr/bin/env node
// Builds the compiled TreeSHAP kernel (services/kit/native) with node-gyp, against this Node's own
// headers when they are installed beside it (nothing is downloaded then). Part of `npm run build`.
// Without a C compiler the build says so and succeeds: explanations then run in TypeScript, the
// same results 4-10x slower (services/kit/src/onnx/native-shap.ts picks what is there).
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dir = join(root, "services", "kit", "native");
const built = join(dir, "build", "Release", "valora_tree_shap.node");
const sources = ["tree_shap.c", "binding.gyp"].map((f) => join(dir, f));

const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
if (existsSync(built) && statSync(built).mtimeMs >= newest && process.env["VALORA_NATIVE_REBUILD"] !== "1")
  process.exit(0);

// Node's headers beside its binary (Debian's /usr, nvm, the official images): no download.
const prefix = dirname(dirname(process.execPath));
const nodedir = existsSync(join(prefix, "include", "node", "node_api.h")) ? [`--nodedir=${prefix}`] : [];
const gyp = join(root, "node_modules", "node-gyp", "bin", "node-gyp.js");
const r = spawnSync(process.execPath, [gyp, "rebuild", "--loglevel=error", ...nodedir], {
  cwd: dir,
  stdio: ["ignore", "pipe", "pipe"],
  encoding: "utf8",
});
if (r.status !== 0) {
  const why = `${r.stderr ?? ""}${r.stdout ?? ""}`.trim().split("\n").slice(-3).join("\n  ");
  console.warn(
    `valora: the compiled TreeSHAP kernel was not built (explanations run in TypeScript, 4-10x slower):\n  ${why}`,
  );
}
