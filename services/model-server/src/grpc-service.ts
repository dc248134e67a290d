import {
  GRPCInferenceService,
  type InferTensorContents,
  type ModelInferRequest,
} from "@valora/proto/inference/v2/grpc_predict_v2_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ModelInferResponseSchema } from "@valora/proto/inference/v2/grpc_predict_v2_pb";
import { Explainer } from "@valora/proto/valora/v1/explain_pb";
import { ValoraError, implement, type Health, type ServiceRegistration } from "@valora/kit";
import { DATATYPES, isDatatype, toRaw, type TensorData } from "./datatypes.js";
import type { InferenceService } from "./inference.js";
import type { ModelRepository } from "./repository.js";
import type { RawInput } from "./tensors.js";

function contentValues(datatype: string, data: TensorData): (number | bigint | boolean)[] {
  if (datatype === "BOOL") return Array.from(data as Uint8Array, (v) => v !== 0);
  if (data instanceof BigInt64Array) return Array.from(data);
  return Array.from(data);
}

export const SERVER_NAME = "valora-model-server";
export const SERVER_VERSION = "0.1.0";
export const PLATFORM = "onnxruntime_onnx";

function contentsOf(datatype: string, contents: InferTensorContents | undefined): ArrayLike<unknown> {
  if (!contents) return [];
  if (isDatatype(datatype)) return contents[DATATYPES[datatype].contents];
  return [];
}

/** OIP gRPC inputs into transport-neutral ones: typed contents or raw little-endian bytes, never both. */
export function grpcInputs(req: ModelInferRequest): RawInput[] {
  const raw = req.rawInputContents;
  if (raw.length > 0 && raw.length !== req.inputs.length) {
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `raw_input_contents has ${raw.length} entries for ${req.inputs.length} inputs`,
      { details: [{ field: "raw_input_contents", description: "one entry per input" }] },
    );
  }
  return req.inputs.map((t, i) => {
    if (raw.length > 0) {
      if (t.contents && Object.values(DATATYPES).some((d) => t.contents![d.contents].length > 0)) {
        throw new ValoraError(
          "INVALID_ARGUMENT",
          `input tensor "${t.name}" has both contents and raw_input_contents`,
          {
            details: [
              { field: `inputs[${i}].contents`, description: "use one of contents and raw_input_contents" },
            ],
          },
        );
      }
      return { name: t.name, datatype: t.datatype, shape: t.shape, raw: raw[i]! };
    }
    return { name: t.name, datatype: t.datatype, shape: t.shape, values: contentsOf(t.datatype, t.contents) };
  });
}

export interface GrpcServicesDeps {
  repository: ModelRepository;
  inference: InferenceService;
  health: Health;
}

/** inference.GRPCInferenceService and valora.v1.Explainer over the model repository. */
export function createGrpcServices(deps: GrpcServicesDeps): ServiceRegistration[] {
  const { repository, inference, health } = deps;
  const oip = implement(GRPCInferenceService, {
    async serverLive() {
      return { live: true };
    },
    async serverReady() {
      return { ready: await health.ready() };
    },
    async modelReady(req) {
      if (repository.versions(req.name).length === 0)
        throw new ValoraError("NOT_FOUND", `model "${req.name}" is not served here`);
      return { ready: repository.isReady(req.name, req.version || undefined) };
    },
    async serverMetadata() {
      return { name: SERVER_NAME, version: SERVER_VERSION, extensions: [] };
    },
    async modelMetadata(req) {
      const { model } = repository.get(req.name, req.version || undefined);
      const tensor = (t: { name: string; datatype: string; shape: number[] }) => ({
        name: t.name,
        datatype: t.datatype,
        shape: t.shape.map(BigInt),
      });
      return {
        name: model.name,
        versions: repository.versions(model.name),
        platform: PLATFORM,
        inputs: model.inputs.map(tensor),
        outputs: model.outputs.map(tensor),
      };
    },
    async modelInfer(req) {
      const result = await inference.infer(
        {
          modelName: req.modelName,
          modelVersion: req.modelVersion,
          id: req.id,
          inputs: grpcInputs(req),
          outputs: req.outputs.map((o) => o.name),
        },
        "grpc",
      );
      // Answer in the form the client used: raw bytes for raw inputs (or when asked), typed contents otherwise.
      const raw =
        req.rawInputContents.length > 0 ||
        req.parameters["binary_data_output"]?.parameterChoice.value === true;
      const response: MessageInitShape<typeof ModelInferResponseSchema> = {
        modelName: result.modelName,
        modelVersion: result.modelVersion,
        id: result.id,
        outputs: result.outputs.map((o) => ({
          name: o.name,
          datatype: o.datatype,
          shape: o.shape.map(BigInt),
          ...(raw
            ? {}
            : { contents: { [DATATYPES[o.datatype].contents]: contentValues(o.datatype, o.data) } }),
        })),
        rawOutputContents: raw ? result.outputs.map((o) => toRaw(o.data)) : [],
      };
      return response;
    },
  });
  const explainer = implement(Explainer, {
    async explain(req) {
      const r = await inference.explain(
        req.modelName,
        req.modelVersion,
        req.rows.map((row) => row.values),
        req.topK,
        "grpc",
        { predict: req.predict, dense: req.dense },
      );
      return {
        modelName: r.modelName,
        modelVersion: r.modelVersion,
        explanations: r.explanations,
        predictions: r.predictions ? Array.from(r.predictions) : [],
        contributionsDense: r.dense ? Array.from(r.dense) : [],
      };
    },
    async getModelInfo(req) {
      const served = repository.get(req.modelName, req.modelVersion || undefined);
      return {
        modelName: req.modelName,
        modelVersion: req.modelVersion || repository.versions(req.modelName).at(-1)!,
        metadata: served.model.metadata,
      };
    },
  });
  return [oip, explainer];
}
