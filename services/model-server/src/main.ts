import { createServiceBase } from "@valora/kit";
import { treeShapKernel } from "@valora/kit/onnx";
import { createModelServer } from "./app.js";
import { loadModelServerEnv, parseModelArgs } from "./config.js";

/** `valora serve model-server --model NAME=URI ...`: wiring from flags and environment only. */
export async function main(
  argv: string[],
  env: Record<string, string | undefined> = process.env,
): Promise<void> {
  const config = loadModelServerEnv(env);
  const { models, grpcPort, httpPort } = parseModelArgs(argv, config);
  const base = createServiceBase({
    name: "model-server",
    logLevel: config.LOG_LEVEL,
    drainDelayMs: config.SHUTDOWN_DRAIN_DELAY_MS,
    exit: (code) => process.exit(code),
  });
  const server = createModelServer(base, {
    models,
    source: {
      cacheDir: config.VALORA_MODEL_CACHE_DIR,
      allowedHosts: config.VALORA_MODEL_ALLOWED_HOSTS,
      allowedBuckets: config.VALORA_MODEL_ALLOWED_BUCKETS,
      allowHttp: config.VALORA_MODEL_ALLOW_HTTP,
      ...(config.VALORA_S3_ENDPOINT
        ? {
            s3: {
              endpoint: config.VALORA_S3_ENDPOINT,
              region: config.VALORA_S3_REGION,
              accessKeyId: config.AWS_ACCESS_KEY_ID ?? "",
              secretAccessKey: config.AWS_SECRET_ACCESS_KEY ?? "",
            },
          }
        : {}),
    },
    batching: { maxBatchSize: config.MAX_BATCH_SIZE, maxDelayMicros: config.MAX_BATCH_DELAY_MICROS },
    session: {
      intraOpThreads: config.ORT_INTRA_OP_THREADS,
      interOpThreads: config.ORT_INTER_OP_THREADS,
      workerThread: config.ORT_WORKER_THREAD,
    },
    explainThreads: config.EXPLAIN_THREADS,
  });
  const ports = await server.listen({
    host: config.HOST,
    grpcPort: grpcPort ?? config.GRPC_PORT,
    httpPort: httpPort ?? config.HTTP_PORT,
  });
  base.shutdown.register("model-server", () => server.close());
  base.shutdown.installSignalHandlers();
  base.logger.info(
    { ...ports, models: models.map((m) => `${m.name}@${m.version}`), treeShap: treeShapKernel() },
    "model server listening",
  );
  if (treeShapKernel() === "typescript" && process.env["VALORA_TREE_SHAP"] !== "typescript")
    base.logger.warn(
      "the compiled TreeSHAP kernel is not built: explanations run in TypeScript, 4-10x slower",
    );
  await server.loaded;
  base.logger.info(
    { models: server.repository.list() },
    (await base.health.ready()) ? "model server ready" : "model server not ready: some models failed to load",
  );
}
