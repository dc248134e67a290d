import { Readable } from "node:stream";
import { parse } from "csv-parse";
import { stringify } from "csv-stringify/sync";
import { ValoraError } from "@valora/kit";
import type { JobRow, JobStore } from "./store.js";

export const RESULT_COLUMNS = [
  "row",
  "value",
  "interval_low",
  "interval_high",
  "coverage",
  "confidence",
  "model_version",
  "route",
  "error_code",
  "error",
  "warnings",
];

/** Pure: a row's warnings as one cell, `mileage OUTSIDE_TRAINING_RANGE; make UNSEEN_CATEGORY`. */
export const warningsCell = (warnings: { field: string; code: string }[] | undefined): string =>
  (warnings ?? []).map((w) => `${w.field.replace(/^attributes\./, "")} ${w.code}`).join("; ");

/**
 * A job's results as CSV from Postgres, header first, in input row order, a page at a time. When
 * the rows leave Postgres mid-read (the job's results were just exported), the rest comes from
 * `moved`, which continues after the last row sent.
 */
export async function* resultsCsv(
  store: JobStore,
  jobId: string,
  signal?: AbortSignal,
  o: { totalRows?: number; moved?: (afterRow: number) => AsyncIterable<Buffer>; pageSize?: number } = {},
): AsyncGenerator<Buffer> {
  yield Buffer.from(stringify([RESULT_COLUMNS]));
  let after = 0;
  for (;;) {
    if (signal?.aborted) return;
    const page = await store.results(jobId, after, o.pageSize ?? 2000);
    if (page.length === 0) {
      if (o.moved && o.totalRows !== undefined && after < o.totalRows) yield* o.moved(after);
      return;
    }
    after = page.at(-1)!.rowNo;
    const lines = page.map((p) => {
      const r = p.result;
      if (!r) return [p.rowNo, "", "", "", "", "", "", "", "PENDING", "not valued yet", ""];
      if (r.error) return [p.rowNo, "", "", "", "", "", "", "", r.error.code, r.error.message, ""];
      const valued = [r.value, r.low, r.high, r.coverage, r.confidence, r.modelVersion, r.route];
      return [p.rowNo, ...valued, "", "", warningsCell(r.warnings)];
    });
    yield Buffer.from(stringify(lines));
  }
}

/** The rows after `afterRow` of an exported results CSV (header dropped), re-encoded a few hundred at a time. */
export async function* exportedRowsAfter(
  object: AsyncIterable<Uint8Array>,
  afterRow: number,
): AsyncGenerator<Buffer> {
  const records = Readable.from(object).pipe(parse({ from_line: 2 }));
  let batch: string[][] = [];
  for await (const rec of records as AsyncIterable<string[]>) {
    if (Number(rec[0]) <= afterRow) continue;
    batch.push(rec);
    if (batch.length >= 500) {
      yield Buffer.from(stringify(batch));
      batch = [];
    }
  }
  if (batch.length > 0) yield Buffer.from(stringify(batch));
}

/**
 * A job's results wherever they are: the exported object when the job's results moved to object
 * storage, else Postgres — continuing from the object if they move while being read.
 */
export async function* jobResults(
  store: JobStore,
  objects: ResultsObjectStore | undefined,
  job: JobRow,
  signal?: AbortSignal,
  pageSize?: number,
): AsyncGenerator<Buffer> {
  const fromObject = async (url: string) => {
    if (!objects)
      throw new ValoraError(
        "UNAVAILABLE",
        `the results of job ${job.id} are in object storage, which this service is not configured for`,
      );
    return objects.get(url);
  };
  if (job.resultsUrl) {
    for await (const piece of await fromObject(job.resultsUrl)) {
      if (signal?.aborted) return;
      yield Buffer.from(piece);
    }
    return;
  }
  const moved = async function* (afterRow: number): AsyncGenerator<Buffer> {
    const now = await store.get(job.tenantId, job.id);
    if (!now.resultsUrl)
      throw new ValoraError(
        "UNAVAILABLE",
        `the results of job ${job.id} changed while being read; read them again`,
      );
    yield* exportedRowsAfter(await fromObject(now.resultsUrl), afterRow);
  };
  yield* resultsCsv(store, job.id, signal, {
    totalRows: job.totalRows,
    moved,
    ...(pageSize ? { pageSize } : {}),
  });
}

/** Where large jobs' results go once the job ends (S3-compatible object storage). */
export interface ResultsObjectStore {
  /** Writes the object (overwriting: exporting twice writes the same bytes); returns its URL. */
  put(key: string, body: Readable): Promise<string>;
  get(url: string): Promise<AsyncIterable<Uint8Array>>;
  remove(url: string): Promise<void>;
}

/** Pure: the object key of a job's results. */
export const resultsKey = (prefix: string, tenantId: string, jobId: string): string =>
  `${prefix.replace(/\/+$/, "")}${prefix ? "/" : ""}${encodeURIComponent(tenantId)}/${jobId}.csv`;
