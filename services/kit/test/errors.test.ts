import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import {
  ERROR_CODES,
  ValoraError,
  errorCodeFromGrpc,
  errorEnvelope,
  okEnvelope,
  toValoraError,
} from "@valora/kit";

describe("errors", () => {
  it("maps every stable code to a gRPC status and a 4xx/5xx HTTP status", () => {
    for (const [code, map] of Object.entries(ERROR_CODES)) {
      expect(map.http, code).toBeGreaterThanOrEqual(400);
      expect(map.http, code).toBeLessThan(600);
      expect(status[map.grpc], code).toBeDefined();
    }
    expect(new ValoraError("INVALID_ARGUMENT", "x").httpStatus).toBe(400);
    expect(new ValoraError("NOT_FOUND", "x").grpcStatus).toBe(status.NOT_FOUND);
    expect(new ValoraError("RESOURCE_EXHAUSTED", "x").httpStatus).toBe(429);
  });

  it("hides the text of unexpected errors behind INTERNAL", () => {
    const e = toValoraError(new Error("password=hunter2 leaked"));
    expect(e.code).toBe("INTERNAL");
    expect(e.message).toBe("internal error");
    expect((e.cause as Error).message).toContain("hunter2");
  });

  it("maps gRPC status codes back to stable codes", () => {
    expect(errorCodeFromGrpc(status.DEADLINE_EXCEEDED)).toBe("DEADLINE_EXCEEDED");
    expect(errorCodeFromGrpc(status.UNKNOWN)).toBe("INTERNAL");
    expect(errorCodeFromGrpc(status.DATA_LOSS)).toBe("UNAVAILABLE");
  });

  it("builds the REST envelope with code, message and field details", () => {
    const now = new Date("2026-01-02T03:04:05.000Z");
    const err = new ValoraError("INVALID_ARGUMENT", "bad input", {
      details: [{ field: "attributes.year", description: "must be >= 1800" }],
    });
    expect(errorEnvelope(err, "req-1", now)).toEqual({
      status: 400,
      body: {
        data: null,
        meta: { requestId: "req-1", timestamp: "2026-01-02T03:04:05.000Z" },
        error: {
          code: "INVALID_ARGUMENT",
          message: "bad input",
          details: [{ field: "attributes.year", description: "must be >= 1800" }],
        },
      },
    });
    expect(okEnvelope({ a: 1 }, "req-2", now)).toEqual({
      data: { a: 1 },
      meta: { requestId: "req-2", timestamp: now.toISOString() },
      error: null,
    });
  });
});
