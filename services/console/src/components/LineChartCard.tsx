import { CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";

export interface LineSeries {
  key: string;
  label: string;
  colour: string;
}

/** A small line chart over rows keyed by `x`; used for realised accuracy, analyses over time and market series. */
export default function LineChartCard({
  rows,
  x,
  lines,
  label,
  height = 220,
  format = (v: number) => String(v),
  dot,
}: {
  rows: Record<string, number | string | boolean | null>[];
  x: string;
  lines: LineSeries[];
  label: string;
  height?: number;
  format?: (v: number) => string;
  /** Marks a row's point differently (e.g. an imputed month). */
  dot?: (row: Record<string, unknown>) => boolean;
}) {
  return (
    <div style={{ width: "100%", height }} role="img" aria-label={label}>
      <ResponsiveContainer>
        <LineChart data={rows} margin={{ left: 4, right: 16, top: 8 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey={x} tick={{ fontSize: 11 }} />
          <YAxis tickFormatter={format} tick={{ fontSize: 11 }} width={64} />
          <Tooltip formatter={(v) => (typeof v === "number" ? format(v) : String(v))} />
          {lines.length > 1 && <Legend />}
          {lines.map((l) => (
            <Line
              key={l.key}
              dataKey={l.key}
              name={l.label}
              stroke={l.colour}
              isAnimationActive={false}
              dot={
                dot
                  ? (props: {
                      cx?: number;
                      cy?: number;
                      payload?: Record<string, unknown>;
                      index?: number;
                    }) => (
                      <circle
                        key={props.index}
                        cx={props.cx}
                        cy={props.cy}
                        r={dot(props.payload ?? {}) ? 4 : 2}
                        fill={dot(props.payload ?? {}) ? "#fff" : l.colour}
                        stroke={l.colour}
                      />
                    )
                  : false
              }
            />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </div>
  );
}
