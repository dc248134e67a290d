import { DegradedLog, listenWithReconnect, type Logger, type Pool } from "@valora/kit";
import type { Sale } from "./engine.js";
import { SALES_CHANNEL, loadSalesSince } from "./store.js";

export interface SalesFollower {
  /** Reads what landed since the last read now (also what a notification triggers). */
  catchUp(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Follows the gold `sales` of an asset class as they land: LISTEN on SALES_CHANNEL for an
 * immediate read (re-established after a database restart, with a read of what was missed), and a
 * poll as the safety net (a notification sent while the connection was
 * down is never redelivered; some servers, like the embedded one, do not deliver them across
 * connections). Reads are incremental by landing sequence, so nothing is read twice.
 */
export async function followSales(o: {
  pool: Pool;
  assetClass: string;
  fromSeq: number;
  onSales: (sales: Sale[]) => void;
  logger: Logger;
  pollMs?: number;
  /** Rate-limited warnings while the database is away (default: one on `logger`). */
  degraded?: DegradedLog;
}): Promise<SalesFollower> {
  let seq = o.fromSeq;
  let reading: Promise<number> | undefined;
  const catchUp = (): Promise<number> => {
    reading ??= (async () => {
      try {
        const next = await loadSalesSince(o.pool, o.assetClass, seq);
        seq = next.seq;
        if (next.sales.length > 0) o.onSales(next.sales);
        return next.sales.length;
      } finally {
        reading = undefined;
      }
    })();
    return reading;
  };
  const degraded = o.degraded ?? new DegradedLog({ logger: o.logger });
  const safeCatchUp = () =>
    void catchUp().then(
      () => degraded.recovered("postgres-sales", "reading new sales again"),
      (err: unknown) => degraded.note("postgres-sales", "could not read new sales; retrying", err),
    );
  const listener = listenWithReconnect({
    pool: o.pool,
    channels: [SALES_CHANNEL],
    degraded,
    onNotification: (n) => {
      if (n.channel !== SALES_CHANNEL) return;
      try {
        if ((JSON.parse(n.payload ?? "{}") as { assetClass?: string }).assetClass !== o.assetClass) return;
      } catch {
        return;
      }
      safeCatchUp();
    },
    // Sales that landed while the connection was down were announced to nobody: read them now.
    onListening: safeCatchUp,
  });
  const timer = setInterval(safeCatchUp, o.pollMs ?? 5000);
  timer.unref();
  return {
    catchUp,
    async stop() {
      clearInterval(timer);
      await reading?.catch(() => undefined);
      await listener.stop();
    },
  };
}
