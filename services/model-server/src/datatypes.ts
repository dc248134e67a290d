/** Open Inference Protocol datatypes Valora serves, with their onnxruntime and typed-array forms. */
export type Datatype = "FP32" | "FP64" | "INT64" | "INT32" | "BOOL";
export type OrtType = "float32" | "float64" | "int64" | "int32" | "bool";
export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export interface DatatypeInfo {
  ort: OrtType;
  bytes: number;
  alloc: (n: number) => TensorData;
  /** Which InferTensorContents field carries it. */
  contents: "fp32Contents" | "fp64Contents" | "int64Contents" | "intContents" | "boolContents";
}

export const DATATYPES: Record<Datatype, DatatypeInfo> = {
  FP32: { ort: "float32", bytes: 4, alloc: (n) => new Float32Array(n), contents: "fp32Contents" },
  FP64: { ort: "float64", bytes: 8, alloc: (n) => new Float64Array(n), contents: "fp64Contents" },
  INT64: { ort: "int64", bytes: 8, alloc: (n) => new BigInt64Array(n), contents: "int64Contents" },
  INT32: { ort: "int32", bytes: 4, alloc: (n) => new Int32Array(n), contents: "intContents" },
  BOOL: { ort: "bool", bytes: 1, alloc: (n) => new Uint8Array(n), contents: "boolContents" },
};

const BY_ORT: Record<string, Datatype> = Object.fromEntries(
  Object.entries(DATATYPES).map(([k, v]) => [v.ort, k as Datatype]),
);

export function isDatatype(value: string): value is Datatype {
  return Object.hasOwn(DATATYPES, value);
}

/** The OIP name of an onnxruntime tensor type, or undefined when Valora does not serve it. */
export function datatypeOfOrt(type: string): Datatype | undefined {
  return BY_ORT[type];
}

/** Little-endian raw bytes (OIP raw_*_contents) into a typed array, copying to get alignment. */
export function fromRaw(datatype: Datatype, raw: Uint8Array): TensorData {
  const info = DATATYPES[datatype];
  const out = info.alloc(raw.byteLength / info.bytes);
  new Uint8Array(out.buffer, out.byteOffset, out.byteLength).set(raw);
  if (datatype === "BOOL") for (let i = 0; i < out.length; i++) out[i] = out[i] ? 1 : 0;
  return out;
}

export function toRaw(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Converts JSON numbers / booleans / typed contents into a typed array of the datatype. */
export function fromValues(datatype: Datatype, values: ArrayLike<unknown>): TensorData | string {
  const out = DATATYPES[datatype].alloc(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    switch (datatype) {
      case "BOOL":
        if (typeof v !== "boolean" && v !== 0 && v !== 1) return `element ${i} is not a boolean`;
        out[i] = v ? 1 : 0;
        break;
      case "INT64":
        if (typeof v === "bigint") (out as BigInt64Array)[i] = v;
        else if (typeof v === "number" && Number.isInteger(v)) (out as BigInt64Array)[i] = BigInt(v);
        else if (typeof v === "string" && /^-?\d+$/.test(v)) (out as BigInt64Array)[i] = BigInt(v);
        else return `element ${i} is not an integer`;
        break;
      case "INT32":
        if (typeof v !== "number" || !Number.isInteger(v) || v < -2147483648 || v > 2147483647)
          return `element ${i} is not a 32-bit integer`;
        (out as Int32Array)[i] = v;
        break;
      default:
        // JSON has no NaN; null marks a missing value for float tensors.
        if (v === null) (out as Float32Array)[i] = Number.NaN;
        else if (typeof v !== "number") return `element ${i} is not a number`;
        else (out as Float32Array)[i] = v;
    }
  }
  return out;
}

/** JSON-friendly values of a typed array (BOOL as booleans, INT64 as numbers when safe). */
export function toValues(datatype: Datatype, data: TensorData): (number | boolean | string | null)[] {
  const out = new Array<number | boolean | string | null>(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (datatype === "BOOL") out[i] = v !== 0;
    else if (typeof v === "bigint")
      out[i] =
        v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
          ? Number(v)
          : v.toString();
    else out[i] = Number.isNaN(v) ? null : v;
  }
  return out;
}
