import { Writable } from "node:stream";
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { createLogger, type Logger } from "./logger.js";
import { setupTracing } from "./tracing.js";

let exporter: InMemorySpanExporter | undefined;

/** Installs (once per process) a tracer provider that keeps finished spans in memory for assertions. */
export function useInMemoryTracing(): InMemorySpanExporter {
  if (!exporter) {
    exporter = new InMemorySpanExporter();
    setupTracing({ service: "test", processors: [new SimpleSpanProcessor(exporter)] });
  }
  return exporter;
}

/** A logger whose JSON lines are kept in memory, parsed. */
export function captureLogs(service = "test"): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ service, level: "debug", destination }), lines };
}
