import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const protoDir = join(import.meta.dirname, "..");
const buf = join(protoDir, "..", "node_modules", ".bin", "buf");
const binPath = `${join(protoDir, "..", "node_modules", ".bin")}:${process.env["PATH"] ?? ""}`;

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

describe("protobuf contracts", () => {
  const out = mkdtempSync(join(tmpdir(), "valora-proto-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it("pass buf lint", () => {
    expect(() => execFileSync(buf, ["lint"], { cwd: protoDir, stdio: "pipe" })).not.toThrow();
  });

  it("generated code matches what `npm run proto` produces (no drift)", () => {
    execFileSync(buf, ["generate", "--output", out], {
      cwd: protoDir,
      stdio: "pipe",
      env: { ...process.env, PATH: binPath },
    });
    const committed = join(protoDir, "src", "gen");
    const fresh = join(out, "src", "gen");
    const rel = (root: string) =>
      listFiles(root)
        .map((f) => relative(root, f))
        .sort();
    expect(rel(fresh)).toEqual(rel(committed));
    for (const file of rel(committed)) {
      expect(readFileSync(join(fresh, file), "utf8"), `${file} drifted: run npm run proto`).toBe(
        readFileSync(join(committed, file), "utf8"),
      );
    }
  });

  it("keeps the Open Inference Protocol field numbers KServe and Triton clients use", async () => {
    const {
      ModelInferRequestSchema,
      ModelInferResponseSchema,
      InferTensorContentsSchema,
      GRPCInferenceService,
    } = await import("@valora/proto/inference/v2/grpc_predict_v2_pb");
    const numbers = (schema: { fields: { name: string; number: number }[] }) =>
      Object.fromEntries(schema.fields.map((f) => [f.name, f.number]));
    expect(GRPCInferenceService.typeName).toBe("inference.GRPCInferenceService");
    expect(numbers(ModelInferRequestSchema)).toEqual({
      model_name: 1,
      model_version: 2,
      id: 3,
      parameters: 4,
      inputs: 5,
      outputs: 6,
      raw_input_contents: 7,
    });
    expect(numbers(ModelInferResponseSchema)).toEqual({
      model_name: 1,
      model_version: 2,
      id: 3,
      parameters: 4,
      outputs: 5,
      raw_output_contents: 6,
    });
    expect(numbers(InferTensorContentsSchema)).toEqual({
      bool_contents: 1,
      int_contents: 2,
      int64_contents: 3,
      uint_contents: 4,
      uint64_contents: 5,
      fp32_contents: 6,
      fp64_contents: 7,
      bytes_contents: 8,
    });
  });
});
