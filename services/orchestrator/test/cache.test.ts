import { describe, expect, it } from "vitest";
import { DecodedMemo } from "../src/index.js";

describe("DecodedMemo", () => {
  it("decodes a key's bytes once, again when the bytes change, and stays bounded", () => {
    let decodes = 0;
    const memo = new DecodedMemo((b: Uint8Array) => ({ n: ++decodes, first: b[0] }), 2);
    const a = Uint8Array.of(1, 2, 3);
    const first = memo.get("k", a);
    expect(memo.get("k", a)).toBe(first); // the same array
    expect(memo.get("k", Uint8Array.of(1, 2, 3))).toBe(first); // equal bytes fetched again (Redis)
    expect(decodes).toBe(1);
    expect(memo.get("k", Uint8Array.of(9, 2, 3))).toMatchObject({ n: 2, first: 9 }); // a new value under the key
    memo.get("x", a);
    memo.get("y", a); // evicts the oldest key
    expect(decodes).toBe(4);
    memo.get("k", Uint8Array.of(9, 2, 3));
    expect(decodes).toBe(5);
  });
});
