import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import {
  AttributeProto_AttributeType as AttrType,
  ModelProtoSchema,
  TensorProto_DataType as DataType,
  type AttributeProto,
  type AttributeProtoSchema,
  type ModelProto,
  type NodeProto,
  type ValueInfoProtoSchema,
} from "@valora/proto/onnx/onnx_pb";
import { ValoraError } from "../errors.js";
import {
  uniformCovers,
  type NodeMode,
  type Tree,
  type TreeEnsemble,
  type TreeNode,
} from "./tree-ensemble.js";

export { DataType as OnnxDataType };

/** Metadata keys Valora writes into `metadata_props` (and reads when present). */
export const META = {
  covers: "valora.tree_covers",
  features: "valora.features",
} as const;

export function parseModel(bytes: Uint8Array): ModelProto {
  try {
    return fromBinary(ModelProtoSchema, bytes, { readUnknownFields: true });
  } catch (err) {
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `not an ONNX model: ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    );
  }
}

export function serializeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model);
}

export function metadataOf(model: ModelProto): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of model.metadataProps) out[p.key] = p.value;
  return out;
}

const attr = (node: NodeProto, name: string): AttributeProto | undefined =>
  node.attribute.find((a) => a.name === name);
const ints = (node: NodeProto, name: string): number[] => (attr(node, name)?.ints ?? []).map(Number);
const floats = (node: NodeProto, name: string): number[] => attr(node, name)?.floats ?? [];
const strings = (node: NodeProto, name: string): string[] =>
  (attr(node, name)?.strings ?? []).map((s) => new TextDecoder().decode(s));
const string = (node: NodeProto, name: string, def: string): string => {
  const a = attr(node, name);
  return a?.s && a.s.length > 0 ? new TextDecoder().decode(a.s) : def;
};

// Nodes that pass a tensor through unchanged in value (as far as explanation is concerned).
const PASS_THROUGH = new Set(["Cast", "Identity"]);

export interface LocatedEnsemble {
  ensemble: TreeEnsemble;
  /** Graph input the ensemble reads (through Cast/Identity only). */
  inputName: string;
  /** Graph output it produces (through Cast/Identity only). */
  outputName: string;
}

/**
 * Finds the ai.onnx.ml TreeEnsembleRegressor of a model and reads it into a TreeEnsemble, or
 * explains why the model's trees cannot be explained exactly (returned as a string).
 */
export function locateTreeEnsemble(model: ModelProto): LocatedEnsemble | string {
  const graph = model.graph;
  if (!graph) return "the model has no graph";
  const trees = graph.node.filter((n) => n.opType === "TreeEnsembleRegressor");
  if (trees.length !== 1)
    return trees.length === 0
      ? "the model has no TreeEnsembleRegressor"
      : "the model has several tree ensembles";
  const node = trees[0]!;
  const producers = new Map<string, NodeProto>();
  for (const n of graph.node) for (const o of n.output) producers.set(o, n);
  const graphInputs = new Set(graph.input.map((i) => i.name));
  let source = node.input[0] ?? "";
  while (!graphInputs.has(source)) {
    const p = producers.get(source);
    if (!p || !PASS_THROUGH.has(p.opType))
      return `the tree ensemble's input is computed by ${p?.opType ?? "an unknown node"}, not read from a model input`;
    source = p.input[0] ?? "";
  }
  const consumers = new Map<string, NodeProto>();
  for (const n of graph.node) for (const i of n.input) consumers.set(i, n);
  const graphOutputs = new Set(graph.output.map((o) => o.name));
  let sink = node.output[0] ?? "";
  while (!graphOutputs.has(sink)) {
    const c = consumers.get(sink);
    if (!c || !PASS_THROUGH.has(c.opType))
      return `the tree ensemble's output is transformed by ${c?.opType ?? "nothing known"} before the model output`;
    sink = c.output[0] ?? "";
  }
  const postTransform = string(node, "post_transform", "NONE");
  if (postTransform !== "NONE") return `post_transform ${postTransform} is not additive`;
  const aggregate = string(node, "aggregate_function", "SUM");
  if (aggregate !== "SUM" && aggregate !== "AVERAGE")
    return `aggregate_function ${aggregate} is not additive`;
  if (Number(attr(node, "n_targets")?.i ?? 1n) !== 1) return "only single-target regressors are explained";

  const treeIds = ints(node, "nodes_treeids");
  const nodeIds = ints(node, "nodes_nodeids");
  const featureIds = ints(node, "nodes_featureids");
  const values = floats(node, "nodes_values");
  const modes = strings(node, "nodes_modes") as NodeMode[];
  const trueIds = ints(node, "nodes_truenodeids");
  const falseIds = ints(node, "nodes_falsenodeids");
  const missingTrue = ints(node, "nodes_missing_value_tracks_true");
  if (values.length === 0 && attr(node, "nodes_values_as_tensor"))
    return "tensor-valued thresholds are not supported";

  const byTree = new Map<number, Map<number, TreeNode>>();
  let featureCount = 0;
  for (let k = 0; k < treeIds.length; k++) {
    const mode = modes[k] ?? "LEAF";
    const tree = byTree.get(treeIds[k]!) ?? new Map<number, TreeNode>();
    byTree.set(treeIds[k]!, tree);
    if (mode !== "LEAF") featureCount = Math.max(featureCount, featureIds[k]! + 1);
    tree.set(nodeIds[k]!, {
      mode,
      feature: featureIds[k] ?? 0,
      threshold: Math.fround(values[k] ?? 0),
      trueChild: trueIds[k] ?? 0,
      falseChild: falseIds[k] ?? 0,
      missingTracksTrue: (missingTrue[k] ?? 0) === 1,
      value: 0,
      cover: 0,
    });
  }
  const tTree = ints(node, "target_treeids");
  const tNode = ints(node, "target_nodeids");
  const tWeight = floats(node, "target_weights");
  for (let k = 0; k < tTree.length; k++) {
    const leaf = byTree.get(tTree[k]!)?.get(tNode[k]!);
    if (!leaf) return `target weight ${k} points at a missing node`;
    leaf.value += tWeight[k] ?? 0;
  }
  const recorded = parseCovers(metadataOf(model)[META.covers]);
  const ids = [...byTree.keys()].sort((a, b) => a - b);
  const treesOut: Tree[] = ids.map((id, i) => {
    const nodesById = byTree.get(id)!;
    const size = Math.max(...nodesById.keys()) + 1;
    const nodes: TreeNode[] = Array.from(
      { length: size },
      (_, n) =>
        nodesById.get(n) ?? {
          mode: "LEAF",
          feature: 0,
          threshold: 0,
          trueChild: 0,
          falseChild: 0,
          missingTracksTrue: false,
          value: 0,
          cover: 0,
        },
    );
    const tree: Tree = { nodes };
    const covers = recorded?.[i]?.length === size ? recorded[i] : uniformCovers(tree);
    covers.forEach((c, n) => (nodes[n]!.cover = c));
    return tree;
  });
  const base = floats(node, "base_values")[0] ?? 0;
  return {
    ensemble: {
      trees: treesOut,
      baseValue: base,
      aggregate,
      featureCount,
      coverSource: recorded && recorded.length === treesOut.length ? "recorded" : "uniform",
    },
    inputName: source,
    outputName: sink,
  };
}

function parseCovers(raw: string | undefined): number[][] | undefined {
  if (!raw) return undefined;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (
      Array.isArray(parsed) &&
      parsed.every((t) => Array.isArray(t) && t.every((c) => typeof c === "number"))
    )
      return parsed;
  } catch {
    return undefined;
  }
  return undefined;
}

type AttrInit = MessageInitShape<typeof AttributeProtoSchema>;
const enc = new TextEncoder();
export const attrs = {
  ints: (name: string, v: number[]): AttrInit => ({
    name,
    type: AttrType.INTS,
    ints: v.map((x) => BigInt(x)),
  }),
  floats: (name: string, v: number[]): AttrInit => ({ name, type: AttrType.FLOATS, floats: v }),
  strings: (name: string, v: string[]): AttrInit => ({
    name,
    type: AttrType.STRINGS,
    strings: v.map((s) => enc.encode(s)),
  }),
  int: (name: string, v: number): AttrInit => ({ name, type: AttrType.INT, i: BigInt(v) }),
  float: (name: string, v: number): AttrInit => ({ name, type: AttrType.FLOAT, f: v }),
  string: (name: string, v: string): AttrInit => ({ name, type: AttrType.STRING, s: enc.encode(v) }),
};

export interface TensorSpec {
  name: string;
  type: DataType;
  /** A string is a symbolic dimension (e.g. "N"), a number a fixed one. */
  shape: (number | string)[];
}

export function valueInfo(spec: TensorSpec): MessageInitShape<typeof ValueInfoProtoSchema> {
  return {
    name: spec.name,
    type: {
      value: {
        case: "tensorType",
        value: {
          elemType: spec.type,
          shape: {
            dim: spec.shape.map((d) =>
              typeof d === "number"
                ? { value: { case: "dimValue", value: BigInt(d) } }
                : { value: { case: "dimParam", value: d } },
            ),
          },
        },
      },
    },
  };
}

export interface EnsembleModelOptions {
  inputName?: string;
  outputName?: string;
  producer?: string;
  producerVersion?: string;
  metadata?: Record<string, string>;
  /** Record each node's cover so TreeSHAP is exact for the training distribution. */
  recordCovers?: boolean;
  docString?: string;
}

/** An ONNX model holding one TreeEnsembleRegressor: input float [N, F], output float [N, 1]. */
export function buildEnsembleModel(ensemble: TreeEnsemble, options: EnsembleModelOptions = {}): ModelProto {
  const inputName = options.inputName ?? "features";
  const outputName = options.outputName ?? "value";
  const n = {
    treeIds: [] as number[],
    nodeIds: [] as number[],
    features: [] as number[],
    values: [] as number[],
    modes: [] as string[],
    trues: [] as number[],
    falses: [] as number[],
    missing: [] as number[],
  };
  const t = {
    treeIds: [] as number[],
    nodeIds: [] as number[],
    ids: [] as number[],
    weights: [] as number[],
  };
  ensemble.trees.forEach((tree, treeId) => {
    tree.nodes.forEach((node, nodeId) => {
      n.treeIds.push(treeId);
      n.nodeIds.push(nodeId);
      n.features.push(node.mode === "LEAF" ? 0 : node.feature);
      n.values.push(node.mode === "LEAF" ? 0 : node.threshold);
      n.modes.push(node.mode);
      n.trues.push(node.mode === "LEAF" ? 0 : node.trueChild);
      n.falses.push(node.mode === "LEAF" ? 0 : node.falseChild);
      n.missing.push(node.missingTracksTrue ? 1 : 0);
      if (node.mode === "LEAF") {
        t.treeIds.push(treeId);
        t.nodeIds.push(nodeId);
        t.ids.push(0);
        t.weights.push(node.value);
      }
    });
  });
  const metadata: Record<string, string> = { ...options.metadata };
  if (options.recordCovers)
    metadata[META.covers] = JSON.stringify(ensemble.trees.map((tr) => tr.nodes.map((nd) => nd.cover)));
  return create(ModelProtoSchema, {
    irVersion: 8n,
    producerName: options.producer ?? "valora",
    producerVersion: options.producerVersion ?? "0.1.0",
    docString: options.docString,
    opsetImport: [
      { domain: "", version: 17n },
      { domain: "ai.onnx.ml", version: 3n },
    ],
    graph: {
      name: "valora_tree_ensemble",
      node: [
        {
          name: "ensemble",
          opType: "TreeEnsembleRegressor",
          domain: "ai.onnx.ml",
          input: [inputName],
          output: [outputName],
          attribute: [
            attrs.string("aggregate_function", ensemble.aggregate),
            attrs.floats("base_values", [ensemble.baseValue]),
            attrs.int("n_targets", 1),
            attrs.ints("nodes_falsenodeids", n.falses),
            attrs.ints("nodes_featureids", n.features),
            attrs.ints("nodes_missing_value_tracks_true", n.missing),
            attrs.strings("nodes_modes", n.modes),
            attrs.ints("nodes_nodeids", n.nodeIds),
            attrs.ints("nodes_treeids", n.treeIds),
            attrs.ints("nodes_truenodeids", n.trues),
            attrs.floats("nodes_values", n.values),
            attrs.string("post_transform", "NONE"),
            attrs.ints("target_ids", t.ids),
            attrs.ints("target_nodeids", t.nodeIds),
            attrs.ints("target_treeids", t.treeIds),
            attrs.floats("target_weights", t.weights),
          ],
        },
      ],
      input: [valueInfo({ name: inputName, type: DataType.FLOAT, shape: ["N", ensemble.featureCount] })],
      output: [valueInfo({ name: outputName, type: DataType.FLOAT, shape: ["N", 1] })],
    },
    metadataProps: Object.keys(metadata)
      .sort()
      .map((key) => ({ key, value: metadata[key] })),
  });
}
