import { createHash } from "node:crypto";
import {
  ValoraError,
  canonicalJson,
  attributeColumns,
  columnKey,
  domainWarnings,
  normaliseAttributes,
  putColumn,
  type InputField,
  type ValuationWarning,
  type Normalised,
} from "@valora/kit";

/** An AssetPipeline's `spec.contract` (see the CRD for the meaning of each field). */
export interface DataContract {
  price?: { min?: number; max?: number };
  ranges?: Record<string, { min?: number; max?: number }>;
  required?: string[];
  maxAgeDays?: number;
  maxFutureDays?: number;
  driftMdapePct?: number;
  /** quarantineBatch (default): any invalid record lands nothing; dropRecords: the valid ones land. */
  onViolation?: "quarantineBatch" | "dropRecords";
}

/** What an asset class's records are checked against: its input fields and its contract. */
export interface ClassSchema {
  assetClass: string;
  fields: InputField[];
  contract: DataContract;
  /** Input fields holding coordinates (geo comparables), copied to the sale's location. */
  latitude?: string;
  longitude?: string;
  /** Input fields holding a sale's year and month (comparables.soldAt). */
  soldAt?: { year: string; month: string };
}

/** The parts of an AssetPipeline spec a contract is made of. */
export interface PipelineContractSpec {
  assetClass: string;
  model: { name: string };
  input: { fields: InputField[] };
  comparables?: { latitude?: string; longitude?: string; soldAt?: { year: string; month: string } } | null;
  contract?: DataContract;
}

/** Pure: an asset class's schema from its AssetPipeline. */
export function schemaOf(spec: PipelineContractSpec): ClassSchema {
  return {
    assetClass: spec.assetClass,
    fields: spec.input.fields,
    contract: spec.contract ?? {},
    ...(spec.comparables?.latitude ? { latitude: spec.comparables.latitude } : {}),
    ...(spec.comparables?.longitude ? { longitude: spec.comparables.longitude } : {}),
    ...(spec.comparables?.soldAt ? { soldAt: spec.comparables.soldAt } : {}),
  };
}

export type RecordKind = "sales" | "listings";

export interface Violation {
  /** 1-based record number; 0 for the batch as a whole. */
  record: number;
  field: string;
  description: string;
}

export interface CheckedRecord {
  /** 1-based record number in the batch. */
  record: number;
  /** The sale id (sales) or the asset id (listings). */
  id: string;
  assetId?: string;
  price: number;
  soldAt?: string;
  lat?: number;
  lon?: number;
  attributes: Normalised;
  raw: Record<string, unknown>;
  sha256: string;
  /** Valid, but outside the training domain (flagged in silver and in the batch report). */
  flags: ValuationWarning[];
}

export interface CheckedBatch {
  /** The records that may land: all of them, none (quarantine), or the valid ones (dropRecords). */
  records: CheckedRecord[];
  violations: Violation[];
  /** Records refused while the rest land (dropRecords). */
  dropped: number;
  /** The contract's onViolation is dropRecords: refused records are dropped, not the batch. */
  dropRecords: boolean;
}

/** A scalar as text; "" for anything else (an object where an id belongs is no id). */
const text = (v: unknown): string =>
  typeof v === "string" || typeof v === "number" || typeof v === "boolean" ? String(v).trim() : "";

/** Pure: a column name as compared with field names and features (case and separators ignored). */
export { columnKey };

const RESERVED = {
  id: "id",
  saleid: "id",
  assetid: "assetId",
  price: "price",
  saleprice: "price",
  askingprice: "price",
  soldat: "soldAt",
  saledate: "soldAt",
  solddate: "soldAt",
} as const;

/** Pure: a date as YYYY-MM-DD from YYYY-MM-DD, YYYY-MM (mid-month) or an ISO timestamp; undefined when unreadable. */
export function saleDate(raw: unknown): string | undefined {
  if (typeof raw !== "string") return undefined;
  const m = /^(\d{4})-(\d{2})(?:-(\d{2}))?/.exec(raw.trim());
  if (!m) return undefined;
  const iso = `${m[1]}-${m[2]}-${m[3] ?? "15"}`;
  const t = Date.parse(`${iso}T00:00:00Z`);
  return Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === iso ? iso : undefined;
}

/** Pure: the sha256 of a record's canonical JSON (keys sorted): equal content, equal hash. */
export function recordHash(v: unknown): string {
  return createHash("sha256").update(canonicalJson(v)).digest("hex");
}

/**
 * Pure: checks a batch against its asset class's contract — every record, every problem — and
 * normalises what passes: attributes keyed by the pipeline's field names (columns may use field
 * names or model features, any case), typed, within the contract's ranges (the field's own when
 * the contract names none), required fields present, enums canonical; a positive price within
 * the contract's range; sales dated, and fresh as the contract says; ids unique in the batch.
 * Defaults are not applied: a record says what was observed, nothing more. Validity is checked,
 * not the training domain: a record the model never saw the like of lands, flagged (a field's
 * `strict` is about valuations, not data). Invalid records quarantine the batch, or with
 * `onViolation: dropRecords` are left in bronze while the rest land.
 */
export function checkBatch(
  kind: RecordKind,
  rows: Record<string, unknown>[],
  schema: ClassSchema,
  now: Date,
): CheckedBatch {
  const c = schema.contract;
  const fields: InputField[] = schema.fields.map((f) => {
    const range = c.ranges?.[f.name];
    const { default: _default, strict: _strict, ...rest } = f;
    return {
      ...rest,
      ...(range?.min !== undefined ? { min: range.min } : {}),
      ...(range?.max !== undefined ? { max: range.max } : {}),
      required: f.required || (c.required ?? []).includes(f.name),
    };
  });
  const byKey = attributeColumns(schema.fields);
  const violations: Violation[] = [];
  const records: CheckedRecord[] = [];
  const seen = new Map<string, number>();
  if (rows.length === 0) violations.push({ record: 0, field: "", description: "the batch has no records" });
  rows.forEach((raw, i) => {
    const n = i + 1;
    const bad = (field: string, description: string) => violations.push({ record: n, field, description });
    const attrs: Record<string, unknown> = {};
    const meta: Partial<Record<"id" | "assetId" | "price" | "soldAt", unknown>> = {};
    for (const [key, value] of Object.entries(raw)) {
      const k = columnKey(key);
      const reserved = RESERVED[k as keyof typeof RESERVED];
      if (reserved) meta[reserved] = value;
      else if (value !== "" && value !== null && value !== undefined && value !== "NA")
        putColumn(attrs, byKey.get(k) ?? { attribute: key }, value);
    }
    const id = text(meta.id);
    if (!id) bad("id", "is required");
    else if (seen.has(id)) bad("id", `duplicates record ${seen.get(id)} of this batch`);
    else seen.set(id, n);
    const price =
      typeof meta.price === "number"
        ? meta.price
        : typeof meta.price === "string" && meta.price.trim() !== ""
          ? Number(meta.price)
          : Number.NaN;
    if (!Number.isFinite(price) || price <= 0)
      bad("price", `must be a positive number, got ${JSON.stringify(meta.price ?? null)}`);
    else if (c.price?.min !== undefined && price < c.price.min)
      bad("price", `must be at least ${c.price.min}, got ${price}`);
    else if (c.price?.max !== undefined && price > c.price.max)
      bad("price", `must be at most ${c.price.max}, got ${price}`);
    let soldAt: string | undefined;
    if (kind === "sales") {
      soldAt = saleDate(meta.soldAt);
      if (!soldAt)
        bad("sold_at", `must be a date (YYYY-MM-DD or YYYY-MM), got ${JSON.stringify(meta.soldAt ?? null)}`);
      else {
        const ageDays = (now.getTime() - Date.parse(`${soldAt}T00:00:00Z`)) / 86_400_000;
        if (ageDays < -(c.maxFutureDays ?? 1)) bad("sold_at", `is in the future (${soldAt})`);
        if (c.maxAgeDays !== undefined && ageDays > c.maxAgeDays)
          bad("sold_at", `is older than the contract's ${c.maxAgeDays} days (${soldAt})`);
      }
    }
    let attributes: Normalised = {};
    try {
      attributes = normaliseAttributes(fields, attrs);
    } catch (err) {
      if (!(err instanceof ValoraError)) throw err;
      for (const d of err.details) bad(d.field.replace(/^attributes\./, ""), d.description);
    }
    const lat = schema.latitude ? attributes[schema.latitude] : undefined;
    const lon = schema.longitude ? attributes[schema.longitude] : undefined;
    const assetId = kind === "listings" ? id : text(meta.assetId) || undefined;
    records.push({
      record: n,
      id,
      ...(assetId ? { assetId } : {}),
      price,
      ...(soldAt ? { soldAt } : {}),
      ...(typeof lat === "number" && typeof lon === "number" ? { lat, lon } : {}),
      attributes,
      raw,
      sha256: recordHash(raw),
      flags: domainWarnings(fields, attributes),
    });
  });
  const dropRecords = c.onViolation === "dropRecords";
  if (violations.length === 0) return { records, violations, dropped: 0, dropRecords };
  const refused = new Set(violations.map((v) => v.record));
  // A batch-level violation (record 0) leaves nothing to land on its own.
  if (!dropRecords || refused.has(0)) return { records: [], violations, dropped: 0, dropRecords };
  const kept = records.filter((r) => !refused.has(r.record));
  return { records: kept, violations, dropped: records.length - kept.length, dropRecords };
}
