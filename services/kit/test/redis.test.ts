import { createServer } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { createRedis, redisConnected, redisReady, type Redis } from "@valora/kit";

const url = process.env["REDIS_URL"];

describe.skipIf(!url)("redis helpers (real Redis at REDIS_URL)", () => {
  const clients: Redis[] = [];
  afterAll(() => clients.forEach((c) => c.disconnect()));

  it("connects, answers PING and namespaces keys with the prefix", async () => {
    const client = createRedis({ url: url!, keyPrefix: `kit-test-${process.pid}:` });
    clients.push(client);
    await redisConnected(client);
    expect(await redisReady(client)).toBe(true);
    await client.set("k", "v", "EX", 10);
    const plain = createRedis({ url: url! });
    clients.push(plain);
    await redisConnected(plain);
    expect(await plain.get(`kit-test-${process.pid}:k`)).toBe("v");
  });
});

describe("redis helpers without a server", () => {
  it("fail fast instead of queueing commands while Redis is unreachable", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const client = createRedis({ url: `redis://127.0.0.1:${port}` });
    const started = Date.now();
    await expect(client.get("x")).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(2000);
    client.disconnect();
  });
});

describe.runIf(!url)("redis helpers", () => {
  it.skip("skipped: REDIS_URL is not set (run scripts/local-db.sh or .ci/run to start Redis on loopback)", () =>
    undefined);
});
