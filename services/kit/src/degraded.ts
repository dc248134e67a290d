import type { Logger } from "./logger.js";
import { counter, type Registry } from "./metrics.js";

export interface DegradedLogOptions {
  logger: Logger;
  registry?: Registry;
  /** At most one line per dependency per interval (default 30 s). */
  intervalMs?: number;
  now?: () => number;
}

/** An error's own words for the log line (its message; a JSON form of anything else). */
const describe = (err: unknown): string => {
  if (err instanceof Error) return err.message;
  return typeof err === "string" ? err : JSON.stringify(err);
};

/**
 * Warnings of a degraded mode (a dependency down, the service carrying on without it), logged at
 * most once per dependency per interval with how many happened since the last line, and counted
 * in `valora_degraded_total{dependency}` — an outage under load writes a line every 30 s, not
 * hundreds a second.
 */
export class DegradedLog {
  private readonly last = new Map<string, { at: number; suppressed: number }>();
  private readonly intervalMs: number;
  private readonly now: () => number;
  private readonly total;

  constructor(private readonly o: DegradedLogOptions) {
    this.intervalMs = o.intervalMs ?? 30_000;
    this.now = o.now ?? Date.now;
    this.total = o.registry
      ? counter(
          o.registry,
          "valora_degraded_total",
          "Decisions taken in a degraded mode because a dependency was unavailable",
          ["dependency"],
        )
      : undefined;
  }

  /** Notes one degraded decision; logs it unless this dependency was logged within the interval. */
  note(dependency: string, message: string, err?: unknown): void {
    this.total?.inc({ dependency });
    const now = this.now();
    const seen = this.last.get(dependency);
    if (seen && now - seen.at < this.intervalMs) {
      seen.suppressed++;
      return;
    }
    const since = seen ? { sinceLastLog: seen.suppressed + 1 } : {};
    const reason = err === undefined ? {} : { err: describe(err) };
    this.o.logger.warn({ dependency, ...since, ...reason }, message);
    this.last.set(dependency, { at: now, suppressed: 0 });
  }

  /** The dependency is back: say so once (when it was degraded) and start counting afresh. */
  recovered(dependency: string, message: string): void {
    if (!this.last.delete(dependency)) return;
    this.o.logger.info({ dependency }, message);
  }
}
