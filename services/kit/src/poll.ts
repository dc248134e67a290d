import { DegradedLog } from "./degraded.js";
import type { Logger } from "./logger.js";

/**
 * Runs `step` now and then every `intervalMs` after it finishes, until stopped. A failing step is
 * logged with `message` at most every 30 s and retried at the next tick (level-triggered readers
 * of the Kubernetes API keep their last good state meanwhile). `stop` resolves once the step in
 * progress has ended.
 */
export function pollEvery(
  step: () => Promise<void>,
  o: { intervalMs: number; logger: Logger; message: string },
): { stop(): Promise<void> } {
  let stopped = false;
  let wake: (() => void) | undefined;
  const failures = new DegradedLog({ logger: o.logger });
  const loop = (async () => {
    while (!stopped) {
      try {
        await step();
      } catch (err) {
        failures.note(o.message, o.message, err);
      }
      if (!stopped) await new Promise<void>((r) => ((wake = r), setTimeout(r, o.intervalMs)));
    }
  })();
  return {
    async stop() {
      stopped = true;
      wake?.();
      await loop;
    },
  };
}
