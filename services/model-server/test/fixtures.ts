import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  ModelProtoSchema,
  TensorProto_DataType as DT,
  type NodeProtoSchema,
} from "@valora/proto/onnx/onnx_pb";
import { buildEnsembleModel, serializeModel, valueInfo, META, type TensorSpec } from "@valora/kit/onnx";
import { randomEnsemble } from "@valora/kit/testing";

export const FEATURES = ["sqft", "beds", "baths", "year", "lat", "lon"];

/** Writes the test models into a fresh directory and returns their paths. */
export function writeFixtures(): {
  dir: string;
  trees: string;
  sklearnLike: string;
  dtypes: string;
  linear: string;
  ensemble: ReturnType<typeof randomEnsemble>;
} {
  const dir = mkdtempSync(join(tmpdir(), "valora-ms-"));
  const ensemble = randomEnsemble(42, { trees: 20, depth: 5, features: FEATURES.length });
  const trees = join(dir, "trees.onnx");
  writeFileSync(
    trees,
    serializeModel(
      buildEnsembleModel(ensemble, {
        recordCovers: true,
        metadata: { [META.features]: JSON.stringify(FEATURES) },
      }),
    ),
  );
  // Shaped like skl2onnx output: its own tensor names, no Valora metadata, no covers.
  const sklearnLike = join(dir, "sklearn.onnx");
  writeFileSync(
    sklearnLike,
    serializeModel(
      buildEnsembleModel(randomEnsemble(7, { trees: 5, depth: 3, features: 3 }), {
        inputName: "float_input",
        outputName: "variable",
        producer: "skl2onnx",
        producerVersion: "1.17.0",
      }),
    ),
  );
  const dtypes = join(dir, "dtypes.onnx");
  writeFileSync(
    dtypes,
    serializeModel(
      graphModel(
        [
          { op: "Identity", input: ["a"], output: ["a_out"] },
          { op: "Identity", input: ["b"], output: ["b_out"] },
          { op: "Identity", input: ["c"], output: ["c_out"] },
          { op: "Not", input: ["d"], output: ["d_out"] },
          { op: "Identity", input: ["e"], output: ["e_out"] },
        ],
        [
          { name: "a", type: DT.DOUBLE, shape: ["N", 2] },
          { name: "b", type: DT.INT64, shape: ["N", 2] },
          { name: "c", type: DT.INT32, shape: ["N", 1] },
          { name: "d", type: DT.BOOL, shape: ["N", 1] },
          { name: "e", type: DT.FLOAT, shape: ["N", 1] },
        ],
        [
          { name: "a_out", type: DT.DOUBLE, shape: ["N", 2] },
          { name: "b_out", type: DT.INT64, shape: ["N", 2] },
          { name: "c_out", type: DT.INT32, shape: ["N", 1] },
          { name: "d_out", type: DT.BOOL, shape: ["N", 1] },
          { name: "e_out", type: DT.FLOAT, shape: ["N", 1] },
        ],
      ),
    ),
  );
  // y = x · w with a fixed batch of 1: not a tree ensemble (explain is UNIMPLEMENTED), not batchable.
  const linear = join(dir, "linear.onnx");
  writeFileSync(
    linear,
    serializeModel(
      graphModel(
        [{ op: "MatMul", input: ["x", "w"], output: ["y"] }],
        [{ name: "x", type: DT.FLOAT, shape: [1, 3] }],
        [{ name: "y", type: DT.FLOAT, shape: [1, 1] }],
        [{ name: "w", dims: [3n, 1n], dataType: DT.FLOAT, floatData: [1, 2, 3] }],
      ),
    ),
  );
  return { dir, trees, sklearnLike, dtypes, linear, ensemble };
}

interface NodeSpec {
  op: string;
  input: string[];
  output: string[];
}

function graphModel(
  nodes: NodeSpec[],
  inputs: TensorSpec[],
  outputs: TensorSpec[],
  initializer: MessageInitShape<typeof ModelProtoSchema>["graph"] extends infer G
    ? G extends { initializer?: infer I }
      ? I
      : never
    : never = [],
) {
  return create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: "valora-tests",
    opsetImport: [{ domain: "", version: 17n }],
    graph: {
      name: "g",
      node: nodes.map((n): MessageInitShape<typeof NodeProtoSchema> => ({
        opType: n.op,
        input: n.input,
        output: n.output,
        name: n.output[0],
      })),
      input: inputs.map(valueInfo),
      output: outputs.map(valueInfo),
      initializer,
    },
  });
}
