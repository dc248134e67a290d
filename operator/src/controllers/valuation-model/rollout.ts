import { Backtest, CanaryAnalysis, type ValuationModel, type ValuationModelStatus } from "../../api/index.js";
import type { PairedFigures } from "./paired.js";
import { durationMs } from "../shared.js";
import { serviceEndpoint } from "./desired.js";

/** What the canary analysis measured for the candidate over the last interval (from real metrics). */
export interface AnalysisInput {
  requests: number;
  errors: number;
  latencyP99Ms: number;
  /** The same assets valued by both versions (pipelines' paired sample); undefined when unreadable. */
  paired?: PairedFigures;
}

export type CandidateStatus = NonNullable<ValuationModelStatus["candidate"]>;
export type Route = NonNullable<ValuationModelStatus["routing"]>[number];
type Figures = NonNullable<CandidateStatus["lastAnalysis"]>;

export type RolloutDecision =
  | { action: "start"; candidate: CandidateStatus; event?: undefined }
  | { action: "wait"; candidate: CandidateStatus; requeueAfterMs: number; event?: undefined }
  | {
      action: "advance";
      candidate: CandidateStatus;
      event: { reason: "CanaryStepAdvanced"; message: string };
    }
  | { action: "promote"; candidate: CandidateStatus; event: { reason: "CanaryPromoted"; message: string } }
  | { action: "pause"; candidate: CandidateStatus; event: { reason: "CanaryPaused"; message: string } }
  | { action: "rollback"; candidate: CandidateStatus; event: { reason: "CanaryRolledBack"; message: string } }
  | { action: "none"; candidate: CandidateStatus; event?: undefined };

export type CandidateBacktest = NonNullable<CandidateStatus["backtest"]>;

/** What the pipeline answered to a backtest (both versions on the same recent sales). */
export interface BacktestResult {
  sales: number;
  excludedAsTraining: number;
  champion?: { mdapePct: number; ppe10Pct: number; biasPct: number };
  candidate?: { mdapePct: number; ppe10Pct: number; biasPct: number };
}

/**
 * Pure: the backtest's verdict. Refused when the candidate's MdAPE exceeds the champion's by more
 * than `maxMdapeIncrease` points or its |bias| exceeds the analysis's bias limit; too few eligible
 * sales skip the gate (reported), they never block.
 */
export function judgeBacktest(vm: ValuationModel, r: BacktestResult, at: string): CandidateBacktest {
  const b = { ...DEFAULT_BACKTEST, ...vm.spec.candidate?.backtest };
  const maxBias = vm.spec.candidate?.canary?.analysis?.maxBiasPct ?? DEFAULT_ANALYSIS.maxBiasPct;
  const base = { at, sales: r.sales, excludedAsTraining: r.excludedAsTraining };
  if (r.sales < b.minSales || !r.champion || !r.candidate)
    return {
      ...base,
      passed: true,
      skipped: true,
      message: `${r.sales} eligible landed sales, fewer than the ${b.minSales} a backtest needs: skipped`,
    };
  const round = (a: { mdapePct: number; ppe10Pct: number; biasPct: number }) => ({
    mdapePct: Math.round(a.mdapePct * 100) / 100,
    ppe10Pct: Math.round(a.ppe10Pct * 10) / 10,
    biasPct: Math.round(a.biasPct * 100) / 100,
  });
  const figures = { ...base, champion: round(r.champion), candidate: round(r.candidate) };
  const increase = r.candidate.mdapePct - r.champion.mdapePct;
  const failures: string[] = [];
  if (increase > b.maxMdapeIncrease)
    failures.push(
      `MdAPE ${pct(r.candidate.mdapePct)} vs the champion's ${pct(r.champion.mdapePct)} (+${increase.toFixed(2)} points > ${b.maxMdapeIncrease})`,
    );
  if (Math.abs(r.candidate.biasPct) > maxBias)
    failures.push(`bias on sales ${pct(r.candidate.biasPct)} beyond ±${maxBias}%`);
  const mdape = `MdAPE ${pct(r.candidate.mdapePct)} (champion ${pct(r.champion.mdapePct)})`;
  const summary = `${mdape}, PPE10 ${r.candidate.ppe10Pct.toFixed(1)}%, bias ${pct(r.candidate.biasPct)} on ${r.sales} sales`;
  return failures.length > 0
    ? { ...figures, passed: false, skipped: false, message: `backtest: ${failures.join("; ")}` }
    : { ...figures, passed: true, skipped: false, message: `backtest: ${summary}` };
}

/** The analysis thresholds when a ValuationModel names none (the CRD's defaults). */
export const DEFAULT_ANALYSIS = CanaryAnalysis.parse({});
export const DEFAULT_BACKTEST = Backtest.parse({});

const pct = (x: number, digits = 2) => `${x.toFixed(digits)}%`;

/** Pure: the figures of an interval as status records them (rounded for people, not for the checks). */
function figuresOf(a: AnalysisInput): Omit<Figures, "passed" | "message" | "at"> {
  const errorRatePct = a.requests > 0 ? (100 * a.errors) / a.requests : 0;
  return {
    requests: a.requests,
    errorRatePct: Math.round(errorRatePct * 100) / 100,
    latencyP99Ms: Math.round(a.latencyP99Ms * 10) / 10,
    ...(a.paired
      ? {
          pairs: a.paired.pairs,
          biasPct: Math.round(a.paired.biasPct * 100) / 100,
          medianAbsDeltaPct: Math.round(a.paired.medianAbsDeltaPct * 100) / 100,
          absDeltaP90Pct: Math.round(a.paired.absDeltaP90Pct * 100) / 100,
        }
      : {}),
  };
}

/** Pure: an interval's verdict and the status record of it (the figures beside the verdict). */
function verdictOf(vm: ValuationModel, analysis: AnalysisInput, at: string) {
  const verdict = judge(vm, analysis);
  const lastAnalysis = {
    passed: verdict.passed === true,
    message: verdict.message,
    at,
    ...figuresOf(analysis),
  };
  return { verdict, lastAnalysis };
}

/**
 * Pure: judges one interval's analysis against the spec's thresholds. A candidate is judged on
 * valuations — how its values differ from the champion's on the same assets (bias, |delta| median
 * and p90) — as well as on errors and latency; an interval without enough requests or pairs is
 * inconclusive, never a pass.
 */
export function judge(
  vm: ValuationModel,
  a: AnalysisInput,
): { passed: boolean | "inconclusive"; message: string } {
  const t = { ...DEFAULT_ANALYSIS, ...vm.spec.candidate?.canary?.analysis };
  if (a.requests < t.minRequests)
    return {
      passed: "inconclusive",
      message: `${a.requests} requests, fewer than the ${t.minRequests} an analysis needs`,
    };
  const pairs = a.paired?.pairs ?? 0;
  if (pairs < t.minPairs || (t.minPairs > 0 && !a.paired))
    return {
      passed: "inconclusive",
      message: `${pairs} paired assets, fewer than the ${t.minPairs} an analysis needs`,
    };
  const errorRate = a.requests > 0 ? a.errors / a.requests : 0;
  const failures: string[] = [];
  if (errorRate > t.maxErrorRate)
    failures.push(`error rate ${pct(100 * errorRate)} > ${pct(100 * t.maxErrorRate)}`);
  if (a.latencyP99Ms > t.maxLatencyP99Ms)
    failures.push(`p99 ${a.latencyP99Ms.toFixed(1)} ms > ${t.maxLatencyP99Ms} ms`);
  const p = a.paired;
  if (p && Math.abs(p.biasPct) > t.maxBiasPct)
    failures.push(`bias ${pct(p.biasPct)} beyond ±${t.maxBiasPct}%`);
  if (p && p.absDeltaP90Pct > t.maxAbsDeltaP90Pct)
    failures.push(`|delta| p90 ${pct(p.absDeltaP90Pct)} > ${t.maxAbsDeltaP90Pct}%`);
  if (p && p.medianAbsDeltaPct > t.maxMedianAbsDeltaPct)
    failures.push(`median |delta| ${pct(p.medianAbsDeltaPct)} > ${t.maxMedianAbsDeltaPct}%`);
  if (failures.length > 0) return { passed: false, message: failures.join("; ") };
  const paired = p
    ? `, bias ${pct(p.biasPct)}, |delta| median ${pct(p.medianAbsDeltaPct)} p90 ${pct(p.absDeltaP90Pct)} over ${p.pairs} pairs`
    : "";
  return {
    passed: true,
    message: `error rate ${pct(100 * errorRate)}, p99 ${a.latencyP99Ms.toFixed(1)} ms over ${a.requests} requests${paired}`,
  };
}

/**
 * Pure: the next state of a canary given the current one, the time, whether the candidate is
 * Ready, and (once an interval has elapsed) its analysis. No clock, no I/O: the reconciler calls it.
 */
export function decideCanary(
  vm: ValuationModel,
  now: Date,
  candidateReady: boolean,
  analysis: AnalysisInput | undefined,
  backtest?: CandidateBacktest,
): RolloutDecision {
  const c = vm.spec.candidate!;
  const steps = c.canary?.steps ?? [10, 25, 50, 100];
  const interval = durationMs(c.canary?.interval ?? "1m");
  const current = vm.status?.candidate;
  const at = now.toISOString();
  /** A ready candidate's first traffic (or mirroring), unless its backtest refused it first. */
  const begin = (from: CandidateStatus): RolloutDecision => {
    const withBacktest = { ...from, ...(backtest ? { backtest } : {}) };
    // A shadow is only compared (promotion is a spec edit): its backtest is recorded, not enforced.
    if (backtest && !backtest.passed && c.strategy !== "Shadow")
      return {
        action: "rollback",
        candidate: { ...withBacktest, phase: "RolledBack", trafficPercent: 0 },
        event: {
          reason: "CanaryRolledBack",
          message: `candidate ${c.version} refused before any traffic: ${backtest.message}`,
        },
      };
    if (c.strategy === "Shadow")
      return {
        action: "start",
        candidate: { ...withBacktest, phase: "Shadowing", trafficPercent: 0, stepStartedAt: at },
      };
    return {
      action: "start",
      candidate: {
        ...withBacktest,
        phase: "Progressing",
        trafficPercent: steps[0]!,
        step: 0,
        stepStartedAt: at,
      },
    };
  };
  if (!current || current.version !== c.version) {
    const fresh = {
      version: c.version,
      phase: "Pending" as const,
      trafficPercent: 0,
      step: 0,
      stepStartedAt: at,
    };
    if (!candidateReady && c.strategy !== "Shadow") return { action: "start", candidate: fresh };
    return begin(fresh);
  }
  if (current.phase === "Shadowing")
    return shadowFigures(
      vm,
      backtest && !current.backtest ? { ...current, backtest } : current,
      now,
      analysis,
    );
  if (current.phase === "RolledBack" || current.phase === "Promoted" || current.phase === "Paused")
    return { action: "none", candidate: current };
  if (!candidateReady)
    return {
      action: "wait",
      candidate: { ...current, phase: "Pending", trafficPercent: 0 },
      requeueAfterMs: 5000,
    };
  if (current.phase === "Pending") return begin(current);
  const elapsed = now.getTime() - new Date(current.stepStartedAt ?? at).getTime();
  if (elapsed < interval || !analysis)
    return { action: "wait", candidate: current, requeueAfterMs: Math.max(1000, interval - elapsed) };
  const { verdict, lastAnalysis } = verdictOf(vm, analysis, at);
  if (verdict.passed === "inconclusive") {
    const waited = (current.inconclusiveIntervals ?? 0) + 1;
    const limit = c.canary?.analysis?.maxInconclusiveIntervals ?? DEFAULT_ANALYSIS.maxInconclusiveIntervals;
    // A new interval starts now: the next analysis reads a whole interval's traffic, not what
    // arrived since this reading.
    if (waited < limit)
      return {
        action: "wait",
        candidate: { ...current, inconclusiveIntervals: waited, stepStartedAt: at, lastAnalysis },
        requeueAfterMs: interval,
      };
    const message = `not enough evidence after ${waited} intervals: ${verdict.message}`;
    return {
      action: "rollback",
      candidate: {
        ...current,
        phase: "RolledBack",
        trafficPercent: 0,
        inconclusiveIntervals: waited,
        lastAnalysis: { ...lastAnalysis, message },
      },
      event: {
        reason: "CanaryRolledBack",
        message: `candidate ${c.version} rolled back at ${current.trafficPercent}%: ${message}`,
      },
    };
  }
  if (!verdict.passed) {
    return {
      action: "rollback",
      candidate: { ...current, phase: "RolledBack", trafficPercent: 0, lastAnalysis },
      event: {
        reason: "CanaryRolledBack",
        message: `candidate ${c.version} rolled back at ${current.trafficPercent}%: ${verdict.message}`,
      },
    };
  }
  const next = current.step + 1;
  if (next >= steps.length) {
    if (c.canary?.autoPromote === false)
      return {
        action: "pause",
        candidate: { ...current, phase: "Paused", lastAnalysis },
        event: {
          reason: "CanaryPaused",
          message: `candidate ${c.version} passed every step; waiting for a spec edit to promote`,
        },
      };
    return {
      action: "promote",
      candidate: { ...current, phase: "Promoted", trafficPercent: 100, lastAnalysis },
      event: {
        reason: "CanaryPromoted",
        message: `candidate ${c.version} promoted to champion: ${verdict.message}`,
      },
    };
  }
  return {
    action: "advance",
    candidate: {
      ...current,
      step: next,
      trafficPercent: steps[next]!,
      stepStartedAt: at,
      inconclusiveIntervals: 0,
      lastAnalysis,
    },
    event: {
      reason: "CanaryStepAdvanced",
      message: `candidate ${c.version} at ${steps[next]}% after passing ${current.trafficPercent}%: ${verdict.message}`,
    },
  };
}

/**
 * Pure: a shadow candidate is never promoted or rolled back by analysis (promotion is a spec edit);
 * each interval's paired figures and verdict are recorded in status for whoever decides.
 */
function shadowFigures(
  vm: ValuationModel,
  current: CandidateStatus,
  now: Date,
  analysis: AnalysisInput | undefined,
): RolloutDecision {
  const interval = durationMs(vm.spec.candidate?.canary?.interval ?? "1m");
  const elapsed = now.getTime() - new Date(current.stepStartedAt ?? now.toISOString()).getTime();
  if (!analysis || elapsed < interval)
    return { action: "wait", candidate: current, requeueAfterMs: Math.max(1000, interval - elapsed) };
  const at = now.toISOString();
  const { lastAnalysis } = verdictOf(vm, analysis, at);
  return {
    action: "wait",
    candidate: { ...current, stepStartedAt: at, lastAnalysis },
    requeueAfterMs: interval,
  };
}

/**
 * Pure: the routing pipelines read. Traffic moves to a new champion only once it is Ready; until
 * then the version status says is serving keeps it (zero-downtime declarative promotion).
 */
export function routing(
  vm: ValuationModel,
  readyVersions: ReadonlySet<string>,
  candidate: CandidateStatus | undefined,
): Route[] {
  const specChampion = vm.spec.champion.version;
  const serving = vm.status?.champion?.version;
  const champion = readyVersions.has(specChampion) || !serving ? specChampion : serving;
  const c = vm.spec.candidate;
  const routes: Route[] = [];
  const canaryWeight =
    c &&
    c.strategy === "Canary" &&
    candidate?.version === c.version &&
    candidate.phase !== "RolledBack" &&
    readyVersions.has(c.version)
      ? candidate.trafficPercent
      : 0;
  // At 100 % the champion stays listed with weight 0 while the step runs: it serves nothing, but
  // pipelines still value the paired sample with it, so the last step is judged on evidence too.
  if (canaryWeight < 100 || candidate?.phase === "Progressing")
    routes.push({
      version: champion,
      role: "champion",
      endpoint: serviceEndpoint(vm, champion),
      weight: 100 - canaryWeight,
    });
  if (c && candidate?.phase !== "RolledBack") {
    if (c.strategy === "Shadow" && readyVersions.has(c.version))
      routes.push({
        version: c.version,
        role: "shadow",
        endpoint: serviceEndpoint(vm, c.version),
        weight: 0,
      });
    else if (canaryWeight > 0)
      routes.push({
        version: c.version,
        role: "canary",
        endpoint: serviceEndpoint(vm, c.version),
        weight: canaryWeight,
        pairedSamplePercent: c.canary?.analysis?.pairedSamplePercent ?? DEFAULT_ANALYSIS.pairedSamplePercent,
      });
  }
  return routes;
}
