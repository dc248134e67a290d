import { execFileSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bin, root, stop, up, type Banner } from "./support/platform.js";
import { PostgresServer, RedisServer, postgresBin, redisServerBin } from "./support/servers.js";
import { TcpProxy } from "./support/tcp-proxy.js";

/**
 * Chaos: `valora up` on a real PostgreSQL (reached through a TCP proxy) and Redis of this test's
 * own, under a steady valuation load, while the test stops its dependencies and kills its pods.
 * Each case prints its figures: errors during the outage, seconds to full recovery, and that
 * nothing was lost (every valuation answered is metered once; every job row valued once).
 */

interface Sample {
  at: number;
  kind: "cached" | "uncached";
  status: number;
  route?: string;
  fallbackReason?: string | null;
  message?: string;
}

const pgBin = postgresBin();
const redisBin = redisServerBin();
const missing = [!existsSync(bin) && "a build", !pgBin && "postgresql", !redisBin && "redis-server"].filter(
  Boolean,
);

const house = (livingArea: number) => ({
  gr_liv_area: livingArea,
  lot_area: 31770,
  total_bsmt_sf: 1080,
  first_flr_sf: 1656,
  latitude: 42.054,
  longitude: -93.6198,
});

/** A steady load of cached and uncached valuations from `workers` concurrent clients. */
function startLoad(rest: string, key: string, workers = 3) {
  const samples: Sample[] = [];
  let running = true;
  let n = 0;
  const one = async (kind: Sample["kind"]) => {
    const attributes = kind === "cached" ? house(1656) : house(900 + (n++ % 2000));
    const body = JSON.stringify({ assetClass: "real-estate", attributes, skipCache: kind === "uncached" });
    const headers = { authorization: `Bearer ${key}`, "content-type": "application/json" };
    const at = Date.now();
    try {
      const res = await fetch(`${rest}/v1/valuations`, { method: "POST", headers, body });
      const json = (await res.json()) as {
        data: { model: { route: string }; fallbackReason: string | null } | null;
        error: { message: string } | null;
      };
      samples.push({
        at,
        kind,
        status: res.status,
        ...(json.data ? { route: json.data.model.route, fallbackReason: json.data.fallbackReason } : {}),
        ...(json.error ? { message: json.error.message } : {}),
      });
    } catch (err) {
      samples.push({ at, kind, status: 0, message: String(err) });
    }
  };
  const loops = Array.from({ length: workers }, async (_, w) => {
    while (running) {
      await one(w % 3 === 0 ? "cached" : "uncached");
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  return {
    samples,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Errors between `from` and `to`, and seconds from `restoredAt` to the last error (0: none after). */
function figures(samples: Sample[], from: number, restoredAt: number, to: number) {
  const window = samples.filter((s) => s.at >= from && s.at <= to);
  const failed = window.filter((s) => s.status !== 200);
  const lastFailure = Math.max(restoredAt, ...failed.map((s) => s.at));
  return {
    requests: window.length,
    errors: failed.length,
    cachedErrors: failed.filter((s) => s.kind === "cached").length,
    recoverySeconds: (lastFailure - restoredAt) / 1000,
    fallbacks: window.filter((s) => s.route === "fallback").length,
    messages: [...new Set(failed.map((s) => `${s.status} ${s.message ?? ""}`))],
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const report = (name: string, f: object) => process.stdout.write(`chaos ${name}: ${JSON.stringify(f)}\n`);

describe.skipIf(missing.length > 0)(
  `chaos: valora up through dependency outages${missing.length ? ` (skipped: needs ${missing.join(", ")})` : ""}`,
  () => {
    const dataDir = mkdtempSync(join(tmpdir(), "valora-chaos-"));
    const manifests = join(dataDir, "manifests");
    cpSync(join(root, "manifests"), manifests, { recursive: true });
    let pg: PostgresServer;
    let redis: RedisServer;
    let proxy: TcpProxy;
    let child: ChildProcess;
    let banner: Banner;
    let lines: Record<string, unknown>[];
    let key: string;
    const auth = () => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });
    const valuedOk: Sample[] = [];

    beforeAll(async () => {
      pg = await PostgresServer.create(pgBin!);
      redis = await RedisServer.create(redisBin!);
      proxy = new TcpProxy(pg.port);
      const proxyPort = await proxy.listen();
      ({ child, banner, lines } = await up(dataDir, {
        VALORA_MANIFESTS: manifests,
        DATABASE_URL: `postgres://valora@127.0.0.1:${proxyPort}/valora`,
        REDIS_URL: redis.url,
      }));
      key = banner.apiKey!;
      // An unhandled 'error' event, or anything else that kills the process, fails every case.
      child.on("exit", (code, signal) => {
        throw new Error(`valora up exited (${code ?? signal}) during the chaos suite`);
      });
    }, 180_000);

    afterAll(async () => {
      if (child && child.exitCode === null) await stop(child);
      await proxy?.close();
      redis?.destroy();
      pg?.destroy();
      rmSync(dataDir, { recursive: true, force: true });
    });

    /** Runs `outage` under load and returns the samples of the case (from 2 s before to `settleMs` after). */
    async function underLoad(outage: () => Promise<number>, settleMs = 6000) {
      const load = startLoad(banner.rest, key);
      await sleep(2000);
      const from = Date.now();
      const restoredAt = await outage();
      await sleep(settleMs);
      const to = Date.now();
      await load.stop();
      valuedOk.push(...load.samples.filter((s) => s.status === 200));
      return { samples: load.samples, from, restoredAt, to };
    }

    it("Postgres stopped for 8 s and started again: every valuation answers, writes say 503 + Retry-After", async () => {
      let write: Response | undefined;
      let ready: { status: string; degraded: { dependency: string }[] } | undefined;
      const run = await underLoad(async () => {
        pg.stop();
        await sleep(3000);
        ready = (await (await fetch(`${banner.rest}/readyz`)).json()) as typeof ready;
        write = await fetch(`${banner.rest}/v1/api-keys`, {
          method: "POST",
          headers: auth(),
          body: JSON.stringify({ name: "during-outage", roles: ["api"] }),
        });
        await sleep(5000);
        pg.start();
        return Date.now();
      });
      const f = figures(run.samples, run.from, run.restoredAt, run.to);
      report("postgres-restart", { outageSeconds: 8, ...f });
      expect(f.errors, f.messages.join("; ")).toBe(0);
      expect(write!.status).toBe(503);
      expect(write!.headers.get("retry-after")).toBe("5");
      const body = (await write!.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("UNAVAILABLE");
      expect(body.error.message).not.toMatch(/127\.0\.0\.1|ECONN/);
      expect(ready).toMatchObject({ status: "degraded", degraded: [{ dependency: "postgres" }] });
      // After the restart, writes work again.
      const created = await fetch(`${banner.rest}/v1/api-keys`, {
        method: "POST",
        headers: auth(),
        body: JSON.stringify({ name: "after-outage", roles: ["api"] }),
      });
      expect(created.status).toBe(201);
    }, 90_000);

    it("every Postgres connection dropped by a proxy in between: valuations go on, the database is used again", async () => {
      let dropped = 0;
      const logBefore = lines.length;
      const run = await underLoad(async () => {
        dropped = proxy.dropAll();
        return Date.now();
      }, 4000);
      const f = figures(run.samples, run.from, run.restoredAt, run.to);
      report("postgres-connections-dropped", { dropped, ...f });
      expect(dropped).toBeGreaterThan(0);
      // On a failure, what the platform and its pods said meanwhile (warnings and errors, pods' exits).
      const said = lines
        .slice(logBefore)
        .filter((l) => Number(l["level"] ?? 0) >= 40)
        .map((l) => JSON.stringify(l).slice(0, 300));
      expect(f.errors, [...f.messages, ...said].join("\n")).toBe(0);
      const keys = await fetch(`${banner.rest}/v1/api-keys`, { headers: auth() });
      expect(keys.status).toBe(200);
    }, 60_000);

    it("Redis stopped for 5 s and started again: no errors, one warning line, not one per request", async () => {
      const logBefore = lines.length;
      const run = await underLoad(async () => {
        redis.stop();
        await sleep(5000);
        await redis.start();
        return Date.now();
      });
      const f = figures(run.samples, run.from, run.restoredAt, run.to);
      const quotaLines = lines
        .slice(logBefore)
        .filter((l) => String(l["msg"]).includes("counting locally")).length;
      report("redis-restart", { outageSeconds: 5, ...f, quotaWarningLines: quotaLines });
      expect(f.errors, f.messages.join("; ")).toBe(0);
      expect(quotaLines).toBeLessThanOrEqual(1);
    }, 60_000);

    it("the real-estate model server killed with SIGKILL: answers from comparables with a stable reason, then the model again", async () => {
      const run = await underLoad(async () => {
        // The pod restarts after its back-off and loads the model (~10 s on an idle machine): room for a busy one.
        process.kill(podPid(child.pid!, "serve model-server", "real-estate"), "SIGKILL");
        return Date.now();
      }, 25_000);
      const f = figures(run.samples, run.from, run.restoredAt, run.to);
      const after = run.samples.filter((s) => s.at >= run.restoredAt && s.kind === "uncached");
      const lastFallback = Math.max(
        run.restoredAt,
        ...after.filter((s) => s.route === "fallback").map((s) => s.at),
      );
      report("model-server-sigkill", { ...f, secondsOnFallback: (lastFallback - run.restoredAt) / 1000 });
      expect(f.errors, f.messages.join("; ")).toBe(0);
      const reasons = new Set(after.filter((s) => s.route === "fallback").map((s) => s.fallbackReason));
      for (const reason of reasons) expect(["MODEL_UNAVAILABLE", "MODEL_TIMEOUT"]).toContain(reason);
      expect(after.at(-1)!.route).toBe("champion");
    }, 60_000);

    it("the real-estate pipeline killed with SIGKILL: cached answers go on, uncached ones recover when it restarts", async () => {
      const run = await underLoad(async () => {
        process.kill(podPid(child.pid!, "serve pipeline", "real-estate"), "SIGKILL");
        return Date.now();
      }, 15_000);
      const f = figures(run.samples, run.from, run.restoredAt, run.to);
      report("pipeline-sigkill", f);
      expect(f.cachedErrors, f.messages.join("; ")).toBe(0);
      expect(f.recoverySeconds).toBeLessThan(12);
      for (const m of f.messages) expect(m).not.toMatch(/127\.0\.0\.1|ECONN|No connection established/);
    }, 60_000);

    it("a bulk job across a Postgres restart: paused, resumed, every row valued exactly once", async () => {
      // The data file ends its lines with CRLF: one line ending for the whole upload.
      const cars = readFileSync(join(root, "models", "data", "car_prices.csv"), "utf8")
        .trim()
        .split(/\r?\n/);
      const header = cars[0]!;
      const rows = Array.from({ length: 6000 }, (_, i) => cars[1 + (i % (cars.length - 1))]!);
      const csv = join(dataDir, "cars.csv");
      writeFileSync(csv, [header, ...rows].join("\n"));
      const submitted = await fetch(`${banner.rest}/v1/jobs?assetClass=autos`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "text/csv" },
        body: readFileSync(csv),
      });
      expect(submitted.status).toBe(202);
      const { data: job } = (await submitted.json()) as { data: { id: string } };
      await sleep(300);
      pg.stop();
      await sleep(4000);
      pg.start();
      const restartedAt = Date.now();
      let status = "";
      let doneRows = 0;
      for (let i = 0; i < 120 && status !== "succeeded"; i++) {
        await sleep(500);
        const res = await fetch(`${banner.rest}/v1/jobs/${job.id}`, { headers: auth() });
        if (res.status !== 200) continue;
        ({ status, doneRows } = ((await res.json()) as { data: { status: string; doneRows: number } }).data);
      }
      const results = await (
        await fetch(`${banner.rest}/v1/jobs/${job.id}/results`, { headers: auth() })
      ).text();
      const records = parse<{ row: string; value: string }>(results, { columns: true });
      const rowNumbers = new Set(records.map((r) => r.row));
      const valued = records.filter((r) => r.value !== "").length;
      const metered = await meteredUnits("job_row", valued);
      report("job-across-postgres-restart", {
        rows: 6000,
        results: records.length,
        distinctRows: rowNumbers.size,
        valued,
        refused: records.length - valued,
        meteredJobRows: metered,
        secondsToDoneAfterRestart: (Date.now() - restartedAt) / 1000,
      });
      expect(status).toBe("succeeded");
      expect(records).toHaveLength(6000);
      expect(rowNumbers.size).toBe(6000);
      expect(valued).toBe(6000);
      expect(doneRows).toBe(valued);
      // Each valued row metered once: none lost in the outage, none counted twice on resume.
      expect(metered).toBe(valued);
    }, 120_000);

    it("metered every valuation answered during the suite exactly once", async () => {
      const answered = valuedOk.length;
      // Valuations before the suite (none: the key was just made) and the job's rows are apart.
      const units = await meteredUnits("valuation", answered);
      report("usage-exactly-once", { answered, metered: units });
      expect(units).toBe(answered);
    }, 60_000);

    /** Units metered today for `kind`, once they reach `expected` or stop changing (usage is flushed in the background). */
    async function meteredUnits(kind: string, expected: number): Promise<number> {
      let units = -1;
      for (let i = 0; i < 60; i++) {
        const res = await fetch(`${banner.rest}/v1/usage`, { headers: auth() });
        const body = (await res.json()) as { data: { days: { kind: string; units: number }[] } };
        units = body.data.days.filter((d) => d.kind === kind).reduce((s, d) => s + d.units, 0);
        if (units >= expected) return units;
        await sleep(500);
      }
      return units;
    }
  },
);

/** The pid of the pod process `valora up` runs for `what` (e.g. "serve pipeline") of an asset class. */
function podPid(parent: number, what: string, assetClass: string): number {
  const table = execFileSync("ps", ["-eo", "pid=,ppid=,args="], { encoding: "utf8" });
  for (const line of table.split("\n")) {
    const [pid, ppid, ...args] = line.trim().split(/\s+/);
    if (Number(ppid) !== parent) continue;
    const cmd = args.join(" ");
    if (!cmd.includes(what)) continue;
    const env = readFileSync(`/proc/${pid}/environ`, "utf8");
    if (cmd.includes(assetClass) || env.includes(assetClass)) return Number(pid);
  }
  throw new Error(`no ${what} process for ${assetClass} under ${parent}`);
}
