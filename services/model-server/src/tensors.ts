import { ValoraError, type FieldViolation } from "@valora/kit";
import { DATATYPES, fromRaw, fromValues, isDatatype, type Datatype, type TensorData } from "./datatypes.js";

/** What a model declares for one input or output. A negative or string dim is dynamic (-1 in OIP). */
export interface TensorSpec {
  name: string;
  datatype: Datatype;
  shape: number[];
}

/** An input as a transport hands it over, before validation. */
export interface RawInput {
  name: string;
  datatype: string;
  shape: readonly (number | bigint)[];
  /** Exactly one of values (typed contents or JSON data) and raw (little-endian bytes). */
  values?: ArrayLike<unknown>;
  raw?: Uint8Array;
}

export interface Tensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: TensorData;
}

const bad = (field: string, message: string): ValoraError =>
  new ValoraError("INVALID_ARGUMENT", message, { details: [{ field, description: message }] });

/**
 * Pure validation of request inputs against the model's declared inputs: names, datatypes,
 * ranks, fixed dimensions and element counts. Every error names the tensor at fault.
 */
export function decodeInputs(inputs: RawInput[], specs: TensorSpec[]): Tensor[] {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const seen = new Set<string>();
  const tensors: Tensor[] = [];
  inputs.forEach((input, index) => {
    const field = `inputs[${index}]`;
    const spec = byName.get(input.name);
    if (!spec)
      throw bad(
        `${field}.name`,
        `unknown input tensor "${input.name}"; the model takes ${specs.map((s) => `"${s.name}"`).join(", ")}`,
      );
    if (seen.has(input.name)) throw bad(`${field}.name`, `input tensor "${input.name}" is given twice`);
    seen.add(input.name);
    if (!isDatatype(input.datatype))
      throw bad(
        `${field}.datatype`,
        `input tensor "${input.name}": datatype "${input.datatype}" is not supported (FP32, FP64, INT64, INT32, BOOL)`,
      );
    if (input.datatype !== spec.datatype)
      throw bad(
        `${field}.datatype`,
        `input tensor "${input.name}": expected datatype ${spec.datatype}, got ${input.datatype}`,
      );
    const shape = input.shape.map(Number);
    if (shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw bad(
        `${field}.shape`,
        `input tensor "${input.name}": shape [${shape.join(", ")}] has a negative or invalid dimension`,
      );
    if (spec.shape.length > 0 && shape.length !== spec.shape.length) {
      throw bad(
        `${field}.shape`,
        `input tensor "${input.name}": expected rank ${spec.shape.length} (shape [${spec.shape.join(", ")}]), got shape [${shape.join(", ")}]`,
      );
    }
    spec.shape.forEach((d, i) => {
      if (d >= 0 && shape[i] !== d)
        throw bad(
          `${field}.shape`,
          `input tensor "${input.name}": dimension ${i} must be ${d}, got ${shape[i]} (shape [${shape.join(", ")}])`,
        );
    });
    const count = shape.reduce((a, b) => a * b, 1);
    let data: TensorData;
    if (input.raw !== undefined) {
      const expected = count * DATATYPES[spec.datatype].bytes;
      if (input.raw.byteLength !== expected)
        throw bad(
          `${field}.raw`,
          `input tensor "${input.name}": raw contents hold ${input.raw.byteLength} bytes, shape [${shape.join(", ")}] of ${spec.datatype} needs ${expected}`,
        );
      data = fromRaw(spec.datatype, input.raw);
    } else {
      const values = input.values ?? [];
      if (values.length !== count)
        throw bad(
          `${field}.contents`,
          `input tensor "${input.name}": ${values.length} elements given, shape [${shape.join(", ")}] needs ${count}`,
        );
      const decoded = fromValues(spec.datatype, values);
      if (typeof decoded === "string")
        throw bad(
          `${field}.contents`,
          `input tensor "${input.name}": ${decoded} (datatype ${spec.datatype})`,
        );
      data = decoded;
    }
    tensors.push({ name: input.name, datatype: spec.datatype, shape, data });
  });
  const missing = specs.filter((s) => !seen.has(s.name));
  if (missing.length > 0) {
    const details: FieldViolation[] = missing.map((s) => ({
      field: "inputs",
      description: `missing input tensor "${s.name}"`,
    }));
    throw new ValoraError(
      "INVALID_ARGUMENT",
      `missing input tensor ${missing.map((s) => `"${s.name}"`).join(", ")}`,
      { details },
    );
  }
  // Model order, whatever order the client used: batching concatenates tensors position by position.
  const order = new Map(specs.map((s, i) => [s.name, i]));
  return tensors.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
}

/** Flattens nested JSON arrays (row-major), as the REST protocol allows either form. */
export function flatten(data: unknown): unknown[] {
  if (!Array.isArray(data)) return [data];
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) walk(x);
    else out.push(v);
  };
  walk(data);
  return out;
}
