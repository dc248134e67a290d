import { status as GrpcStatus } from "@grpc/grpc-js";

/**
 * Stable error codes shared by every transport. gRPC clients see them as status codes (plus the
 * `valora-error-code` trailer), REST clients as the envelope's `error.code`.
 */
export const ERROR_CODES = {
  INVALID_ARGUMENT: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400 },
  FAILED_PRECONDITION: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 400 },
  OUT_OF_RANGE: { grpc: GrpcStatus.OUT_OF_RANGE, http: 400 },
  UNAUTHENTICATED: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401 },
  PERMISSION_DENIED: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403 },
  /** The caller's tenant is suspended by the platform's administrators (it may be resumed). */
  TENANT_SUSPENDED: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403 },
  NOT_FOUND: { grpc: GrpcStatus.NOT_FOUND, http: 404 },
  ALREADY_EXISTS: { grpc: GrpcStatus.ALREADY_EXISTS, http: 409 },
  ABORTED: { grpc: GrpcStatus.ABORTED, http: 409 },
  PAYLOAD_TOO_LARGE: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 413 },
  UNSUPPORTED_MEDIA_TYPE: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 415 },
  RESOURCE_EXHAUSTED: { grpc: GrpcStatus.RESOURCE_EXHAUSTED, http: 429 },
  CANCELLED: { grpc: GrpcStatus.CANCELLED, http: 499 },
  INTERNAL: { grpc: GrpcStatus.INTERNAL, http: 500 },
  UNIMPLEMENTED: { grpc: GrpcStatus.UNIMPLEMENTED, http: 501 },
  UNAVAILABLE: { grpc: GrpcStatus.UNAVAILABLE, http: 503 },
  DEADLINE_EXCEEDED: { grpc: GrpcStatus.DEADLINE_EXCEEDED, http: 504 },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface FieldViolation {
  /** Path of the offending field, e.g. `attributes.year_built` or `inputs[0].shape`. */
  field: string;
  /** What is wrong with it. */
  description: string;
}

export interface ValoraErrorOptions {
  details?: FieldViolation[];
  cause?: unknown;
  /** Extra context for logs; never sent to clients. */
  context?: Record<string, unknown>;
}

/** A typed error with a stable code. Anything thrown that is not a ValoraError is an INTERNAL error. */
export class ValoraError extends Error {
  readonly code: ErrorCode;
  readonly details: FieldViolation[];
  readonly context: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: ValoraErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ValoraError";
    this.code = code;
    this.details = options.details ?? [];
    this.context = options.context ?? {};
  }

  get grpcStatus(): GrpcStatus {
    return ERROR_CODES[this.code].grpc;
  }

  get httpStatus(): number {
    return ERROR_CODES[this.code].http;
  }
}

export const invalidArgument = (message: string, details: FieldViolation[] = []): ValoraError =>
  new ValoraError("INVALID_ARGUMENT", message, { details });

export const notFound = (message: string): ValoraError => new ValoraError("NOT_FOUND", message);

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_CODES, value);
}

/** Normalises anything thrown into a ValoraError; unknown errors become INTERNAL with a generic message. */
export function toValoraError(err: unknown): ValoraError {
  if (err instanceof ValoraError) return err;
  const unavailable = unavailableReason(err);
  if (unavailable) return new ValoraError("UNAVAILABLE", unavailable, { cause: err });
  return new ValoraError("INTERNAL", "internal error", { cause: err });
}

/** SQLSTATE classes and codes of a database that cannot serve now (connection lost, shutting down, starting). */
const DATABASE_STATES = /^(08|57P0[1-3]$|53300$)/;
/** What `pg` says when its connection goes away (its errors carry no SQLSTATE then). */
const DATABASE_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Connection ended)/;
/** Socket errors: the peer is down or unreachable, which a retry later can fix. */
const SOCKET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "EAI_AGAIN",
]);

/**
 * Pure: the sentence a client sees when `err` means a dependency cannot be reached (so the request
 * may succeed if retried), or undefined. The error's own text stays in logs: it names hosts and
 * ports a client has no business knowing.
 */
export function unavailableReason(err: unknown): string | undefined {
  if (!err || typeof err !== "object") return undefined;
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === "string" ? e.code : "";
  const message = typeof e.message === "string" ? e.message : "";
  if (DATABASE_STATES.test(code) || DATABASE_MESSAGES.test(message))
    return "the database is unavailable; retry shortly";
  if (SOCKET_CODES.has(code)) return "a service this request needs is unavailable; retry shortly";
  return undefined;
}

/** Seconds a client should wait before retrying an UNAVAILABLE answer (REST `Retry-After`). */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** The gRPC status code name (e.g. 5 -> "NOT_FOUND") for codes that have a Valora equivalent. */
export function errorCodeFromGrpc(code: GrpcStatus): ErrorCode {
  const name = GrpcStatus[code];
  if (name !== undefined && isErrorCode(name)) return name;
  return code === GrpcStatus.UNKNOWN ? "INTERNAL" : "UNAVAILABLE";
}
