import { monthIndex, monthOfDate } from "@valora/kit";
import { cellToLatLng, gridDisk, latLngToCell } from "h3-js";

export type AttributeValue = number | string | boolean;

export interface Sale {
  id: string;
  price: number;
  /** ISO date of the sale; absent for data without dates (then age limits and time adjustment do not apply). */
  soldAt?: string;
  lat?: number;
  lon?: number;
  /** Attributes by pipeline field name. */
  attributes: Record<string, AttributeValue>;
}

export interface ComparablesSpec {
  mode: "geo" | "attributes";
  h3Resolution: number;
  maxRings: number;
  count: number;
  maxAgeMonths: number;
  similarity: { field: string; weight: number }[];
}

/** A price index over time (e.g. a monthly series): prices move with it between sale and valuation. */
export interface MarketIndex {
  valueAt(date: Date): number | undefined;
}

export interface Comparable {
  id: string;
  price: number;
  adjustedPrice: number;
  distanceKm: number;
  similarity: number;
  soldAt?: string;
  attributes: Record<string, AttributeValue>;
}

export interface Subject {
  lat?: number;
  lon?: number;
  attributes: Record<string, AttributeValue>;
}

const EARTH_KM = 6371.0088;

export function haversineKm(lat1: number, lon1: number, lat2: number, lon2: number): number {
  const rad = Math.PI / 180;
  const dLat = (lat2 - lat1) * rad;
  const dLon = (lon2 - lon1) * rad;
  const a = Math.sin(dLat / 2) ** 2 + Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.sin(dLon / 2) ** 2;
  return 2 * EARTH_KM * Math.asin(Math.sqrt(a));
}

/**
 * An in-memory comparables index for one asset class: sales bucketed by H3 cell (geo mode) and
 * per-attribute scales for similarity. Queries grow grid disks ring by ring up to maxRings until
 * there are enough candidates, rank them by similarity over the declared attributes, and
 * time-adjust their prices with a market index when one is given. Pure after construction.
 */
export class ComparablesIndex {
  private readonly cells = new Map<string, number[]>();
  private readonly scales = new Map<string, number>();
  private readonly sales: Sale[];
  private readonly ids = new Set<string>();
  latest: Date | undefined;
  /** Sale month of each sale (year * 12 + month - 1), -1 when undated. */
  private soldMonths: Int32Array;

  constructor(
    sales: Sale[],
    private readonly spec: ComparablesSpec,
  ) {
    this.sales = [...sales];
    this.sales.forEach((s, i) => this.indexSale(s, i));
    for (const { field } of spec.similarity) {
      const values = sales.map((s) => s.attributes[field]).filter((v): v is number => typeof v === "number");
      if (values.length < 2) continue;
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      const sd = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (values.length - 1));
      this.scales.set(field, sd > 0 ? sd : 1);
    }
    this.soldMonths = Int32Array.from(sales, (s) => (s.soldAt ? monthIndex(s.soldAt) : -1));
    const dated = sales.filter((s) => s.soldAt).map((s) => Date.parse(s.soldAt!));
    this.latest = dated.length > 0 ? new Date(Math.max(...dated)) : undefined;
  }

  get size(): number {
    return this.sales.length;
  }

  /**
   * Adds newly landed sales without rebuilding (a sale already indexed is skipped). Attribute
   * scales stay those of the initial set, so similarities of existing pairs do not shift.
   */
  add(sales: Sale[]): number {
    const fresh = sales.filter((s) => !this.ids.has(s.id));
    if (fresh.length === 0) return 0;
    const months = new Int32Array(this.soldMonths.length + fresh.length);
    months.set(this.soldMonths);
    fresh.forEach((s, k) => {
      const i = this.sales.length;
      this.sales.push(s);
      this.indexSale(s, i);
      months[this.soldMonths.length + k] = s.soldAt ? monthIndex(s.soldAt) : -1;
      if (s.soldAt && (!this.latest || Date.parse(s.soldAt) > this.latest.getTime()))
        this.latest = new Date(Date.parse(s.soldAt));
    });
    this.soldMonths = months;
    return fresh.length;
  }

  private indexSale(s: Sale, i: number): void {
    this.ids.add(s.id);
    if (this.spec.mode !== "geo" || s.lat === undefined || s.lon === undefined) return;
    const cell = latLngToCell(s.lat, s.lon, this.spec.h3Resolution);
    const list = this.cells.get(cell) ?? [];
    list.push(i);
    this.cells.set(cell, list);
  }

  /** Similarity in (0, 1]: exp of minus the weighted mean attribute distance. */
  similarity(a: Record<string, AttributeValue>, b: Record<string, AttributeValue>): number {
    let total = 0;
    let weights = 0;
    for (const { field, weight } of this.spec.similarity) {
      const x = a[field];
      const y = b[field];
      let d: number;
      if (x === undefined || y === undefined) d = 1;
      else if (typeof x === "number" && typeof y === "number")
        d = Math.min(3, Math.abs(x - y) / (this.scales.get(field) ?? 1));
      else d = x === y ? 0 : 1;
      total += weight * d;
      weights += weight;
    }
    return weights > 0 ? Math.exp(-total / weights) : 1;
  }

  private candidates(subject: Subject): number[] {
    if (this.spec.mode !== "geo" || subject.lat === undefined || subject.lon === undefined)
      return this.sales.map((_, i) => i);
    const origin = latLngToCell(subject.lat, subject.lon, this.spec.h3Resolution);
    const wanted = this.spec.count * 4;
    let found: number[] = [];
    for (let k = 0; k <= this.spec.maxRings; k++) {
      found = gridDisk(origin, k).flatMap((c) => this.cells.get(c) ?? []);
      if (found.length >= wanted) break;
    }
    return found;
  }

  find(
    subject: Subject,
    options: { asOf?: Date; index?: MarketIndex; excludeId?: string } = {},
  ): Comparable[] {
    const asOf = options.asOf ?? this.latest;
    const atValuation = asOf && options.index ? options.index.valueAt(asOf) : undefined;
    const asOfMonth = asOf ? monthOfDate(asOf) : undefined;
    const geo = subject.lat !== undefined && subject.lon !== undefined;
    // Keep only the best `count` (similarity desc, distance asc, id asc) while scanning: objects are
    // built for the winners only — a full sort of every candidate was most of a job row's CPU.
    const k = this.spec.count;
    const top: { i: number; similarity: number; distanceKm: number }[] = [];
    const better = (
      a: { i: number; similarity: number; distanceKm: number },
      b: { i: number; similarity: number; distanceKm: number },
    ) =>
      a.similarity !== b.similarity
        ? a.similarity > b.similarity
        : a.distanceKm !== b.distanceKm
          ? a.distanceKm < b.distanceKm
          : this.sales[a.i]!.id.localeCompare(this.sales[b.i]!.id) < 0;
    for (const i of this.candidates(subject)) {
      const s = this.sales[i]!;
      if (s.id === options.excludeId) continue;
      const sold = this.soldMonths[i]!;
      if (asOfMonth !== undefined && sold >= 0) {
        const age = asOfMonth - sold;
        if (age < 0 || age > this.spec.maxAgeMonths) continue;
      }
      const c = {
        i,
        similarity: this.similarity(subject.attributes, s.attributes),
        distanceKm:
          geo && s.lat !== undefined && s.lon !== undefined
            ? haversineKm(subject.lat!, subject.lon!, s.lat, s.lon)
            : 0,
      };
      if (top.length === k && !better(c, top[k - 1]!)) continue;
      let at = top.length === k ? k - 1 : top.length;
      while (at > 0 && better(c, top[at - 1]!)) at--;
      top.splice(at, 0, c);
      if (top.length > k) top.pop();
    }
    return top.map(({ i, similarity, distanceKm }) => {
      const s = this.sales[i]!;
      const atSale = s.soldAt && options.index ? options.index.valueAt(new Date(s.soldAt)) : undefined;
      const adjustedPrice = atSale && atValuation ? (s.price * atValuation) / atSale : s.price;
      return {
        id: s.id,
        price: s.price,
        adjustedPrice,
        distanceKm,
        similarity,
        ...(s.soldAt ? { soldAt: s.soldAt } : {}),
        attributes: s.attributes,
      };
    });
  }

  /** The cell centre of a location at the index's resolution (for diagnostics and tests). */
  cellCentre(lat: number, lon: number): [number, number] {
    return cellToLatLng(latLngToCell(lat, lon, this.spec.h3Resolution));
  }
}

/**
 * Pure: the comparables' estimate of value — the similarity-weighted geometric mean of adjusted
 * prices — and their dispersion (weighted sd of log prices), which widens fallback intervals.
 */
export function comparablesEstimate(comps: Comparable[]): { value: number; logSd: number } | undefined {
  const usable = comps.filter((c) => c.adjustedPrice > 0 && c.similarity > 0);
  if (usable.length === 0) return undefined;
  const w = usable.reduce((s, c) => s + c.similarity, 0);
  const meanLog = usable.reduce((s, c) => s + c.similarity * Math.log(c.adjustedPrice), 0) / w;
  const varLog =
    usable.reduce((s, c) => s + c.similarity * (Math.log(c.adjustedPrice) - meanLog) ** 2, 0) / w;
  return { value: Math.exp(meanLog), logSd: Math.sqrt(varLog) };
}
