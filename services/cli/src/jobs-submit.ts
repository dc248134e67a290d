import { createReadStream, createWriteStream, statSync } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";

export interface SubmitOptions {
  file: string;
  assetClass: string;
  url: string;
  key: string;
  wait: boolean;
  out?: string;
  idempotencyKey?: string;
  /** Where progress goes (a bar when it is a terminal). */
  progress?: NodeJS.WriteStream;
}

interface JobJson {
  id: string;
  status: string;
  totalRows: number;
  doneRows: number;
  failedRows: number;
}

async function call<T>(url: string, init: RequestInit): Promise<T> {
  const res = await fetch(url, init);
  const body = (await res.json()) as {
    data: T;
    error: { code: string; message: string; details: { field: string; description: string }[] } | null;
  };
  if (!res.ok || body.error) {
    const fields = (body.error?.details ?? []).map((d) => `${d.field}: ${d.description}`).join("; ");
    throw new Error(
      `${res.status} ${body.error?.code}: ${body.error?.message}${fields ? ` (${fields})` : ""}`,
    );
  }
  return body.data;
}

/** Reads server-sent events from a response body, calling back with each event's JSON data. */
async function readEvents(
  body: ReadableStream<Uint8Array>,
  onEvent: (event: string, data: unknown) => void,
): Promise<void> {
  let buffer = "";
  for await (const chunk of Readable.fromWeb(body)) {
    buffer += (chunk as Buffer).toString("utf8");
    let end: number;
    while ((end = buffer.indexOf("\n\n")) !== -1) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
      const data = /^data: (.*)$/m.exec(block)?.[1];
      if (data) onEvent(event, JSON.parse(data));
    }
  }
}

/**
 * `valora jobs submit FILE --asset-class NAME [--wait] [--out results.csv]`: streams the CSV to
 * the gateway, then (with --wait) follows the job's progress events with a progress bar and
 * writes the results file.
 */
export async function submitJob(o: SubmitOptions): Promise<JobJson> {
  const headers = { authorization: `Bearer ${o.key}` };
  const size = statSync(o.file).size;
  const job = await call<JobJson>(`${o.url}/v1/jobs?assetClass=${encodeURIComponent(o.assetClass)}`, {
    method: "POST",
    headers: {
      ...headers,
      "content-type": "text/csv",
      "content-length": String(size),
      ...(o.idempotencyKey ? { "idempotency-key": o.idempotencyKey } : {}),
    },
    body: Readable.toWeb(createReadStream(o.file)),
    duplex: "half",
  });
  const log = o.progress ?? process.stderr;
  log.write(`job ${job.id}: ${job.totalRows} rows queued\n`);
  if (!o.wait) return job;

  const { SingleBar, Presets } = await import("cli-progress");
  const bar = new SingleBar(
    {
      format: "{bar} {percentage}% | {value}/{total} rows | {failed} failed | {status}",
      stream: log,
      noTTYOutput: !log.isTTY,
      notTTYSchedule: 2000,
    },
    Presets.shades_classic,
  );
  bar.start(job.totalRows, 0, { failed: 0, status: job.status });
  let last = job;
  const events = await fetch(`${o.url}/v1/jobs/${job.id}/events`, { headers });
  if (!events.ok || !events.body) throw new Error(`progress events: HTTP ${events.status}`);
  await readEvents(events.body, (_event, data) => {
    last = data as JobJson;
    bar.update(last.doneRows + last.failedRows, { failed: last.failedRows, status: last.status });
  });
  bar.stop();
  if (last.status !== "succeeded") throw new Error(`job ${job.id} ended ${last.status}`);
  const out = o.out ?? `${job.id}.results.csv`;
  const results = await fetch(`${o.url}/v1/jobs/${job.id}/results`, { headers });
  if (!results.ok || !results.body) throw new Error(`results: HTTP ${results.status}`);
  await pipeline(Readable.fromWeb(results.body), createWriteStream(out));
  log.write(
    `job ${job.id} ${last.status}: ${last.doneRows} valued, ${last.failedRows} failed; results in ${out}\n`,
  );
  return last;
}
