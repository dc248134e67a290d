import { monthIndex, monthOfDate, type Logger } from "@valora/kit";

/** A price level over time: comparable prices move with it between sale and valuation. */
export interface MarketIndex {
  valueAt(date: Date): number | undefined;
}

/**
 * Pure: a contiguous monthly series as an index — the value of a date's month, clamped to the
 * first and last months (no extrapolation beyond the data).
 */
export function monthlyIndex(points: { period: string; value: number }[]): MarketIndex {
  if (points.length === 0) return { valueAt: () => undefined };
  const first = monthIndex(points[0]!.period);
  const values = points.map((p) => p.value);
  return {
    valueAt(date: Date) {
      const i = monthOfDate(date) - first;
      const v = values[Math.max(0, Math.min(values.length - 1, i))];
      return v !== undefined && v > 0 ? v : undefined;
    },
  };
}

/**
 * Keeps the series an AssetPipeline names loaded: fetched at start and every `refreshMs`; while
 * the market-data service cannot answer, the last index stays in use (and without one, comps are
 * simply not time-adjusted — a valuation never fails for want of an index).
 */
export class MarketIndexFeed {
  private index: MarketIndex | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly o: {
      seriesId: string;
      fetch: (id: string) => Promise<{ period: string; value: number }[]>;
      logger: Logger;
      refreshMs?: number;
    },
  ) {}

  current(): MarketIndex | undefined {
    return this.index;
  }

  async refresh(): Promise<boolean> {
    try {
      const points = await this.o.fetch(this.o.seriesId);
      this.index = monthlyIndex(points);
      return true;
    } catch (err) {
      this.o.logger.warn(
        { series: this.o.seriesId, err: err instanceof Error ? err.message : String(err) },
        "market index unavailable; comparables keep the last one (or none)",
      );
      return false;
    }
  }

  start(): void {
    this.timer = setInterval(() => void this.refresh(), this.o.refreshMs ?? 600_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
