import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { MarketDataService } from "@valora/proto/valora/v1/market_pb";
import { implement, type ServiceRegistration } from "@valora/kit";
import type { SeriesCatalog } from "./catalog.js";
import { slicePoints, type ValidSeries } from "./contract.js";

const info = (s: ValidSeries) => ({
  id: s.id,
  title: s.title,
  unit: s.unit,
  frequency: s.frequency,
  source: s.source,
  firstPeriod: s.points[0]?.period ?? "",
  lastPeriod: s.points.at(-1)?.period ?? "",
  assetClass: s.assetClass ?? "",
  area: s.area ?? "",
});

/** valora.v1.MarketDataService over the catalog. */
export function marketDataService(catalog: SeriesCatalog): ServiceRegistration {
  return implement(MarketDataService, {
    async listSeries(req) {
      return { series: (await catalog.list(req.prefix)).map(info) };
    },
    async getSeries(req) {
      const s = await catalog.get(req.id);
      const points = slicePoints(s.points, req.from, req.to);
      const inRange = new Set(points.map((p) => p.period));
      return {
        series: {
          info: info(s),
          points,
          quality: {
            imputedPeriods: s.quality.imputedPeriods.filter((p) => inRange.has(p)),
            dropped: s.quality.dropped,
          },
          fetchedAt: timestampFromDate(s.fetchedAt),
        },
      };
    },
  });
}
