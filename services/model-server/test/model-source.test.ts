import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ValoraError } from "@valora/kit";
import { createRegistry, createServiceBase } from "@valora/kit";
import { captureLogs } from "@valora/kit/testing";
import { ModelSource, checkModelUri, createModelServer, sha256Hex } from "../src/index.js";
import { writeFixtures } from "./fixtures.js";

const fx = writeFixtures();
const bytes = readFileSync(fx.sklearnLike);
const digest = sha256Hex(bytes);

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as ValoraError).code;
  }
  return "OK";
}

describe("checkModelUri (the SSRF guard)", () => {
  const policy = {
    allowedHosts: ["models.example.com", "*.cdn.example.org"],
    allowedBuckets: ["models"],
    s3: { endpoint: "http://minio:9000", region: "us-east-1", accessKeyId: "a", secretAccessKey: "b" },
  };
  it.each([
    ["file:///models/a.onnx", "OK"],
    ["https://models.example.com/a.onnx", "OK"],
    ["https://eu.cdn.example.org/a.onnx", "OK"],
    ["https://cdn.example.org.evil.com/a.onnx", "PERMISSION_DENIED"],
    ["https://169.254.169.254/latest/meta-data", "PERMISSION_DENIED"],
    ["https://kubernetes.default.svc/api", "PERMISSION_DENIED"],
    ["http://models.example.com/a.onnx", "PERMISSION_DENIED"],
    ["s3://models/a.onnx", "OK"],
    ["s3://secrets/a.onnx", "PERMISSION_DENIED"],
    ["gopher://x/y", "INVALID_ARGUMENT"],
    ["not a uri", "INVALID_ARGUMENT"],
  ])("%s -> %s", (uri, code) => {
    expect(codeOf(() => checkModelUri(uri, policy))).toBe(code);
  });

  it("refuses s3:// when no endpoint is configured", () => {
    expect(codeOf(() => checkModelUri("s3://models/a.onnx", { allowedHosts: [] }))).toBe(
      "FAILED_PRECONDITION",
    );
  });
});

describe("ModelSource downloads", () => {
  let server: Server;
  let port = 0;
  const requests: IncomingMessage[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req);
      if (req.url === "/model.onnx" || req.url?.startsWith("/models/")) {
        res.writeHead(200, { "content-type": "application/octet-stream" });
        res.end(bytes);
      } else if (req.url === "/redirect-out") {
        res.writeHead(302, { location: "http://169.254.169.254/latest" });
        res.end();
      } else if (req.url === "/redirect-in") {
        res.writeHead(302, { location: "/model.onnx" });
        res.end();
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const source = (cacheDir = mkdtempSync(join(tmpdir(), "valora-cache-"))) =>
    new ModelSource({
      cacheDir,
      allowedHosts: ["127.0.0.1"],
      allowHttp: true,
      s3: {
        endpoint: `http://127.0.0.1:${port}`,
        region: "us-east-1",
        accessKeyId: "AKIDEXAMPLE",
        secretAccessKey: "secret",
      },
    });

  it("verifies the sha256 and serves later loads from the on-disk cache", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), "valora-cache-"));
    const before = requests.length;
    const first = await source(cacheDir).load({ uri: `http://127.0.0.1:${port}/model.onnx`, sha256: digest });
    expect(first).toMatchObject({ sha256: digest, cached: false });
    const second = await source(cacheDir).load({
      uri: `http://127.0.0.1:${port}/model.onnx`,
      sha256: digest,
    });
    expect(second.cached).toBe(true);
    expect(Buffer.from(second.bytes).equals(bytes)).toBe(true);
    expect(requests.length - before).toBe(1);
  });

  it("refuses content whose sha256 differs, and malformed hashes", async () => {
    await expect(
      source().load({ uri: `http://127.0.0.1:${port}/model.onnx`, sha256: "0".repeat(64) }),
    ).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
    await expect(
      source().load({ uri: `http://127.0.0.1:${port}/model.onnx`, sha256: "xyz" }),
    ).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(
      source().load({ uri: `file://${fx.sklearnLike}`, sha256: "1".repeat(64) }),
    ).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
  });

  it("follows redirects only to allowed hosts", async () => {
    await expect(source().load({ uri: `http://127.0.0.1:${port}/redirect-in` })).resolves.toMatchObject({
      sha256: digest,
    });
    await expect(source().load({ uri: `http://127.0.0.1:${port}/redirect-out` })).rejects.toMatchObject({
      code: "PERMISSION_DENIED",
    });
  });

  it("reports a missing object as NOT_FOUND and a missing file as NOT_FOUND", async () => {
    await expect(source().load({ uri: `http://127.0.0.1:${port}/missing.onnx` })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    await expect(source().load({ uri: "file:///nonexistent/model.onnx" })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });

  it("fetches s3:// objects path-style from the configured endpoint with a SigV4 signature", async () => {
    const r = await source().load({ uri: "s3://models/homes/v3/model.onnx", sha256: digest });
    expect(r.sha256).toBe(digest);
    const req = requests.at(-1)!;
    expect(req.url).toBe("/models/homes/v3/model.onnx");
    expect(req.headers["authorization"]).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=host;[a-z0-9;-]+, Signature=[0-9a-f]{64}$/,
    );
    expect(req.headers["x-amz-date"]).toMatch(/^\d{8}T\d{6}Z$/);
    expect(req.headers["x-amz-content-sha256"]).toBeDefined();
  });
});

describe("readiness while models load", () => {
  it("is not ready until every model has loaded, then ready", async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const slow = createServer((_req, res) => {
      void gate.then(() => {
        res.writeHead(200);
        res.end(bytes);
      });
    });
    await new Promise<void>((r) => slow.listen(0, "127.0.0.1", r));
    const port = (slow.address() as { port: number }).port;
    const { logger } = captureLogs();
    const base = createServiceBase({
      name: "ms",
      logger,
      registry: createRegistry({ service: "ms", collectDefault: false }),
    });
    const server = createModelServer(base, {
      models: [
        { name: "fast", version: "1", uri: `file://${fx.trees}` },
        { name: "slow", version: "1", uri: `http://127.0.0.1:${port}/m.onnx` },
      ],
      source: {
        cacheDir: mkdtempSync(join(tmpdir(), "valora-cache-")),
        allowedHosts: ["127.0.0.1"],
        allowHttp: true,
      },
      batching: { maxBatchSize: 8, maxDelayMicros: 100 },
    });
    const ports = await server.listen({ host: "127.0.0.1", grpcPort: 0, httpPort: 0 });
    const ready = () => fetch(`http://127.0.0.1:${ports.httpPort}/v2/health/ready`).then((r) => r.status);
    await expect.poll(() => server.repository.isReady("fast")).toBe(true);
    expect(await ready()).toBe(503);
    expect((await fetch(`http://127.0.0.1:${ports.httpPort}/v2/models/slow/ready`)).status).toBe(503);
    release();
    await server.loaded;
    expect(await ready()).toBe(200);
    await server.close();
    await new Promise<void>((r) => slow.close(() => r()));
  });
});
