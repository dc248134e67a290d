import { Bar, BarChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { usageByDay } from "../lib/usage";

const COLOURS = ["#1864ab", "#2b8a3e", "#e67700", "#862e9c", "#c92a2a", "#0b7285"];

/** Usage by day, stacked by asset class. */
export default function UsageChart({ days }: { days: { day: string; assetClass: string; units: number }[] }) {
  const { rows, classes } = usageByDay(days);
  return (
    <div style={{ width: "100%", height: 280 }} role="img" aria-label="Valuations by day and asset class">
      <ResponsiveContainer>
        <BarChart data={rows}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="day" tick={{ fontSize: 11 }} />
          <YAxis allowDecimals={false} />
          <Tooltip />
          <Legend />
          {classes.map((c, i) => (
            <Bar
              key={c}
              dataKey={c}
              stackId="u"
              fill={COLOURS[i % COLOURS.length]}
              isAnimationActive={false}
            />
          ))}
        </BarChart>
      </ResponsiveContainer>
    </div>
  );
}
