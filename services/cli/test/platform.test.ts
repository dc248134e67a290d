import type { ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bin, root, stop, up, type Banner } from "./support/platform.js";
// A car as the autos API takes it (make and body as people write them).
import { CAR } from "../../../e2e/support.js";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import { createClient, type ValoraError } from "@valora/kit";

describe.skipIf(!existsSync(bin))(
  "the platform on one machine (valora up, embedded Postgres, loopback)",
  () => {
    const dataDir = mkdtempSync(join(tmpdir(), "valora-up-"));
    // The CRs this run reconciles: a copy, so the test can edit them as a data scientist would.
    const manifests = join(dataDir, "manifests");
    cpSync(join(root, "manifests"), manifests, { recursive: true });
    let child: ChildProcess;
    let lines: Record<string, unknown>[];
    let banner: Banner;
    let key: string;
    const auth = () => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });

    beforeAll(async () => {
      ({ child, banner, lines } = await up(dataDir, { VALORA_MANIFESTS: manifests }));
      key = banner.apiKey!;
    }, 120_000);
    afterAll(async () => {
      if (child.exitCode === null) await stop(child);
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("prints a bootstrap admin key once and a curl that works as pasted", async () => {
      expect(key).toMatch(/^vk_/);
      const ready = await fetch(`${banner.rest}/readyz`);
      expect(ready.status).toBe(200);
      const m = /-d '(.*)'$/.exec(banner.try)!;
      expect(banner.try).toContain(`Bearer ${key}`);
      const res = await fetch(`${banner.rest}/v1/valuations`, {
        method: "POST",
        headers: auth(),
        body: m[1],
      });
      expect(res.status).toBe(200);
      const { data } = (await res.json()) as { data: { value: number; model: { route: string } } };
      expect(data.value).toBeGreaterThan(1000);
      expect(data.model.route).toBe("champion");
    });

    it("values a house over REST with comparables and an explanation", async () => {
      const classes = (await (
        await fetch(`${banner.rest}/v1/asset-classes`, { headers: auth() })
      ).json()) as { data: { name: string; fields: { name: string; required: boolean }[] }[] };
      expect(classes.data.map((c) => c.name)).toEqual(["autos", "real-estate"]);
      const house = {
        gr_liv_area: 1656,
        lot_area: 31770,
        total_bsmt_sf: 1080,
        year_built: 1960,
        overall_cond: "Average",
        latitude: 42.054035,
        longitude: -93.619754,
        neighborhood: "North_Ames",
        garage_cars: 2,
        first_flr_sf: 1656,
      };
      const res = await fetch(`${banner.rest}/v1/valuations`, {
        method: "POST",
        headers: auth(),
        body: JSON.stringify({ assetClass: "real-estate", attributes: house }),
      });
      const body = (await res.json()) as {
        data: {
          value: number;
          comparables: { distanceKm: number; price: number; adjustedPrice: number; soldAt: string | null }[];
          explanation: { contributions: unknown[] };
        };
        error: unknown;
      };
      expect(res.status, JSON.stringify(body.error)).toBe(200);
      expect(body.data.value).toBeGreaterThan(50_000);
      expect(body.data.comparables.length).toBeGreaterThan(0);
      expect(body.data.comparables[0]!.distanceKm).toBeLessThan(5);
      expect(body.data.explanation.contributions.length).toBe(5);
      // Comparables carry their sale month and are time-adjusted with the real-estate sales index.
      expect(body.data.comparables.every((c) => c.soldAt !== null)).toBe(true);
      expect(body.data.comparables.some((c) => Math.abs(c.adjustedPrice - c.price) > 1)).toBe(true);
    });

    it("gives concurrent valuations sharing pipeline calls each its own answer", async () => {
      const house = (area: number) => ({
        gr_liv_area: area,
        lot_area: 9000,
        total_bsmt_sf: 1000,
        year_built: 1975,
        overall_cond: "Average",
        latitude: 42.03,
        longitude: -93.64,
        neighborhood: "North_Ames",
        garage_cars: 2,
        first_flr_sf: area,
      });
      const value = async (area: number) => {
        const res = await fetch(`${banner.rest}/v1/valuations`, {
          method: "POST",
          headers: auth(),
          body: JSON.stringify({
            assetClass: "real-estate",
            attributes: house(area),
            skipCache: true,
            include: [],
          }),
        });
        const body = (await res.json()) as { data: { value: number }; error: unknown };
        expect(res.status, JSON.stringify(body.error)).toBe(200);
        return body.data.value;
      };
      const runCalls = async () => {
        const text = await (await fetch(`${banner.rest}/metrics`)).text();
        const m = /^grpc_client_handled_total\{[^}]*grpc_method="Run"[^}]*grpc_code="OK"[^}]*\} (\d+)/m.exec(
          text,
        );
        return Number(m?.[1] ?? 0);
      };
      const areas = Array.from({ length: 24 }, (_, i) => 900 + 60 * i);
      const alone: number[] = [];
      for (const a of areas) alone.push(await value(a));
      expect(new Set(alone).size).toBe(areas.length);
      const before = await runCalls();
      const together = await Promise.all(areas.map(value));
      // Fewer PipelineService/Run calls than valuations, and every request still gets its own house's value.
      expect(await runCalls()).toBeLessThan(before + areas.length);
      expect(together).toEqual(alone);
    });

    it("values a car over gRPC at the edge with the same key, and refuses calls without one", async () => {
      const client = createClient(ValuationService, banner.grpc, { timeoutMs: 10_000 });
      try {
        const car = {
          mileage: 8221,
          cylinder: 6,
          doors: 4,
          cruise: true,
          sound: true,
          leather: true,
          buick: true,
          cadillac: false,
          chevy: false,
          pontiac: false,
          saab: false,
          saturn: false,
          convertible: false,
          coupe: false,
          hatchback: false,
          sedan: true,
          wagon: false,
        };
        const { valuation } = await client.value(
          { assetClass: "autos", attributes: car },
          { metadata: { authorization: `Bearer ${key}` } },
        );
        expect(valuation!.value).toBeGreaterThan(1000);
        expect(valuation!.model!.version).toBe("gm-v1");
        // The old one-hot attributes still value (as make: Buick, body: sedan), each with a deprecation warning.
        expect(valuation!.warnings.map((w) => w.code)).toEqual(Array(11).fill("DEPRECATED_ATTRIBUTE"));
        expect(valuation!.warnings[0]!.message).toMatch(/send make: "Buick"/);
        const modern = await client.value(
          { assetClass: "autos", attributes: CAR },
          { metadata: { authorization: `Bearer ${key}` } },
        );
        expect(modern.valuation!.value).toBe(valuation!.value);
        expect(modern.valuation!.warnings).toEqual([]);
        const err = (await client
          .value({ assetClass: "autos", attributes: car })
          .catch((e: unknown) => e)) as ValoraError;
        expect(err.code).toBe("UNAUTHENTICATED");
      } finally {
        client.close();
      }
    });

    it("runs a bulk CSV job from the command line: progress, then the results file", async () => {
      const { readFileSync, writeFileSync } = await import("node:fs");
      const cars = readFileSync(join(root, "models", "data", "car_prices.csv"), "utf8")
        .trim()
        .split("\n");
      const header = cars[0]!.split(",");
      const priceAt = header.indexOf("Price");
      const strip = (line: string) =>
        line
          .split(",")
          .filter((_, i) => i !== priceAt)
          .join(",");
      const input = join(dataDir, "cars.csv");
      writeFileSync(
        input,
        [strip(cars[0]!), ...cars.slice(1, 121).map(strip), "lots,6,4,1,0,0,1,0,0,0,0,0,0,0,0,1,0"].join(
          "\n",
        ),
      );
      const out = join(dataDir, "cars.results.csv");
      const { spawnSync } = await import("node:child_process");
      const run = spawnSync(
        process.execPath,
        [
          bin,
          "jobs",
          "submit",
          input,
          "--asset-class",
          "autos",
          "--wait",
          "--out",
          out,
          "--url",
          banner.rest,
          "--key",
          key,
          "--idempotency-key",
          "cars-1",
        ],
        { encoding: "utf8", timeout: 60_000 },
      );
      expect(run.status, run.stderr).toBe(0);
      expect(run.stderr).toContain("121 rows queued");
      const job = JSON.parse(run.stdout) as { status: string; doneRows: number; failedRows: number };
      expect(job).toMatchObject({ status: "succeeded", doneRows: 120, failedRows: 1 });
      const lines = readFileSync(out, "utf8").trim().split("\n");
      expect(lines[0]).toBe(
        "row,value,interval_low,interval_high,coverage,confidence,model_version,route,error_code,error,warnings",
      );
      expect(lines).toHaveLength(122);
      expect(lines[121]).toContain("INVALID_ARGUMENT");
      const again = spawnSync(
        process.execPath,
        [
          bin,
          "jobs",
          "submit",
          input,
          "--asset-class",
          "autos",
          "--url",
          banner.rest,
          "--key",
          key,
          "--idempotency-key",
          "cars-1",
        ],
        { encoding: "utf8", timeout: 60_000 },
      );
      expect((JSON.parse(again.stdout) as { id: string }).id).toBe(
        (JSON.parse(run.stdout) as { id: string }).id,
      );
    }, 90_000);

    it("meters what was valued, and serves market series from its own sales and the Texas feed", async () => {
      type Usage = { data: { total: number; days: { assetClass: string; kind: string; units: number }[] } };
      let usage: Usage = { data: { total: 0, days: [] } };
      const units = (assetClass: string, kind: string) =>
        usage.data.days
          .filter((d) => d.assetClass === assetClass && d.kind === kind)
          .reduce((n, d) => n + d.units, 0);
      // Job rows are metered within a second of their chunk committing (the outbox).
      await expect
        .poll(
          async () => {
            usage = (await (await fetch(`${banner.rest}/v1/usage`, { headers: auth() })).json()) as Usage;
            return units("autos", "job_row");
          },
          { timeout: 15_000, interval: 250 },
        )
        .toBe(120);
      expect(units("autos", "valuation")).toBeGreaterThanOrEqual(1);
      expect(units("real-estate", "valuation")).toBeGreaterThanOrEqual(1);
      const list = (await (
        await fetch(`${banner.rest}/v1/market/series?prefix=sales-index.`, { headers: auth() })
      ).json()) as { data: { id: string; firstPeriod: string; lastPeriod: string }[] };
      expect(list.data.find((s) => s.id === "sales-index.real-estate")).toMatchObject({
        firstPeriod: "2006-01",
        lastPeriod: "2010-07",
      });
      const austin = await fetch(
        `${banner.rest}/v1/market/series/txhousing.austin.median?from=2010-01&to=2010-12`,
        { headers: auth() },
      );
      expect(austin.status).toBe(200);
      expect(((await austin.json()) as { data: { points: unknown[] } }).data.points).toHaveLength(12);
      const plans = (await (await fetch(`${banner.rest}/v1/plans`, { headers: auth() })).json()) as {
        data: { name: string }[];
      };
      expect(plans.data.map((p) => p.name)).toEqual(["free", "pro", "enterprise"]);
    });

    it("lands data feeds: a listing values by assetId, a landed sale joins the comparables without a restart, with lineage", async () => {
      const listing = [
        {
          id: "parcel-7",
          asking_price: 199000,
          gr_liv_area: 1500,
          lot_area: 9500,
          total_bsmt_sf: 900,
          first_flr_sf: 900,
          year_built: 1978,
          latitude: 42.0409,
          longitude: -93.6407,
          neighborhood: "North_Ames",
        },
      ];
      const pushed = await fetch(`${banner.rest}/v1/ingest/real-estate/listings`, {
        method: "POST",
        headers: auth(),
        body: JSON.stringify(listing),
      });
      expect(pushed.status).toBe(200);
      expect(((await pushed.json()) as { data: { status: string; landed: number } }).data).toMatchObject({
        status: "landed",
        landed: 1,
      });
      const byId = await fetch(`${banner.rest}/v1/valuations`, {
        method: "POST",
        headers: auth(),
        body: JSON.stringify({ assetClass: "real-estate", assetId: "parcel-7" }),
      });
      expect(byId.status).toBe(200);
      expect(((await byId.json()) as { data: { value: number } }).data.value).toBeGreaterThan(50_000);
      const unknown = await fetch(`${banner.rest}/v1/valuations`, {
        method: "POST",
        headers: auth(),
        body: JSON.stringify({ assetClass: "real-estate", assetId: "parcel-unknown" }),
      });
      expect(unknown.status).toBe(404);
      // A sale next door, in the data's own period: it lands in gold and the running pipeline compares with it.
      const sale =
        "id,asset_id,price,sold_at,gr_liv_area,lot_area,total_bsmt_sf,first_flr_sf,year_built,latitude,longitude,neighborhood\nfeed-sale-1,parcel-7,207500,2010-07-20,1500,9500,900,900,1978,42.0409,-93.6407,North_Ames\n";
      const landed = await fetch(`${banner.rest}/v1/ingest/real-estate/sales?source=county-feed`, {
        method: "POST",
        headers: { ...auth(), "content-type": "text/csv" },
        body: sale,
      });
      const batch = ((await landed.json()) as { data: { id: string; status: string; landed: number } }).data;
      expect(batch).toMatchObject({ status: "landed", landed: 1 });
      const bad = await fetch(`${banner.rest}/v1/ingest/real-estate/sales`, {
        method: "POST",
        headers: { ...auth(), "content-type": "text/csv" },
        body: sale.replace("207500", "-1").replace("feed-sale-1", "feed-sale-2"),
      });
      expect(
        ((await bad.json()) as { data: { status: string; violations: { field: string }[] } }).data,
      ).toMatchObject({ status: "quarantined", violations: [{ field: "price" }] });
      const comps = async () =>
        (
          (await (
            await fetch(`${banner.rest}/v1/valuations`, {
              method: "POST",
              headers: auth(),
              body: JSON.stringify({
                assetClass: "real-estate",
                attributes: listing.map(({ id: _id, asking_price: _p, ...a }) => a)[0],
                skipCache: true,
              }),
            })
          ).json()) as { data: { comparables: { id: string }[] } }
        ).data.comparables.map((c) => c.id);
      await expect.poll(comps, { timeout: 20_000, interval: 500 }).toContain("feed-sale-1");
      const lineage = (await (
        await fetch(`${banner.rest}/v1/lineage/sales/real-estate/feed-sale-1`, { headers: auth() })
      ).json()) as { data: { origin: string; batch: { id: string; source: string } } };
      expect(lineage.data).toMatchObject({ origin: "batch", batch: { id: batch.id, source: "county-feed" } });
      const perf = (await (
        await fetch(`${banner.rest}/v1/models/real-estate/performance`, { headers: auth() })
      ).json()) as { data: { realised: { drift: boolean } | null } };
      expect(perf.data.realised).toMatchObject({ drift: false });
      // The default model's lineage: its card names the seed data the platform started from.
      const model = (await (
        await fetch(`${banner.rest}/v1/lineage/models/real-estate/versions/ames-v1`, { headers: auth() })
      ).json()) as { data: { dataName: string; snapshot: { source: string; seed: boolean; sales: number } } };
      expect(model.data).toMatchObject({
        dataName: "ames.csv",
        snapshot: {
          source: "seed:ames.csv",
          seed: true,
          sales: 2138 /* the arm's-length sales the model trained on (model-card data.rows) */,
        },
      });
      // Gold (seed + the landed sale) exported for training, recorded as a snapshot.
      const exported = await fetch(`${banner.rest}/v1/ingest/export/real-estate?target=Sale_Price`, {
        headers: auth(),
      });
      expect(exported.status).toBe(200);
      expect(exported.headers.get("x-valora-snapshot")).toMatch(/^[0-9a-f]{64}$/);
      expect((await exported.text()).trim().split("\n")).toHaveLength(2138 + 1 + 1);
    }, 60_000);

    it("runs a model server per model version and a pipeline per asset class, as the operator renders them", async () => {
      const res = await fetch(`${banner.kubernetes}/apis/apps/v1/namespaces/default/deployments`);
      const deployments = (
        (await res.json()) as { items: { metadata: { name: string }; status?: { readyReplicas?: number } }[] }
      ).items;
      expect(deployments.map((d) => d.metadata.name).sort()).toEqual([
        "autos-gm-v1",
        "pipeline-autos",
        "pipeline-real-estate",
        "real-estate-ames-v1",
      ]);
      expect(deployments.every((d) => d.status?.readyReplicas === 1)).toBe(true);
      const vm = (await (
        await fetch(`${banner.kubernetes}/apis/valora.dev/v1alpha1/namespaces/default/valuationmodels/autos`)
      ).json()) as { status: { conditions: { type: string; status: string }[] } };
      expect(vm.status.conditions.find((c) => c.type === "Ready")?.status).toBe("True");
    });

    it("promotes a model when its CR file is edited: reconciled, logged, served without a restart", async () => {
      const file = join(manifests, "autos.yaml");
      writeFileSync(file, readFileSync(file, "utf8").replace("version: gm-v1", "version: gm-v2"));
      const champion = async () =>
        (
          (await (await fetch(`${banner.rest}/v1/models`, { headers: auth() })).json()) as {
            data: { name: string; champion: { version: string } }[];
          }
        ).data.find((m) => m.name === "autos")?.champion.version;
      await expect.poll(champion, { timeout: 60_000, interval: 500 }).toBe("gm-v2");
      expect(
        lines.some((l) => l["msg"] === "manifest changed: applied" && l["manifest"] === "autos.yaml"),
      ).toBe(true);
      const car = { ...CAR, make: "Chevy" };
      await expect
        .poll(
          async () =>
            (
              (await (
                await fetch(`${banner.rest}/v1/valuations`, {
                  method: "POST",
                  headers: auth(),
                  body: JSON.stringify({ assetClass: "autos", attributes: car, skipCache: true }),
                })
              ).json()) as { data?: { model: { version: string } } }
            ).data?.model.version,
          { timeout: 30_000, interval: 500 },
        )
        .toBe("gm-v2");
      // The old version's Deployment is pruned once the new champion serves.
      await expect
        .poll(
          async () =>
            (
              (await (
                await fetch(`${banner.kubernetes}/apis/apps/v1/namespaces/default/deployments`)
              ).json()) as { items: { metadata: { name: string } }[] }
            ).items
              .map((d) => d.metadata.name)
              .filter((n) => n.startsWith("autos-")),
          { timeout: 30_000, interval: 500 },
        )
        .toEqual(["autos-gm-v2"]);
      // A CR that does not validate is refused as a whole; the running model stays.
      writeFileSync(file, readFileSync(file, "utf8").replace("version: gm-v2", 'version: ""'));
      await expect
        .poll(
          () => lines.some((l) => l["msg"] === "manifest refused; its objects keep their last applied spec"),
          { timeout: 10_000 },
        )
        .toBe(true);
      expect(await champion()).toBe("gm-v2");
    }, 120_000);

    it("serves a model trained into /tmp as `valora train --emit-manifests` writes it, once its CRs are in manifests/", async () => {
      const out = mkdtempSync(join(tmpdir(), "valora-train-"));
      try {
        execFileSync(
          process.execPath,
          [
            bin,
            "train",
            "--data",
            join(root, "models", "data", "car_prices.csv"),
            "--target",
            "Price",
            "--log-target",
            "--max-rounds",
            "40",
            "--quiet",
            "--out",
            join(out, "model"),
            "--model-version",
            "mini-v1",
            "--emit-manifests",
            "--asset-class",
            "minicars",
            "--one-hot",
            "make=Buick,Cadillac,Chevy,Pontiac,Saab,Saturn",
            "--one-hot",
            "body=convertible,coupe,hatchback,sedan,wagon",
          ],
          { stdio: "pipe" },
        );
        const emitted = readFileSync(join(out, "model", "minicars.yaml"), "utf8");
        expect(emitted).toContain(`uri: file://${join(out, "model", "model.onnx")}`);
        writeFileSync(join(manifests, "minicars.yaml"), emitted);
        const car = { ...CAR, make: "Saab" };
        await expect
          .poll(
            async () =>
              (
                (await (
                  await fetch(`${banner.rest}/v1/valuations`, {
                    method: "POST",
                    headers: auth(),
                    body: JSON.stringify({ assetClass: "minicars", attributes: car }),
                  })
                ).json()) as { data?: { model: { version: string } } }
              ).data?.model.version,
            { timeout: 90_000, interval: 1000 },
          )
          .toBe("mini-v1");
        // Its file removed, the asset class is pruned: its CRs and their Deployments go.
        rmSync(join(manifests, "minicars.yaml"));
        const kube = (path: string) => fetch(`${banner.kubernetes}${path}`).then((r) => r.json());
        await expect
          .poll(
            async () => {
              const ap = (await kube(
                "/apis/valora.dev/v1alpha1/namespaces/default/assetpipelines/minicars",
              )) as {
                kind: string;
              };
              const deployments = (await kube("/apis/apps/v1/namespaces/default/deployments")) as {
                items: { metadata: { name: string } }[];
              };
              return [ap.kind, deployments.items.some((d) => d.metadata.name.includes("minicars"))];
            },
            { timeout: 60_000, interval: 500 },
          )
          .toEqual(["Status", false]);
      } finally {
        rmSync(join(manifests, "minicars.yaml"), { force: true });
        rmSync(out, { recursive: true, force: true });
      }
    }, 120_000);

    it("keeps its data across restarts: no new key, the old key still works; no pod outlives it", async () => {
      expect(await stop(child)).toBe(0);
      const leftovers = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" })
        .split("\n")
        .filter((a) => a.includes(dataDir));
      expect(leftovers).toEqual([]);
      const again = await up(dataDir, { VALORA_MANIFESTS: manifests });
      child = again.child;
      banner = again.banner;
      expect(banner.apiKey).toBeUndefined();
      const res = await fetch(`${banner.rest}/v1/tenant`, { headers: auth() });
      expect(res.status).toBe(200);
      expect(((await res.json()) as { data: { name: string } }).data.name).toBe("default");
      const audit = (await (
        await fetch(`${banner.rest}/v1/audit?action=apikey.create`, { headers: auth() })
      ).json()) as { data: unknown[] };
      expect(audit.data).toHaveLength(1);
    }, 120_000);
  },
);
