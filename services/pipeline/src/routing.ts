import { createHash } from "node:crypto";
export { assetKey } from "@valora/kit";

export interface Route {
  version: string;
  role: "champion" | "canary" | "shadow";
  endpoint: string;
  weight: number;
}

/** Pure: a bucket 0..9999 from the key, so the same asset always takes the same route. */
export function bucketOf(key: string): number {
  return createHash("sha256").update(key).digest().readUInt32BE(0) % 10_000;
}

/**
 * Pure: the serving route for an asset (sticky by key, weights from ValuationModel status.routing)
 * and the shadow routes to mirror to (they never serve the answer).
 */
export function chooseRoute(routes: Route[], key: string): { serve: Route; shadows: Route[] } {
  const serving = routes.filter((r) => r.role !== "shadow" && r.weight > 0);
  if (serving.length === 0) throw new Error("no route with weight");
  const total = serving.reduce((s, r) => s + r.weight, 0);
  const point = (bucketOf(key) / 10_000) * total;
  let acc = 0;
  let chosen = serving.at(-1)!;
  for (const r of serving) {
    acc += r.weight;
    if (point < acc) {
      chosen = r;
      break;
    }
  }
  return { serve: chosen, shadows: routes.filter((r) => r.role === "shadow") };
}
