/**
 * Pure: several requests' packed rows as one packed block, and how to cut the block's packed
 * contributions back into one array per request (each its own buffer, so it can be transferred).
 */
export function coalesceRows(
  jobs: readonly { rows: Float64Array; count: number }[],
  width: number,
): { rows: Float64Array; count: number; split: (out: Float64Array) => Float64Array[] } {
  if (jobs.length === 1) return { rows: jobs[0]!.rows, count: jobs[0]!.count, split: (out) => [out] };
  const count = jobs.reduce((n, j) => n + j.count, 0);
  const rows = new Float64Array(count * width);
  let at = 0;
  for (const job of jobs) {
    rows.set(job.rows.subarray(0, job.count * width), at);
    at += job.count * width;
  }
  return {
    rows,
    count,
    split: (out) => {
      let from = 0;
      return jobs.map((job) => {
        const part = out.slice(from, from + job.count * width);
        from += job.count * width;
        return part;
      });
    },
  };
}
