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
  const loop = (async () => {
    let lastWarn = 0;
    while (!stopped) {
      try {
        await step();
      } catch (err) {
        if (Date.now() - lastWarn > 30_000) {
          lastWarn = Date.now();
          o.logger.warn({ err: err instanceof Error ? err.message : String(err) }, o.message);
        }
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
