import { randomUUID } from "node:crypto";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { UsageEventSchema } from "@valora/proto/valora/v1/usage_pb";
import type { Logger } from "./logger.js";
import { counter, gauge, type Registry } from "./metrics.js";

type UsageEventInit = MessageInitShape<typeof UsageEventSchema>;

export interface UsageRecorderOptions {
  /** UsageService/RecordUsage (or anything that durably records the events). */
  send: (events: UsageEventInit[]) => Promise<unknown>;
  logger: Logger;
  registry?: Registry;
  /** How often events that could not be sent are retried, with the same idempotency keys. */
  retryMs?: number;
  /** Events kept for retry at most; beyond this the oldest are dropped (and counted). */
  maxUnsent?: number;
  now?: () => Date;
}

interface Pending {
  units: number;
  at: Date;
  tenantId: string;
  assetClass: string;
  kind: string;
}

/**
 * Meters usage with group commit: every `record` waits until its units are durably recorded,
 * but concurrent records share one call (those arriving while a call is in flight go in the
 * next one, summed per tenant, class, kind and day under a fresh idempotency key). An idle
 * caller pays one round trip; under load the calls stay few. When the usage service cannot be
 * reached the answer is not held back: the keyed events are kept and retried until they land,
 * so nothing is counted twice and nothing is lost short of a crash of this process.
 */
export class UsageRecorder {
  private pending = new Map<string, Pending>();
  private waiters: (() => void)[] = [];
  private unsent: UsageEventInit[] = [];
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private lastWarn = 0;
  private readonly metrics;
  private readonly now: () => Date;

  constructor(private readonly o: UsageRecorderOptions) {
    this.now = o.now ?? (() => new Date());
    this.metrics = o.registry
      ? {
          unsent: gauge(
            o.registry,
            "valora_usage_unsent_events",
            "Usage events waiting to be retried because the usage service was unreachable.",
            [],
          ),
          dropped: counter(
            o.registry,
            "valora_usage_dropped_events_total",
            "Usage events dropped because too many were waiting.",
            [],
          ),
        }
      : undefined;
  }

  /** Counts `units` of `kind` for a tenant and asset class; resolves once recorded (or queued for retry). */
  record(tenantId: string, assetClass: string, kind: string, units: number): Promise<void> {
    if (units <= 0) return Promise.resolve();
    const at = this.now();
    const k = `${tenantId}\u0000${assetClass}\u0000${kind}\u0000${at.toISOString().slice(0, 10)}`;
    const p = this.pending.get(k);
    if (p) p.units += units;
    else this.pending.set(k, { units, at, tenantId, assetClass, kind });
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    void this.kick();
    return done;
  }

  /** Sends everything pending or unsent now (shutdown, tests); returns early while the service is down. */
  async flush(): Promise<void> {
    for (;;) {
      while (this.inFlight) await this.inFlight;
      if (this.pending.size === 0 && this.unsent.length === 0) return;
      await this.kick(true);
      if (this.unsent.length > 0 && this.pending.size === 0) return;
    }
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.flush();
    if (this.unsent.length > 0)
      this.o.logger.error(
        { events: this.unsent.length },
        "usage events could not be recorded before shutdown",
      );
  }

  /** Starts a send unless one is in flight; returns the send it started. */
  private kick(includeUnsent = false): Promise<void> | undefined {
    if (this.inFlight) return undefined;
    if (this.pending.size === 0 && !(includeUnsent && this.unsent.length > 0)) return undefined;
    const sending = this.send(includeUnsent).finally(() => {
      this.inFlight = undefined;
      void this.kick();
    });
    this.inFlight = sending;
    return sending;
  }

  private async send(includeUnsent: boolean): Promise<void> {
    const waiters = this.waiters;
    this.waiters = [];
    const events: UsageEventInit[] = [...this.pending.values()].map((p) => ({
      idempotencyKey: `u-${randomUUID()}`,
      tenantId: p.tenantId,
      assetClass: p.assetClass,
      kind: p.kind,
      units: BigInt(p.units),
      at: timestampFromDate(p.at),
    }));
    this.pending = new Map();
    const retry = includeUnsent ? this.unsent : [];
    if (includeUnsent) this.unsent = [];
    const batch = [...retry, ...events];
    try {
      await this.o.send(batch);
    } catch (err) {
      this.unsent.push(...batch);
      const over = this.unsent.length - (this.o.maxUnsent ?? 100_000);
      if (over > 0) {
        this.unsent.splice(0, over);
        this.metrics?.dropped.inc(over);
      }
      if (Date.now() - this.lastWarn > 30_000) {
        this.lastWarn = Date.now();
        this.o.logger.warn(
          { err: err instanceof Error ? err.message : String(err), unsent: this.unsent.length },
          "usage service unreachable: events kept for retry",
        );
      }
      this.scheduleRetry();
    } finally {
      this.metrics?.unsent.set(this.unsent.length);
      for (const w of waiters) w();
    }
  }

  private scheduleRetry(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.inFlight) void this.kick(true);
      else this.scheduleRetry();
    }, this.o.retryMs ?? 5_000);
    this.timer.unref();
  }
}
