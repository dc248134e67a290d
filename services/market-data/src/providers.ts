import { readFile } from "node:fs/promises";
import { parse } from "csv-parse/sync";
import { ValoraError } from "@valora/kit";
import type { RawSeries } from "./contract.js";

/** Where series come from. `load` returns every series it publishes, unvalidated. */
export interface SeriesProvider {
  readonly name: string;
  load(): Promise<unknown[]>;
}

/** Reads a provider's document: a file or an HTTP resource. */
export type Source = () => Promise<string>;

export const fileSource =
  (path: string): Source =>
  () =>
    readFile(path, "utf8");

/**
 * An HTTP(S) document. Only hosts on the allow-list are fetched (a feed URL in configuration must
 * not become a way to reach internal services), with a deadline, and a non-2xx answer is an error.
 */
export function httpSource(
  url: string,
  o: { allowedHosts: string[]; timeoutMs?: number; headers?: Record<string, string> },
): Source {
  const u = new URL(url);
  if (u.protocol !== "https:" && u.protocol !== "http:")
    throw new ValoraError("INVALID_ARGUMENT", `feed URL ${url} is not http(s)`, {
      details: [{ field: "url", description: "http or https" }],
    });
  if (!o.allowedHosts.includes(u.host) && !o.allowedHosts.includes(u.hostname))
    throw new ValoraError("PERMISSION_DENIED", `feed host ${u.host} is not in the allow-list`, {
      details: [{ field: "url", description: `allowed: ${o.allowedHosts.join(", ") || "none"}` }],
    });
  return async () => {
    const res = await fetch(u, {
      signal: AbortSignal.timeout(o.timeoutMs ?? 10_000),
      ...(o.headers ? { headers: o.headers } : {}),
    });
    if (!res.ok) throw new ValoraError("UNAVAILABLE", `feed ${u.host}${u.pathname} answered ${res.status}`);
    return res.text();
  };
}

/** A JSON document holding series (`[...]` or `{"series": [...]}`) in the raw series shape. */
export function jsonProvider(name: string, source: Source): SeriesProvider {
  return {
    name,
    async load() {
      const doc: unknown = JSON.parse(await source());
      const list = Array.isArray(doc) ? doc : (doc as { series?: unknown }).series;
      if (!Array.isArray(list))
        throw new ValoraError("FAILED_PRECONDITION", `feed ${name} is not a list of series`);
      return list.map((s) => ({ source: name, ...(s as object) }));
    },
  };
}

/** How a wide CSV (one row per key and month, one column per measure) maps to series. */
export interface CsvFeed {
  /** Series ids are `<idPrefix>.<key values>.<measure>`. */
  idPrefix: string;
  /** Columns identifying a series besides its month (e.g. city). */
  keys: string[];
  /** Columns holding the year and the month (1-12). */
  year: string;
  month: string;
  measures: Record<string, { unit: RawSeries["unit"]; title: string }>;
  titlePrefix: string;
}

const slug = (s: string) =>
  s
    .toLowerCase()
    .normalize("NFKD")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");

/** Pure: the series of a wide CSV document. Missing cells (`NA`, empty) become missing values. */
export function seriesFromCsv(text: string, feed: CsvFeed, source: string): RawSeries[] {
  const rows = parse<Record<string, string>>(text, { columns: true, skip_empty_lines: true, trim: true });
  const byId = new Map<string, RawSeries>();
  for (const row of rows) {
    const year = Number(row[feed.year]);
    const month = Number(row[feed.month]);
    if (!Number.isInteger(year) || !Number.isInteger(month)) continue;
    const period = `${year}-${String(month).padStart(2, "0")}`;
    const keyValues = feed.keys.map((k) => row[k] ?? "");
    for (const [measure, m] of Object.entries(feed.measures)) {
      const id = [feed.idPrefix, ...keyValues.map(slug), measure].join(".");
      let s = byId.get(id);
      if (!s) {
        s = {
          id,
          title: `${feed.titlePrefix} ${keyValues.join(" ")}: ${m.title}`.trim(),
          unit: m.unit,
          frequency: "monthly",
          source,
          area: keyValues.join(" "),
          points: [],
        };
        byId.set(id, s);
      }
      const raw = row[measure];
      s.points.push({ period, value: raw === undefined || raw === "" || raw === "NA" ? null : Number(raw) });
    }
  }
  return [...byId.values()];
}

export function csvProvider(name: string, source: Source, feed: CsvFeed): SeriesProvider {
  return { name, load: async () => seriesFromCsv(await source(), feed, name) };
}

/** The Texas housing-market feed (models/data/txhousing.csv): five measures per city. */
export const TEXAS_HOUSING: CsvFeed = {
  idPrefix: "txhousing",
  keys: ["city"],
  year: "year",
  month: "month",
  titlePrefix: "Texas housing,",
  measures: {
    sales: { unit: "count", title: "number of sales" },
    volume: { unit: "USD", title: "total value of sales" },
    median: { unit: "USD", title: "median sale price" },
    listings: { unit: "count", title: "active listings" },
    inventory: { unit: "months", title: "months of inventory" },
  },
};
