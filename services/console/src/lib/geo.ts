/** A point on the Web Mercator plane at zoom 0 (0..256 on both axes). */
export interface Point {
  x: number;
  y: number;
}

/** Pure: Web Mercator (the projection of map tiles), so drawn cells line up with any tile layer. */
export function mercator(lat: number, lng: number): Point {
  const s = Math.sin((Math.max(-85.05, Math.min(85.05, lat)) * Math.PI) / 180);
  return { x: ((lng + 180) / 360) * 256, y: (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * 256 };
}

export interface Viewport {
  /** Zoom-0 plane to screen: screen = (p - origin) * scale. */
  origin: Point;
  scale: number;
  /** The integer zoom whose tiles are nearest the scale. */
  zoom: number;
}

/** Pure: the viewport that fits these points in width × height with a margin. */
export function fit(points: Point[], width: number, height: number, margin = 24): Viewport {
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [minX, maxX, minY, maxY] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const spanX = Math.max(maxX - minX, 1e-6);
  const spanY = Math.max(maxY - minY, 1e-6);
  const scale = Math.min((width - 2 * margin) / spanX, (height - 2 * margin) / spanY, 2 ** 19);
  const origin = {
    x: (minX + maxX) / 2 - width / 2 / scale,
    y: (minY + maxY) / 2 - height / 2 / scale,
  };
  return { origin, scale, zoom: Math.max(0, Math.min(19, Math.round(Math.log2(scale)))) };
}

export const toScreen = (v: Viewport, p: Point): Point => ({
  x: (p.x - v.origin.x) * v.scale,
  y: (p.y - v.origin.y) * v.scale,
});

/** Pure: the tiles (z/x/y and screen box) covering the viewport, for an optional raster layer. */
export function tilesFor(v: Viewport, width: number, height: number) {
  const n = 2 ** v.zoom;
  const size = (256 / n) * v.scale;
  const x0 = Math.floor((v.origin.x / 256) * n);
  const y0 = Math.floor((v.origin.y / 256) * n);
  const x1 = Math.floor(((v.origin.x + width / v.scale) / 256) * n);
  const y1 = Math.floor(((v.origin.y + height / v.scale) / 256) * n);
  const tiles: { z: number; x: number; y: number; left: number; top: number; size: number }[] = [];
  for (let x = x0; x <= x1; x++)
    for (let y = Math.max(0, y0); y <= Math.min(n - 1, y1); y++)
      tiles.push({
        z: v.zoom,
        x: ((x % n) + n) % n,
        y,
        left: ((x * 256) / n - v.origin.x) * v.scale,
        top: ((y * 256) / n - v.origin.y) * v.scale,
        size,
      });
  return tiles;
}
