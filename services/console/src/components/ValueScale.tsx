import { money } from "../format";

/** The value inside its interval, drawn on a scale padded either side of the interval. */
export function ValueScale({
  value,
  low,
  high,
  coverage,
  currency,
}: {
  value: number;
  low: number;
  high: number;
  coverage: number;
  currency: string;
}) {
  const pad = (high - low) * 0.35 || Math.abs(value) * 0.1 || 1;
  const [min, max] = [Math.min(low, value) - pad, Math.max(high, value) + pad];
  const x = (v: number) => ((v - min) / (max - min)) * 100;
  const label = `${Math.round(coverage * 100)}% interval ${money(low, currency)} to ${money(high, currency)}, value ${money(value, currency)}`;
  return (
    <svg
      viewBox="0 0 100 16"
      width="100%"
      height="64"
      role="img"
      aria-label={label}
      preserveAspectRatio="none"
    >
      <title>{label}</title>
      <line x1="0" x2="100" y1="8" y2="8" stroke="#adb5bd" strokeWidth="0.4" />
      <rect x={x(low)} width={Math.max(x(high) - x(low), 0.5)} y="4" height="8" rx="1.5" fill="#a5d8ff" />
      <rect x={x(value) - 0.4} width="0.8" y="1" height="14" fill="#1864ab" />
    </svg>
  );
}
