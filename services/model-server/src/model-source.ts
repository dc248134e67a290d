import { createHash } from "node:crypto";
import { mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import aws4 from "aws4";
import { ValoraError } from "@valora/kit";

export interface S3Config {
  /** e.g. http://minio.valora.svc:9000 */
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ModelSourceOptions {
  /** Where downloaded models are cached, by content hash. */
  cacheDir: string;
  /** Hosts https:// (and, when allowed, http://) URIs may name; `*.example.com` matches subdomains. */
  allowedHosts: string[];
  /** Buckets s3:// URIs may name; empty means any bucket on the configured endpoint. */
  allowedBuckets?: string[];
  s3?: S3Config;
  /** Plain http:// for loopback development only; never in a cluster. */
  allowHttp?: boolean;
  maxBytes?: number;
  fetch?: typeof fetch;
}

export interface ModelLocation {
  uri: string;
  sha256?: string;
}

const SHA256 = /^[0-9a-f]{64}$/;

function hostAllowed(host: string, allowed: string[]): boolean {
  const h = host.toLowerCase();
  return allowed.some((pattern) => {
    const p = pattern.toLowerCase();
    return p.startsWith("*.") ? h.endsWith(p.slice(1)) && h.length > p.length - 1 : h === p;
  });
}

function checkHost(url: URL, allowedHosts: string[]): URL {
  if (!hostAllowed(url.hostname, allowedHosts)) {
    throw new ValoraError(
      "PERMISSION_DENIED",
      `model host ${url.hostname} is not in the allow-list (${allowedHosts.join(", ") || "empty"})`,
      {
        details: [{ field: "uri", description: "host not allowed" }],
      },
    );
  }
  return url;
}

/**
 * Pure check of a model URI against the policy: scheme, host allow-list, bucket allow-list.
 * A ValuationModel is written by users; without this a CR could make pods fetch internal URLs.
 */
export function checkModelUri(
  uri: string,
  options: Pick<ModelSourceOptions, "allowedHosts" | "allowedBuckets" | "s3" | "allowHttp">,
): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new ValoraError("INVALID_ARGUMENT", `model uri ${JSON.stringify(uri)} is not a URL`, {
      details: [{ field: "uri", description: "must be file://, https:// or s3://" }],
    });
  }
  switch (url.protocol) {
    case "file:":
      return url;
    case "http:":
      if (!options.allowHttp) {
        throw new ValoraError(
          "PERMISSION_DENIED",
          `model uri ${uri}: plain http is refused; use https:// or s3://`,
          { details: [{ field: "uri", description: "http:// is not allowed" }] },
        );
      }
      return checkHost(url, options.allowedHosts);
    case "https:":
      return checkHost(url, options.allowedHosts);
    case "s3:":
      if (!options.s3)
        throw new ValoraError("FAILED_PRECONDITION", `model uri ${uri}: no S3 endpoint is configured`, {
          details: [{ field: "uri", description: "s3:// needs VALORA_S3_ENDPOINT" }],
        });
      if (
        options.allowedBuckets &&
        options.allowedBuckets.length > 0 &&
        !options.allowedBuckets.includes(url.hostname)
      ) {
        throw new ValoraError("PERMISSION_DENIED", `bucket ${url.hostname} is not in the allow-list`, {
          details: [{ field: "uri", description: "bucket not allowed" }],
        });
      }
      return url;
    default:
      throw new ValoraError("INVALID_ARGUMENT", `model uri scheme ${url.protocol} is not supported`, {
        details: [{ field: "uri", description: "must be file://, https:// or s3://" }],
      });
  }
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function verify(bytes: Uint8Array, expected: string | undefined, uri: string): string {
  const actual = sha256Hex(bytes);
  if (expected !== undefined && expected.toLowerCase() !== actual) {
    throw new ValoraError(
      "FAILED_PRECONDITION",
      `model ${uri}: sha256 mismatch (expected ${expected}, got ${actual})`,
      { details: [{ field: "sha256", description: "does not match the content" }] },
    );
  }
  return actual;
}

async function readBody(res: Response, maxBytes: number, uri: string): Promise<Uint8Array> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > maxBytes)
    throw new ValoraError(
      "PAYLOAD_TOO_LARGE",
      `model ${uri} is ${declared} bytes, above the ${maxBytes} limit`,
    );
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (!res.body) return new Uint8Array();
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    if (size > maxBytes)
      throw new ValoraError("PAYLOAD_TOO_LARGE", `model ${uri} exceeds the ${maxBytes} byte limit`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Fetches model bytes and verifies them; downloads are cached on disk by content hash. */
export class ModelSource {
  private readonly fetchFn: typeof fetch;
  private readonly maxBytes: number;

  constructor(private readonly options: ModelSourceOptions) {
    this.fetchFn = options.fetch ?? fetch;
    this.maxBytes = options.maxBytes ?? 1024 * 1024 * 1024;
  }

  async load(location: ModelLocation): Promise<{ bytes: Uint8Array; sha256: string; cached: boolean }> {
    if (location.sha256 !== undefined && !SHA256.test(location.sha256.toLowerCase())) {
      throw new ValoraError(
        "INVALID_ARGUMENT",
        `sha256 ${JSON.stringify(location.sha256)} is not 64 hex digits`,
        { details: [{ field: "sha256", description: "must be 64 hex digits" }] },
      );
    }
    const url = checkModelUri(location.uri, this.options);
    if (url.protocol === "file:") {
      const bytes = await readFile(fileURLToPath(url)).catch((err: NodeJS.ErrnoException) => {
        throw new ValoraError(
          err.code === "ENOENT" ? "NOT_FOUND" : "UNAVAILABLE",
          `model file ${url.pathname}: ${err.code ?? err.message}`,
          { cause: err },
        );
      });
      return { bytes, sha256: verify(bytes, location.sha256, location.uri), cached: false };
    }
    const cachePath = location.sha256
      ? join(this.options.cacheDir, `${location.sha256.toLowerCase()}.onnx`)
      : undefined;
    if (cachePath && (await stat(cachePath).catch(() => undefined))) {
      const bytes = await readFile(cachePath);
      if (sha256Hex(bytes) === location.sha256!.toLowerCase())
        return { bytes, sha256: location.sha256!.toLowerCase(), cached: true };
      await rm(cachePath, { force: true });
    }
    const bytes = url.protocol === "s3:" ? await this.fetchS3(url) : await this.fetchHttp(url);
    const sha256 = verify(bytes, location.sha256, location.uri);
    await this.store(join(this.options.cacheDir, `${sha256}.onnx`), bytes);
    return { bytes, sha256, cached: false };
  }

  private async store(path: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.options.cacheDir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    const fh = await open(tmp, "w");
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  }

  private async fetchHttp(url: URL, redirects = 0): Promise<Uint8Array> {
    const res = await this.fetchFn(url, { redirect: "manual", signal: AbortSignal.timeout(120_000) }).catch(
      (err: unknown) => {
        throw new ValoraError(
          "UNAVAILABLE",
          `model download ${url.href} failed: ${err instanceof Error ? err.message : String(err)}`,
          { cause: err },
        );
      },
    );
    if (res.status >= 300 && res.status < 400 && res.headers.get("location")) {
      // Each hop is checked against the allow-list: a redirect must not reach what the URI could not.
      if (redirects >= 3)
        throw new ValoraError("UNAVAILABLE", `model download ${url.href}: too many redirects`);
      const next = checkModelUri(new URL(res.headers.get("location")!, url).href, this.options);
      return this.fetchHttp(next, redirects + 1);
    }
    if (!res.ok)
      throw new ValoraError(
        res.status === 404 ? "NOT_FOUND" : "UNAVAILABLE",
        `model download ${url.href}: HTTP ${res.status}`,
      );
    return readBody(res, this.maxBytes, url.href);
  }

  private async fetchS3(url: URL): Promise<Uint8Array> {
    const s3 = this.options.s3!;
    const endpoint = new URL(s3.endpoint);
    const path = `/${url.hostname}${url.pathname}`;
    const signed = aws4.sign(
      { host: endpoint.host, path, method: "GET", service: "s3", region: s3.region, headers: {} },
      { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    );
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(signed.headers ?? {}))
      if (k.toLowerCase() !== "host") headers[k] = String(v);
    const target = new URL(path, endpoint);
    const res = await this.fetchFn(target, {
      headers,
      redirect: "error",
      signal: AbortSignal.timeout(120_000),
    }).catch((err: unknown) => {
      throw new ValoraError(
        "UNAVAILABLE",
        `model download ${url.href} failed: ${err instanceof Error ? err.message : String(err)}`,
        { cause: err },
      );
    });
    if (!res.ok)
      throw new ValoraError(
        res.status === 404 ? "NOT_FOUND" : "UNAVAILABLE",
        `model download ${url.href}: S3 answered HTTP ${res.status}`,
      );
    return readBody(res, this.maxBytes, url.href);
  }
}
