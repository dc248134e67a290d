/** Pure formatting helpers: one place for how numbers and dates read in the console. */
export const money = (v: number, currency = "USD") =>
  new Intl.NumberFormat("en-US", { style: "currency", currency, maximumFractionDigits: 0 }).format(v);

export const pct = (v: number, digits = 1) => `${v.toFixed(digits)}%`;

export const int = (v: number) => new Intl.NumberFormat("en-US").format(v);

export const when = (iso: string | null | undefined) =>
  iso ? new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" }) : "—";

export const day = (iso: string | null | undefined) =>
  iso ? new Date(iso).toLocaleDateString("en-GB", { dateStyle: "medium" }) : "—";
