import type { Health } from "./health.js";
import type { Logger } from "./logger.js";

export interface ShutdownStep {
  name: string;
  run: () => Promise<void>;
}

export interface ShutdownOptions {
  logger: Logger;
  health?: Health;
  /**
   * Time between failing readiness and stopping servers, so endpoints controllers and load
   * balancers stop routing here before listeners close (Kubernetes does not wait for readiness).
   */
  drainDelayMs?: number;
  /** Upper bound for each step. */
  stepTimeoutMs?: number;
  /** Runs after every registered step (flushing spans, say). */
  finalize?: () => Promise<void>;
  /** Called once everything ran; `process.exit` in production, a spy in tests. */
  exit?: (code: number) => void;
}

export interface Shutdown {
  /** Steps run in registration order: register servers (stop accepting, drain) before pools. */
  register(name: string, run: () => Promise<void>): void;
  trigger(reason: string): Promise<void>;
  installSignalHandlers(): void;
  readonly started: boolean;
}

/** Graceful shutdown on SIGTERM/SIGINT: fail readiness, wait, stop accepting and drain, close pools. */
export function createShutdown(options: ShutdownOptions): Shutdown {
  const steps: ShutdownStep[] = [];
  const stepTimeoutMs = options.stepTimeoutMs ?? 25_000;
  let running: Promise<void> | undefined;

  const runStep = async (step: ShutdownStep): Promise<boolean> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        step.run(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${stepTimeoutMs} ms`)), stepTimeoutMs);
        }),
      ]);
      options.logger.info({ step: step.name }, "shutdown step done");
      return true;
    } catch (err) {
      options.logger.error({ err, step: step.name }, "shutdown step failed");
      return false;
    } finally {
      clearTimeout(timer);
    }
  };

  const trigger = (reason: string): Promise<void> => {
    running ??= (async () => {
      options.logger.info({ reason }, "shutting down");
      options.health?.setShuttingDown();
      if (options.drainDelayMs) await new Promise((r) => setTimeout(r, options.drainDelayMs));
      let ok = true;
      for (const step of steps) ok = (await runStep(step)) && ok;
      if (options.finalize) ok = (await runStep({ name: "finalize", run: options.finalize })) && ok;
      options.logger.info({ ok }, "shutdown complete");
      options.logger.flush();
      options.exit?.(ok ? 0 : 1);
    })();
    return running;
  };

  return {
    register: (name, run) => {
      steps.push({ name, run });
    },
    trigger,
    installSignalHandlers: () => {
      for (const signal of ["SIGTERM", "SIGINT"] as const) {
        process.once(signal, () => void trigger(signal));
      }
    },
    get started() {
      return running !== undefined;
    },
  };
}
