import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

const ALPHABET = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";

function randomString(length: number, random: (n: number) => Buffer = randomBytes): string {
  // Rejection sampling keeps every character equally likely (256 is not a multiple of 57).
  const limit = 256 - (256 % ALPHABET.length);
  let out = "";
  while (out.length < length) {
    for (const b of random(length * 2)) {
      if (b < limit && out.length < length) out += ALPHABET[b % ALPHABET.length];
    }
  }
  return out;
}

/**
 * A new API key `vk_<prefix>_<secret>`: the 10-character prefix finds the row, the 32-character
 * secret (~187 bits) is checked against a SHA-256 hash. A slow password hash buys nothing for
 * secrets this long and would cost milliseconds on every request.
 */
export function generateApiKey(random?: (n: number) => Buffer): {
  key: string;
  prefix: string;
  hash: Buffer;
} {
  const prefix = randomString(10, random);
  const key = `vk_${prefix}_${randomString(32, random)}`;
  return { key, prefix, hash: hashApiKey(key) };
}

export function hashApiKey(key: string): Buffer {
  return createHash("sha256").update(key).digest();
}

/** Pure: the lookup prefix of a well-formed key, or undefined (then the key is refused unread). */
export function apiKeyPrefix(key: string): string | undefined {
  const m = /^vk_([A-Za-z0-9]{10})_[A-Za-z0-9]{32}$/.exec(key);
  return m?.[1];
}

export function apiKeyMatches(key: string, hash: Buffer): boolean {
  const h = hashApiKey(key);
  return h.length === hash.length && timingSafeEqual(h, hash);
}

export function webhookSecret(random?: (n: number) => Buffer): string {
  return `whsec_${randomString(40, random)}`;
}
