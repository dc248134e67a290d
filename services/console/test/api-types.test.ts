import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { apiTypes } from "../scripts/api-types.js";

describe("the console's API types", () => {
  it("are what the gateway's OpenAPI document generates today (npm run api)", async () => {
    const committed = readFileSync(join(import.meta.dirname, "..", "src", "api", "schema.ts"), "utf8");
    expect(
      committed === (await apiTypes()),
      "src/api/schema.ts drifted from the gateway: run `npm run api`",
    ).toBe(true);
  }, 60_000);
});
