// Regenerates src/api/schema.ts, the console's API types, from the gateway's OpenAPI document
// (itself generated from the zod schemas that validate every request). A test fails on drift.
import { writeFile } from "node:fs/promises";
import { apiTypes } from "./api-types.js";

const target = new URL("../src/api/schema.ts", import.meta.url);
await writeFile(target, await apiTypes());
console.log(`wrote ${target.pathname}`);
