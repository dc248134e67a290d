import { describe, expect, it } from "vitest";
import { ValoraError } from "@valora/kit";
import { decodeInputs, flatten, type TensorSpec } from "../src/index.js";

const specs: TensorSpec[] = [
  { name: "x", datatype: "FP32", shape: [-1, 3] },
  { name: "flag", datatype: "BOOL", shape: [-1, 1] },
];

function error(fn: () => unknown): ValoraError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValoraError) return err;
    throw err;
  }
  throw new Error("expected a ValoraError");
}

describe("decodeInputs", () => {
  it("accepts typed values and little-endian raw bytes, in model order", () => {
    const raw = new Uint8Array(new Float32Array([1, 2, 3]).buffer);
    const t = decodeInputs(
      [
        { name: "flag", datatype: "BOOL", shape: [1, 1], values: [true] },
        { name: "x", datatype: "FP32", shape: [1, 3], raw },
      ],
      specs,
    );
    expect(t.map((x) => x.name)).toEqual(["x", "flag"]);
    expect(Array.from(t[0]!.data as Float32Array)).toEqual([1, 2, 3]);
    expect(Array.from(t[1]!.data as Uint8Array)).toEqual([1]);
  });

  it.each([
    [
      [{ name: "nope", datatype: "FP32", shape: [1, 3], values: [1, 2, 3] }],
      'unknown input tensor "nope"',
      "inputs[0].name",
    ],
    [
      [{ name: "x", datatype: "FP64", shape: [1, 3], values: [1, 2, 3] }],
      'input tensor "x": expected datatype FP32, got FP64',
      "inputs[0].datatype",
    ],
    [
      [{ name: "x", datatype: "STRING", shape: [1, 3], values: [1, 2, 3] }],
      'input tensor "x": datatype "STRING" is not supported',
      "inputs[0].datatype",
    ],
    [
      [{ name: "x", datatype: "FP32", shape: [3], values: [1, 2, 3] }],
      'input tensor "x": expected rank 2',
      "inputs[0].shape",
    ],
    [
      [{ name: "x", datatype: "FP32", shape: [1, 4], values: [1, 2, 3, 4] }],
      'input tensor "x": dimension 1 must be 3, got 4',
      "inputs[0].shape",
    ],
    [
      [{ name: "x", datatype: "FP32", shape: [2, 3], values: [1, 2, 3] }],
      'input tensor "x": 3 elements given, shape [2, 3] needs 6',
      "inputs[0].contents",
    ],
    [
      [{ name: "x", datatype: "FP32", shape: [1, 3], raw: new Uint8Array(8) }],
      'input tensor "x": raw contents hold 8 bytes',
      "inputs[0].raw",
    ],
    [
      [{ name: "x", datatype: "FP32", shape: [1, 3], values: [1, "a", 3] }],
      'input tensor "x": element 1 is not a number',
      "inputs[0].contents",
    ],
    [
      [{ name: "x", datatype: "FP32", shape: [1, 3], values: [1, 2, 3] }],
      'missing input tensor "flag"',
      "inputs",
    ],
  ])("refuses bad input %#", (inputs, message, field) => {
    const e = error(() => decodeInputs(inputs, specs));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.message).toContain(message);
    expect(e.details[0]?.field).toBe(field);
  });

  it("flattens nested JSON data row-major", () => {
    expect(
      flatten([
        [1, 2],
        [3, 4],
      ]),
    ).toEqual([1, 2, 3, 4]);
    expect(flatten([1, 2])).toEqual([1, 2]);
    expect(flatten(5)).toEqual([5]);
  });
});
