import type { Redis } from "@valora/kit";

/** Where valuations are cached (bytes of valora.v1.Valuation), by key, with a TTL. */
export interface ValuationCache {
  get(key: string): Promise<Uint8Array | undefined>;
  set(key: string, value: Uint8Array, ttlSeconds: number): Promise<void>;
}

/**
 * Redis, shared by every orchestrator replica. A Redis outage degrades to misses (logged by the
 * client), never to failed valuations.
 */
export class RedisCache implements ValuationCache {
  constructor(
    private readonly redis: Redis,
    private readonly prefix = "valora:valuation:",
  ) {}

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return (await this.redis.getBuffer(this.prefix + key)) ?? undefined;
    } catch {
      return undefined;
    }
  }

  async set(key: string, value: Uint8Array, ttlSeconds: number): Promise<void> {
    if (ttlSeconds <= 0) return;
    await this.redis.set(this.prefix + key, Buffer.from(value), "EX", ttlSeconds).catch(() => undefined);
  }
}

/** In-process cache for one machine (`npm start` without REDIS_URL): bounded, TTL per entry. */
export class MemoryCache implements ValuationCache {
  private readonly entries = new Map<string, { value: Uint8Array; expires: number }>();

  constructor(
    private readonly maxEntries = 50_000,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string): Promise<Uint8Array | undefined> {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.expires <= this.now()) {
      this.entries.delete(key);
      return undefined;
    }
    return e.value;
  }

  async set(key: string, value: Uint8Array, ttlSeconds: number): Promise<void> {
    if (ttlSeconds <= 0) return;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { value, expires: this.now() + ttlSeconds * 1000 });
  }
}

/**
 * Decoded cache hits by key: a hot key's bytes are decoded once rather than on every hit (decoding
 * a Valuation with its comparables and explanation was a fifth of the cached path's CPU). An entry
 * is used only for the very same bytes, so a new value under the key is decoded afresh. Bounded;
 * values are shared, so callers copy before changing them.
 */
export class DecodedMemo<T> {
  private readonly entries = new Map<string, { bytes: Uint8Array; value: T }>();

  constructor(
    private readonly decode: (bytes: Uint8Array) => T,
    private readonly maxEntries = 1000,
  ) {}

  get(key: string, bytes: Uint8Array): T {
    const e = this.entries.get(key);
    if (e && (e.bytes === bytes || Buffer.compare(e.bytes, bytes) === 0)) return e.value;
    const value = this.decode(bytes);
    if (!e && this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { bytes, value });
    return value;
  }
}
