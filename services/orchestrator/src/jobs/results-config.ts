import { vars, z } from "@valora/kit";
import { s3ResultsStore } from "./s3-results.js";
import type { ResultsObjectStore } from "./results.js";

/** Settings for moving large jobs' results to S3-compatible storage (absent bucket: Postgres only). */
export const JobResultsEnv = z.object({
  JOB_RESULTS_S3_BUCKET: z.string().min(3).optional(),
  JOB_RESULTS_S3_PREFIX: z.string().default("jobs"),
  /** Jobs of at least this many rows move; smaller ones stay in Postgres. */
  JOB_RESULTS_S3_MIN_ROWS: vars.int(10_000, 1),
  /** MinIO or another S3-compatible endpoint; credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. */
  VALORA_S3_ENDPOINT: vars.url().optional(),
  AWS_REGION: z.string().default("us-east-1"),
});

export function jobResultsFrom(
  c: z.infer<typeof JobResultsEnv>,
): { objects: ResultsObjectStore; minRows: number; prefix: string } | undefined {
  if (!c.JOB_RESULTS_S3_BUCKET) return undefined;
  return {
    objects: s3ResultsStore({
      bucket: c.JOB_RESULTS_S3_BUCKET,
      region: c.AWS_REGION,
      ...(c.VALORA_S3_ENDPOINT ? { endpoint: c.VALORA_S3_ENDPOINT } : {}),
    }),
    minRows: c.JOB_RESULTS_S3_MIN_ROWS,
    prefix: c.JOB_RESULTS_S3_PREFIX,
  };
}
