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

/** Trace export settings the operator hands its pods (from its own OTEL_* variables). */
export interface TracingDefaults {
  /** OTEL_* variables passed as they are: endpoint(s), protocol(s), sampler and its argument, timeout. */
  env: Record<string, string>;
  /** Secret whose `headers` key is OTEL_EXPORTER_OTLP_HEADERS (a collector's token stays out of pod specs). */
  headersSecret?: string;
}

const PASSED_OTEL = [
  "OTEL_EXPORTER_OTLP_ENDPOINT",
  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
  "OTEL_EXPORTER_OTLP_PROTOCOL",
  "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
  "OTEL_EXPORTER_OTLP_TIMEOUT",
  "OTEL_TRACES_SAMPLER",
  "OTEL_TRACES_SAMPLER_ARG",
  "OTEL_BSP_SCHEDULE_DELAY",
  "OTEL_BSP_MAX_QUEUE_SIZE",
] as const;

/** Pure: the tracing defaults an environment gives (undefined without an OTLP endpoint: pods trace nothing). */
export function tracingDefaultsFrom(env: Record<string, string | undefined>): TracingDefaults | undefined {
  if (!env["OTEL_EXPORTER_OTLP_ENDPOINT"] && !env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) return undefined;
  const passed: Record<string, string> = {};
  for (const k of PASSED_OTEL) if (env[k]) passed[k] = env[k];
  const headersSecret = env["VALORA_OTLP_HEADERS_SECRET"];
  return { env: passed, ...(headersSecret ? { headersSecret } : {}) };
}

type EnvVar = { name: string; value?: string; valueFrom?: Record<string, unknown> };

/**
 * Pure: a pod's trace export environment: the operator's OTEL_* settings, the service named after
 * its Deployment, and the Kubernetes resource attributes (namespace and pod from the downward API,
 * expanded by the kubelet through `$(VAR)`, and the Deployment). Empty when tracing is off.
 */
export function tracingEnv(t: TracingDefaults | undefined, deployment: string): EnvVar[] {
  if (!t) return [];
  return [
    ...Object.entries(t.env)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, value]) => ({ name, value })),
    ...(t.headersSecret
      ? [
          {
            name: "OTEL_EXPORTER_OTLP_HEADERS",
            valueFrom: { secretKeyRef: { name: t.headersSecret, key: "headers", optional: true } },
          },
        ]
      : []),
    { name: "OTEL_SERVICE_NAME", value: deployment },
    { name: "K8S_NAMESPACE_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    { name: "K8S_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    {
      name: "OTEL_RESOURCE_ATTRIBUTES",
      value: `k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.pod.name=$(K8S_POD_NAME),k8s.deployment.name=${deployment}`,
    },
  ];
}
