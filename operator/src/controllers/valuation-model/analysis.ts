import { pairedFigures } from "./paired.js";
import type { AnalysisInput } from "./rollout.js";

/** Where the canary analysis reads the candidate's serving metrics and the pipelines' paired sample. */
export interface AnalysisSource {
  analyse(input: {
    namespace: string;
    model: string;
    candidate: string;
    champion: string;
    candidateUrl: string;
    championUrl: string;
    /** The /metrics of the pipelines that route to this model (they record the paired deltas). */
    pipelineUrls: string[];
  }): Promise<AnalysisInput | undefined>;
}

/** Pure: a histogram bucket's upper bound from its `le` label (Prometheus text or query result). */
const leOf = (labels: { le?: string }) =>
  labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(labels.le);

interface Snapshot {
  requests: number;
  errors: number;
  buckets: Map<number, number>;
}

/** The paired-delta histograms of one candidate against one champion, summed over pipelines. */
interface PairedSnapshot {
  signed: Map<number, number>;
  absolute: Map<number, number>;
}

// A sample line of the Prometheus text or OpenMetrics format; OpenMetrics may end it with an exemplar (` # {trace_id="…"} 0.12 1733…`).
const LINE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}\s+([-+0-9.eE]+|NaN|\+Inf)(?:\s+[-+0-9.eE]+)?(?:\s+#\s+\{[^}]*\}.*)?$/;

function labelsOf(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of s.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

/** Pure: the counters a canary analysis needs from one model server's Prometheus text. */
export function snapshotOf(text: string, model: string): Snapshot {
  const snap: Snapshot = { requests: 0, errors: 0, buckets: new Map() };
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
      const le = leOf(labels);
      snap.buckets.set(le, (snap.buckets.get(le) ?? 0) + value);
    }
  }
  return snap;
}

/** Pure: the paired-delta histograms of `candidate` against `champion` in a pipeline's Prometheus text. */
export function pairedSnapshotOf(
  text: string,
  model: string,
  candidate: string,
  champion: string,
): PairedSnapshot {
  const snap: PairedSnapshot = { signed: new Map(), absolute: new Map() };
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (!m) continue;
    const target =
      m[1] === "valora_paired_delta_percent_bucket"
        ? snap.signed
        : m[1] === "valora_paired_abs_delta_percent_bucket"
          ? snap.absolute
          : undefined;
    if (!target) continue;
    const labels = labelsOf(m[2]!);
    if (labels["model"] !== model || labels["version"] !== candidate || labels["champion"] !== champion)
      continue;
    const le = leOf(labels);
    target.set(le, (target.get(le) ?? 0) + Number(m[3]));
  }
  return snap;
}

const addInto = (into: Map<number, number>, from: Map<number, number>) => {
  for (const [k, v] of from) into.set(k, (into.get(k) ?? 0) + v);
  return into;
};

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
  private readonly previousPaired = new Map<string, PairedSnapshot>();

  constructor(private readonly fetchFn: typeof fetch = fetch) {}

  private async read(url: string, model: string): Promise<Snapshot> {
    const res = await this.fetchFn(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return snapshotOf(await res.text(), model);
  }

  async analyse(i: Parameters<AnalysisSource["analyse"]>[0]): Promise<AnalysisInput | undefined> {
    const cand = await this.read(i.candidateUrl, i.model);
    const kc = `${i.namespace}/${i.model}/${i.candidate}`;
    const pc = this.previous.get(kc);
    this.previous.set(kc, cand);
    const latency = diff(cand.buckets, pc?.buckets);
    const paired = await this.readPaired(i);
    const kp = `${kc}/paired/${i.champion}`;
    const pp = this.previousPaired.get(kp);
    this.previousPaired.set(kp, paired);
    return {
      requests: cand.requests - (pc?.requests ?? 0),
      errors: cand.errors - (pc?.errors ?? 0),
      latencyP99Ms: histogramQuantile(latency, 0.99) * 1000,
      paired: pairedFigures(diff(paired.signed, pp?.signed), diff(paired.absolute, pp?.absolute)),
    };
  }

  /** Sums the paired histograms over every pipeline that routes to the model (any unreachable one fails the read). */
  private async readPaired(i: Parameters<AnalysisSource["analyse"]>[0]): Promise<PairedSnapshot> {
    const texts = await Promise.all(
      i.pipelineUrls.map(async (url) => {
        const res = await this.fetchFn(url, { signal: AbortSignal.timeout(5000) });
        if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
        return res.text();
      }),
    );
    const total: PairedSnapshot = { signed: new Map(), absolute: new Map() };
    for (const text of texts) {
      const one = pairedSnapshotOf(text, i.model, i.candidate, i.champion);
      addInto(total.signed, one.signed);
      addInto(total.absolute, one.absolute);
    }
    return total;
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

  /** One instant query's result vector (`/api/v1/query`). */
  private async query(query: string): Promise<{ metric: { le?: string }; value: [number, string] }[]> {
    const url = new URL("/api/v1/query", this.baseUrl);
    url.searchParams.set("query", query);
    const res = await this.fetchFn(url, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`prometheus ${res.status} for ${query}`);
    const body = (await res.json()) as {
      status: string;
      data?: { result: { metric: { le?: string }; value: [number, string] }[] };
    };
    if (body.status !== "success") throw new Error(`prometheus query failed: ${query}`);
    return body.data?.result ?? [];
  }

  private async scalar(query: string): Promise<number> {
    const v = Number((await this.query(query))[0]?.value[1] ?? "0");
    return Number.isFinite(v) ? v : 0;
  }

  async analyse(i: Parameters<AnalysisSource["analyse"]>[0]): Promise<AnalysisInput | undefined> {
    const sel = (version: string, extra = "") =>
      `model="${i.model}",version="${version}",namespace="${i.namespace}"${extra}`;
    const w = this.window;
    const pairSel = `model="${i.model}",version="${i.candidate}",champion="${i.champion}",namespace="${i.namespace}"`;
    const [requests, errors, p99, signed, absolute] = await Promise.all([
      this.scalar(`sum(increase(valora_model_requests_total{${sel(i.candidate, ',kind="infer"')}}[${w}]))`),
      this.scalar(
        `sum(increase(valora_model_requests_total{${sel(i.candidate, ',kind="infer",code!~"OK|INVALID_ARGUMENT|NOT_FOUND"')}}[${w}]))`,
      ),
      this.scalar(
        `histogram_quantile(0.99, sum by (le) (rate(valora_model_request_seconds_bucket{${sel(i.candidate, ',kind="infer"')}}[${w}])))`,
      ),
      this.buckets(`sum by (le) (increase(valora_paired_delta_percent_bucket{${pairSel}}[${w}]))`),
      this.buckets(`sum by (le) (increase(valora_paired_abs_delta_percent_bucket{${pairSel}}[${w}]))`),
    ]);
    return {
      requests: Math.round(requests),
      errors: Math.round(errors),
      latencyP99Ms: p99 * 1000,
      // The same buckets and the same interpolation as the pod reading: the same figures.
      paired: pairedFigures(signed, absolute),
    };
  }

  /** A cumulative histogram (`le` → count) from a `sum by (le)` query. */
  private async buckets(query: string): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    for (const r of await this.query(query)) {
      const le = leOf(r.metric);
      // increase() extrapolates to fractions: counts of pairs are whole.
      out.set(le, Math.round(Number(r.value[1])));
    }
    return out;
  }
}
