import { createGrpcServer, toValoraError, type GrpcServer, type ServiceBase } from "@valora/kit";
import type { BatchingOptions } from "./batcher.js";
import { createGrpcServices } from "./grpc-service.js";
import { createHttpApp, type HttpApp } from "./http.js";
import { InferenceService } from "./inference.js";
import type { SessionOptions } from "./loaded-model.js";
import { createModelMetrics } from "./metrics.js";
import { ModelSource, type ModelSourceOptions } from "./model-source.js";
import { ModelRepository, type ModelSpec } from "./repository.js";
import { InferenceThread } from "./session.js";
import { ShapPool } from "./shap-pool.js";

export interface ModelServerOptions {
  models: ModelSpec[];
  source: ModelSourceOptions;
  batching: BatchingOptions;
  /** onnxruntime threads, and whether sessions run on the inference thread (off the event loop). */
  session?: Omit<SessionOptions, "thread"> & { workerThread?: boolean };
  /** Worker threads for TreeSHAP explanations (0: on the event loop). */
  explainThreads?: number;
  /** Retry delays for transient load failures (downloads); a bad model fails for good. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export interface ModelServer {
  repository: ModelRepository;
  inference: InferenceService;
  grpc: GrpcServer;
  http: HttpApp;
  /** Loads every model; resolves when all loaded or failed for good. */
  loaded: Promise<void>;
  listen(options: {
    host: string;
    grpcPort: number;
    httpPort: number;
  }): Promise<{ grpcPort: number; httpPort: number }>;
  close(): Promise<void>;
}

/** Builds a model server from injected parts; `main.ts` wires them from configuration. */
export function createModelServer(base: ServiceBase, options: ModelServerOptions): ModelServer {
  const metrics = createModelMetrics(base.registry);
  const shap = new ShapPool(options.explainThreads ?? 0);
  const { workerThread, ...threads } = options.session ?? {};
  const thread = workerThread ? new InferenceThread() : undefined;
  const repository = new ModelRepository({
    shap,
    source: new ModelSource(options.source),
    logger: base.logger,
    metrics,
    session: { ...threads, thread },
    batching: options.batching,
  });
  const inference = new InferenceService(repository, metrics, shap);
  base.health.addCheck("models", () => repository.allReady());
  const grpc = createGrpcServer({
    ...base,
    services: createGrpcServices({ repository, inference, health: base.health }),
  });
  const http = createHttpApp({
    repository,
    inference,
    health: base.health,
    registry: base.registry,
    logger: base.logger,
  });

  let closed = false;
  const loadWithRetry = async (spec: ModelSpec): Promise<void> => {
    let delay = options.retryBaseMs ?? 1000;
    for (;;) {
      try {
        await repository.register(spec);
        return;
      } catch (err) {
        if (toValoraError(err).code !== "UNAVAILABLE" || closed) return;
        base.logger.warn(
          { model: spec.name, version: spec.version, retryInMs: delay },
          "model load will be retried",
        );
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, options.retryMaxMs ?? 60_000);
      }
    }
  };
  const loaded = Promise.all(options.models.map(loadWithRetry)).then(() => undefined);

  return {
    repository,
    inference,
    grpc,
    http,
    loaded,
    async listen({ host, grpcPort, httpPort }) {
      const g = await grpc.listen(`${host}:${grpcPort}`);
      await http.listen({ host, port: httpPort });
      const address = http.server.address();
      return { grpcPort: g, httpPort: typeof address === "object" && address ? address.port : httpPort };
    },
    async close() {
      closed = true;
      await Promise.all([grpc.shutdown(), http.close()]);
      await repository.close();
      await thread?.close();
    },
  };
}
