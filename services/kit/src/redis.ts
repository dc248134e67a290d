import { Redis } from "ioredis";
import type { Logger } from "./logger.js";

export { Redis };

export interface RedisOptions {
  url: string;
  logger?: Logger;
  /** Prefix for every key this client writes (tenancy of a shared Redis between environments). */
  keyPrefix?: string;
}

/**
 * An ioredis client that fails fast instead of queueing forever when Redis is down: callers decide
 * their degraded behaviour (e.g. a local rate limiter) rather than hanging on an offline queue.
 */
export function createRedis(options: RedisOptions): Redis {
  const client = new Redis(options.url, {
    keyPrefix: options.keyPrefix,
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    connectTimeout: 5_000,
    lazyConnect: false,
    retryStrategy: (attempt) => Math.min(attempt * 200, 5_000),
  });
  let reported = false;
  client.on("error", (err: Error) => {
    if (!reported) options.logger?.warn({ err: err.message }, "redis connection error");
    reported = true;
  });
  client.on("ready", () => {
    if (reported) options.logger?.info("redis connection restored");
    reported = false;
  });
  return client;
}

export async function redisReady(client: Redis): Promise<boolean> {
  return (await client.ping()) === "PONG";
}

/** Resolves once the client is connected (or rejects after timeoutMs). */
export function redisConnected(client: Redis, timeoutMs = 5_000): Promise<void> {
  if (client.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("ready", onReady);
      reject(new Error(`redis not ready after ${timeoutMs} ms`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once("ready", onReady);
  });
}
