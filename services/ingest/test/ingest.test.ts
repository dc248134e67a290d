import { readFileSync } from "node:fs";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { IngestService } from "@valora/proto/valora/v1/ingest_pb";
import {
  createClient,
  createGrpcServer,
  createPgPool,
  createServiceBase,
  type Client,
  type GrpcServer,
  type InputField,
  type Pool,
  type ValoraError,
} from "@valora/kit";
import { captureLogs, freshDatabase } from "@valora/kit/testing";
import {
  ComparablesIndex,
  followSales,
  insertSales,
  loadSalesSince,
  type ComparablesSpec,
  type Sale,
} from "@valora/comparables";
import {
  checkBatch,
  createIngest,
  driftOf,
  parseBatch,
  saleDate,
  type ClassSchema,
  type IngestApp,
} from "../src/index.js";

const root = join(import.meta.dirname, "..", "..", "..");
const ap = parseAllDocuments(
  readFileSync(join(root, "manifests", "real-estate.yaml"), "utf8"),
)[1]!.toJS() as {
  spec: {
    input: { fields: InputField[] };
    comparables: ComparablesSpec & { latitude: string; longitude: string };
    contract: ClassSchema["contract"];
  };
};
const schema: ClassSchema = {
  assetClass: "real-estate",
  fields: ap.spec.input.fields,
  contract: ap.spec.contract,
  latitude: ap.spec.comparables.latitude,
  longitude: ap.spec.comparables.longitude,
};
const NOW = new Date("2026-11-20T12:00:00Z");
const house = (id: string, over: Record<string, unknown> = {}) => ({
  id,
  price: 215000,
  sold_at: "2026-10-02",
  Gr_Liv_Area: 1656,
  lot_area: 31770,
  total_bsmt_sf: 1080,
  first_flr_sf: 1656,
  latitude: 42.054,
  longitude: -93.6198,
  ...over,
});

describe("data contract (pure)", () => {
  it("normalises a valid batch: columns by field or feature name, typed attributes, dates, location", () => {
    const { records, violations } = checkBatch(
      "sales",
      [house("s-1", { neighborhood: "north ames" })],
      schema,
      NOW,
    );
    expect(violations).toEqual([]);
    expect(records[0]).toMatchObject({
      id: "s-1",
      price: 215000,
      soldAt: "2026-10-02",
      lat: 42.054,
      lon: -93.6198,
      attributes: { gr_liv_area: 1656, lot_area: 31770, neighborhood: "North_Ames" },
    });
    expect(saleDate("2026-02")).toBe("2026-02-15");
    expect(saleDate("2026-02-30")).toBeUndefined();
  });

  it("reports every violation with its record and field: types, ranges, required, dates, freshness, duplicate ids", () => {
    const rows = [
      house("a", { Gr_Liv_Area: "big" }),
      house("a"),
      house("c", { price: -5 }),
      house("d", { sold_at: "2027-01-01" }),
      house("e", { sold_at: "yesterday" }),
      house("", {}),
      house("g", { latitude: "91.5" }),
    ];
    const { records, violations } = checkBatch("sales", rows, schema, NOW);
    expect(records).toEqual([]);
    const got = violations.map((v) => `${v.record}:${v.field}`);
    expect(got).toEqual(
      expect.arrayContaining([
        "1:gr_liv_area",
        "2:id",
        "3:price",
        "4:sold_at",
        "5:sold_at",
        "6:id",
        "7:latitude",
      ]),
    );
    const { violations: stale } = checkBatch(
      "sales",
      [house("s")],
      { ...schema, contract: { ...schema.contract, maxAgeDays: 30 } },
      NOW,
    );
    expect(stale[0]).toMatchObject({
      record: 1,
      field: "sold_at",
      description: expect.stringMatching(/older than the contract's 30 days/),
    });
    const { violations: missing } = checkBatch(
      "sales",
      [house("s", { lot_area: undefined })],
      { ...schema, contract: { ...schema.contract, required: ["lot_area"] } },
      NOW,
    );
    expect(missing.map((v) => v.field)).toEqual(["lot_area"]);
  });

  it("reads CSV, JSON arrays and NDJSON, and refuses what is not", () => {
    expect(parseBatch(Buffer.from("id,price\n1,2\n"), "csv")).toEqual([{ id: "1", price: "2" }]);
    expect(parseBatch(Buffer.from('[{"id":1}]'), "json")).toEqual([{ id: 1 }]);
    expect(parseBatch(Buffer.from('{"id":1}\n\n{"id":2}\n'), "ndjson")).toHaveLength(2);
    expect(() => parseBatch(Buffer.from('{"id":1}'), "json")).toThrow(/array of objects/);
    expect(() => parseBatch(Buffer.from("{oops"), "ndjson")).toThrow(/line 1/);
  });

  it("reports drift from the latest month with enough scored valuations", () => {
    const row = (month: string, mdape: number, count = 10) => ({
      modelVersion: "v1",
      month,
      count,
      mdape,
      ppe10: 50,
    });
    expect(driftOf([row("2026-09", 20), row("2026-10", 8)], 15).drift).toBe(false);
    expect(driftOf([row("2026-09", 8), row("2026-10", 20)], 15).drift).toBe(true);
    expect(driftOf([row("2026-09", 8), row("2026-10", 40, 2)], 15).drift).toBe(false);
  });
});

const url = process.env["DATABASE_URL"];
describe.skipIf(!url)(
  "ingestion with real Postgres: zones, quarantine, lineage, streaming comparables, realised accuracy",
  () => {
    let db: { url: string; drop: () => Promise<void> };
    let pool: Pool;
    let app: IngestApp;
    let server: GrpcServer;
    let client: Client<typeof IngestService>;
    const { logger, lines } = captureLogs();
    const base = createServiceBase({ name: "ingest-test", logger });
    const drifts: { model: string; mdape: number }[] = [];
    // What a test sets of the contract on top of the manifest's (read at every batch, as a CR change would be).
    let contract: Partial<ClassSchema["contract"]> = {};
    const csv = (rows: Record<string, unknown>[]) => {
      const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
      return Buffer.from(
        [
          columns.join(","),
          ...rows.map((r) =>
            columns.map((c) => (r[c] === undefined ? "" : String(r[c] as string | number))).join(","),
          ),
        ].join("\n"),
      );
    };
    const ingest = async (kind: string, content: Buffer, format = "csv") =>
      (await client.ingest({ assetClass: "real-estate", kind, format, content, source: "test-feed" })).batch!;

    beforeAll(async () => {
      db = await freshDatabase(url!);
      pool = createPgPool({ url: db.url, logger });
      app = createIngest(base, {
        pool,
        schema: (c) =>
          c === "real-estate" ? { ...schema, contract: { ...schema.contract, ...contract } } : undefined,
        classOfModel: (m) => (m === "real-estate" ? "real-estate" : undefined),
        onDrift: (e) => drifts.push(e),
      });
      await app.start();
      await insertSales(
        pool,
        "real-estate",
        [
          {
            id: "real-estate-1",
            price: 200000,
            soldAt: "2010-05-15",
            lat: 42.05,
            lon: -93.62,
            attributes: { gr_liv_area: 1600 },
          },
        ],
        "seed",
      );
      server = createGrpcServer({ ...base, services: [app.service] });
      client = createClient(IngestService, `127.0.0.1:${await server.listen("127.0.0.1:0")}`, {
        timeoutMs: 20_000,
      });
    });
    afterAll(async () => {
      client?.close();
      await server?.shutdown();
      await pool?.end();
      await db?.drop();
    });

    it("quarantines a batch that breaks its contract, whole, with a report; bronze keeps it as received", async () => {
      const batch = await ingest("sales", csv([house("q-1"), house("q-2", { Gr_Liv_Area: "huge" })]));
      expect(batch).toMatchObject({ status: "quarantined", records: 2, landed: 0, violationCount: 1 });
      expect(batch.violations[0]).toMatchObject({ record: 2, field: "gr_liv_area" });
      const gold = await pool.query("SELECT id FROM sales WHERE id LIKE 'q-%'");
      expect(gold.rowCount).toBe(0);
      const bronze = await pool.query<{ raw: Record<string, string> }>(
        "SELECT raw FROM ingest_bronze WHERE batch_id = $1 ORDER BY record",
        [batch.id],
      );
      expect(bronze.rows.map((r) => r.raw["Gr_Liv_Area"])).toEqual(["1656", "huge"]);
      expect(lines.some((l) => l["msg"] === "batch quarantined: contract broken")).toBe(true);
    });

    it("lands records outside the training domain, flagged in silver and the report; dropRecords lands the valid rest", async () => {
      const area = schema.fields.find((f) => f.name === "gr_liv_area")!.training!.max!;
      const rows = Array.from({ length: 300 }, (_, i) =>
        house(`d-${i + 1}`, {
          lot_area: 8000 + i,
          ...(i % 60 === 5 ? { Gr_Liv_Area: area + 500 } : {}),
          ...(i === 7 ? { functional: "Storm_Damaged" } : {}),
        }),
      );
      const batch = await ingest("listings", csv(rows));
      expect(batch).toMatchObject({
        status: "landed",
        records: 300,
        landed: 300,
        violationCount: 0,
        dropped: 0,
        flagged: 6,
      });
      expect(batch.flags.map((f) => [f.record, f.field, f.code])).toEqual([
        [6, "gr_liv_area", "OUTSIDE_TRAINING_RANGE"],
        [8, "functional", "UNSEEN_CATEGORY"],
        [66, "gr_liv_area", "OUTSIDE_TRAINING_RANGE"],
        [126, "gr_liv_area", "OUTSIDE_TRAINING_RANGE"],
        [186, "gr_liv_area", "OUTSIDE_TRAINING_RANGE"],
        [246, "gr_liv_area", "OUTSIDE_TRAINING_RANGE"],
      ]);
      const silver = await pool.query<{ id: string; flags: { code: string }[] }>(
        "SELECT id, flags FROM ingest_silver WHERE batch_id = $1 AND jsonb_array_length(flags) > 0 ORDER BY record",
        [batch.id],
      );
      expect(silver.rows.map((r) => r.id)).toEqual(["d-6", "d-8", "d-66", "d-126", "d-186", "d-246"]);

      // Invalid records: the whole batch by default, only they with dropRecords (kept in bronze, reported).
      const mixed = csv([
        house("x-1"),
        house("x-2", { latitude: 95 }),
        house("x-3", { Gr_Liv_Area: -1 }),
        house("x-4"),
      ]);
      expect(await ingest("listings", mixed)).toMatchObject({
        status: "quarantined",
        landed: 0,
        violationCount: 2,
      });
      contract = { onViolation: "dropRecords" };
      try {
        const dropped = await ingest("listings", mixed);
        expect(dropped).toMatchObject({
          status: "landed",
          records: 4,
          landed: 2,
          dropped: 2,
          violationCount: 2,
        });
        expect(dropped.violations.map((v) => [v.record, v.field])).toEqual([
          [2, "latitude"],
          [3, "gr_liv_area"],
        ]);
        const registry = await pool.query<{ id: string }>(
          "SELECT id FROM assets WHERE id LIKE 'x-%' ORDER BY id",
        );
        expect(registry.rows.map((r) => r.id)).toEqual(["x-1", "x-4"]);
        const bronze = await pool.query("SELECT record FROM ingest_bronze WHERE batch_id = $1", [dropped.id]);
        expect(bronze.rowCount).toBe(4);
        const silverRecords = await pool.query<{ record: number }>(
          "SELECT record FROM ingest_silver WHERE batch_id = $1 ORDER BY record",
          [dropped.id],
        );
        expect(silverRecords.rows.map((r) => r.record)).toEqual([1, 4]);
      } finally {
        contract = {};
      }
    });

    it("lands a valid batch into gold with lineage, announces it, and a following comparables index has it at once", async () => {
      const spec = { ...ap.spec.comparables, maxAgeMonths: 1200 };
      const start = await loadSalesSince(pool, "real-estate", 0);
      const index = new ComparablesIndex(start.sales, spec);
      const seen: Sale[][] = [];
      const follower = await followSales({
        pool,
        assetClass: "real-estate",
        fromSeq: start.seq,
        logger,
        pollMs: 60_000,
        onSales: (s) => (seen.push(s), index.add(s)),
      });
      try {
        const batch = await ingest(
          "sales",
          csv([house("n-1", { asset_id: "parcel-9" }), house("n-2", { Gr_Liv_Area: 2400, price: 310000 })]),
        );
        expect(batch).toMatchObject({ status: "landed", records: 2, landed: 2, unchanged: 0 });
        // NOTIFY at commit wakes the follower: no poll (60 s) is needed.
        await expect
          .poll(
            () =>
              seen
                .flat()
                .map((s) => s.id)
                .sort(),
            { timeout: 5000 },
          )
          .toEqual(["n-1", "n-2"]);
        const comps = index.find(
          { lat: 42.054, lon: -93.6198, attributes: { gr_liv_area: 1656 } },
          { asOf: new Date("2026-11-01") },
        );
        expect(comps.map((c) => c.id)).toContain("n-1");
        const lineage = await client.saleLineage({ assetClass: "real-estate", saleId: "n-2" });
        expect(lineage).toMatchObject({
          origin: "batch",
          batch: { id: batch.id, source: "test-feed" },
          raw: { id: "n-2", price: "310000" },
        });
        expect(
          (await client.saleLineage({ assetClass: "real-estate", saleId: "real-estate-1" })).origin,
        ).toBe("seed");
      } finally {
        await follower.stop();
      }
    });

    it("ignores duplicates: the same content again, and records already in gold; refuses a changed landed sale", async () => {
      const content = csv([
        house("n-1", { asset_id: "parcel-9" }),
        house("n-2", { Gr_Liv_Area: 2400, price: 310000 }),
      ]);
      const again = await ingest("sales", content);
      expect(again).toMatchObject({ status: "duplicate", landed: 0 });
      expect(again.duplicateOf).not.toBe("");
      const overlap = await ingest("sales", csv([house("n-1", { asset_id: "parcel-9" }), house("n-3")]));
      expect(overlap).toMatchObject({ status: "landed", landed: 1, unchanged: 1 });
      const changed = await ingest("sales", csv([house("n-3", { price: 1 })]));
      expect(changed).toMatchObject({ status: "quarantined" });
      expect(changed.violations[0]!.description).toMatch(/immutable/);
      expect((await pool.query("SELECT count(*)::int AS n FROM sales WHERE id LIKE 'n-%'")).rows[0].n).toBe(
        3,
      );
    });

    it("keeps listings in the asset registry", async () => {
      const batch = await ingest(
        "listings",
        Buffer.from(
          JSON.stringify([
            {
              id: "parcel-42",
              asking_price: 250000,
              gr_liv_area: 1800,
              lot_area: 9000,
              total_bsmt_sf: 900,
              first_flr_sf: 900,
              latitude: 42.03,
              longitude: -93.61,
            },
          ]),
        ),
        "json",
      );
      expect(batch).toMatchObject({ status: "landed", landed: 1 });
      const { asset } = await client.getAsset({ assetClass: "real-estate", assetId: "parcel-42" });
      expect(asset).toMatchObject({
        askingPrice: 250000,
        attributes: { gr_liv_area: 1800, latitude: 42.03 },
      });
      const missing = (await client
        .getAsset({ assetClass: "real-estate", assetId: "nope" })
        .catch((e: unknown) => e)) as ValoraError;
      expect(missing.code).toBe("NOT_FOUND");
    });

    it("scores past valuations when the sale lands: realised MdAPE and PPE10 on a known fixture, and drift", async () => {
      // Ten assets valued by v1 at errors of 2%, 4%, ..., 20% (five within 10%), then sold at 100,000.
      const valuations = Array.from({ length: 10 }, (_, i) => ({
        assetClass: "real-estate",
        assetId: `fx-${i}`,
        model: "real-estate",
        modelVersion: "v1",
        value: 100_000 * (1 + 0.02 * (i + 1)),
        tenantId: "t1",
        valuedAt: timestampFromDate(new Date("2026-11-01T00:00:00Z")),
      }));
      expect((await client.recordValuations({ valuations })).recorded).toBe(10);
      const sales = Array.from({ length: 10 }, (_, i) =>
        house(`fx-sale-${i}`, { asset_id: `fx-${i}`, price: 100000, sold_at: "2026-11-10" }),
      );
      const batch = await ingest("sales", csv(sales));
      expect(batch).toMatchObject({ status: "landed", outcomes: 10 });
      const perf = await client.realisedPerformance({ model: "real-estate" });
      const nov = perf.periods.find((p) => p.month === "2026-11")!;
      expect(nov.count).toBe(10);
      expect(nov.mdape).toBeCloseTo(11, 6); // median of 2..20 step 2
      expect(nov.ppe10).toBeCloseTo(50, 6);
      expect(perf.driftThresholdMdape).toBe(15);
      expect(perf.drift).toBe(false);
      // Worse valuations for more assets in the same month push the latest MdAPE over 15%: drift.
      const worse = Array.from({ length: 10 }, (_, i) => ({
        assetClass: "real-estate",
        assetId: `fy-${i}`,
        model: "real-estate",
        modelVersion: "v1",
        value: 130_000,
        tenantId: "t1",
        valuedAt: timestampFromDate(new Date("2026-11-01T00:00:00Z")),
      }));
      // A valuation made after the sale is not scored: it could have seen the price.
      await client.recordValuations({
        valuations: [
          {
            assetClass: "real-estate",
            assetId: "fy-0",
            model: "real-estate",
            modelVersion: "v1",
            value: 1,
            tenantId: "t1",
            valuedAt: timestampFromDate(new Date("2026-11-20T00:00:00Z")),
          },
        ],
      });
      await client.recordValuations({ valuations: worse });
      await ingest(
        "sales",
        csv(
          Array.from({ length: 10 }, (_, i) =>
            house(`fy-sale-${i}`, { asset_id: `fy-${i}`, price: 100000, sold_at: "2026-11-12" }),
          ),
        ),
      );
      const after = await client.realisedPerformance({ model: "real-estate" });
      expect(after.periods.find((p) => p.month === "2026-11")!.count).toBe(20);
      expect(after.drift).toBe(true);
      expect(drifts.at(-1)).toMatchObject({ model: "real-estate" });
    });

    it("refuses unknown asset classes and kinds, and unreadable content, with the field", async () => {
      const err = async (p: Promise<unknown>) => (await p.catch((e: unknown) => e)) as ValoraError;
      expect(
        (
          await err(
            client.ingest({
              assetClass: "boats",
              kind: "sales",
              format: "csv",
              content: Buffer.from("id\n1"),
            }),
          )
        ).code,
      ).toBe("NOT_FOUND");
      expect(
        (
          await err(
            client.ingest({
              assetClass: "real-estate",
              kind: "rentals",
              format: "csv",
              content: Buffer.from("id\n1"),
            }),
          )
        ).details[0]?.field,
      ).toBe("kind");
      expect(
        (
          await err(
            client.ingest({
              assetClass: "real-estate",
              kind: "sales",
              format: "json",
              content: Buffer.from("{"),
            }),
          )
        ).details[0]?.field,
      ).toBe("content");
    });

    it("exports gold as a training CSV recorded as a snapshot; a model card naming it gives the model's lineage", async () => {
      const { csv, snapshot } = await client.exportGold({ assetClass: "real-estate", target: "Sale_Price" });
      const text = Buffer.from(csv).toString("utf8");
      const [header, ...rows] = text.trim().split("\n");
      expect(header!.split(",")).toEqual([...schema.fields.map((f) => f.feature), "Sale_Price"]);
      const gold = (
        await pool.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM sales WHERE asset_class = 'real-estate'",
        )
      ).rows[0]!.n;
      expect(rows).toHaveLength(gold);
      const landedBatches = (
        await pool.query<{ id: string }>(
          "SELECT id FROM ingest_batches WHERE status = 'landed' AND kind = 'sales'",
        )
      ).rows
        .map((r) => r.id)
        .sort();
      expect(snapshot).toMatchObject({
        assetClass: "real-estate",
        source: "gold-export",
        sales: gold,
        seed: true,
      });
      expect([...snapshot!.batchIds].sort()).toEqual(landedBatches);
      expect(snapshot!.id).toBe(
        (await import("node:crypto")).createHash("sha256").update(text).digest("hex"),
      );
      // `valora train --data` on that file writes a card whose data.sha256 is the snapshot id.
      const card = {
        version: "gold-v1",
        data: { name: "real-estate-gold.csv", sha256: snapshot!.id, rows: gold },
      };
      expect(
        (
          await client.registerModel({
            model: "real-estate",
            version: "gold-v1",
            assetClass: "real-estate",
            card: card,
          })
        ).snapshotId,
      ).toBe(snapshot!.id);
      const lineage = await client.modelLineage({ model: "real-estate", version: "gold-v1" });
      expect(lineage).toMatchObject({
        assetClass: "real-estate",
        dataSha256: snapshot!.id,
        snapshot: { id: snapshot!.id, seed: true },
      });
      expect(lineage.batches.map((b) => b.id).sort()).toEqual(landedBatches);
      // A card naming data never recorded here: lineage says what it knows (the hash), no snapshot.
      const foreign = { data: { name: "elsewhere.csv", sha256: "f".repeat(64) } };
      expect(
        (
          await client.registerModel({
            model: "real-estate",
            version: "ext-1",
            assetClass: "real-estate",
            card: foreign,
          })
        ).snapshotId,
      ).toBe("");
      expect(
        (await client.modelLineage({ model: "real-estate", version: "ext-1" })).snapshot,
      ).toBeUndefined();
      const bad = (await client
        .registerModel({ model: "real-estate", version: "x", assetClass: "real-estate", card: {} })
        .catch((e: unknown) => e)) as ValoraError;
      expect(bad.details[0]?.field).toBe("card.data.sha256");
    });
  },
);
