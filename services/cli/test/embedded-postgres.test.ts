import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type * as EmbeddedPostgresModule from "../src/embedded-postgres.js";
import { root } from "./support/platform.js";

type EmbeddedPostgres = typeof EmbeddedPostgresModule;

const built = join(root, "services", "cli", "dist", "embedded-postgres.js");
const pss = () =>
  Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync("/proc/self/smaps_rollup", "utf8"))?.[1]) / 1024;

describe.skipIf(!existsSync(built))("embedded PostgreSQL (npm start without DATABASE_URL)", () => {
  const dir = mkdtempSync(join(tmpdir(), "valora-embedded-pg-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("makes a new data directory in a process of its own, with a small buffer pool, and keeps data across starts", async () => {
    const { startEmbeddedPostgres, EMBEDDED_SHARED_BUFFERS } = (await import(built)) as EmbeddedPostgres;
    const before = pss();
    const first = await startEmbeddedPostgres(join(dir, "pg"));
    // initdb's WebAssembly heap (~165 MB) and its first server's (~128 MB) never entered this process.
    const grown = pss() - before;
    const client = new pg.Client({ connectionString: first.url });
    await client.connect();
    expect((await client.query("show shared_buffers")).rows[0].shared_buffers).toBe(EMBEDDED_SHARED_BUFFERS);
    await client.query("create table kept (v int); insert into kept values (42)");
    await client.end();
    await first.close();
    expect(existsSync(join(dir, "pg", "PG_VERSION"))).toBe(true);
    expect(grown).toBeLessThan(250);

    const second = await startEmbeddedPostgres(join(dir, "pg"));
    const again = new pg.Client({ connectionString: second.url });
    await again.connect();
    expect((await again.query("select v from kept")).rows).toEqual([{ v: 42 }]);
    await again.end();
    await second.close();
  }, 120_000);
});
