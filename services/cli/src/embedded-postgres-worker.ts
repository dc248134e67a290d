/**
 * The embedded PostgreSQL's thread (see embedded-postgres.ts): PGlite and its wire-protocol socket
 * server, off the platform's event loop. Posts `{ url }` once serving (or `{ error }`), and on a
 * "close" message stops, closes the database and posts "closed".
 */
import { parentPort, workerData } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

export interface EmbeddedPostgresWorkerData {
  dir: string;
  startParams: string[];
}

const { dir, startParams } = workerData as EmbeddedPostgresWorkerData;
try {
  const db = await PGlite.create({
    dataDir: dir,
    startParams: [...PGlite.defaultStartParams, ...startParams],
  });
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 16 });
  await server.start();
  parentPort!.on("message", (m: unknown) => {
    if (m !== "close") return;
    void (async () => {
      await server.stop();
      await db.close();
      parentPort!.postMessage("closed");
    })();
  });
  parentPort!.postMessage({ url: `postgres://postgres@${server.getServerConn()}/postgres` });
} catch (err) {
  parentPort!.postMessage({ error: err instanceof Error ? err.message : String(err) });
}
