import * as grpc from "@grpc/grpc-js";
import { create, isMessage } from "@bufbuild/protobuf";
import type {
  DescMessage,
  DescMethod,
  DescService,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import { SpanKind, SpanStatusCode, context, trace, type Tracer } from "@opentelemetry/api";
import type { Registry } from "prom-client";
import { currentRequestContext } from "../context.js";
import { ValoraError } from "../errors.js";
import { counter, histogram } from "../metrics.js";
import { injectIntoMetadata } from "../tracing.js";
import { serviceDefinition } from "./server.js";
import { fromGrpcError, transportMessage } from "./status.js";
import { resolveServiceAddress } from "../service-map.js";

export interface CallOptions {
  /** Deadline relative to now; the client's default when absent. */
  timeoutMs?: number;
  metadata?: Record<string, string>;
  signal?: AbortSignal;
}

type In<M extends DescMethod> = MessageInitShape<M["input"]>;
type Out<M extends DescMethod> = MessageShape<M["output"]>;

export type ClientMethod<M extends DescMethod> = M["methodKind"] extends "unary"
  ? (req: In<M>, options?: CallOptions) => Promise<Out<M>>
  : M["methodKind"] extends "server_streaming"
    ? (req: In<M>, options?: CallOptions) => AsyncIterable<Out<M>>
    : never;

/** A typed promise-based client for the unary and server-streaming methods of a service. */
export type Client<S extends DescService> = {
  [K in keyof S["method"]]: S["method"][K] extends DescMethod ? ClientMethod<S["method"][K]> : never;
} & { close(): void; waitForReady(timeoutMs: number): Promise<void> };

export interface ClientOptions {
  /** Default per-call deadline; every call has one. */
  timeoutMs?: number;
  credentials?: grpc.ChannelCredentials;
  channelOptions?: grpc.ChannelOptions;
  tracer?: Tracer;
  registry?: Registry;
}

function toMessage<D extends DescMessage>(
  schema: D,
  value: MessageShape<D> | MessageInitShape<D>,
): MessageShape<D> {
  return isMessage(value, schema) ? value : create(schema, value);
}

/**
 * Calls a gRPC service described by a protobuf-es descriptor: deadlines on every call, request id
 * and W3C trace context in metadata, a client span, metrics, and errors mapped back to ValoraError.
 */
export function createClient<S extends DescService>(
  service: S,
  address: string,
  options: ClientOptions = {},
): Client<S> {
  const GenericClient = grpc.makeGenericClientConstructor(serviceDefinition(service), service.typeName);
  const raw = new GenericClient(
    resolveServiceAddress(address),
    options.credentials ?? grpc.credentials.createInsecure(),
    {
      "grpc.max_receive_message_length": 16 * 1024 * 1024,
      ...options.channelOptions,
    },
  );
  const defaultTimeout = options.timeoutMs ?? 10_000;
  const tracer = options.tracer ?? trace.getTracer("valora-grpc-client");
  const handled = options.registry
    ? counter(
        options.registry,
        "grpc_client_handled_total",
        "gRPC calls completed by clients, by status code.",
        ["grpc_service", "grpc_method", "grpc_code"],
      )
    : undefined;
  const latency = options.registry
    ? histogram(options.registry, "grpc_client_handling_seconds", "gRPC client call latency.", [
        "grpc_service",
        "grpc_method",
      ])
    : undefined;

  const prepare = (method: DescMethod, callOptions: CallOptions = {}) => {
    const span = tracer.startSpan(`${service.typeName}/${method.name}`, {
      kind: SpanKind.CLIENT,
      attributes: {
        "rpc.system": "grpc",
        "rpc.service": service.typeName,
        "rpc.method": method.name,
        "server.address": address,
      },
    });
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(callOptions.metadata ?? {})) metadata.set(k, v);
    const requestId = currentRequestContext()?.requestId;
    if (requestId && metadata.get("x-request-id").length === 0) metadata.set("x-request-id", requestId);
    injectIntoMetadata(metadata, trace.setSpan(context.active(), span));
    const deadline = new Date(Date.now() + (callOptions.timeoutMs ?? defaultTimeout));
    const started = process.hrtime.bigint();
    const done = (code: grpc.status): void => {
      const labels = { grpc_service: service.typeName, grpc_method: method.name };
      handled?.inc({ ...labels, grpc_code: grpc.status[code] ?? String(code) });
      latency?.observe(labels, Number(process.hrtime.bigint() - started) / 1e9);
      if (code !== grpc.status.OK) span.setStatus({ code: SpanStatusCode.ERROR, message: grpc.status[code] });
      span.end();
    };
    return { metadata, deadline, done };
  };

  const target = `${address}${service.typeName}`;
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    const rawMethod = (
      raw as unknown as Record<
        string,
        (...args: unknown[]) => grpc.ClientUnaryCall & grpc.ClientReadableStream<unknown>
      >
    )[method.localName];
    if (!rawMethod) continue;
    if (method.methodKind === "unary") {
      methods[method.localName] = (req: MessageInitShape<DescMessage>, callOptions?: CallOptions) => {
        const { metadata, deadline, done } = prepare(method, callOptions);
        return new Promise((resolve, reject) => {
          const call = rawMethod.call(
            raw,
            toMessage(method.input, req),
            metadata,
            { deadline },
            (err: grpc.ServiceError | null, res: unknown) => {
              callOptions?.signal?.removeEventListener("abort", cancel);
              if (err) {
                done(err.code);
                reject(fromGrpcError(err, target));
              } else {
                done(grpc.status.OK);
                resolve(res);
              }
            },
          );
          const cancel = (): void => call.cancel();
          if (callOptions?.signal?.aborted) cancel();
          callOptions?.signal?.addEventListener("abort", cancel, { once: true });
        });
      };
    } else if (method.methodKind === "server_streaming") {
      methods[method.localName] = (req: MessageInitShape<DescMessage>, callOptions?: CallOptions) => {
        const { metadata, deadline, done } = prepare(method, callOptions);
        return (async function* () {
          const call = rawMethod.call(raw, toMessage(method.input, req), metadata, { deadline });
          const cancel = (): void => call.cancel();
          callOptions?.signal?.addEventListener("abort", cancel, { once: true });
          try {
            for await (const item of call) yield item;
            done(grpc.status.OK);
          } catch (err) {
            const e = err as grpc.ServiceError;
            done(e.code ?? grpc.status.UNKNOWN);
            throw typeof e.code === "number"
              ? fromGrpcError(e, target)
              : new ValoraError("UNAVAILABLE", transportMessage("UNAVAILABLE"), { cause: err });
          } finally {
            callOptions?.signal?.removeEventListener("abort", cancel);
            call.cancel();
          }
        })();
      };
    }
  }
  methods["close"] = () => raw.close();
  methods["waitForReady"] = (timeoutMs: number) =>
    new Promise<void>((resolve, reject) =>
      raw.waitForReady(Date.now() + timeoutMs, (err) =>
        err ? reject(new ValoraError("UNAVAILABLE", `${address}: ${err.message}`)) : resolve(),
      ),
    );
  return methods as Client<S>;
}
