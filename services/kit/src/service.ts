import type { Tracer } from "@opentelemetry/api";
import type { LevelWithSilent } from "pino";
import type { Registry } from "prom-client";
import { DegradedLog } from "./degraded.js";
import { Health } from "./health.js";
import { createLogger, type Logger } from "./logger.js";
import { createRegistry } from "./metrics.js";
import { createShutdown, type Shutdown } from "./shutdown.js";
import { setupTracing } from "./tracing.js";

/** The cross-cutting parts every service instance gets, built once and passed to its components. */
export interface ServiceBase {
  name: string;
  logger: Logger;
  registry: Registry;
  tracer: Tracer;
  health: Health;
  shutdown: Shutdown;
  /** Rate-limited warnings of degraded modes (a dependency down), one per process. */
  degraded: DegradedLog;
}

export interface ServiceBaseOptions {
  name: string;
  logLevel?: LevelWithSilent;
  logger?: Logger;
  registry?: Registry;
  drainDelayMs?: number;
  exit?: (code: number) => void;
}

export function createServiceBase(options: ServiceBaseOptions): ServiceBase {
  const logger = options.logger ?? createLogger({ service: options.name, level: options.logLevel ?? "info" });
  const tracing = setupTracing({ service: options.name });
  // Exemplars (trace ids on latency buckets) need OpenMetrics text: only when traces go somewhere.
  const registry =
    options.registry ?? createRegistry({ service: options.name, openMetrics: tracing.exporting });
  const health = new Health();
  const shutdown = createShutdown({
    logger,
    health,
    drainDelayMs: options.drainDelayMs ?? 0,
    exit: options.exit,
    finalize: () => tracing.shutdown(),
  });
  exitWithParent(shutdown, logger);
  const degraded = new DegradedLog({ logger, registry });
  return { name: options.name, logger, registry, tracer: tracing.tracer, health, shutdown, degraded };
}

/**
 * Processes `valora up` runs as pods (VALORA_EXIT_WITH_PARENT=1) shut down when it is gone, even
 * killed with SIGKILL, instead of living on as orphans holding memory and ports.
 */
function exitWithParent(shutdown: Shutdown, logger: Logger): void {
  if (process.env["VALORA_EXIT_WITH_PARENT"] !== "1") return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    logger.warn({ parent }, "parent process exited; shutting down");
    void shutdown.trigger("parent exited");
  }, 1000);
  timer.unref();
}
