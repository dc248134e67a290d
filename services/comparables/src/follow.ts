import type { Logger, Pool, PoolClient } from "@valora/kit";
import type { Sale } from "./engine.js";
import { SALES_CHANNEL, loadSalesSince } from "./store.js";

export interface SalesFollower {
  /** Reads what landed since the last read now (also what a notification triggers). */
  catchUp(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Follows the gold `sales` of an asset class as they land: LISTEN on SALES_CHANNEL for an
 * immediate read, and a poll as the safety net (a notification sent while the connection was
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
  const safeCatchUp = () =>
    void catchUp().catch((err: unknown) =>
      o.logger.warn(
        { err: err instanceof Error ? err.message : String(err), assetClass: o.assetClass },
        "could not read new sales; retrying",
      ),
    );
  let listener: PoolClient | undefined;
  try {
    listener = await o.pool.connect();
    listener.on("notification", (n) => {
      if (n.channel !== SALES_CHANNEL) return;
      try {
        if ((JSON.parse(n.payload ?? "{}") as { assetClass?: string }).assetClass !== o.assetClass) return;
      } catch {
        return;
      }
      safeCatchUp();
    });
    listener.on("error", () => undefined);
    await listener.query(`LISTEN ${SALES_CHANNEL}`);
  } catch (err) {
    listener?.release(true);
    listener = undefined;
    o.logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      "LISTEN unavailable: new sales are picked up by polling",
    );
  }
  const timer = setInterval(safeCatchUp, o.pollMs ?? 5000);
  timer.unref();
  return {
    catchUp,
    async stop() {
      clearInterval(timer);
      await reading?.catch(() => undefined);
      listener?.release(true);
    },
  };
}
