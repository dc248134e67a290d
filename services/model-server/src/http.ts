import type { IncomingMessage, Server, ServerResponse } from "node:http";
import Fastify, { LogController, type FastifyInstance, type FastifyError } from "fastify";
import { ValoraError, toValoraError, type Health, type Logger, type Registry } from "@valora/kit";
import { toValues } from "./datatypes.js";
import type { InferenceService } from "./inference.js";
import type { ModelRepository } from "./repository.js";
import { flatten } from "./tensors.js";
import { PLATFORM, SERVER_NAME, SERVER_VERSION } from "./grpc-service.js";

export interface HttpDeps {
  repository: ModelRepository;
  inference: InferenceService;
  health: Health;
  registry: Registry;
  logger: Logger;
  /** Largest request body accepted. */
  bodyLimit?: number;
}

const parameters = { type: "object", additionalProperties: true } as const;
const inferBody = {
  type: "object",
  required: ["inputs"],
  additionalProperties: false,
  properties: {
    id: { type: "string" },
    parameters,
    inputs: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        required: ["name", "shape", "datatype", "data"],
        additionalProperties: false,
        properties: {
          name: { type: "string" },
          shape: { type: "array", items: { type: "integer", minimum: 0 } },
          datatype: { type: "string" },
          parameters,
          data: {},
        },
      },
    },
    outputs: {
      type: "array",
      items: { type: "object", required: ["name"], properties: { name: { type: "string" }, parameters } },
    },
  },
} as const;

interface InferBody {
  id?: string;
  inputs: { name: string; shape: number[]; datatype: string; data: unknown }[];
  outputs?: { name: string }[];
}

const explainBody = {
  type: "object",
  required: ["rows"],
  additionalProperties: false,
  properties: {
    rows: { type: "array", items: { type: "array", items: { type: ["number", "null"] } } },
    top_k: { type: "integer", minimum: 0 },
  },
} as const;

interface ModelParams {
  name: string;
  version?: string;
}

/** The Open Inference Protocol REST API (v2) plus explain, /metrics, /healthz and /readyz. */
export type HttpApp = FastifyInstance<Server, IncomingMessage, ServerResponse, Logger>;

export function createHttpApp(deps: HttpDeps): HttpApp {
  const { repository, inference, health, registry } = deps;
  // No log line per request: inference is the hot path, and probes would fill the log; errors are logged below.
  const app = Fastify({
    loggerInstance: deps.logger.child({ component: "http" }),
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit ?? 32 * 1024 * 1024,
  });

  app.setErrorHandler((err: FastifyError | ValoraError, _req, reply) => {
    if ("validation" in err && err.validation) {
      const field = err.validation[0]?.instancePath.replace(/^\//, "").replaceAll("/", ".") || "body";
      return reply.code(400).send({
        error: `request body: ${err.message}`,
        code: "INVALID_ARGUMENT",
        details: [{ field, description: err.validation[0]?.message ?? err.message }],
      });
    }
    if (
      "statusCode" in err &&
      typeof err.statusCode === "number" &&
      err.statusCode < 500 &&
      !(err instanceof ValoraError)
    ) {
      const code =
        err.statusCode === 413
          ? "PAYLOAD_TOO_LARGE"
          : err.statusCode === 415
            ? "UNSUPPORTED_MEDIA_TYPE"
            : "INVALID_ARGUMENT";
      return reply.code(err.statusCode).send({ error: err.message, code, details: [] });
    }
    const e = toValoraError(err);
    if (e.code === "INTERNAL") deps.logger.error({ err }, "request failed");
    return reply.code(e.httpStatus).send({ error: e.message, code: e.code, details: e.details });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({ error: `no route ${req.method} ${req.url}`, code: "NOT_FOUND", details: [] }),
  );

  app.get("/v2/health/live", async () => ({ live: true }));
  app.get("/v2/health/ready", async (_req, reply) => {
    const ready = await health.ready();
    return reply.code(ready ? 200 : 503).send({ ready });
  });
  app.get("/v2", async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: [] }));

  const metadata = async (req: { params: ModelParams }) => {
    const { model } = repository.get(req.params.name, req.params.version);
    return {
      name: model.name,
      versions: repository.versions(model.name),
      platform: PLATFORM,
      inputs: model.inputs,
      outputs: model.outputs,
    };
  };
  app.get<{ Params: ModelParams }>("/v2/models/:name", metadata);
  app.get<{ Params: ModelParams }>("/v2/models/:name/versions/:version", metadata);

  const modelReady = async (
    req: { params: ModelParams },
    reply: { code: (n: number) => { send: (b: unknown) => unknown } },
  ) => {
    if (repository.versions(req.params.name).length === 0)
      throw new ValoraError("NOT_FOUND", `model "${req.params.name}" is not served here`);
    const ready = repository.isReady(req.params.name, req.params.version);
    return reply.code(ready ? 200 : 503).send({ name: req.params.name, ready });
  };
  app.get<{ Params: ModelParams }>("/v2/models/:name/ready", modelReady);
  app.get<{ Params: ModelParams }>("/v2/models/:name/versions/:version/ready", modelReady);

  const infer = async (req: { params: ModelParams; body: InferBody }) => {
    const body = req.body;
    const result = await inference.infer(
      {
        modelName: req.params.name,
        modelVersion: req.params.version ?? "",
        id: body.id ?? "",
        inputs: body.inputs.map((t) => ({
          name: t.name,
          datatype: t.datatype,
          shape: t.shape,
          values: flatten(t.data),
        })),
        outputs: (body.outputs ?? []).map((o) => o.name),
      },
      "rest",
    );
    return {
      model_name: result.modelName,
      model_version: result.modelVersion,
      ...(result.id ? { id: result.id } : {}),
      outputs: result.outputs.map((o) => ({
        name: o.name,
        datatype: o.datatype,
        shape: o.shape,
        data: toValues(o.datatype, o.data),
      })),
    };
  };
  app.post<{ Params: ModelParams; Body: InferBody }>(
    "/v2/models/:name/infer",
    { schema: { body: inferBody } },
    infer,
  );
  app.post<{ Params: ModelParams; Body: InferBody }>(
    "/v2/models/:name/versions/:version/infer",
    { schema: { body: inferBody } },
    infer,
  );

  const explain = async (req: {
    params: ModelParams;
    body: { rows: (number | null)[][]; top_k?: number };
  }) => {
    const rows = req.body.rows.map((r) => r.map((v) => (v === null ? Number.NaN : v)));
    const r = await inference.explain(
      req.params.name,
      req.params.version ?? "",
      rows,
      req.body.top_k ?? 0,
      "rest",
    );
    return {
      model_name: r.modelName,
      model_version: r.modelVersion,
      explanations: r.explanations.map((e) => ({
        base_value: e.baseValue,
        output: e.output,
        method: e.method,
        contributions: e.contributions,
      })),
    };
  };
  app.post<{ Params: ModelParams; Body: { rows: (number | null)[][]; top_k?: number } }>(
    "/v2/models/:name/explain",
    { schema: { body: explainBody } },
    explain,
  );
  app.post<{ Params: ModelParams; Body: { rows: (number | null)[][]; top_k?: number } }>(
    "/v2/models/:name/versions/:version/explain",
    { schema: { body: explainBody } },
    explain,
  );

  app.get("/metrics", async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  app.get("/healthz", async () => ({ live: true }));
  app.get("/readyz", async (_req, reply) => {
    const report = await health.report();
    return reply.code(report.ready ? 200 : 503).send(report);
  });
  return app;
}
