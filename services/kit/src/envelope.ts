import type { ErrorCode, FieldViolation } from "./errors.js";
import { toValoraError } from "./errors.js";

export interface EnvelopeMeta {
  requestId: string;
  timestamp: string;
}

export interface EnvelopeError {
  code: ErrorCode;
  message: string;
  details: FieldViolation[];
}

/** The REST JSON envelope of DESIGN.md: `{data, meta: {requestId, timestamp}, error}`. */
export interface Envelope<T> {
  data: T | null;
  meta: EnvelopeMeta;
  error: EnvelopeError | null;
}

export function okEnvelope<T>(data: T, requestId: string, now: Date = new Date()): Envelope<T> {
  return { data, meta: { requestId, timestamp: now.toISOString() }, error: null };
}

/** JSON.stringify(okEnvelope(data, ...)) for data already in JSON text. */
export function okEnvelopeText(dataText: string, requestId: string, now: Date = new Date()): string {
  return `{"data":${dataText},"meta":${JSON.stringify({ requestId, timestamp: now.toISOString() })},"error":null}`;
}

export function errorEnvelope(
  err: unknown,
  requestId: string,
  now: Date = new Date(),
): { status: number; body: Envelope<never> } {
  const e = toValoraError(err);
  return {
    status: e.httpStatus,
    body: {
      data: null,
      meta: { requestId, timestamp: now.toISOString() },
      error: { code: e.code, message: e.message, details: e.details },
    },
  };
}
