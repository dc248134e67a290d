import type { Readable } from "node:stream";
import { DeleteObjectCommand, GetObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";
import { ValoraError } from "@valora/kit";
import type { ResultsObjectStore } from "./results.js";

export interface S3ResultsOptions {
  bucket: string;
  /** S3-compatible endpoint (MinIO, ...); AWS when absent. Path-style addressing is used with one. */
  endpoint?: string;
  region?: string;
  /** Static credentials; otherwise the SDK's default chain (AWS_ACCESS_KEY_ID, web identity, ...). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

const parse = (url: string): { bucket: string; key: string } => {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!m) throw new ValoraError("INTERNAL", `not an s3:// URL: ${url}`);
  return { bucket: m[1]!, key: m[2]! };
};

/** Job results in an S3-compatible bucket, through the AWS SDK (multipart upload for large files). */
export function s3ResultsStore(o: S3ResultsOptions): ResultsObjectStore & { client: S3Client } {
  const client = new S3Client({
    region: o.region ?? "us-east-1",
    ...(o.endpoint ? { endpoint: o.endpoint, forcePathStyle: true } : {}),
    ...(o.credentials ? { credentials: o.credentials } : {}),
  });
  return {
    client,
    async put(key, body: Readable) {
      await new Upload({
        client,
        params: { Bucket: o.bucket, Key: key, Body: body, ContentType: "text/csv; charset=utf-8" },
      }).done();
      return `s3://${o.bucket}/${key}`;
    },
    async get(url) {
      const { bucket, key } = parse(url);
      const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      if (!res.Body) throw new ValoraError("UNAVAILABLE", `results object ${url} has no body`);
      return res.Body as AsyncIterable<Uint8Array>;
    },
    async remove(url) {
      const { bucket, key } = parse(url);
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    },
  };
}
