import type { Readable } from "node:stream";
import { stringify } from "csv-stringify/sync";
import type { JobStore } from "./store.js";

export const RESULT_COLUMNS = ["row", "value", "interval_low", "interval_high", "coverage", "confidence", "model_version", "route", "error_code", "error"];

/** A job's results as CSV from Postgres, header first, in input row order, a page at a time. */
export async function* resultsCsv(store: JobStore, jobId: string, signal?: AbortSignal): AsyncGenerator<Buffer> {
  yield Buffer.from(stringify([RESULT_COLUMNS]));
  let after = 0;
  for (;;) {
    const page = await store.results(jobId, after, 2000);
    if (page.length === 0 || signal?.aborted) return;
    after = page.at(-1)!.rowNo;
    const lines = page.map((p) => {
      const r = p.result;
      if (!r) return [p.rowNo, "", "", "", "", "", "", "", "PENDING", "not valued yet"];
      if (r.error) return [p.rowNo, "", "", "", "", "", "", "", r.error.code, r.error.message];
      return [p.rowNo, r.value, r.low, r.high, r.coverage, r.confidence, r.modelVersion, r.route, "", ""];
    });
    yield Buffer.from(stringify(lines));
  }
}

/** Where large jobs' results go once the job ends (S3-compatible object storage). */
export interface ResultsObjectStore {
  /** Writes the object (overwriting: exporting twice writes the same bytes); returns its URL. */
  put(key: string, body: Readable): Promise<string>;
  get(url: string): Promise<AsyncIterable<Uint8Array>>;
  remove(url: string): Promise<void>;
}

/** Pure: the object key of a job's results. */
export const resultsKey = (prefix: string, tenantId: string, jobId: string): string => `${prefix.replace(/\/+$/, "")}${prefix ? "/" : ""}${encodeURIComponent(tenantId)}/${jobId}.csv`;
