import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

/**
 * A worker thread running one of this package's compiled worker modules (`name`.js): the one next
 * to the calling module in dist, or dist's when that module runs from source (tests). It starts
 * with no inherited flags: a test runner's --conditions=source would make it load TypeScript.
 * Its young generation is kept small unless asked otherwise (`null`: V8's default, for a short-lived
 * worker that allocates a lot): the long-lived workers allocate little per request, and V8's
 * default (two 16 MB semi-spaces per isolate) would be a tenth of the model server's memory each.
 */
export function compiledWorker(name: string, options: { youngGenerationMb?: number | null } = {}): Worker {
  const beside = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  const file = existsSync(beside) ? beside : fileURLToPath(new URL(`../dist/${name}.js`, import.meta.url));
  const young = options.youngGenerationMb === undefined ? 4 : options.youngGenerationMb;
  return new Worker(file, {
    execArgv: [],
    ...(young === null ? {} : { resourceLimits: { maxYoungGenerationSizeMb: young } }),
  });
}
