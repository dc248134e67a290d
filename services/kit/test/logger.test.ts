import { trace, context } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { runWithRequestContext, requestIdFrom } from "@valora/kit";
import { captureLogs, useInMemoryTracing } from "@valora/kit/testing";

describe("logger", () => {
  it("writes JSON lines with service, requestId and the active trace and span ids", async () => {
    useInMemoryTracing();
    const { logger, lines } = captureLogs("unit");
    const span = trace.getTracer("t").startSpan("op");
    runWithRequestContext({ requestId: "req-42", tenantId: "acme" }, () =>
      context.with(trace.setSpan(context.active(), span), () => logger.info({ answer: 42 }, "hello")),
    );
    span.end();
    logger.info("outside");
    logger.flush();
    await new Promise((r) => setImmediate(r));
    expect(lines[0]).toMatchObject({
      level: "info",
      service: "unit",
      requestId: "req-42",
      tenantId: "acme",
      traceId: span.spanContext().traceId,
      spanId: span.spanContext().spanId,
      answer: 42,
      msg: "hello",
    });
    expect(span.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(lines[1]).not.toHaveProperty("requestId");
    expect(lines[1]).not.toHaveProperty("traceId");
  });

  it("accepts safe caller request ids and replaces unsafe ones", () => {
    expect(requestIdFrom("abc-123")).toBe("abc-123");
    expect(requestIdFrom("evil\nline")).toMatch(/^[0-9a-f-]{36}$/);
    expect(requestIdFrom(undefined)).toMatch(/^[0-9a-f-]{36}$/);
  });
});
