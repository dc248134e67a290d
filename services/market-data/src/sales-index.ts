import { latLngToCell } from "h3-js";
import { monthIndex, periodOf, type Pool } from "@valora/kit";
import type { RawSeries } from "./contract.js";
import type { SeriesProvider } from "./providers.js";

export interface SalePoint {
  assetClass: string;
  soldAt: string;
  price: number;
  lat?: number;
  lon?: number;
}

export interface SalesIndexOptions {
  /** H3 resolution of the areas that get their own index. */
  h3Resolution: number;
  /** Sales a month needs within the trailing window to have a value (fewer: a gap). */
  minSalesPerWindow: number;
  /** Sales an area needs overall to get its own series. */
  minAreaSales: number;
  /** Trailing window in months over which the median is taken. */
  windowMonths: number;
}

export const DEFAULT_SALES_INDEX: SalesIndexOptions = {
  h3Resolution: 6,
  minSalesPerWindow: 10,
  minAreaSales: 300,
  windowMonths: 3,
};

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Pure: a median-price index from sales — for each month, the median price of the sales of the
 * trailing window, scaled so that the first month with a value is 100. Months whose window holds
 * too few sales have no value (the series contract interpolates short gaps, refuses long ones).
 */
export function priceIndex(
  sales: { soldAt: string; price: number }[],
  o: Pick<SalesIndexOptions, "minSalesPerWindow" | "windowMonths">,
): { period: string; value: number | null }[] {
  if (sales.length === 0) return [];
  const byMonth = new Map<number, number[]>();
  for (const s of sales) {
    const m = monthIndex(s.soldAt);
    const list = byMonth.get(m) ?? [];
    list.push(s.price);
    byMonth.set(m, list);
  }
  const months = [...byMonth.keys()];
  const first = Math.min(...months);
  const last = Math.max(...months);
  const out: { period: string; value: number | null }[] = [];
  let base: number | undefined;
  for (let m = first; m <= last; m++) {
    const window: number[] = [];
    for (let k = m - o.windowMonths + 1; k <= m; k++) window.push(...(byMonth.get(k) ?? []));
    if (window.length < o.minSalesPerWindow) {
      out.push({ period: periodOf(m), value: null });
      continue;
    }
    const med = median(window);
    base ??= med;
    out.push({ period: periodOf(m), value: Math.round((1000 * 100 * med) / base) / 1000 });
  }
  return out;
}

/** Pure: the index series of each asset class, and of each area (H3 cell) with enough sales. */
export function salesIndexSeries(
  sales: SalePoint[],
  o: SalesIndexOptions = DEFAULT_SALES_INDEX,
): RawSeries[] {
  const groups = new Map<string, { assetClass: string; area?: string; sales: SalePoint[] }>();
  const add = (key: string, assetClass: string, s: SalePoint, area?: string) => {
    const g = groups.get(key) ?? { assetClass, ...(area ? { area } : {}), sales: [] };
    g.sales.push(s);
    groups.set(key, g);
  };
  for (const s of sales) {
    add(`sales-index.${s.assetClass}`, s.assetClass, s);
    if (s.lat !== undefined && s.lon !== undefined) {
      const cell = latLngToCell(s.lat, s.lon, o.h3Resolution);
      add(`sales-index.${s.assetClass}.${cell}`, s.assetClass, s, cell);
    }
  }
  return [...groups.entries()]
    .filter(([, g]) => g.area === undefined || g.sales.length >= o.minAreaSales)
    .map(([id, g]) => ({
      id,
      title: `Median sale price index of ${g.assetClass}${g.area ? ` in H3 cell ${g.area}` : ""} (${o.windowMonths}-month trailing median, first month = 100)`,
      unit: "index" as const,
      frequency: "monthly" as const,
      source: "sales",
      assetClass: g.assetClass,
      ...(g.area ? { area: g.area } : {}),
      points: priceIndex(g.sales, o),
    }))
    .filter((s) => s.points.length > 0);
}

/** The platform's own sales (the comparables' `sales` table) as index series. */
export function salesIndexProvider(pool: Pool, o: SalesIndexOptions = DEFAULT_SALES_INDEX): SeriesProvider {
  return {
    name: "sales",
    async load() {
      const { rows } = await pool.query<{
        asset_class: string;
        sold_at: string;
        price: number;
        lat: number | null;
        lon: number | null;
      }>(
        "SELECT asset_class, to_char(sold_at, 'YYYY-MM-DD') AS sold_at, price, lat, lon FROM sales WHERE sold_at IS NOT NULL",
      );
      return salesIndexSeries(
        rows.map((r) => ({
          assetClass: r.asset_class,
          soldAt: r.sold_at,
          price: r.price,
          ...(r.lat !== null && r.lon !== null ? { lat: r.lat, lon: r.lon } : {}),
        })),
        o,
      );
    },
  };
}
