/** What a valuation's answer includes besides its value, interval and confidence. */
export interface ValuationParts {
  explanation: boolean;
  comparables: boolean;
}

export const FULL_PARTS: ValuationParts = Object.freeze({ explanation: true, comparables: true });
export const VALUE_ONLY: ValuationParts = Object.freeze({ explanation: false, comparables: false });

/**
 * Pure: the parts a request asks for: its `include` when present (proto Include, or the REST list),
 * else everything; `lean` (bulk jobs) is the value alone.
 */
export function partsOf(
  include: { explanation: boolean; comparables: boolean } | readonly string[] | undefined,
  lean = false,
): ValuationParts {
  if (lean) return VALUE_ONLY;
  if (include === undefined) return FULL_PARTS;
  if (Array.isArray(include)) {
    const list = include as readonly string[];
    return { explanation: list.includes("explanation"), comparables: list.includes("comparables") };
  }
  const i = include as { explanation: boolean; comparables: boolean };
  return { explanation: i.explanation, comparables: i.comparables };
}

export const isFull = (p: ValuationParts): boolean => p.explanation && p.comparables;

/** Pure: a cache key's suffix for the parts (none for a full answer, which serves every combination). */
export const partsSuffix = (p: ValuationParts): string =>
  isFull(p)
    ? ""
    : `|${p.explanation ? "e" : ""}${p.comparables ? "c" : ""}${!p.explanation && !p.comparables ? "v" : ""}`;
