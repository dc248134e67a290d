import { createHash } from "node:crypto";
export { assetKey } from "@valora/kit";

export interface Route {
  version: string;
  role: "champion" | "canary" | "shadow";
  endpoint: string;
  weight: number;
  /** On a canary route: % of requests also valued by the other version, for the paired comparison. */
  pairedSamplePercent?: number;
}

/**
 * Pure: the version an asset served by `serve` is also valued with for the paired comparison, and
 * which of the two is the candidate, or undefined when it is not in the sample. The sample is
 * sticky by asset key (the same asset is always in or out), independent of the routing bucket.
 */
export function pairedRoute(
  routes: Route[],
  serve: Route,
  key: string,
): { other: Route; candidate: Route; champion: Route } | undefined {
  const canary = routes.find((r) => r.role === "canary");
  const champion = routes.find((r) => r.role === "champion");
  if (!canary || !champion) return undefined;
  const percent = canary.pairedSamplePercent ?? 20;
  if (bucketOf(`pair:${key}`) >= percent * 100) return undefined;
  const same = (a: Route, b: Route) => a.version === b.version && a.role === b.role;
  if (same(serve, champion)) return { other: canary, candidate: canary, champion };
  if (same(serve, canary)) return { other: champion, candidate: canary, champion };
  return undefined;
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
