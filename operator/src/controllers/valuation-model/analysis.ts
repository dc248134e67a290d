import type { AnalysisInput } from "./rollout.js";

/** Where the canary analysis reads the candidate's and the champion's serving metrics. */
export interface AnalysisSource {
  analyse(input: {
    namespace: string;
    model: string;
    candidate: string;
    champion: string;
    candidateUrl: string;
    championUrl: string;
  }): Promise<AnalysisInput | undefined>;
}

interface Snapshot {
  requests: number;
  errors: number;
  buckets: Map<number, number>;
  predictions: Map<number, number>;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}\s+([-+0-9.eE]+|NaN|\+Inf)$/;

function labelsOf(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

/** Pure: the counters a canary analysis needs from one model server's Prometheus text. */
export function snapshotOf(text: string, model: string): Snapshot {
  const snap: Snapshot = { requests: 0, errors: 0, buckets: new Map(), predictions: new Map() };
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const labels = labelsOf(m[2]!);
    if (labels["model"] !== model) continue;
    const value = Number(m[3]);
    if (m[1] === "valora_model_requests_total" && labels["kind"] === "infer") {
      snap.requests += value;
      if (labels["code"] !== "OK" && labels["code"] !== "INVALID_ARGUMENT" && labels["code"] !== "NOT_FOUND")
        snap.errors += value;
    } else if (m[1] === "valora_model_request_seconds_bucket" && labels["kind"] === "infer") {
      const le = labels["le"] === "+Inf" ? Number.POSITIVE_INFINITY : Number(labels["le"]);
      snap.buckets.set(le, (snap.buckets.get(le) ?? 0) + value);
    } else if (m[1] === "valora_model_prediction_bucket") {
      const le = labels["le"] === "+Inf" ? Number.POSITIVE_INFINITY : Number(labels["le"]);
      snap.predictions.set(le, (snap.predictions.get(le) ?? 0) + value);
    }
  }
  return snap;
}

/** Quantile from cumulative histogram bucket counts (upper bound of the bucket that holds it). */
export function histogramQuantile(buckets: Map<number, number>, q: number): number {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total === 0) return 0;
  const rank = q * total;
  for (const [le, count] of sorted) if (count >= rank) return le;
  return sorted.at(-1)![0];
}

const diff = (a: Map<number, number>, b: Map<number, number> | undefined): Map<number, number> =>
  new Map([...a].map(([k, v]) => [k, v - (b?.get(k) ?? 0)]));

/**
 * Reads each version's own /metrics (the model servers' Prometheus endpoint) and compares it with
 * the previous reading: error rate and p99 latency of the candidate over the interval, and the
 * relative difference of the median prediction between candidate and champion.
 */
export class PodMetricsAnalysis implements AnalysisSource {
  private readonly previous = new Map<string, Snapshot>();

  constructor(private readonly fetchFn: typeof fetch = fetch) {}

  private async read(url: string, model: string): Promise<Snapshot> {
    const res = await this.fetchFn(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return snapshotOf(await res.text(), model);
  }

  async analyse(i: Parameters<AnalysisSource["analyse"]>[0]): Promise<AnalysisInput | undefined> {
    const [cand, champ] = await Promise.all([
      this.read(i.candidateUrl, i.model),
      this.read(i.championUrl, i.model),
    ]);
    const kc = `${i.namespace}/${i.model}/${i.candidate}`;
    const kh = `${i.namespace}/${i.model}/${i.champion}`;
    const pc = this.previous.get(kc);
    const ph = this.previous.get(kh);
    this.previous.set(kc, cand);
    this.previous.set(kh, champ);
    const latency = diff(cand.buckets, pc?.buckets);
    const candMedian = histogramQuantile(diff(cand.predictions, pc?.predictions), 0.5);
    const champMedian = histogramQuantile(diff(champ.predictions, ph?.predictions), 0.5);
    return {
      requests: cand.requests - (pc?.requests ?? 0),
      errors: cand.errors - (pc?.errors ?? 0),
      latencyP99Ms: histogramQuantile(latency, 0.99) * 1000,
      medianAbsDeltaPct:
        champMedian !== 0 && Number.isFinite(champMedian) && Number.isFinite(candMedian)
          ? (100 * Math.abs(candMedian - champMedian)) / Math.abs(champMedian)
          : 0,
    };
  }
}

/**
 * Reads the same signals from a Prometheus server's HTTP API (`/api/v1/query`), when one scrapes
 * the model servers: better than pod scraping with many replicas, since it sums every pod.
 */
export class PrometheusAnalysis implements AnalysisSource {
  constructor(
    private readonly baseUrl: string,
    private readonly window: string = "1m",
    private readonly fetchFn: typeof fetch = fetch,
  ) {}

  private async scalar(query: string): Promise<number> {
    const url = new URL("/api/v1/query", this.baseUrl);
    url.searchParams.set("query", query);
    const res = await this.fetchFn(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`prometheus ${res.status} for ${query}`);
    const body = (await res.json()) as {
      status: string;
      data?: { resultType: string; result: { value: [number, string] }[] };
    };
    if (body.status !== "success") throw new Error(`prometheus query failed: ${query}`);
    const v = Number(body.data?.result[0]?.value[1] ?? "0");
    return Number.isFinite(v) ? v : 0;
  }

  async analyse(i: Parameters<AnalysisSource["analyse"]>[0]): Promise<AnalysisInput | undefined> {
    const sel = (version: string, extra = "") =>
      `model="${i.model}",version="${version}",namespace="${i.namespace}"${extra}`;
    const w = this.window;
    const [requests, errors, p99, candMedian, champMedian] = await Promise.all([
      this.scalar(`sum(increase(valora_model_requests_total{${sel(i.candidate, ',kind="infer"')}}[${w}]))`),
      this.scalar(
        `sum(increase(valora_model_requests_total{${sel(i.candidate, ',kind="infer",code!~"OK|INVALID_ARGUMENT|NOT_FOUND"')}}[${w}]))`,
      ),
      this.scalar(
        `histogram_quantile(0.99, sum by (le) (rate(valora_model_request_seconds_bucket{${sel(i.candidate, ',kind="infer"')}}[${w}])))`,
      ),
      this.scalar(
        `histogram_quantile(0.5, sum by (le) (rate(valora_model_prediction_bucket{${sel(i.candidate)}}[${w}])))`,
      ),
      this.scalar(
        `histogram_quantile(0.5, sum by (le) (rate(valora_model_prediction_bucket{${sel(i.champion)}}[${w}])))`,
      ),
    ]);
    return {
      requests: Math.round(requests),
      errors: Math.round(errors),
      latencyP99Ms: p99 * 1000,
      medianAbsDeltaPct:
        champMedian !== 0 ? (100 * Math.abs(candMedian - champMedian)) / Math.abs(champMedian) : 0,
    };
  }
}
