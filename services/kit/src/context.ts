import { randomUUID } from "node:crypto";
import { context, createContextKey } from "@opentelemetry/api";

/** Per-request values that logs and outgoing calls pick up without threading them through every call. */
export interface RequestContext {
  requestId: string;
  tenantId?: string;
}

// Kept in the OpenTelemetry context rather than a second AsyncLocalStorage: one async context
// store per request instead of two (each one costs on every promise hop in Node 20).
const KEY = createContextKey("valora.request");

export function runWithRequestContext<T>(ctx: RequestContext, fn: () => T): T {
  return context.with(context.active().setValue(KEY, ctx), fn);
}

export function currentRequestContext(): RequestContext | undefined {
  return context.active().getValue(KEY) as RequestContext | undefined;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Accepts a caller's request id when it is safe to log and echo, otherwise makes a new one. */
export function requestIdFrom(candidate: unknown): string {
  return typeof candidate === "string" && REQUEST_ID.test(candidate) ? candidate : randomUUID();
}
