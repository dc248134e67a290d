import { execFile } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

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
 * code runs as against a real server. PGlite is one session underneath: the socket server queues
 * clients' statements, so statements of different connections can land inside another's
 * transaction. The platform's own pool has one connection (its transactions never interleave);
 * other connections (the pipelines reading sales) only run single-statement reads.
 */
export async function startEmbeddedPostgres(dir: string): Promise<{ url: string; close(): Promise<void> }> {
  const { PGlite } = await import("@electric-sql/pglite");
  const { PGLiteSocketServer } = await import("@electric-sql/pglite-socket");
  await initialiseDataDir(dir);
  const db = await PGlite.create({
    dataDir: dir,
    startParams: [...PGlite.defaultStartParams, "-c", `shared_buffers=${EMBEDDED_SHARED_BUFFERS}`],
  });
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 16 });
  await server.start();
  return {
    url: `postgres://postgres@${server.getServerConn()}/postgres`,
    async close() {
      await server.stop();
      await db.close();
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
