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
export function setConditions(previous: readonly Condition[] | undefined, inputs: ConditionInput[], generation: number | undefined, now: Date): Condition[] {
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

