import { randomUUID } from "node:crypto";
import {
  DegradedLog,
  backoffDelayMs,
  counter,
  isDatabaseUnavailable,
  type Logger,
  type Registry,
  inSpan,
  linkTo,
} from "@valora/kit";
import { Readable } from "node:stream";
import type { ChunkUsage, JobRow, JobStore, RowResult } from "./store.js";
import { resultsCsv, resultsKey, type ResultsObjectStore } from "./results.js";

/** Values one chunk's rows (up to a batch) for a tenant: the orchestrator's ValueBatch. */
export type ValueRows = (
  tenantId: string,
  assetClass: string,
  rows: Record<string, string>[],
) => Promise<RowResult[]>;

export interface JobWorkerOptions {
  store: JobStore;
  value: ValueRows;
  logger: Logger;
  registry?: Registry;
  /** Rate-limited warnings while the database is away (default: one of its own on `logger`). */
  degraded?: DegradedLog;
  /** Parallel chunks per worker process. */
  concurrency?: number;
  leaseSeconds?: number;
  idleMs?: number;
  /**
   * Meters valued rows, a batch of chunks at a time, keyed by job and chunk. Chunks note their
   * valued rows when they commit (an outbox in the job tables); a meter loop sends them here and
   * marks them metered, so usage is recorded exactly once and never slows a chunk down.
   */
  recordUsage?: (usage: ChunkUsage[]) => Promise<void>;
  /** How long committed chunks wait to be metered together (default 1 s). */
  meterDelayMs?: number;
  /** Called once when a job completes (webhook). */
  onFinished?: (job: JobRow) => Promise<void>;
  retentionDays?: number;
  /**
   * Results of jobs with at least `minRows` rows move to object storage when the job ends (the
   * rows leave Postgres); reads stream them back from there.
   */
  results?: { objects: ResultsObjectStore; minRows: number; prefix?: string };
}

/** Pure: the `job.completed` webhook event of a finished job (what every worker's host publishes). */
export const jobCompletedEvent = (job: JobRow) => ({
  tenantId: job.tenantId,
  eventId: `job-${job.id}`,
  type: "job.completed",
  data: {
    jobId: job.id,
    assetClass: job.assetClass,
    totalRows: job.totalRows,
    doneRows: job.doneRows,
    failedRows: job.failedRows,
  },
});

/**
 * Claims chunks and values them until stopped. Crash-safe by construction: a chunk's results and
 * its completion commit together; a dead worker's lease expires and another worker takes the
 * chunk, valuing only the rows still pending.
 */
export class JobWorker {
  readonly id = `worker-${randomUUID()}`;
  private running = false;
  private loops: Promise<void>[] = [];
  private readonly rows;
  private lastPurge = 0;
  private lastExport = 0;
  private meterTimer: NodeJS.Timeout | undefined;
  private metering: Promise<void> | undefined;
  private meterQueued = false;
  private sleepers = new Set<() => void>();
  /** Whether an idle loop is polling (the others sleep until woken). */
  private polling = false;
  private readonly degraded: DegradedLog;

  constructor(private readonly o: JobWorkerOptions) {
    this.degraded =
      o.degraded ?? new DegradedLog({ logger: o.logger, ...(o.registry ? { registry: o.registry } : {}) });
    this.rows = o.registry
      ? counter(o.registry, "valora_job_rows_total", "Job rows valued, by outcome.", ["outcome"])
      : undefined;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loops = Array.from({ length: this.o.concurrency ?? 2 }, () => this.loop());
    // Chunks another worker committed but did not meter (it died) are metered here too.
    if (this.o.recordUsage) {
      this.meterTimer = setInterval(() => this.meterSoon(), 5_000);
      this.meterTimer.unref();
    }
  }

  /** New work: idle loops claim now instead of at their next poll (a job was just created here). */
  wake(): void {
    for (const w of this.sleepers) w();
    this.sleepers.clear();
  }

  private wakeOne(): void {
    const [first] = this.sleepers;
    first?.();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.wake();
    await Promise.all(this.loops);
    if (this.meterTimer) clearInterval(this.meterTimer);
    await this.meter();
  }

  /** Meters committed chunks now (tests, benchmarks, shutdown). */
  async meter(): Promise<void> {
    const record = this.o.recordUsage;
    if (!record) return;
    await this.metering;
    this.metering = (async () => {
      try {
        while ((await this.o.store.meterChunks(record)) > 0) {
          /* next batch */
        }
      } catch (err) {
        this.degraded.note("job-metering", "could not meter job rows; retrying", err);
      }
    })();
    await this.metering;
  }

  /** Meters within a second: one run covers every chunk committed meanwhile (few, large usage writes). */
  private meterSoon(): void {
    if (!this.o.recordUsage || this.meterQueued) return;
    this.meterQueued = true;
    setTimeout(() => {
      this.meterQueued = false;
      void this.meter();
    }, this.o.meterDelayMs ?? 1000).unref();
  }

  /** Runs until no chunk is left, then meters them and exports large results (tests, benchmarks). */
  async drain(): Promise<void> {
    while (await this.step()) {
      /* next chunk */
    }
    await this.meter();
    await this.exportResults();
  }

  /**
   * Moves the results of ended large jobs to object storage: the object is written, then the job
   * records its URL and drops its rows in one transaction. A crash in between writes the same
   * object again; a job exported by another worker meanwhile is left as it is.
   */
  async exportResults(): Promise<number> {
    const r = this.o.results;
    if (!r) return 0;
    let exported = 0;
    for (const job of await this.o.store.unexported(r.minRows)) {
      const url = await r.objects.put(
        resultsKey(r.prefix ?? "jobs", job.tenantId, job.id),
        Readable.from(resultsCsv(this.o.store, job.id)),
      );
      if (await this.o.store.markExported(job.id, url)) {
        exported++;
        this.o.logger.info({ job: job.id, url, rows: job.totalRows }, "job results moved to object storage");
      }
    }
    return exported;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      let worked = false;
      try {
        worked = await this.step();
        if (this.o.results && Date.now() - this.lastExport > 60_000) {
          this.lastExport = Date.now();
          await this.exportResults();
        }
        if (this.o.retentionDays && Date.now() - this.lastPurge > 3_600_000) {
          this.lastPurge = Date.now();
          const objects = this.o.results?.objects;
          const purged = await this.o.store.purge(
            this.o.retentionDays,
            objects ? (url) => objects.remove(url) : undefined,
          );
          if (purged > 0) this.o.logger.info({ purged }, "purged expired jobs");
        }
      } catch (err) {
        // While the database is away every loop fails each poll: one line per 30 s says so.
        this.degraded.note("job-worker", "job worker step failed; retrying", err);
      }
      // A claimed chunk may not be the last: one sleeper more tries (each success wakes the next).
      if (worked) this.wakeOne();
      else if (this.running) await this.idle();
    }
  }

  /**
   * An idle loop waits. One of them polls (claims again after idleMs); the others sleep until woken
   * — by the poller or any loop finding a chunk, or by new work here — so an idle worker asks the
   * database a few times a second, not `concurrency` times as often (16 loops polling every 250 ms
   * were 64 claims a second, a fifth of a core of the embedded database on an idle laptop).
   */
  private async idle(): Promise<void> {
    const polls = !this.polling;
    if (polls) this.polling = true;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.sleepers.delete(done);
        resolve();
      };
      const timer = polls ? setTimeout(done, this.o.idleMs ?? 250) : undefined;
      this.sleepers.add(done);
    });
    if (polls) this.polling = false;
  }

  /**
   * Commits a valued chunk, retrying (backoff with jitter) while the database is unreachable for
   * up to the chunk's lease: the results are in hand, and valuing the rows again after the lease
   * expired would only cost time. Safe to repeat: a row's result is written only while it is
   * pending, so a commit that landed before the connection broke changes nothing the second time.
   */
  private async completeThroughOutage(
    chunk: Parameters<JobStore["complete"]>[1],
    results: Map<number, RowResult>,
  ): ReturnType<JobStore["complete"]> {
    const deadline = Date.now() + (this.o.leaseSeconds ?? 30) * 1000;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.o.store.complete(this.id, chunk, results);
      } catch (err) {
        if (!isDatabaseUnavailable(err) || !this.running || Date.now() > deadline) throw err;
        this.degraded.note(
          "job-worker",
          "database unavailable: holding a valued chunk until it returns",
          err,
        );
        await new Promise((r) => setTimeout(r, backoffDelayMs(attempt, { initialMs: 250, maxMs: 2000 })));
      }
    }
  }

  private async step(): Promise<boolean> {
    const chunk = await this.o.store.claim(this.id, this.o.leaseSeconds ?? 30);
    if (!chunk) return false;
    const results = new Map<number, RowResult>();
    // A trace of its own per chunk (a job outlives any request), linked to the request that submitted the job.
    const link = linkTo(chunk.traceparent);
    if (chunk.rows.length > 0)
      await inSpan(
        "job.chunk",
        async () => {
          const answers = await this.o.value(
            chunk.tenantId,
            chunk.assetClass,
            chunk.rows.map((r) => r.attributes),
          );
          chunk.rows.forEach((r, i) =>
            results.set(r.rowNo, answers[i] ?? { error: { code: "INTERNAL", message: "no result" } }),
          );
        },
        {
          attributes: {
            "valora.job_id": chunk.jobId,
            "valora.chunk_no": chunk.chunkNo,
            "valora.rows": chunk.rows.length,
            "valora.asset_class": chunk.assetClass,
          },
          root: true,
          ...(link ? { links: [link] } : {}),
        },
      );
    const { finished } = await this.completeThroughOutage(chunk, results);
    this.meterSoon();
    if (finished)
      await this.exportResults().catch((err: unknown) =>
        this.o.logger.warn(
          { err: err instanceof Error ? err.message : String(err), job: finished.id },
          "could not export job results; retrying later",
        ),
      );
    for (const r of results.values()) this.rows?.inc({ outcome: r.error ? "failed" : "valued" });
    if (finished) {
      this.o.logger.info(
        { job: finished.id, rows: finished.totalRows, failed: finished.failedRows },
        "job finished",
      );
      await this.o
        .onFinished?.(finished)
        .catch((err: unknown) => this.o.logger.warn({ err, job: finished.id }, "job completion hook failed"));
    }
    return true;
  }
}
