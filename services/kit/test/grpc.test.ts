import * as grpc from "@grpc/grpc-js";
import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { SpanKind } from "@opentelemetry/api";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { EchoService } from "@valora/proto/valora/example/v1/echo_pb";
import {
  Health as HealthService,
  HealthCheckResponse_ServingStatus,
} from "@valora/proto/grpc/health/v1/health_pb";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  type ServerReflectionResponse,
} from "@valora/proto/grpc/reflection/v1/reflection_pb";
import {
  Health,
  ValoraError,
  createClient,
  createGrpcServer,
  createOpsServer,
  createRegistry,
  echoService,
  serviceDefinition,
  type Client,
  type GrpcServer,
} from "@valora/kit";
import { captureLogs, useInMemoryTracing } from "@valora/kit/testing";
import { trace } from "@opentelemetry/api";

const spans = useInMemoryTracing();

describe("gRPC server and client built from protobuf-es descriptors", () => {
  const { logger } = captureLogs("echo");
  const registry = createRegistry({ service: "echo", collectDefault: false });
  const health = new Health();
  let ready = true;
  health.addCheck("test", () => ready);
  let server: GrpcServer;
  let address: string;
  let echo: Client<typeof EchoService>;

  beforeAll(async () => {
    server = createGrpcServer({
      logger,
      registry,
      tracer: trace.getTracer("echo"),
      health,
      services: [echoService()],
    });
    const port = await server.listen("127.0.0.1:0");
    address = `127.0.0.1:${port}`;
    echo = createClient(EchoService, address, { timeoutMs: 2000, registry });
  });
  afterAll(async () => {
    echo.close();
    await server.shutdown(1000);
  });
  beforeEach(() => {
    spans.reset();
    ready = true;
  });

  it("answers a unary call and carries the W3C trace context from client to server", async () => {
    const res = await echo.echo({ message: "hi" });
    expect(res.message).toBe("hi");
    const finished = spans.getFinishedSpans();
    const client = finished.find((s) => s.kind === SpanKind.CLIENT);
    const srv = finished.find((s) => s.kind === SpanKind.SERVER);
    expect(client?.name).toBe("valora.example.v1.EchoService/Echo");
    expect(srv?.spanContext().traceId).toBe(client?.spanContext().traceId);
    expect(srv?.parentSpanContext?.spanId).toBe(client?.spanContext().spanId);
    expect(res.traceId).toBe(client?.spanContext().traceId);
  });

  it("continues a trace started by the caller", async () => {
    const parent = trace.getTracer("caller").startSpan("caller");
    const { context } = await import("@opentelemetry/api");
    const res = await context.with(trace.setSpan(context.active(), parent), () =>
      echo.echo({ message: "x" }),
    );
    parent.end();
    expect(res.traceId).toBe(parent.spanContext().traceId);
  });

  it("enforces deadlines: the client gets DEADLINE_EXCEEDED and the handler sees its signal abort", async () => {
    const started = Date.now();
    const err = await echo
      .echo({ message: "slow", delayMs: 2000 }, { timeoutMs: 100 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValoraError);
    expect((err as ValoraError).code).toBe("DEADLINE_EXCEEDED");
    expect(Date.now() - started).toBeLessThan(1500);
    // The handler's AbortSignal fired, so its sleep ended with CANCELLED instead of running on.
    await expect
      .poll(async () => registry.metrics(), { timeout: 1000 })
      .toMatch(/grpc_method="Echo",grpc_code="CANCELLED"/);
  });

  it("maps typed errors to status codes and carries field violations back to the client", async () => {
    const notFound = await echo.echo({ failWith: "NOT_FOUND" }).catch((e: unknown) => e);
    expect((notFound as ValoraError).code).toBe("NOT_FOUND");
    expect((notFound as ValoraError).message).toBe("failing as asked: NOT_FOUND");
    const tooLarge = await echo.echo({ failWith: "PAYLOAD_TOO_LARGE" }).catch((e: unknown) => e);
    expect((tooLarge as ValoraError).code).toBe("PAYLOAD_TOO_LARGE");
    const bad = await echo.echo({ failWith: "NOPE" }).catch((e: unknown) => e);
    expect((bad as ValoraError).code).toBe("INVALID_ARGUMENT");
    expect((bad as ValoraError).details).toEqual([
      { field: "fail_with", description: "must be a Valora error code such as NOT_FOUND" },
    ]);
  });

  it("streams server responses and reports stream errors", async () => {
    const values: number[] = [];
    for await (const r of echo.count({ n: 5 })) values.push(r.value);
    expect(values).toEqual([1, 2, 3, 4, 5]);
    const consume = async () => {
      for await (const _ of echo.count({ n: -1 })) void _;
    };
    await expect(consume()).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });

  it("records per-method metrics by status code", async () => {
    await echo.echo({ message: "m" });
    await echo.echo({ failWith: "NOT_FOUND" }).catch(() => undefined);
    const text = await registry.metrics();
    expect(text).toMatch(
      /grpc_server_handled_total\{grpc_service="valora.example.v1.EchoService",grpc_method="Echo",grpc_code="OK",service="echo"\} \d+/,
    );
    expect(text).toMatch(/grpc_server_handled_total\{[^}]*grpc_code="NOT_FOUND"[^}]*\} \d+/);
    expect(text).toContain("grpc_server_handling_seconds_bucket");
    expect(text).toMatch(/grpc_client_handled_total\{[^}]*grpc_method="Echo"[^}]*grpc_code="OK"/);
  });

  it("serves grpc.health.v1 from the readiness checks", async () => {
    const healthClient = createClient(HealthService, address);
    try {
      expect((await healthClient.check({ service: "" })).status).toBe(
        HealthCheckResponse_ServingStatus.SERVING,
      );
      expect((await healthClient.check({ service: "valora.example.v1.EchoService" })).status).toBe(
        HealthCheckResponse_ServingStatus.SERVING,
      );
      ready = false;
      expect((await healthClient.check({ service: "" })).status).toBe(
        HealthCheckResponse_ServingStatus.NOT_SERVING,
      );
      await expect(healthClient.check({ service: "no.Such" })).rejects.toMatchObject({ code: "NOT_FOUND" });

      const seen: HealthCheckResponse_ServingStatus[] = [];
      const abort = new AbortController();
      const watching = (async () => {
        for await (const r of healthClient.watch(
          { service: "" },
          { signal: abort.signal, timeoutMs: 10_000 },
        )) {
          seen.push(r.status);
          if (seen.length === 1) ready = true;
          if (seen.length === 2) abort.abort();
        }
      })().catch(() => undefined);
      await watching;
      expect(seen).toEqual([
        HealthCheckResponse_ServingStatus.NOT_SERVING,
        HealthCheckResponse_ServingStatus.SERVING,
      ]);
    } finally {
      healthClient.close();
    }
  });

  it("serves server reflection: list services and the file declaring a symbol", async () => {
    const Ctor = grpc.makeGenericClientConstructor(serviceDefinition(ServerReflection), "ServerReflection");
    const raw = new Ctor(address, grpc.credentials.createInsecure());
    const call = (
      raw as unknown as {
        serverReflectionInfo: () => grpc.ClientDuplexStream<unknown, ServerReflectionResponse>;
      }
    ).serverReflectionInfo();
    const responses: ServerReflectionResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      call.on("data", (r: ServerReflectionResponse) => responses.push(r));
      call.on("end", resolve);
      call.on("error", reject);
    });
    call.write(
      create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } }),
    );
    call.write(
      create(ServerReflectionRequestSchema, {
        messageRequest: { case: "fileContainingSymbol", value: "valora.example.v1.EchoService.Echo" },
      }),
    );
    call.write(
      create(ServerReflectionRequestSchema, {
        messageRequest: { case: "fileContainingSymbol", value: "no.such.Thing" },
      }),
    );
    call.end();
    await done;
    raw.close();

    const list = responses[0]?.messageResponse;
    expect(list?.case).toBe("listServicesResponse");
    const names = list?.case === "listServicesResponse" ? list.value.service.map((s) => s.name) : [];
    expect(names).toEqual(
      expect.arrayContaining([
        "valora.example.v1.EchoService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
      ]),
    );

    const file = responses[1]?.messageResponse;
    expect(file?.case).toBe("fileDescriptorResponse");
    const protos =
      file?.case === "fileDescriptorResponse"
        ? file.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b))
        : [];
    expect(protos[0]?.name).toBe("valora/example/v1/echo.proto");
    expect(protos[0]?.service[0]?.method.map((m) => m.name)).toEqual(["Echo", "Count"]);

    const missing = responses[2]?.messageResponse;
    expect(missing?.case).toBe("errorResponse");
  });

  it("exposes /metrics, /healthz and /readyz over HTTP", async () => {
    const ops = createOpsServer({ registry, health, logger });
    const port = await ops.listen(0, "127.0.0.1");
    try {
      const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain("grpc_server_handled_total");
      expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      ready = false;
      const notReady = await fetch(`http://127.0.0.1:${port}/readyz`);
      expect(notReady.status).toBe(503);
      expect(await notReady.json()).toMatchObject({ ready: false, checks: [{ name: "test", ok: false }] });
      expect((await fetch(`http://127.0.0.1:${port}/nope`)).status).toBe(404);
    } finally {
      await ops.close();
    }
  });
});

describe("graceful shutdown", () => {
  it("fails readiness, lets in-flight calls finish, refuses new ones, then exits 0", async () => {
    const { createServiceBase } = await import("@valora/kit");
    const { logger, lines } = captureLogs("echo");
    const exits: number[] = [];
    const base = createServiceBase({
      name: "echo",
      logger,
      registry: createRegistry({ service: "echo", collectDefault: false }),
      exit: (c) => exits.push(c),
    });
    const srv = createGrpcServer({ ...base, services: [echoService()] });
    const port = await srv.listen("127.0.0.1:0");
    base.shutdown.register("grpc", () => srv.shutdown(5000));
    const client = createClient(EchoService, `127.0.0.1:${port}`);
    await client.echo({ message: "warm" });

    const inFlight = client.echo({ message: "in flight", delayMs: 300 });
    await new Promise((r) => setTimeout(r, 50));
    const stopping = base.shutdown.trigger("SIGTERM");
    expect(await base.health.ready()).toBe(false);
    const res = await inFlight;
    expect(res.message).toBe("in flight");
    await stopping;
    await expect(client.echo({ message: "late" }, { timeoutMs: 500 })).rejects.toBeInstanceOf(ValoraError);
    expect(exits).toEqual([0]);
    expect(lines.some((l) => l["msg"] === "shutdown complete")).toBe(true);
    client.close();
  });
});
