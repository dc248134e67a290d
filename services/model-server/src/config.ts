import { parseArgs } from "node:util";
import { ValoraError, loadConfig, vars, z } from "@valora/kit";
import type { ModelSpec } from "./repository.js";

export const ModelServerEnv = z.object({
  /** JSON array of {name, version, uri, sha256?}: how the operator configures pods. */
  VALORA_MODELS: z.string().optional(),
  GRPC_PORT: vars.port(8001),
  HTTP_PORT: vars.port(8000),
  HOST: vars.host("0.0.0.0"),
  LOG_LEVEL: vars.logLevel(),
  VALORA_MODEL_CACHE_DIR: z.string().default("/tmp/valora-models"),
  VALORA_MODEL_ALLOWED_HOSTS: vars.list(),
  VALORA_MODEL_ALLOWED_BUCKETS: vars.list(),
  VALORA_MODEL_ALLOW_HTTP: vars.bool(false),
  VALORA_S3_ENDPOINT: vars.url().optional(),
  VALORA_S3_REGION: z.string().default("us-east-1"),
  AWS_ACCESS_KEY_ID: z.string().optional(),
  AWS_SECRET_ACCESS_KEY: z.string().optional(),
  MAX_BATCH_SIZE: vars.int(64, 1),
  MAX_BATCH_DELAY_MICROS: vars.int(500),
  ORT_INTRA_OP_THREADS: vars.int(1, 1),
  ORT_INTER_OP_THREADS: vars.int(1, 1),
  /** Run every model's onnxruntime session on one shared inference thread, off the event loop (opt-in). */
  ORT_WORKER_THREAD: vars.bool(false),
  /** Worker threads computing TreeSHAP explanations off the event loop (0: on it). */
  EXPLAIN_THREADS: vars.int(1),
  SHUTDOWN_DRAIN_DELAY_MS: vars.int(0),
});
export type ModelServerEnv = z.infer<typeof ModelServerEnv>;

const ModelList = z.array(
  z.object({
    name: z.string().min(1),
    version: z.string().min(1).default("1"),
    uri: z.string().min(1),
    sha256: z.string().optional(),
  }),
);

/**
 * Models from `--model NAME=URI` flags (each optionally paired, in order, with `--model-version V`
 * and `--sha256 HEX`; a single version or hash applies to every model) or from VALORA_MODELS.
 */
export function parseModelArgs(
  argv: string[],
  env: ModelServerEnv,
): { models: ModelSpec[]; grpcPort?: number; httpPort?: number } {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: "string", multiple: true },
      "model-version": { type: "string", multiple: true },
      sha256: { type: "string", multiple: true },
      "grpc-port": { type: "string" },
      "http-port": { type: "string" },
    },
    strict: true,
  });
  const port = (flag: string, v: string | undefined): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      throw new ValoraError("INVALID_ARGUMENT", `--${flag} ${v} is not a port`);
    return n;
  };
  const flags = values.model ?? [];
  let models: ModelSpec[];
  if (flags.length > 0) {
    const versions = values["model-version"] ?? [];
    const hashes = values.sha256 ?? [];
    const pick = (list: string[], i: number): string | undefined => (list.length === 1 ? list[0] : list[i]);
    models = flags.map((flag, i) => {
      const eq = flag.indexOf("=");
      if (eq <= 0 || eq === flag.length - 1)
        throw new ValoraError("INVALID_ARGUMENT", `--model ${flag}: expected NAME=URI`);
      const sha256 = pick(hashes, i);
      return {
        name: flag.slice(0, eq),
        uri: flag.slice(eq + 1),
        version: pick(versions, i) ?? "1",
        ...(sha256 ? { sha256 } : {}),
      };
    });
  } else if (env.VALORA_MODELS) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(env.VALORA_MODELS);
    } catch {
      throw new ValoraError("INVALID_ARGUMENT", "VALORA_MODELS is not JSON");
    }
    const result = ModelList.safeParse(parsed);
    if (!result.success)
      throw new ValoraError(
        "INVALID_ARGUMENT",
        `VALORA_MODELS: ${result.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`,
      );
    models = result.data.map((m) => ({
      name: m.name,
      version: m.version,
      uri: m.uri,
      ...(m.sha256 ? { sha256: m.sha256 } : {}),
    }));
  } else {
    throw new ValoraError(
      "INVALID_ARGUMENT",
      "no models: pass --model NAME=URI (repeatable) or set VALORA_MODELS",
    );
  }
  const seen = new Set<string>();
  for (const m of models) {
    const key = `${m.name}@${m.version}`;
    if (seen.has(key))
      throw new ValoraError("INVALID_ARGUMENT", `model ${m.name} version ${m.version} is given twice`);
    seen.add(key);
  }
  return {
    models,
    grpcPort: port("grpc-port", values["grpc-port"]),
    httpPort: port("http-port", values["http-port"]),
  };
}

export function loadModelServerEnv(env: Record<string, string | undefined> = process.env): ModelServerEnv {
  return loadConfig(ModelServerEnv, env);
}
