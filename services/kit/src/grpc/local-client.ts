import * as grpc from "@grpc/grpc-js";
import { create, isMessage, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { SpanKind, SpanStatusCode, context as otel, trace, type Span } from "@opentelemetry/api";
import {
  currentRequestContext,
  requestIdFrom,
  runWithRequestContext,
  withRequestContext,
} from "../context.js";
import { tracingOn } from "../tracing.js";
import { ValoraError, toValoraError } from "../errors.js";
import type { CallOptions, Client } from "./client.js";
import type { CallContext, ServiceRegistration } from "./server.js";

const toMessage = <D extends DescMessage>(schema: D, value: unknown): MessageShape<D> =>
  isMessage(value, schema) ? value : create(schema, value as never);

/**
 * A client that calls a service implementation in this process directly: the same handler, the
 * same metadata (tenant, usage marks) and deadlines as over gRPC, without encoding, HTTP/2 or a
 * socket. For `valora up`, where the gateway, the orchestrator and the job workers share a
 * process; pods talk gRPC. Messages are passed by reference: handlers must not keep or mutate
 * what they receive (Valora's do not). Errors arrive as ValoraError, as from createClient.
 */
export function createLocalClient<S extends DescService>(
  service: S,
  registration: ServiceRegistration,
  options: { timeoutMs?: number } = {},
): Client<S> {
  if (registration.service.typeName !== service.typeName)
    throw new Error(`registration is ${registration.service.typeName}, not ${service.typeName}`);
  const client: Record<string, unknown> = {
    close: () => undefined,
    waitForReady: async () => undefined,
  };
  for (const method of service.methods) {
    const impl = registration.impl[method.localName];
    if (typeof impl !== "function") continue;
    const fn = impl as (input: unknown, ctx: CallContext) => unknown;
    const context = (
      o: CallOptions = {},
    ): { ctx: CallContext; expired: Promise<never>; done: () => void } => {
      const metadata = new grpc.Metadata();
      for (const [k, v] of Object.entries(o.metadata ?? {})) metadata.set(k, v);
      const requestId = requestIdFrom(o.metadata?.["x-request-id"] ?? currentRequestContext()?.requestId);
      const timeoutMs = o.timeoutMs ?? options.timeoutMs ?? 10_000;
      // Most handlers never look at cancellation: the AbortController is made when one does.
      let controller: AbortController | undefined;
      let cancelled: Error | undefined;
      const cancel = (reason: Error) => {
        cancelled ??= reason;
        controller?.abort(reason);
      };
      let expire: (err: ValoraError) => void = () => undefined;
      const expired = new Promise<never>((_, reject) => (expire = reject));
      expired.catch(() => undefined);
      // As over gRPC: past the deadline the caller gets DEADLINE_EXCEEDED, and the handler's signal aborts.
      const timer = setTimeout(() => {
        cancel(new Error("deadline exceeded"));
        expire(
          new ValoraError(
            "DEADLINE_EXCEEDED",
            `${service.typeName}/${method.name}: deadline of ${timeoutMs} ms exceeded`,
          ),
        );
      }, timeoutMs);
      const onAbort = () => cancel(new Error("call cancelled"));
      o.signal?.addEventListener("abort", onAbort, { once: true });
      return {
        ctx: {
          method: `/${service.typeName}/${method.name}`,
          metadata,
          get signal() {
            if (!controller) {
              controller = new AbortController();
              if (cancelled) controller.abort(cancelled);
            }
            return controller.signal;
          },
          deadline: new Date(Date.now() + timeoutMs),
          peer: "in-process",
          requestId,
        },
        expired,
        done: () => {
          clearTimeout(timer);
          o.signal?.removeEventListener("abort", onAbort);
        },
      };
    };
    const name = `${service.typeName}/${method.name}`;
    const attributes = { "rpc.system": "grpc", "rpc.service": service.typeName, "rpc.method": method.name };
    // The same client and server spans as over gRPC (the server's its child), so a trace of `valora up`
    // reads like one of pods; nothing is made when the process records no spans.
    const spans = (): { client: Span; server: Span } | undefined => {
      if (!tracingOn()) return undefined;
      const client = trace.getTracer("valora-grpc-client").startSpan(name, {
        kind: SpanKind.CLIENT,
        attributes: { ...attributes, "server.address": "in-process" },
      });
      const server = trace
        .getTracer("valora-grpc-server")
        .startSpan(name, { kind: SpanKind.SERVER, attributes }, trace.setSpan(otel.active(), client));
      return { client, server };
    };
    const end = (s: { client: Span; server: Span } | undefined, err?: unknown) => {
      if (!s) return;
      const code = err === undefined ? 0 : toValoraError(err).grpcStatus;
      s.server.setAttribute("rpc.grpc.status_code", code);
      for (const span of [s.server, s.client]) {
        if (err !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: grpc.status[code] });
        span.end();
      }
    };
    if (method.methodKind === "unary") {
      client[method.localName] = async (req: unknown, o?: CallOptions) => {
        const { ctx, expired, done } = context(o);
        const s = spans();
        try {
          const run = () => fn(toMessage(method.input, req), ctx) as Promise<unknown>;
          const out = toMessage(
            method.output,
            await Promise.race([
              s
                ? otel.with(
                    withRequestContext(trace.setSpan(otel.active(), s.server), { requestId: ctx.requestId }),
                    run,
                  )
                : runWithRequestContext({ requestId: ctx.requestId }, run),
              expired,
            ]),
          );
          end(s);
          return out;
        } catch (err) {
          end(s, err);
          throw toValoraError(err);
        } finally {
          done();
        }
      };
    } else if (method.methodKind === "server_streaming") {
      client[method.localName] = (req: unknown, o?: CallOptions) =>
        (async function* () {
          const { ctx, done } = context(o);
          try {
            for await (const item of fn(toMessage(method.input, req), ctx) as AsyncIterable<unknown>)
              yield toMessage(method.output, item);
          } catch (err) {
            throw toValoraError(err);
          } finally {
            done();
          }
        })();
    }
  }
  return client as Client<S>;
}
