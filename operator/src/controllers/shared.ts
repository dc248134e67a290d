/** Helpers every controller's pure builders share. */
export interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller: true;
  blockOwnerDeletion: true;
}

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences: OwnerRef[];
  };
  [key: string]: unknown;
};

export function ownerRef(owner: {
  apiVersion: string;
  kind: string;
  metadata: { name: string; uid?: string };
}): OwnerRef {
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: owner.metadata.name,
    uid: owner.metadata.uid ?? "",
    controller: true,
    blockOwnerDeletion: true,
  };
}

// Object names the operator gives are computed by consumers too (the orchestrator finds each
// pipeline's Service by it), so the function lives in the kit.
export { dnsLabel } from "@valora/kit";

/** The Pod Security Standards "restricted" profile, for every pod and container Valora creates. */
export const RESTRICTED_POD_SECURITY = {
  runAsNonRoot: true,
  runAsUser: 10001,
  runAsGroup: 10001,
  fsGroup: 10001,
  seccompProfile: { type: "RuntimeDefault" },
} as const;
export const RESTRICTED_CONTAINER_SECURITY = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
} as const;

/** Milliseconds of a Go-style duration ("30s", "5m", "250ms", "1h"). */
export function durationMs(d: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(d);
  if (!m) throw new Error(`bad duration ${d}`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
}

export interface Autoscaling {
  minReplicas: number;
  maxReplicas: number;
  targetCPUUtilization: number;
  scaleDownStabilizationSeconds: number;
}

/**
 * The autoscaling/v2 HPA every Valora Deployment gets: CPU target, fast scale-up (double or +4
 * pods every 15 s), cautious scale-down (at most half a minute, after the stabilisation window).
 */
export function hpaFor(meta: K8sObject["metadata"], serving: Autoscaling): K8sObject {
  return {
    apiVersion: "autoscaling/v2",
    kind: "HorizontalPodAutoscaler",
    metadata: meta,
    spec: {
      scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: meta.name },
      minReplicas: Math.max(1, serving.minReplicas),
      maxReplicas: serving.maxReplicas,
      metrics: [
        {
          type: "Resource",
          resource: {
            name: "cpu",
            target: { type: "Utilization", averageUtilization: serving.targetCPUUtilization },
          },
        },
      ],
      behavior: {
        scaleUp: {
          stabilizationWindowSeconds: 0,
          policies: [
            { type: "Percent", value: 100, periodSeconds: 15 },
            { type: "Pods", value: 4, periodSeconds: 15 },
          ],
          selectPolicy: "Max",
        },
        scaleDown: {
          stabilizationWindowSeconds: serving.scaleDownStabilizationSeconds,
          policies: [{ type: "Percent", value: 50, periodSeconds: 60 }],
        },
      },
    },
  };
}
