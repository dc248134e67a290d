import { cellToBoundary, latLngToCell } from "h3-js";
import { fit, mercator, tilesFor, toScreen, type Point } from "../lib/geo";

export interface MapPoint {
  id: string;
  lat: number;
  lng: number;
  label: string;
}

const W = 640;
const H = 400;

/**
 * The subject, its comparables and their H3 cells, drawn as SVG in Web Mercator. No tile server
 * by default (no request leaves for a third party); with a tile URL template the tiles go under.
 */
export default function CompsMap({
  subject,
  comparables,
  resolution,
  tileUrl,
}: {
  subject: MapPoint;
  comparables: MapPoint[];
  resolution: number;
  tileUrl: string | null;
}) {
  const cells = [...new Set([subject, ...comparables].map((p) => latLngToCell(p.lat, p.lng, resolution)))];
  const rings = cells.map((c) => ({
    cell: c,
    ring: cellToBoundary(c).map(([lat, lng]) => mercator(lat, lng)),
  }));
  const view = fit(
    rings.flatMap((r) => r.ring),
    W,
    H,
  );
  const at = (p: MapPoint): Point => toScreen(view, mercator(p.lat, p.lng));
  const s = at(subject);
  return (
    <svg
      viewBox={`0 0 ${W} ${H}`}
      width="100%"
      role="img"
      aria-label={`Map of the subject and ${comparables.length} comparables in ${cells.length} H3 cells at resolution ${resolution}`}
      style={{ background: "#f8f9fa", borderRadius: 8, maxHeight: 420 }}
      data-testid="comps-map"
    >
      {tileUrl &&
        tilesFor(view, W, H).map((t) => (
          <image
            key={`${t.z}/${t.x}/${t.y}`}
            href={tileUrl.replace("{z}", String(t.z)).replace("{x}", String(t.x)).replace("{y}", String(t.y))}
            x={t.left}
            y={t.top}
            width={t.size}
            height={t.size}
          />
        ))}
      {rings.map(({ cell, ring }) => (
        <polygon
          key={cell}
          points={ring
            .map((p) => toScreen(view, p))
            .map((p) => `${p.x},${p.y}`)
            .join(" ")}
          fill="#d0ebff"
          fillOpacity={0.45}
          stroke="#1c7ed6"
          strokeWidth={1}
        >
          <title>H3 cell {cell}</title>
        </polygon>
      ))}
      {comparables.map((c) => {
        const p = at(c);
        return (
          <circle key={c.id} cx={p.x} cy={p.y} r={6} fill="#e67700" stroke="#fff" strokeWidth={1.5}>
            <title>{c.label}</title>
          </circle>
        );
      })}
      <circle cx={s.x} cy={s.y} r={9} fill="#c92a2a" stroke="#fff" strokeWidth={2}>
        <title>{subject.label}</title>
      </circle>
      <g fontSize="12" transform={`translate(10 ${H - 30})`}>
        <rect width="210" height="22" rx="4" fill="#fff" fillOpacity={0.85} />
        <circle cx="12" cy="11" r="5" fill="#c92a2a" />
        <text x="22" y="15">
          subject
        </text>
        <circle cx="82" cy="11" r="5" fill="#e67700" />
        <text x="92" y="15">
          comparables
        </text>
        <rect x="170" y="5" width="12" height="12" fill="#d0ebff" stroke="#1c7ed6" />
        <text x="186" y="15">
          H3
        </text>
      </g>
    </svg>
  );
}
