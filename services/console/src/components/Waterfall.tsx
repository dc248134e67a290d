import { Bar, BarChart, CartesianGrid, Cell, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { money } from "../format";
import type { Explanation } from "../lib/types";
import { waterfallSteps } from "../lib/waterfall";

const COLOURS = { base: "#868e96", up: "#2b8a3e", down: "#c92a2a", total: "#1864ab" } as const;

/** The explanation as a waterfall: base value, each feature's push up or down, the value. */
export default function Waterfall({
  explanation,
  value,
  currency,
}: {
  explanation: Explanation;
  value: number;
  currency: string;
}) {
  const steps = waterfallSteps(explanation, value);
  const rows = steps.map((s) => ({
    label: s.label,
    range: [Math.min(s.from, s.to), Math.max(s.from, s.to)] as [number, number],
    delta: s.to - s.from,
    kind: s.kind,
  }));
  return (
    <figure style={{ margin: 0 }} aria-label="How each feature moved the value from the base value">
      <div style={{ width: "100%", height: 40 + rows.length * 30 }} data-testid="waterfall">
        <ResponsiveContainer>
          <BarChart data={rows} layout="vertical" margin={{ left: 8, right: 24 }} accessibilityLayer>
            <CartesianGrid horizontal={false} strokeDasharray="3 3" />
            <XAxis
              type="number"
              domain={["auto", "auto"]}
              tickFormatter={(v: number) => money(v, currency)}
            />
            <YAxis type="category" dataKey="label" width={190} tick={{ fontSize: 12 }} />
            <Tooltip
              formatter={(_v, _n, item) => {
                const r = item.payload as (typeof rows)[number];
                return r.kind === "up" || r.kind === "down"
                  ? [`${r.delta >= 0 ? "+" : "−"}${money(Math.abs(r.delta), currency)}`, "effect"]
                  : [money(r.range[1], currency), r.kind === "base" ? "base value" : "value"];
              }}
            />
            <Bar dataKey="range" isAnimationActive={false}>
              {rows.map((r) => (
                <Cell key={r.label} fill={COLOURS[r.kind]} />
              ))}
            </Bar>
          </BarChart>
        </ResponsiveContainer>
      </div>
      <figcaption>
        <table className="visually-hidden">
          <caption>Explanation steps</caption>
          <tbody>
            {rows.map((r) => (
              <tr key={r.label}>
                <th scope="row">{r.label}</th>
                <td>
                  {r.kind === "up" || r.kind === "down"
                    ? money(r.delta, currency)
                    : money(r.range[1], currency)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </figcaption>
    </figure>
  );
}
