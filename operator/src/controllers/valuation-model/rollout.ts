import type { ValuationModel, ValuationModelStatus } from "../../api/index.js";
import { durationMs } from "../shared.js";
import { serviceEndpoint } from "./desired.js";

/** What the canary analysis measured for the candidate over the last interval (from real metrics). */
export interface AnalysisInput {
  requests: number;
  errors: number;
  latencyP99Ms: number;
  /** Median absolute % difference between candidate and champion predictions. */
  medianAbsDeltaPct: number;
}

export type CandidateStatus = NonNullable<ValuationModelStatus["candidate"]>;
export type Route = NonNullable<ValuationModelStatus["routing"]>[number];

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

/** Pure: judges one interval's analysis against the spec's thresholds. */
export function judge(
  vm: ValuationModel,
  a: AnalysisInput,
): { passed: boolean | "inconclusive"; message: string } {
  const t = vm.spec.candidate?.canary?.analysis ?? {
    maxErrorRate: 0.01,
    maxLatencyP99Ms: 50,
    maxMedianAbsDeltaPct: 10,
    minRequests: 50,
  };
  if (a.requests < t.minRequests)
    return {
      passed: "inconclusive",
      message: `${a.requests} requests, fewer than the ${t.minRequests} an analysis needs`,
    };
  const errorRate = a.requests > 0 ? a.errors / a.requests : 0;
  const failures: string[] = [];
  if (errorRate > t.maxErrorRate)
    failures.push(`error rate ${(100 * errorRate).toFixed(2)}% > ${(100 * t.maxErrorRate).toFixed(2)}%`);
  if (a.latencyP99Ms > t.maxLatencyP99Ms)
    failures.push(`p99 ${a.latencyP99Ms.toFixed(1)} ms > ${t.maxLatencyP99Ms} ms`);
  if (a.medianAbsDeltaPct > t.maxMedianAbsDeltaPct)
    failures.push(`median |delta| ${a.medianAbsDeltaPct.toFixed(2)}% > ${t.maxMedianAbsDeltaPct}%`);
  return failures.length > 0
    ? { passed: false, message: failures.join("; ") }
    : {
        passed: true,
        message: `error rate ${(100 * errorRate).toFixed(2)}%, p99 ${a.latencyP99Ms.toFixed(1)} ms, median |delta| ${a.medianAbsDeltaPct.toFixed(2)}% over ${a.requests} requests`,
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
): RolloutDecision {
  const c = vm.spec.candidate!;
  const steps = c.canary?.steps ?? [10, 25, 50, 100];
  const interval = durationMs(c.canary?.interval ?? "1m");
  const current = vm.status?.candidate;
  const at = now.toISOString();
  if (!current || current.version !== c.version) {
    const phase = c.strategy === "Shadow" ? "Shadowing" : candidateReady ? "Progressing" : "Pending";
    return {
      action: "start",
      candidate: {
        version: c.version,
        phase,
        trafficPercent: c.strategy === "Canary" && candidateReady ? steps[0]! : 0,
        step: 0,
        stepStartedAt: at,
      },
    };
  }
  if (
    current.phase === "RolledBack" ||
    current.phase === "Promoted" ||
    current.phase === "Paused" ||
    current.phase === "Shadowing"
  )
    return { action: "none", candidate: current };
  if (!candidateReady)
    return {
      action: "wait",
      candidate: { ...current, phase: "Pending", trafficPercent: 0 },
      requeueAfterMs: 5000,
    };
  if (current.phase === "Pending")
    return {
      action: "start",
      candidate: { ...current, phase: "Progressing", trafficPercent: steps[0]!, step: 0, stepStartedAt: at },
    };
  const elapsed = now.getTime() - new Date(current.stepStartedAt ?? at).getTime();
  if (elapsed < interval || !analysis)
    return { action: "wait", candidate: current, requeueAfterMs: Math.max(1000, interval - elapsed) };
  const verdict = judge(vm, analysis);
  const lastAnalysis = { passed: verdict.passed === true, message: verdict.message, at };
  if (verdict.passed === "inconclusive")
    return { action: "wait", candidate: { ...current, lastAnalysis }, requeueAfterMs: interval };
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
    candidate: { ...current, step: next, trafficPercent: steps[next]!, stepStartedAt: at, lastAnalysis },
    event: {
      reason: "CanaryStepAdvanced",
      message: `candidate ${c.version} at ${steps[next]}% after passing ${current.trafficPercent}%: ${verdict.message}`,
    },
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
  if (canaryWeight < 100)
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
      });
  }
  return routes;
}
