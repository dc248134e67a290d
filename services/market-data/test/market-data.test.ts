import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MarketDataService } from "@valora/proto/valora/v1/market_pb";
import { TenantService, Role } from "@valora/proto/valora/v1/tenants_pb";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import {
  createClient,
  createGrpcServer,
  createPgPool,
  createServiceBase,
  type Client,
  type GrpcServer,
  type Pool,
  type ValoraError,
} from "@valora/kit";
import { captureLogs, freshDatabase } from "@valora/kit/testing";
import { ComparablesIndex, insertSales, migrateSales, type Sale } from "@valora/comparables";
import { MarketIndexFeed } from "@valora/pipeline";
import { createTenants } from "@valora/tenants";
import { Authenticator, LocalRateLimiter, buildGateway } from "@valora/gateway";
import {
  SeriesCatalog,
  TEXAS_HOUSING,
  applyContract,
  createMarketData,
  httpSource,
  jsonProvider,
  priceIndex,
  seriesFromCsv,
  slicePoints,
} from "../src/index.js";

const root = join(import.meta.dirname, "..", "..", "..");
const { logger } = captureLogs("market");
const series = (points: [string, number | null][], over: Record<string, unknown> = {}) => ({
  id: "test.series",
  title: "Test",
  unit: "USD",
  frequency: "monthly",
  source: "test",
  points: points.map(([period, value]) => ({ period, value })),
  ...over,
});
const refusal = (f: () => unknown): { code: string; field: string | undefined; message: string } => {
  try {
    f();
  } catch (e) {
    const v = e as ValoraError;
    return { code: v.code, field: v.details[0]?.field, message: v.message };
  }
  throw new Error("not refused");
};

describe("series contract (pure)", () => {
  it("interpolates short gaps and flags them, sorts months, and drops invalid values with the reason", () => {
    const s = applyContract(
      series([
        ["2020-04", 130],
        ["2020-01", 100],
        ["2020-02", null],
        ["2020-05", -1],
        ["2020-06", 150],
      ]),
    );
    expect(s.points).toEqual([
      { period: "2020-01", value: 100, imputed: false },
      { period: "2020-02", value: 110, imputed: true },
      { period: "2020-03", value: 120, imputed: true },
      { period: "2020-04", value: 130, imputed: false },
      { period: "2020-05", value: 140, imputed: true },
      { period: "2020-06", value: 150, imputed: false },
    ]);
    expect(s.quality).toEqual({
      imputedPeriods: ["2020-02", "2020-03", "2020-05"],
      dropped: ["2020-05: -1 is not a finite non-negative value"],
    });
  });

  it("refuses long gaps, duplicate months, bad periods, unknown units and too few points, naming the field", () => {
    expect(
      refusal(() =>
        applyContract(
          series([
            ["2020-01", 1],
            ["2020-06", 2],
            ["2020-07", 3],
          ]),
        ),
      ),
    ).toMatchObject({
      code: "FAILED_PRECONDITION",
      field: "series.points",
      message: expect.stringContaining("4 months missing after 2020-01"),
    });
    expect(
      refusal(() =>
        applyContract(
          series([
            ["2020-01", 1],
            ["2020-01", 2],
            ["2020-02", 3],
          ]),
        ),
      ).field,
    ).toBe("series.points.period");
    expect(
      refusal(() =>
        applyContract(
          series([
            ["2020-13", 1],
            ["2020-01", 2],
            ["2020-02", 3],
          ]),
        ),
      ).field,
    ).toBe("series.points.period");
    expect(refusal(() => applyContract(series([["2020-01", 1]], { unit: "dollars" }))).field).toBe(
      "series.unit",
    );
    expect(
      refusal(() =>
        applyContract(
          series([
            ["2020-01", 1],
            ["2020-02", null],
          ]),
        ),
      ).message,
    ).toContain("1 valid points");
    expect(refusal(() => applyContract({ ...series([["2020-01", 1]]), extra: 1 })).code).toBe(
      "FAILED_PRECONDITION",
    );
  });

  it("slices by month and refuses malformed bounds", () => {
    const s = applyContract(
      series([
        ["2020-01", 1],
        ["2020-02", 2],
        ["2020-03", 3],
      ]),
    );
    expect(slicePoints(s.points, "2020-02", "").map((p) => p.period)).toEqual(["2020-02", "2020-03"]);
    expect(refusal(() => slicePoints(s.points, "2020-2", "")).field).toBe("from");
    expect(refusal(() => slicePoints(s.points, "2020-03", "2020-01")).field).toBe("from");
  });

  it("reads the Texas housing feed: one series per city and measure, its NA gaps filled or the series quarantined", () => {
    const raw = seriesFromCsv(
      readFileSync(join(root, "models", "data", "txhousing.csv"), "utf8"),
      TEXAS_HOUSING,
      "file",
    );
    expect(raw).toHaveLength(46 * 5);
    const results = raw.map((r) => {
      try {
        return applyContract(r);
      } catch (e) {
        return e as ValoraError;
      }
    });
    const ok = results.filter((r): r is ReturnType<typeof applyContract> => !(r instanceof Error));
    expect(ok.length).toBeGreaterThan(150);
    expect(results.length - ok.length).toBeGreaterThan(0); // some cities' listings start years late or stop for years
    const austin = ok.find((s) => s.id === "txhousing.austin.median")!;
    expect(austin).toMatchObject({ unit: "USD", area: "Austin" });
    expect(austin.points[0]).toEqual({ period: "2000-01", value: 133700, imputed: false });
    const abilene = ok.find((s) => s.id === "txhousing.abilene.listings")!;
    expect(abilene.quality.imputedPeriods).toContain("2006-03");
  });

  it("builds a trailing-median price index that starts at 100, with gaps where sales are too few", () => {
    const sales = [
      ...[100, 110, 120].map((price) => ({ soldAt: "2020-01-10", price })),
      ...[130, 140, 150].map((price) => ({ soldAt: "2020-02-10", price })),
      ...[200].map((price) => ({ soldAt: "2020-05-10", price })),
    ];
    expect(priceIndex(sales, { minSalesPerWindow: 3, windowMonths: 2 })).toEqual([
      { period: "2020-01", value: 100 },
      { period: "2020-02", value: 113.636 }, // window Jan-Feb: median of 100..150 = 125, over 110
      { period: "2020-03", value: 127.273 }, // window Feb-Mar: 140
      { period: "2020-04", value: null },
      { period: "2020-05", value: null },
    ]);
  });
});

describe("market feeds over HTTP", () => {
  let status = 200;
  let body = "";
  const server = createServer((_req, res) =>
    res.writeHead(status, { "content-type": "application/json" }).end(body),
  );
  let host = "";
  beforeAll(async () => {
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it("refuses hosts off the allow-list before any request", () => {
    expect(
      refusal(() => httpSource(`http://${host}/series.json`, { allowedHosts: ["data.example.com"] })).code,
    ).toBe("PERMISSION_DENIED");
    expect(refusal(() => httpSource("file:///etc/passwd", { allowedHosts: [] })).code).toBe(
      "INVALID_ARGUMENT",
    );
  });

  it("serves validated series, keeps the last good copy while the feed fails, and quarantines contract breakers", async () => {
    body = JSON.stringify({
      series: [
        series(
          [
            ["2021-01", 5],
            ["2021-02", 6],
            ["2021-03", 7],
          ],
          { id: "feed.good" },
        ),
        series(
          [
            ["2021-01", 5],
            ["2021-09", 6],
            ["2021-10", 7],
          ],
          { id: "feed.gappy" },
        ),
      ],
    });
    const catalog = new SeriesCatalog({
      providers: [jsonProvider("http", httpSource(`http://${host}/series.json`, { allowedHosts: [host] }))],
      logger,
      ttlMs: 50,
    });
    expect((await catalog.get("feed.good")).points.map((p) => p.value)).toEqual([5, 6, 7]);
    await expect(catalog.get("feed.gappy")).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
    await expect(catalog.get("feed.none")).rejects.toMatchObject({ code: "NOT_FOUND" });
    status = 500;
    await new Promise((r) => setTimeout(r, 80));
    expect((await catalog.get("feed.good")).points).toHaveLength(3);
    expect((await catalog.list("feed.")).map((s) => s.id)).toEqual(["feed.good"]);
    status = 200;
    body = JSON.stringify([
      series(
        [
          ["2021-01", 5],
          ["2021-02", 6],
          ["2021-03", 7],
          ["2021-04", 8],
        ],
        { id: "feed.good" },
      ),
    ]);
    await new Promise((r) => setTimeout(r, 80));
    await catalog.get("feed.good"); // a stale read triggers the refresh
    await expect.poll(async () => (await catalog.get("feed.good")).points.length).toBe(4);
  });
});

const url = process.env["DATABASE_URL"];
describe.skipIf(!url)("market-data service with the platform's own sales (real Postgres)", () => {
  let db: { url: string; drop: () => Promise<void> };
  let pool: Pool;
  let server: GrpcServer;
  let market: Client<typeof MarketDataService>;
  let gateway: Awaited<ReturnType<typeof buildGateway>>;
  let key = "";
  const base = createServiceBase({ name: "market-test", logger });
  // Two years of sales around one spot whose prices rise 1% a month.
  const sales: Sale[] = Array.from({ length: 24 * 12 }, (_, i) => {
    const month = Math.floor(i / 12);
    return {
      id: `s${i}`,
      price: Math.round(200_000 * 1.01 ** month * (0.9 + (i % 12) / 55)),
      soldAt: `${2018 + Math.floor(month / 12)}-${String((month % 12) + 1).padStart(2, "0")}-15`,
      lat: 42.03 + (i % 7) * 0.001,
      lon: -93.62 + (i % 5) * 0.001,
      attributes: { area: 1000 + (i % 12) * 20 },
    };
  });

  beforeAll(async () => {
    db = await freshDatabase(url!);
    pool = createPgPool({ url: db.url, max: 4 });
    await migrateSales(pool);
    await insertSales(pool, "homes", sales);
    const app = createMarketData(base, {
      pool,
      texasHousingCsv: join(root, "models", "data", "txhousing.csv"),
      salesIndex: { h3Resolution: 6, minSalesPerWindow: 10, minAreaSales: 100, windowMonths: 3 },
    });
    const tenantsApp = createTenants(base, { pool, webhooks: { allowHttp: true, allowPrivate: true } });
    await tenantsApp.start();
    server = createGrpcServer({ ...base, services: [app.service, tenantsApp.service] });
    const address = `127.0.0.1:${await server.listen("127.0.0.1:0")}`;
    market = createClient(MarketDataService, address, { timeoutMs: 10_000 });
    const tenants = createClient(TenantService, address, { timeoutMs: 10_000 });
    gateway = await buildGateway({
      base,
      tenants,
      market,
      valuations: createClient(ValuationService, "127.0.0.1:1"),
      auth: new Authenticator({ tenants }),
      limiter: new LocalRateLimiter(),
    });
    const { tenant } = await tenants.createTenant({ name: "mkt", plan: "pro" });
    key = (
      await tenants.createApiKey({
        actor: { tenantId: tenant!.id, subject: "user:setup", ip: "" },
        name: "k",
        roles: [Role.VIEWER],
      })
    ).secret;
  }, 60_000);
  afterAll(async () => {
    await gateway?.close();
    market?.close();
    await server?.shutdown(1000);
    await pool?.end();
    await db?.drop();
  });

  it("publishes a monthly index per asset class and per area from the sales table, and the Texas series", async () => {
    const { series: list } = await market.listSeries({ prefix: "sales-index.homes" });
    expect(list.map((s) => s.id)).toEqual(["sales-index.homes", `sales-index.homes.${list[1]!.area}`]);
    expect(list[0]).toMatchObject({
      unit: "index",
      source: "sales",
      assetClass: "homes",
      firstPeriod: "2018-01",
      lastPeriod: "2019-12",
    });
    const { series: idx } = await market.getSeries({ id: "sales-index.homes" });
    const values = idx!.points.map((p) => p.value);
    expect(values[0]).toBe(100);
    // Prices rose ~1%/month for 23 months: the index ends near 1.01^22 (trailing window lags a month).
    expect(values.at(-1)!).toBeGreaterThan(118);
    expect(values.at(-1)!).toBeLessThan(130);
    expect((await market.listSeries({ prefix: "txhousing.austin." })).series).toHaveLength(5);
  });

  it("GET /v1/market/series/{id} answers the envelope, slices by month, and 4xx for unknown or bad input", async () => {
    const auth = { authorization: `Bearer ${key}` };
    const res = await gateway.inject({
      method: "GET",
      url: "/v1/market/series/txhousing.austin.median?from=2015-01&to=2015-03",
      headers: auth,
    });
    expect(res.statusCode).toBe(200);
    const data = res.json<{ data: { unit: string; points: { period: string; value: number }[] } }>().data;
    expect(data.unit).toBe("USD");
    expect(data.points.map((p) => p.period)).toEqual(["2015-01", "2015-02", "2015-03"]);
    expect(
      (await gateway.inject({ method: "GET", url: "/v1/market/series/nope", headers: auth })).statusCode,
    ).toBe(404);
    const bad = await gateway.inject({
      method: "GET",
      url: "/v1/market/series/txhousing.austin.median?from=2015-1",
      headers: auth,
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json<{ error: { details: { field: string }[] } }>().error.details[0]!.field).toContain("from");
    expect((await gateway.inject({ method: "GET", url: "/v1/market/series" })).statusCode).toBe(401);
  });

  it("time-adjusts comparables with the series an AssetPipeline names", async () => {
    const feed = new MarketIndexFeed({
      seriesId: "sales-index.homes",
      fetch: async (id) => (await market.getSeries({ id })).series!.points,
      logger,
    });
    expect(await feed.refresh()).toBe(true);
    const index = new ComparablesIndex(sales, {
      mode: "geo",
      h3Resolution: 8,
      maxRings: 6,
      count: 5,
      maxAgeMonths: 60,
      similarity: [{ field: "area", weight: 1 }],
    });
    const comps = index.find(
      { lat: 42.03, lon: -93.62, attributes: { area: 1000 } },
      { index: feed.current()! },
    );
    const old = comps.find((c) => c.soldAt! < "2018-06")!;
    expect(old).toBeDefined();
    // An early sale is brought up to the valuation date's (the latest sale's) market level.
    const at = feed.current()!;
    expect(old.adjustedPrice / old.price).toBeCloseTo(
      at.valueAt(new Date("2019-12-15"))! / at.valueAt(new Date(old.soldAt!))!,
      6,
    );
    expect(old.adjustedPrice).toBeGreaterThan(old.price * 1.1);
    const broken = new MarketIndexFeed({
      seriesId: "sales-index.none",
      fetch: async (id) => (await market.getSeries({ id })).series!.points,
      logger,
    });
    expect(await broken.refresh()).toBe(false);
    expect(broken.current()).toBeUndefined();
  });
});
