import { z } from "zod";
import { ValoraError, monthIndex, periodOf } from "@valora/kit";

/** Units a series may be in; anything else is refused (a typo would otherwise mix dollars and counts). */
export const UNITS = ["USD", "count", "months", "index", "percent"] as const;

/** A series as a provider delivers it, before the contract is applied. Values may be missing (null). */
export const RawSeriesSchema = z.strictObject({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{0,199}$/, "lowercase letters, digits, dots, dashes and underscores"),
  title: z.string().min(1).max(300),
  unit: z.enum(UNITS),
  frequency: z.literal("monthly"),
  source: z.string().min(1),
  assetClass: z.string().optional(),
  area: z.string().optional(),
  points: z.array(z.strictObject({ period: z.string(), value: z.number().nullable() })).min(1),
});
export type RawSeries = z.infer<typeof RawSeriesSchema>;

export interface SeriesPoint {
  period: string;
  value: number;
  imputed: boolean;
}

export interface ValidSeries {
  id: string;
  title: string;
  unit: (typeof UNITS)[number];
  frequency: "monthly";
  source: string;
  assetClass?: string;
  area?: string;
  points: SeriesPoint[];
  quality: { imputedPeriods: string[]; dropped: string[] };
}

export interface SeriesContract {
  /** Longest run of missing months that is filled by interpolation; a longer gap refuses the series. */
  maxGapMonths: number;
  /** Fewest valid points a series must keep. */
  minPoints: number;
}

export const DEFAULT_CONTRACT: SeriesContract = { maxGapMonths: 3, minPoints: 3 };

const PERIOD = /^(\d{4})-(0[1-9]|1[0-2])$/;

/**
 * Pure: a provider's series checked against the contract — schema and unit, one value per month
 * in order, finite non-negative values. Missing months and missing values inside the series are
 * filled by linear interpolation and flagged, up to `maxGapMonths` in a row; a longer gap, a
 * duplicate month or too few points refuse the whole series (FAILED_PRECONDITION naming it).
 */
export function applyContract(input: unknown, contract: SeriesContract = DEFAULT_CONTRACT): ValidSeries {
  const parsed = RawSeriesSchema.safeParse(input);
  const name = (input as { id?: unknown } | null)?.id;
  const refuse = (message: string, field: string) =>
    new ValoraError(
      "FAILED_PRECONDITION",
      `series ${typeof name === "string" ? `"${name}" ` : ""}breaks its contract: ${message}`,
      { details: [{ field, description: message }] },
    );
  if (!parsed.success) {
    const i = parsed.error.issues[0]!;
    throw refuse(i.message, ["series", ...i.path.map(String)].join("."));
  }
  const raw = parsed.data;
  const dropped: string[] = [];
  const known = new Map<number, number>();
  for (const p of raw.points) {
    if (!PERIOD.test(p.period)) throw refuse(`period "${p.period}" is not YYYY-MM`, "series.points.period");
    const i = monthIndex(p.period);
    if (known.has(i) || dropped.some((d) => d.startsWith(`${p.period}:`)))
      throw refuse(`period ${p.period} appears twice`, "series.points.period");
    if (p.value === null) continue;
    if (!Number.isFinite(p.value) || p.value < 0) {
      dropped.push(`${p.period}: ${p.value} is not a finite non-negative value`);
      continue;
    }
    known.set(i, p.value);
  }
  const months = [...known.keys()].sort((a, b) => a - b);
  if (months.length < contract.minPoints)
    throw refuse(`${months.length} valid points, at least ${contract.minPoints} needed`, "series.points");
  const points: SeriesPoint[] = [];
  const imputed: string[] = [];
  for (let k = 0; k < months.length; k++) {
    const at = months[k]!;
    if (k > 0) {
      const prev = months[k - 1]!;
      const gap = at - prev - 1;
      if (gap > contract.maxGapMonths)
        throw refuse(
          `${gap} months missing after ${periodOf(prev)} (at most ${contract.maxGapMonths} are interpolated)`,
          "series.points",
        );
      const a = known.get(prev)!;
      const b = known.get(at)!;
      for (let g = 1; g <= gap; g++) {
        const period = periodOf(prev + g);
        points.push({ period, value: a + ((b - a) * g) / (gap + 1), imputed: true });
        imputed.push(period);
      }
    }
    points.push({ period: periodOf(at), value: known.get(at)!, imputed: false });
  }
  return {
    id: raw.id,
    title: raw.title,
    unit: raw.unit,
    frequency: raw.frequency,
    source: raw.source,
    ...(raw.assetClass ? { assetClass: raw.assetClass } : {}),
    ...(raw.area ? { area: raw.area } : {}),
    points,
    quality: { imputedPeriods: imputed, dropped },
  };
}

/** Pure: the points between two periods (inclusive; empty bounds are open), or INVALID_ARGUMENT. */
export function slicePoints(points: SeriesPoint[], from: string, to: string): SeriesPoint[] {
  for (const [v, field] of [
    [from, "from"],
    [to, "to"],
  ] as const)
    if (v && !PERIOD.test(v))
      throw new ValoraError("INVALID_ARGUMENT", `${field} must be a month YYYY-MM`, {
        details: [{ field, description: `"${v}" is not YYYY-MM` }],
      });
  if (from && to && from > to)
    throw new ValoraError("INVALID_ARGUMENT", "from is after to", {
      details: [{ field: "from", description: `must not be after ${to}` }],
    });
  return points.filter((p) => (!from || p.period >= from) && (!to || p.period <= to));
}
