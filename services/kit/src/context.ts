import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";

/** Per-request values that logs and outgoing calls pick up without threading them through every call. */
export interface RequestContext {
  requestId: string;
  tenantId?: string;
}

const storage = new AsyncLocalStorage<RequestContext>();

export function runWithRequestContext<T>(ctx: RequestContext, fn: () => T): T {
  return storage.run(ctx, fn);
}

export function currentRequestContext(): RequestContext | undefined {
  return storage.getStore();
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Accepts a caller's request id when it is safe to log and echo, otherwise makes a new one. */
export function requestIdFrom(candidate: unknown): string {
  return typeof candidate === "string" && REQUEST_ID.test(candidate) ? candidate : randomUUID();
}
