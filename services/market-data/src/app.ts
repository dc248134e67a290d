import type { Logger, Pool, ServiceRegistration } from "@valora/kit";
import { SeriesCatalog } from "./catalog.js";
import type { SeriesContract } from "./contract.js";
import {
  TEXAS_HOUSING,
  csvProvider,
  fileSource,
  httpSource,
  jsonProvider,
  type SeriesProvider,
} from "./providers.js";
import { DEFAULT_SALES_INDEX, salesIndexProvider, type SalesIndexOptions } from "./sales-index.js";
import { marketDataService } from "./service.js";

export interface MarketDataOptions {
  /** The comparables' sales table, for the platform's own price indices. */
  pool?: Pool;
  salesIndex?: SalesIndexOptions;
  /** Path of the Texas housing CSV (the default file feed). */
  texasHousingCsv?: string;
  /** JSON documents of series on disk. */
  jsonFiles?: string[];
  /** HTTP feeds: JSON series documents, or wide CSV in the Texas housing layout when the URL ends in .csv. */
  httpFeeds?: string[];
  allowedHosts?: string[];
  ttlMs?: number;
  contract?: SeriesContract;
}

export interface MarketDataApp {
  service: ServiceRegistration;
  catalog: SeriesCatalog;
}

/** The market-data service from its dependencies; `main` and `valora up` both use it. */
export function createMarketData(base: { logger: Logger }, o: MarketDataOptions): MarketDataApp {
  const providers: SeriesProvider[] = [];
  if (o.pool) providers.push(salesIndexProvider(o.pool, o.salesIndex ?? DEFAULT_SALES_INDEX));
  if (o.texasHousingCsv)
    providers.push(csvProvider("file:txhousing", fileSource(o.texasHousingCsv), TEXAS_HOUSING));
  for (const f of o.jsonFiles ?? []) providers.push(jsonProvider(`file:${f}`, fileSource(f)));
  for (const u of o.httpFeeds ?? []) {
    const source = httpSource(u, { allowedHosts: o.allowedHosts ?? [] });
    providers.push(
      new URL(u).pathname.endsWith(".csv")
        ? csvProvider(`http:${u}`, source, TEXAS_HOUSING)
        : jsonProvider(`http:${u}`, source),
    );
  }
  const catalog = new SeriesCatalog({
    providers,
    logger: base.logger,
    ...(o.ttlMs ? { ttlMs: o.ttlMs } : {}),
    ...(o.contract ? { contract: o.contract } : {}),
  });
  return { service: marketDataService(catalog), catalog };
}
