import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createHash } from "node:crypto";

/** Decodes an `aws-chunked` body (SigV4 streaming or unsigned with trailers) into its payload. */
function decodeAwsChunked(raw: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = raw.indexOf("\r\n", at);
    if (eol < 0) break;
    const size = parseInt(raw.toString("latin1", at, eol).split(";")[0]!, 16);
    if (!size) break;
    parts.push(raw.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

/**
 * A local double of the S3 REST operations job results use (path-style PutObject, GetObject,
 * DeleteObject, multipart upload), for the real AWS SDK pointed at it: SigV4 Authorization
 * required, `aws-chunked` bodies decoded, XML errors (NoSuchKey, NoSuchBucket) as S3 sends them.
 */
export class S3Double {
  readonly objects = new Map<string, Buffer>();
  readonly requests: { method: string; path: string }[] = [];
  private readonly uploads = new Map<string, Map<number, Buffer>>();
  private server: Server | undefined;
  private seq = 0;

  constructor(readonly bucket: string) {}

  async listen(): Promise<string> {
    this.server = createServer(
      (req, res) =>
        void this.handle(req).then(({ status, headers, body }) => res.writeHead(status, headers).end(body)),
    );
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    await new Promise((r) => this.server?.close(r));
  }

  private async handle(
    req: IncomingMessage,
  ): Promise<{ status: number; headers: Record<string, string>; body?: Buffer | string }> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Buffer = Buffer.concat(chunks);
    if (String(req.headers["content-encoding"] ?? "").includes("aws-chunked")) body = decodeAwsChunked(body);
    const url = new URL(req.url ?? "/", "http://s3");
    this.requests.push({ method: req.method ?? "", path: url.pathname });
    const error = (status: number, code: string, message: string) => ({
      status,
      headers: { "content-type": "application/xml" },
      body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message><RequestId>r${++this.seq}</RequestId></Error>`,
    });
    if (!String(req.headers.authorization ?? "").startsWith("AWS4-HMAC-SHA256 Credential="))
      return error(403, "AccessDenied", "Access Denied");
    const [, bucket, ...rest] = url.pathname.split("/");
    if (bucket !== this.bucket) return error(404, "NoSuchBucket", "The specified bucket does not exist");
    const key = decodeURIComponent(rest.join("/"));
    const etag = (b: Buffer) => `"${createHash("md5").update(b).digest("hex")}"`;
    const uploadId = url.searchParams.get("uploadId");
    if (req.method === "POST" && url.searchParams.has("uploads")) {
      const id = `u${++this.seq}`;
      this.uploads.set(id, new Map());
      return {
        status: 200,
        headers: { "content-type": "application/xml" },
        body: `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
      };
    }
    if (req.method === "PUT" && uploadId) {
      this.uploads.get(uploadId)?.set(Number(url.searchParams.get("partNumber")), body);
      return { status: 200, headers: { etag: etag(body) } };
    }
    if (req.method === "POST" && uploadId) {
      const parts = [...(this.uploads.get(uploadId) ?? new Map<number, Buffer>()).entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([, b]) => b);
      this.objects.set(key, Buffer.concat(parts));
      this.uploads.delete(uploadId);
      return {
        status: 200,
        headers: { "content-type": "application/xml" },
        body: `<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${key}</Key><ETag>${etag(this.objects.get(key)!)}</ETag></CompleteMultipartUploadResult>`,
      };
    }
    if (req.method === "PUT") {
      this.objects.set(key, body);
      return { status: 200, headers: { etag: etag(body) } };
    }
    if (req.method === "GET") {
      const o = this.objects.get(key);
      if (!o) return error(404, "NoSuchKey", "The specified key does not exist.");
      return {
        status: 200,
        headers: { "content-type": "text/csv", "content-length": String(o.length), etag: etag(o) },
        body: o,
      };
    }
    if (req.method === "DELETE") {
      this.objects.delete(key);
      return { status: 204, headers: {} };
    }
    return error(405, "MethodNotAllowed", "The specified method is not allowed");
  }
}
