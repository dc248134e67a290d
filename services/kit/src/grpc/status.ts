import type { status as GrpcStatus } from "@grpc/grpc-js";
import { Metadata, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ErrorDetailSchema } from "@valora/proto/valora/v1/common_pb";
import { ValoraError, errorCodeFromGrpc, isErrorCode, toValoraError } from "../errors.js";

/** Trailer carrying the stable Valora code (finer than the gRPC status, e.g. PAYLOAD_TOO_LARGE). */
export const ERROR_CODE_KEY = "valora-error-code";
/** Binary trailer carrying a serialized valora.v1.ErrorDetail with field violations. */
export const ERROR_DETAIL_KEY = "valora-error-detail-bin";

/** Turns anything a handler threw into the status grpc-js sends; internal errors never leak text. */
export function toGrpcStatus(err: unknown): Partial<StatusObject> & { code: GrpcStatus } {
  const e = toValoraError(err);
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, e.code);
  if (e.details.length > 0) {
    const detail = create(ErrorDetailSchema, {
      code: e.code,
      message: e.message,
      violations: e.details.map((d) => ({ field: d.field, description: d.description })),
    });
    metadata.set(ERROR_DETAIL_KEY, Buffer.from(toBinary(ErrorDetailSchema, detail)));
  }
  return { code: e.grpcStatus, details: e.message, metadata };
}

/** Turns a grpc-js client error back into the ValoraError the server raised. */
export function fromGrpcError(err: ServiceError, target: string): ValoraError {
  const codeValue = err.metadata?.get(ERROR_CODE_KEY)[0];
  const code =
    typeof codeValue === "string" && isErrorCode(codeValue) ? codeValue : errorCodeFromGrpc(err.code);
  const detailValue = err.metadata?.get(ERROR_DETAIL_KEY)[0];
  let details: ValoraError["details"] = [];
  if (detailValue instanceof Buffer) {
    try {
      details = fromBinary(ErrorDetailSchema, detailValue).violations.map((v) => ({
        field: v.field,
        description: v.description,
      }));
    } catch {
      details = [];
    }
  }
  // No Valora code: grpc-js itself failed the call (no connection, deadline, reset). Its words name
  // addresses and balancer state, which are for logs (the cause), not for whoever gets this error.
  const message = typeof codeValue === "string" ? err.details || err.message : transportMessage(code);
  return new ValoraError(code, message, { details, cause: err, context: { target } });
}

/** Pure: what a client is told when an internal call failed in transport, by code. */
export function transportMessage(code: string): string {
  if (code === "DEADLINE_EXCEEDED") return "an internal call timed out; retry shortly";
  if (code === "CANCELLED") return "the call was cancelled";
  return "an internal service is unavailable; retry shortly";
}
