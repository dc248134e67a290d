/**
 * `node embedded-postgres-init.js <dir>`: makes an embedded PostgreSQL data directory (initdb)
 * and exits, so the platform process that then opens it never holds initdb's memory.
 */
import { PGlite } from "@electric-sql/pglite";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: embedded-postgres-init <data dir>");
  process.exit(2);
}
const db = await PGlite.create({ dataDir: dir });
await db.close();
