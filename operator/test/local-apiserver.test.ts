import { describe, expect, it } from "vitest";
import { labelMatcher } from "../src/local/apiserver.js";

describe("the API server double's label selectors", () => {
  it("reads equality-based selectors as the API server does", () => {
    const labels = { "valora.dev/model": "homes", "valora.dev/version": "v1", tier: "gold" };
    expect(labelMatcher("valora.dev/model=homes,valora.dev/version=v1")(labels)).toBe(true);
    expect(labelMatcher("valora.dev/model=houses")(labels)).toBe(false);
    expect(labelMatcher("valora.dev/model==homes,tier!=silver")(labels)).toBe(true);
    expect(labelMatcher("tier")(labels)).toBe(true);
    expect(labelMatcher("!tier")(labels)).toBe(false);
    expect(labelMatcher(null)(undefined)).toBe(true);
    expect(labelMatcher("a=b")(undefined)).toBe(false);
  });
});
