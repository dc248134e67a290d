import { mkdirSync } from "node:fs";

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
  mkdirSync(dir, { recursive: true });
  const db = await PGlite.create({ dataDir: dir });
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
