import { LRUCache } from "lru-cache";
import { ValoraError, type Logger } from "@valora/kit";
import { DEFAULT_CONTRACT, applyContract, type SeriesContract, type ValidSeries } from "./contract.js";
import type { SeriesProvider } from "./providers.js";

interface Snapshot {
  series: Map<string, ValidSeries>;
  /** Series the provider published that broke the contract, with the reason (the quarantine). */
  refused: Map<string, string>;
  fetchedAt: Date;
}

export interface CatalogOptions {
  providers: SeriesProvider[];
  /** How long a provider's series are served before it is asked again. */
  ttlMs?: number;
  contract?: SeriesContract;
  logger: Logger;
}

/**
 * Every provider's series, validated and cached for a TTL. When a refresh fails the last good
 * copy keeps being served (and the failure logged); a series that breaks its contract is never
 * served, and asking for it says why.
 */
export class SeriesCatalog {
  private readonly cache: LRUCache<string, Snapshot>;
  private readonly byName: Map<string, SeriesProvider>;

  constructor(private readonly o: CatalogOptions) {
    this.byName = new Map(o.providers.map((p) => [p.name, p]));
    this.cache = new LRUCache<string, Snapshot>({
      max: 1000,
      ttl: o.ttlMs ?? 600_000,
      allowStaleOnFetchRejection: true,
      noDeleteOnFetchRejection: true,
      fetchMethod: async (name) => this.load(this.byName.get(name)!),
    });
  }

  private async load(p: SeriesProvider): Promise<Snapshot> {
    try {
      const raw = await p.load();
      const series = new Map<string, ValidSeries>();
      const refused = new Map<string, string>();
      for (const r of raw) {
        const given = (r as { id?: unknown }).id;
        const id = typeof given === "string" ? given : "?";
        try {
          series.set(id, applyContract(r, this.o.contract ?? DEFAULT_CONTRACT));
        } catch (err) {
          refused.set(id, err instanceof Error ? err.message : String(err));
        }
      }
      this.o.logger.info(
        { provider: p.name, series: series.size, refused: refused.size },
        "market series loaded",
      );
      if (refused.size > 0)
        this.o.logger.warn(
          { provider: p.name, refused: Object.fromEntries([...refused].slice(0, 5)) },
          "market series refused by their contract",
        );
      return { series, refused, fetchedAt: new Date() };
    } catch (err) {
      this.o.logger.warn(
        { provider: p.name, err: err instanceof Error ? err.message : String(err) },
        "market provider failed; serving its last good series if any",
      );
      throw err;
    }
  }

  private async snapshot(p: SeriesProvider): Promise<Snapshot | undefined> {
    try {
      return await this.cache.fetch(p.name);
    } catch {
      return undefined;
    }
  }

  async list(prefix = ""): Promise<(ValidSeries & { fetchedAt: Date })[]> {
    const out: (ValidSeries & { fetchedAt: Date })[] = [];
    for (const p of this.o.providers) {
      const s = await this.snapshot(p);
      if (s)
        for (const v of s.series.values())
          if (v.id.startsWith(prefix)) out.push({ ...v, fetchedAt: s.fetchedAt });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async get(id: string): Promise<ValidSeries & { fetchedAt: Date }> {
    let unavailable = false;
    for (const p of this.o.providers) {
      const s = await this.snapshot(p);
      if (!s) {
        unavailable = true;
        continue;
      }
      const v = s.series.get(id);
      if (v) return { ...v, fetchedAt: s.fetchedAt };
      const why = s.refused.get(id);
      if (why)
        throw new ValoraError("FAILED_PRECONDITION", why, {
          details: [{ field: "id", description: "the series is quarantined: it breaks its contract" }],
        });
    }
    if (unavailable)
      throw new ValoraError(
        "UNAVAILABLE",
        `series "${id}" not found, and some market providers are unreachable`,
      );
    throw new ValoraError("NOT_FOUND", `market series "${id}" not found`, {
      details: [{ field: "id", description: "see GET /v1/market/series" }],
    });
  }

  /** Drops cached series so the next request reloads (new sales landed, a feed was updated). */
  invalidate(provider?: string): void {
    if (provider) this.cache.delete(provider);
    else this.cache.clear();
  }
}
