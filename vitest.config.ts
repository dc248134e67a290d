import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Workspace packages export their TypeScript sources under the "source" condition, so tests
    // run against src/ without a build step in between.
    conditions: ["source"],
  },
  ssr: { resolve: { conditions: ["source"] } },
  test: {
    include: [
      "proto/test/**/*.test.ts",
      "services/*/test/**/*.test.ts",
      "services/console/test/**/*.test.tsx",
      "operator/test/**/*.test.ts",
      "charts/*/test/**/*.test.ts",
      "e2e/**/*.test.ts",
    ],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
