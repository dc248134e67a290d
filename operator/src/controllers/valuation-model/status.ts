import { dnsLabel } from "@valora/kit";
import type { Condition } from "../../api/index.js";

export interface ConditionInput {
  type: "Ready" | "Progressing" | "Degraded";
  status: boolean;
  reason: string;
  message: string;
}

/**
 * Pure: the new condition list. lastTransitionTime changes only when a condition's status does,
 * so writing the same observation twice leaves status byte-identical (and no write happens).
 */
export function setConditions(
  previous: readonly Condition[] | undefined,
  inputs: ConditionInput[],
  generation: number | undefined,
  now: Date,
): Condition[] {
  return inputs.map((c) => {
    const status = c.status ? "True" : "False";
    const prev = previous?.find((p) => p.type === c.type);
    return {
      type: c.type,
      status,
      reason: c.reason,
      message: c.message,
      ...(generation !== undefined ? { observedGeneration: generation } : {}),
      lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : now.toISOString(),
    };
  });
}

/** The same failure on all three conditions: the spec cannot be served as written. */
export function invalidSpecConditions(message: string): ConditionInput[] {
  return [
    { type: "Ready", status: false, reason: "InvalidSpec", message },
    { type: "Progressing", status: false, reason: "InvalidSpec", message },
    { type: "Degraded", status: true, reason: "InvalidSpec", message },
  ];
}

/** What a reconcile observed about a ValuationModel's rollout, for its conditions. */
export interface RolloutObservation {
  /** The ValuationModel's name: its pods carry it as `valora.dev/model`. */
  model?: string;
  /** The version that serves (champion route), with its ready replicas; undefined when none. */
  champion?: { version: string; readyReplicas: number; ready: boolean };
  /** The version spec.champion names (it differs from `champion` during a declarative promotion). */
  specChampion: string;
  /** The candidate's status this reconcile decided, when there is a candidate. */
  candidate?: { version: string; phase: string; trafficPercent: number; lastAnalysis?: { message: string } };
}

/** Pure: Ready, Progressing and Degraded for a rollout observation. */
export function rolloutConditions(o: RolloutObservation): ConditionInput[] {
  const { champion, candidate } = o;
  const ready = champion?.ready ?? false;
  const rolledBack = candidate?.phase === "RolledBack";
  const candidateMoving = candidate !== undefined && ["Pending", "Progressing"].includes(candidate.phase);
  const progressing = candidateMoving || o.specChampion !== champion?.version;
  // Not ready, the message says where the reason is: its pods' events (a model file that cannot be
  // fetched is a Failed event of the model-fetch init container).
  const why =
    champion && !ready && o.model
      ? `; why: kubectl describe pods -l valora.dev/model=${o.model},valora.dev/version=${dnsLabel(champion.version)}`
      : "";
  const readyMessage = champion
    ? `${champion.version}: ${champion.readyReplicas} ready replicas${why}`
    : "no champion";
  let progressMessage = "no rollout in progress";
  if (candidate) {
    progressMessage = `candidate ${candidate.version} ${candidate.phase} at ${candidate.trafficPercent}%`;
  } else if (progressing) {
    progressMessage = `waiting for ${o.specChampion} to become ready`;
  }
  return [
    {
      type: "Ready",
      status: ready,
      reason: ready ? "ChampionAvailable" : "ChampionNotReady",
      message: readyMessage,
    },
    {
      type: "Progressing",
      status: progressing,
      reason: progressing ? "Rollout" : "Stable",
      message: progressMessage,
    },
    {
      type: "Degraded",
      status: rolledBack,
      reason: rolledBack ? "CanaryRolledBack" : "AsExpected",
      message: rolledBack ? (candidate.lastAnalysis?.message ?? "rolled back") : "",
    },
  ];
}
