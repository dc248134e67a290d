import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Worker } from "node:worker_threads";
import type { EmbeddedPostgresWorkerData } from "./embedded-postgres-worker.js";

/**
 * The embedded server's buffer pool. PostgreSQL's default (128 MB) lives in the WebAssembly heap of
 * the platform process and is touched at start; the embedded database holds a laptop's tenants,
 * sales and usage, its files sit in the OS page cache anyway, and 32 MB takes ~100 MB off the
 * process (bench:gateway reports PSS per process).
 */
export const EMBEDDED_SHARED_BUFFERS = "32MB";

/**
 * PostgreSQL for `valora up` when no DATABASE_URL is set: PGlite (Postgres compiled to WASM)
 * persisted under `dir`, served over the Postgres wire protocol on loopback so the same `pg`
 * code runs as against a real server. It runs on a worker thread of its own: its WebAssembly (a
 * quarter of the platform's CPU on cached valuations, mostly usage commits) then runs beside the
 * event loop rather than on it. PGlite is one session underneath: the socket server queues
 * clients' statements, so statements of different connections can land inside another's
 * transaction. The platform's own pool has one connection (its transactions never interleave);
 * other connections (the pipelines reading sales) only run single-statement reads.
 */
export async function startEmbeddedPostgres(
  dir: string,
  onFailure: (err: Error) => void = () => undefined,
): Promise<{ url: string; close(): Promise<void> }> {
  await initialiseDataDir(dir);
  const worker = new Worker(fileURLToPath(new URL("./embedded-postgres-worker.js", import.meta.url)), {
    workerData: {
      dir,
      startParams: ["-c", `shared_buffers=${EMBEDDED_SHARED_BUFFERS}`],
    } satisfies EmbeddedPostgresWorkerData,
    execArgv: [],
  });
  const first = await new Promise<{ url?: string; error?: string }>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
    worker.once("exit", (code) => reject(new Error(`embedded PostgreSQL thread exited with ${code}`)));
  });
  if (!first.url) {
    await worker.terminate();
    throw new Error(`embedded PostgreSQL did not start: ${first.error ?? "no address"}`);
  }
  // Past start, a failure of the thread is an outage of the database, which the platform rides out.
  worker.on("error", onFailure);
  worker.unref();
  return {
    url: first.url,
    async close() {
      const closed = new Promise((resolve) => {
        worker.once("message", resolve);
        worker.once("exit", resolve);
      });
      worker.postMessage("close");
      await closed;
      await worker.terminate();
    },
  };
}

/**
 * A new data directory is made by initdb in a short-lived process of its own: initdb is a second
 * WebAssembly module whose ~300 MB (its heap and the first server's) a long-lived process keeps
 * until a full garbage collection that an idle platform may never run (PSS 880 MB rather than 520
 * on a first `npm start`).
 */
async function initialiseDataDir(dir: string): Promise<void> {
  if (existsSync(join(dir, "PG_VERSION"))) return;
  mkdirSync(dir, { recursive: true });
  const script = fileURLToPath(new URL("./embedded-postgres-init.js", import.meta.url));
  await promisify(execFile)(process.execPath, [script, dir], { timeout: 120_000 });
}
