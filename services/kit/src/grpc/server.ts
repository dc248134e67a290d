import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, isMessage, toBinary } from "@bufbuild/protobuf";
import type {
  DescMessage,
  DescMethod,
  DescService,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import { SpanKind, SpanStatusCode, context, trace, type Span, type Tracer } from "@opentelemetry/api";
import type { Registry } from "prom-client";
import { requestIdFrom, withRequestContext } from "../context.js";
import type { Health } from "../health.js";
import type { Logger } from "../logger.js";
import { LATENCY_BUCKETS, counter, exemplarsOn, histogram, observeWithTrace } from "../metrics.js";
import { extractFromMetadata } from "../tracing.js";
import { toValoraError } from "../errors.js";
import { toGrpcStatus } from "./status.js";
import { createHealthService } from "./health-service.js";
import { createReflectionServices } from "./reflection.js";

/** What a handler knows about the call it serves. */
export interface CallContext {
  /** Full method path, e.g. `/valora.v1.ValuationService/Value`. */
  method: string;
  metadata: grpc.Metadata;
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
  deadline: Date | undefined;
  peer: string;
  requestId: string;
}

type In<M extends DescMethod> = MessageShape<M["input"]>;
type Out<M extends DescMethod> = MessageShape<M["output"]> | MessageInitShape<M["output"]>;

export type MethodImpl<M extends DescMethod> = M["methodKind"] extends "unary"
  ? (req: In<M>, call: CallContext) => Promise<Out<M>>
  : M["methodKind"] extends "server_streaming"
    ? (req: In<M>, call: CallContext) => AsyncIterable<Out<M>>
    : M["methodKind"] extends "client_streaming"
      ? (reqs: AsyncIterable<In<M>>, call: CallContext) => Promise<Out<M>>
      : (reqs: AsyncIterable<In<M>>, call: CallContext) => AsyncIterable<Out<M>>;

/** A typed implementation of every method of a protobuf-es service descriptor. */
export type ServiceImpl<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends DescMethod ? MethodImpl<S["method"][K]> : never;
};

export interface ServiceRegistration {
  service: DescService;
  impl: Record<string, unknown>;
}

export function implement<S extends DescService>(service: S, impl: ServiceImpl<S>): ServiceRegistration {
  return { service, impl: impl };
}

export interface GrpcServerOptions {
  logger: Logger;
  registry: Registry;
  tracer: Tracer;
  health: Health;
  services: ServiceRegistration[];
  /** grpc.health.v1 and grpc.reflection (v1 and v1alpha) are on unless turned off. */
  healthService?: boolean;
  reflection?: boolean;
  channelOptions?: grpc.ChannelOptions;
}

export interface GrpcServer {
  server: grpc.Server;
  listen(address: string): Promise<number>;
  /** Stop accepting new calls, wait up to graceMs for in-flight calls, then cancel the rest. */
  shutdown(graceMs?: number): Promise<void>;
}

function toMessage<D extends DescMessage>(
  schema: D,
  value: MessageShape<D> | MessageInitShape<D>,
): MessageShape<D> {
  return isMessage(value, schema) ? value : create(schema, value);
}

interface Instrumentation {
  logger: Logger;
  tracer: Tracer;
  handled: ReturnType<typeof counter<"grpc_service" | "grpc_method" | "grpc_code">>;
  latency: ReturnType<typeof histogram<"grpc_service" | "grpc_method">>;
}

type AnyCall =
  | grpc.ServerUnaryCall<unknown, unknown>
  | grpc.ServerWritableStream<unknown, unknown>
  | grpc.ServerReadableStream<unknown, unknown>
  | grpc.ServerDuplexStream<unknown, unknown>;

/** What every call of one method shares: its path, span name and attributes, metric series. */
interface MethodInstrumentation {
  logger: Logger;
  tracer: Tracer;
  path: string;
  spanName: string;
  attributes: Record<string, string>;
  /** Observes a call's latency, with its span as the bucket's exemplar. */
  latency(seconds: number, span: Span): void;
  handled(code: grpc.status): { inc(): void };
}

function forMethod(inst: Instrumentation, service: DescService, method: DescMethod): MethodInstrumentation {
  const labels = { grpc_service: service.typeName, grpc_method: method.name };
  // prom-client hashes a label set on every call; one bound series per method (and status) does not.
  const byCode = new Map<grpc.status, { inc(): void }>();
  return {
    logger: inst.logger,
    tracer: inst.tracer,
    path: `/${service.typeName}/${method.name}`,
    spanName: `${service.typeName}/${method.name}`,
    attributes: { "rpc.system": "grpc", "rpc.service": service.typeName, "rpc.method": method.name },
    latency: exemplarsOn(inst.latency)
      ? (seconds, span) => observeWithTrace(inst.latency, labels, seconds, span)
      : (
          (bound) => (seconds: number) =>
            bound.observe(seconds)
        )(inst.latency.labels(labels)),
    handled: (code) => {
      let series = byCode.get(code);
      if (!series)
        byCode.set(
          code,
          (series = inst.handled.labels({ ...labels, grpc_code: grpc.status[code] ?? String(code) })),
        );
      return series;
    },
  };
}

/**
 * Wraps one call: request id, trace context from metadata, a server span, metrics and logs,
 * an AbortSignal for cancellation/deadline, and the mapping of thrown errors to gRPC status.
 */
function instrument(
  m: MethodInstrumentation,
  call: AnyCall,
  body: (ctx: CallContext) => Promise<void>,
): void {
  const started = process.hrtime.bigint();
  const deadline = call.getDeadline();
  const requestId = requestIdFrom(call.metadata.get("x-request-id")[0]);
  const parent = extractFromMetadata(call.metadata);
  const span = m.tracer.startSpan(m.spanName, { kind: SpanKind.SERVER, attributes: m.attributes }, parent);
  // Most handlers never look at cancellation: build the AbortController only when one does.
  let controller: AbortController | undefined;
  const ctx: CallContext = {
    method: m.path,
    metadata: call.metadata,
    get signal() {
      if (!controller) {
        const c = new AbortController();
        controller = c;
        if (call.cancelled) c.abort(new Error("call cancelled or deadline exceeded"));
        else
          (call as unknown as NodeJS.EventEmitter).once("cancelled", () =>
            c.abort(new Error("call cancelled or deadline exceeded")),
          );
      }
      return controller.signal;
    },
    deadline:
      deadline instanceof Date ? deadline : Number.isFinite(deadline) ? new Date(deadline) : undefined,
    peer: call.getPeer(),
    requestId,
  };
  const finish = (code: grpc.status, err?: unknown): void => {
    m.handled(code).inc();
    m.latency(Number(process.hrtime.bigint() - started) / 1e9, span);
    if (span.isRecording()) {
      span.setAttribute("rpc.grpc.status_code", code);
      if (code !== grpc.status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: grpc.status[code] });
      if (err !== undefined && code === grpc.status.INTERNAL)
        span.recordException(err instanceof Error ? err : new Error(JSON.stringify(err)));
    }
    if (err !== undefined && code === grpc.status.INTERNAL)
      m.logger.error({ err, method: m.path }, "grpc handler failed");
    span.end();
  };
  // One context per call carries both the span and the request context (one AsyncLocalStorage run).
  context.with(withRequestContext(trace.setSpan(parent, span), { requestId }), () => {
    body(ctx).then(
      () => finish(grpc.status.OK),
      (err: unknown) => finish(toValoraError(err).grpcStatus, err),
    );
  });
}

// Node's stream async iterator waits for 'close' on a Duplex, which a grpc-js call emits only after
// the response side ends: reading a bidi call with it would deadlock. Read by events instead.
async function* readStream<T>(stream: NodeJS.ReadableStream): AsyncIterable<T> {
  const queue: T[] = [];
  let ended = false;
  let failure: unknown;
  let wake: (() => void) | undefined;
  const notify = (): void => {
    wake?.();
    wake = undefined;
  };
  stream.on("data", (item: T) => {
    queue.push(item);
    notify();
  });
  stream.once("end", () => {
    ended = true;
    notify();
  });
  stream.once("error", (err: unknown) => {
    failure = err;
    notify();
  });
  for (;;) {
    const next = queue.shift();
    if (next !== undefined) {
      yield next;
      continue;
    }
    if (failure !== undefined) throw failure instanceof Error ? failure : new Error(JSON.stringify(failure));
    if (ended) return;
    await new Promise<void>((resolve) => (wake = resolve));
  }
}

function writeAll(
  call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  items: AsyncIterable<unknown>,
  schema: DescMessage,
  signal: AbortSignal,
): Promise<void> {
  return (async () => {
    for await (const item of items) {
      if (signal.aborted) return;
      const ok = call.write(toMessage(schema, item as MessageShape<DescMessage>));
      if (!ok) await new Promise((resolve) => call.once("drain", resolve));
    }
  })();
}

function handlerFor(
  inst: Instrumentation,
  service: DescService,
  method: DescMethod,
  impl: unknown,
): grpc.UntypedHandleCall {
  if (typeof impl !== "function") throw new Error(`${service.typeName}.${method.name} has no implementation`);
  const m = forMethod(inst, service, method);
  const fn = impl as (input: unknown, ctx: CallContext) => unknown;
  switch (method.methodKind) {
    case "unary":
      return (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        instrument(m, call, async (ctx) => {
          // Headers go out with the answer, in one write: sent before an asynchronous handler,
          // they cost a frame and a syscall of their own on both ends.
          const initial = new grpc.Metadata();
          initial.set("x-request-id", ctx.requestId);
          try {
            const out = await (fn(call.request, ctx) as Promise<MessageShape<DescMessage>>);
            call.sendMetadata(initial);
            callback(null, toMessage(method.output, out));
          } catch (err) {
            call.sendMetadata(initial);
            callback(toGrpcStatus(err));
            throw err;
          }
        });
      };
    case "server_streaming":
      return (call: grpc.ServerWritableStream<unknown, unknown>) => {
        instrument(m, call, async (ctx) => {
          try {
            await writeAll(call, fn(call.request, ctx) as AsyncIterable<unknown>, method.output, ctx.signal);
            call.end();
          } catch (err) {
            call.emit("error", toGrpcStatus(err));
            throw err;
          }
        });
      };
    case "client_streaming":
      return (call: grpc.ServerReadableStream<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        instrument(m, call, async (ctx) => {
          try {
            const out = await (fn(readStream(call), ctx) as Promise<MessageShape<DescMessage>>);
            callback(null, toMessage(method.output, out));
          } catch (err) {
            callback(toGrpcStatus(err));
            throw err;
          }
        });
      };
    case "bidi_streaming":
      return (call: grpc.ServerDuplexStream<unknown, unknown>) => {
        instrument(m, call, async (ctx) => {
          try {
            await writeAll(
              call,
              fn(readStream(call), ctx) as AsyncIterable<unknown>,
              method.output,
              ctx.signal,
            );
            call.end();
          } catch (err) {
            call.emit("error", toGrpcStatus(err));
            throw err;
          }
        });
      };
  }
}

/** The grpc-js service definition (paths, stream kinds, protobuf-es serializers) for a descriptor. */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const def: Record<string, grpc.MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>> = {};
  for (const method of service.methods) {
    def[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: (value: MessageShape<DescMessage>) => Buffer.from(toBinary(method.input, value)),
      requestDeserialize: (bytes: Buffer) => fromBinary(method.input, bytes),
      responseSerialize: (value: MessageShape<DescMessage>) => Buffer.from(toBinary(method.output, value)),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    };
  }
  return def;
}

export function createGrpcServer(options: GrpcServerOptions): GrpcServer {
  const server = new grpc.Server({
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
    "grpc.keepalive_permit_without_calls": 1,
    // Channelz bookkeeping costs on every call; Valora exposes Prometheus metrics instead.
    "grpc.enable_channelz": 0,
    ...options.channelOptions,
  });
  const inst: Instrumentation = {
    logger: options.logger,
    tracer: options.tracer,
    handled: counter(
      options.registry,
      "grpc_server_handled_total",
      "gRPC calls completed on the server, by status code.",
      ["grpc_service", "grpc_method", "grpc_code"],
    ),
    latency: histogram(
      options.registry,
      "grpc_server_handling_seconds",
      "gRPC server handling latency.",
      ["grpc_service", "grpc_method"],
      LATENCY_BUCKETS,
      { exemplars: true },
    ),
  };
  const registrations = [...options.services];
  if (options.healthService ?? true) {
    registrations.push(
      createHealthService(
        options.health,
        registrations.map((r) => r.service.typeName),
      ),
    );
  }
  if (options.reflection ?? true) {
    registrations.push(...createReflectionServices([...registrations.map((r) => r.service)]));
  }
  for (const { service, impl } of registrations) {
    const handlers: grpc.UntypedServiceImplementation = {};
    for (const method of service.methods) {
      handlers[method.localName] = handlerFor(inst, service, method, impl[method.localName]);
    }
    server.addService(serviceDefinition(service), handlers);
  }
  return {
    server,
    listen: (address) =>
      new Promise((resolve, reject) => {
        server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) =>
          err ? reject(err) : resolve(port),
        );
      }),
    shutdown: (graceMs = 10_000) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          options.logger.warn({ graceMs }, "grpc drain timed out; cancelling in-flight calls");
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
