import { createRequire } from "node:module";
import type { CompiledTreeShap } from "./fast-tree-shap.js";

/** The compiled kernel (services/kit/native, built by `npm run build`): adds the rows' contributions to out. */
export interface NativeTreeShap {
  packedShap(tables: CompiledTreeShap, rows: Float64Array, count: number, out: Float64Array): void;
}

/** Where `npm run build` leaves the kernel, from src/onnx or dist/onnx alike. */
const ADDON = "../../native/build/Release/valora_tree_shap.node";

/**
 * The compiled TreeSHAP kernel when it was built and `VALORA_TREE_SHAP` is not `typescript`;
 * undefined otherwise (the TypeScript passes then run: the same bits, 4-10x slower).
 */
export function loadNativeTreeShap(env: NodeJS.ProcessEnv = process.env): NativeTreeShap | undefined {
  if (env["VALORA_TREE_SHAP"] === "typescript") return undefined;
  try {
    return createRequire(import.meta.url)(ADDON) as NativeTreeShap;
  } catch {
    return undefined;
  }
}

let loaded: NativeTreeShap | undefined | null = null;

/** The kernel this process uses, loaded once. */
export function nativeTreeShap(): NativeTreeShap | undefined {
  if (loaded === null) loaded = loadNativeTreeShap();
  return loaded;
}

/** Which kernel explains in this process: "native" or "typescript" (reported by the model server). */
export const treeShapKernel = (): "native" | "typescript" => (nativeTreeShap() ? "native" : "typescript");
