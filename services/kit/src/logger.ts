import { trace, context as otelContext, isSpanContextValid } from "@opentelemetry/api";
import { pino, type Logger, type DestinationStream, type LevelWithSilent } from "pino";
import { currentRequestContext } from "./context.js";

export type { Logger } from "pino";

export interface LoggerOptions {
  service: string;
  level?: LevelWithSilent;
  /** Where JSON lines go; stdout by default. Tests pass a stream to read them back. */
  destination?: DestinationStream;
}

/**
 * JSON logs: every line carries the service name, and — when inside a request — its requestId and
 * the W3C trace and span ids of the active span, so logs and traces join up.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level ?? "info",
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const fields: Record<string, string> = {};
        const req = currentRequestContext();
        if (req) {
          fields["requestId"] = req.requestId;
          if (req.tenantId) fields["tenantId"] = req.tenantId;
        }
        const span = trace.getSpan(otelContext.active());
        const sc = span?.spanContext();
        if (sc && isSpanContextValid(sc)) {
          fields["traceId"] = sc.traceId;
          fields["spanId"] = sc.spanId;
        }
        return fields;
      },
    },
    options.destination ?? pino.destination({ sync: false }),
  );
}
