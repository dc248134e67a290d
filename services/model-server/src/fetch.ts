import { mkdir, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { loadModelServerEnv } from "./config.js";
import { ModelSource } from "./model-source.js";

/**
 * `valora fetch-model`: the model-fetch init step. Same sources, allow-list and sha256 check as
 * the server (configured from the same environment); writes atomically so a crash leaves nothing.
 */
export async function fetchModelToFile(
  opts: { uri: string; out: string; sha256?: string },
  env: Record<string, string | undefined>,
): Promise<{ sha256: string; cached: boolean }> {
  const config = loadModelServerEnv(env);
  const source = new ModelSource({
    cacheDir: config.VALORA_MODEL_CACHE_DIR,
    allowedHosts: config.VALORA_MODEL_ALLOWED_HOSTS,
    allowedBuckets: config.VALORA_MODEL_ALLOWED_BUCKETS,
    allowHttp: config.VALORA_MODEL_ALLOW_HTTP,
    ...(config.VALORA_S3_ENDPOINT
      ? {
          s3: {
            endpoint: config.VALORA_S3_ENDPOINT,
            region: config.VALORA_S3_REGION,
            accessKeyId: config.AWS_ACCESS_KEY_ID ?? "",
            secretAccessKey: config.AWS_SECRET_ACCESS_KEY ?? "",
          },
        }
      : {}),
  });
  const { bytes, sha256, cached } = await source.load({
    uri: opts.uri,
    ...(opts.sha256 ? { sha256: opts.sha256 } : {}),
  });
  await mkdir(dirname(opts.out), { recursive: true });
  const tmp = `${opts.out}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, opts.out);
  return { sha256, cached };
}
