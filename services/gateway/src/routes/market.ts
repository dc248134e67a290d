import type { FastifyPluginAsync } from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { MarketDataService, SeriesInfo } from "@valora/proto/valora/v1/market_pb";
import { okEnvelope, type Client } from "@valora/kit";
import { ROLE_SETS } from "../auth.js";
import { ErrorEnvelope, envelopeOf } from "../schemas.js";

const Info = z.object({
  id: z.string(),
  title: z.string(),
  unit: z.string(),
  frequency: z.string(),
  source: z.string(),
  firstPeriod: z.string(),
  lastPeriod: z.string(),
  assetClass: z.string().nullable(),
  area: z.string().nullable(),
});
const infoJson = (i: SeriesInfo | undefined) => ({
  id: i?.id ?? "",
  title: i?.title ?? "",
  unit: i?.unit ?? "",
  frequency: i?.frequency ?? "",
  source: i?.source ?? "",
  firstPeriod: i?.firstPeriod ?? "",
  lastPeriod: i?.lastPeriod ?? "",
  assetClass: i?.assetClass || null,
  area: i?.area || null,
});
const Series = Info.extend({
  points: z.array(z.object({ period: z.string(), value: z.number(), imputed: z.boolean() })),
  quality: z.object({ imputedPeriods: z.array(z.string()), dropped: z.array(z.string()) }),
  fetchedAt: z.string().nullable(),
});
const Period = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, "a month YYYY-MM");

/** Market series: monthly indices and counts from providers and from the platform's own sales. */
export const marketRoutes: FastifyPluginAsync<{
  market: Client<typeof MarketDataService>;
  timeoutMs: number;
}> = async (fastify, o) => {
  const app = fastify.withTypeProvider<ZodTypeProvider>();
  app.get(
    "/v1/market/series",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["market"],
        summary: "Market series on offer",
        querystring: z.strictObject({ prefix: z.string().max(200).optional() }),
        response: { 200: envelopeOf(z.array(Info)), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const { series } = await o.market.listSeries(
        { prefix: req.query.prefix ?? "" },
        { timeoutMs: o.timeoutMs },
      );
      return okEnvelope(series.map(infoJson), req.id);
    },
  );
  app.get(
    "/v1/market/series/:id",
    {
      config: { roles: ROLE_SETS.read },
      schema: {
        tags: ["market"],
        summary: "One validated monthly series (gaps interpolated and flagged)",
        params: z.strictObject({ id: z.string().min(1).max(200) }),
        querystring: z.strictObject({ from: Period.optional(), to: Period.optional() }),
        response: { 200: envelopeOf(Series), "4xx": ErrorEnvelope },
      },
    },
    async (req) => {
      const { series } = await o.market.getSeries(
        { id: req.params.id, from: req.query.from ?? "", to: req.query.to ?? "" },
        { timeoutMs: o.timeoutMs },
      );
      return okEnvelope(
        {
          ...infoJson(series?.info),
          points: (series?.points ?? []).map((p) => ({
            period: p.period,
            value: p.value,
            imputed: p.imputed,
          })),
          quality: {
            imputedPeriods: series?.quality?.imputedPeriods ?? [],
            dropped: series?.quality?.dropped ?? [],
          },
          fetchedAt: series?.fetchedAt ? timestampDate(series.fetchedAt).toISOString() : null,
        },
        req.id,
      );
    },
  );
};
