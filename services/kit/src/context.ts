import { randomUUID } from "node:crypto";
import { context, createContextKey, type Context } from "@opentelemetry/api";

/** Per-request values that logs and outgoing calls pick up without threading them through every call. */
export interface RequestContext {
  requestId: string;
  tenantId?: string;
}

// Kept in the OpenTelemetry context rather than a second AsyncLocalStorage: one async context
// store per request instead of two (each one costs on every promise hop in Node 20).
const KEY = createContextKey("valora.request");

export function runWithRequestContext<T>(ctx: RequestContext, fn: () => T): T {
  return context.with(withRequestContext(context.active(), ctx), fn);
}

/** `parent` with the request context set, for a caller that enters a context of its own anyway. */
export function withRequestContext(parent: Context, ctx: RequestContext): Context {
  return parent.setValue(KEY, ctx);
}

export function currentRequestContext(): RequestContext | undefined {
  return context.active().getValue(KEY) as RequestContext | undefined;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Accepts a caller's request id when it is safe to log and echo, otherwise makes a new one. */
export function requestIdFrom(candidate: unknown): string {
  return typeof candidate === "string" && REQUEST_ID.test(candidate) ? candidate : randomUUID();
}
