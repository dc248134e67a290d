import type { UsageService } from "@valora/proto/valora/v1/usage_pb";
import { counter, type Client, type Logger, type Registry } from "@valora/kit";
import { meterEvent, openDays } from "./decisions.js";
import type { StripeApi } from "./stripe-api.js";
import type { BillingStore } from "./store.js";

export interface UsageReporterOptions {
  store: BillingStore;
  usage: Pick<Client<typeof UsageService>, "queryUsage">;
  api: StripeApi;
  /** The Stripe meter's event_name. */
  eventName: string;
  logger: Logger;
  registry?: Registry;
  intervalMs?: number;
  now?: () => Date;
}

/**
 * Reports metered usage to Stripe as meter events: for each tenant with a Stripe customer and
 * each open day, the growth of its usage since the last report. The total about to be reported
 * is written down before the event is sent, so a crash in between re-sends the same event (same
 * identifier, de-duplicated by Stripe) rather than a different one: usage is billed once.
 */
export class UsageReporter {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly sent;
  private readonly now: () => Date;

  constructor(private readonly o: UsageReporterOptions) {
    this.now = o.now ?? (() => new Date());
    this.sent = o.registry
      ? counter(o.registry, "valora_billing_meter_events_total", "Meter events sent to Stripe, by result.", [
          "result",
        ])
      : undefined;
  }

  start(): void {
    this.timer = setInterval(
      () =>
        void this.runOnce().catch((err: unknown) =>
          this.o.logger.warn({ err }, "usage report failed; retrying next round"),
        ),
      this.o.intervalMs ?? 60_000,
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  /** One round over every billed tenant; rounds never overlap. Returns the events sent. */
  async runOnce(): Promise<number> {
    if (this.running) await this.running;
    let sent = 0;
    const round = (async () => {
      const days = openDays(this.now());
      for (const account of await this.o.store.accountsWithCustomer()) {
        try {
          sent += await this.reportTenant(account.tenantId, account.customerId!, days);
        } catch (err) {
          this.sent?.inc({ result: "error" });
          this.o.logger.warn(
            { err: err instanceof Error ? err.message : String(err), tenant: account.tenantId },
            "could not report usage to Stripe; retrying next round",
          );
        }
      }
    })();
    this.running = round;
    try {
      await round;
    } finally {
      this.running = undefined;
    }
    return sent;
  }

  private async reportTenant(tenantId: string, customerId: string, days: string[]): Promise<number> {
    const usage = await this.o.usage.queryUsage({ tenantId, from: days[0]!, to: days.at(-1)! });
    const totals = new Map<string, number>();
    for (const d of usage.days) totals.set(d.day, (totals.get(d.day) ?? 0) + Number(d.units));
    const reports = new Map((await this.o.store.reports(tenantId, days)).map((r) => [r.day, r]));
    let sent = 0;
    for (const day of days) {
      const r = reports.get(day);
      let reported = r?.reportedUnits ?? 0;
      // A report interrupted by a crash: send exactly that event again first.
      if (r?.pendingUnits !== null && r?.pendingUnits !== undefined) {
        await this.send(tenantId, customerId, day, reported, r.pendingUnits);
        reported = r.pendingUnits;
        sent++;
      }
      const total = totals.get(day) ?? 0;
      if (total > reported) {
        await this.o.store.markPending(tenantId, day, total);
        await this.send(tenantId, customerId, day, reported, total);
        sent++;
      }
    }
    return sent;
  }

  private async send(
    tenantId: string,
    customerId: string,
    day: string,
    from: number,
    to: number,
  ): Promise<void> {
    await this.o.api.reportUsage(
      this.o.eventName,
      customerId,
      meterEvent(tenantId, day, from, to, this.now()),
    );
    await this.o.store.markReported(tenantId, day, to);
    this.sent?.inc({ result: "sent" });
  }
}
