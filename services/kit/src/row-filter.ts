/** Rows whose column holds one of these values are left out (sales that are not arm's length, say). */
export type RowFilter = Record<string, string[]>;

/**
 * Pure: whether a row is left out by a row filter, given how to read its columns (values compared
 * trimmed). The trainer and the comparables seed apply the same filter to the same CSV with it.
 */
export function excludedBy(filter: RowFilter, valueOf: (column: string) => string | undefined): boolean {
  for (const column in filter) {
    const value = (valueOf(column) ?? "").trim();
    if (filter[column]!.some((v) => v.trim() === value)) return true;
  }
  return false;
}
