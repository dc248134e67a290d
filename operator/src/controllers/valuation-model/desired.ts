import { MODEL_SERVER_ENV } from "@valora/kit";
import { API_VERSION, type ValuationModel } from "../../api/index.js";
import {
  RESTRICTED_CONTAINER_SECURITY,
  RESTRICTED_POD_SECURITY,
  dnsLabel,
  hpaFor,
  ownerRef,
  tracingEnv,
  type K8sObject,
  type TracingDefaults,
} from "../shared.js";

/** Operator-wide settings the builders need (from the operator's configuration, never from a CR). */
export interface ServingDefaults {
  image: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  /** Passed to model servers and the fetch step: the SSRF allow-list and S3 endpoint. */
  modelEnv?: Record<string, string>;
  /** Secret the pipeline pods take their environment from (see PipelineDefaults.envSecret). */
  pipelineEnvSecret?: string;
  /** OTLP trace export for the pods (tracingDefaultsFrom); none when absent. */
  tracing?: TracingDefaults;
  grpcPort?: number;
  httpPort?: number;
}

export type Role = "champion" | "candidate";

export interface LiveVersion {
  role: Role;
  version: string;
  uri: string;
  sha256?: string;
}

export const GRPC_PORT = 8001;
export const HTTP_PORT = 8000;

export function versionName(vm: ValuationModel, version: string): string {
  return dnsLabel(vm.metadata.name, version);
}

export function versionLabels(vm: ValuationModel, version: string, role: Role): Record<string, string> {
  return {
    "app.kubernetes.io/name": "valora-model-server",
    "app.kubernetes.io/instance": versionName(vm, version),
    "app.kubernetes.io/component": "model-server",
    "app.kubernetes.io/part-of": "valora",
    "app.kubernetes.io/managed-by": "valora-operator",
    "valora.dev/model": vm.metadata.name,
    "valora.dev/version": dnsLabel(version),
    "valora.dev/role": role,
  };
}

export function selectorLabels(vm: ValuationModel, version: string): Record<string, string> {
  return { "valora.dev/model": vm.metadata.name, "valora.dev/version": dnsLabel(version) };
}

/** The versions the spec asks for: its champion and, when present, its candidate. */
export function liveVersions(vm: ValuationModel): LiveVersion[] {
  const out: LiveVersion[] = [
    {
      role: "champion",
      version: vm.spec.champion.version,
      uri: vm.spec.champion.uri,
      ...(vm.spec.champion.sha256 ? { sha256: vm.spec.champion.sha256 } : {}),
    },
  ];
  const c = vm.spec.candidate;
  if (c)
    out.push({
      role: "candidate",
      version: c.version,
      uri: c.uri,
      ...(c.sha256 ? { sha256: c.sha256 } : {}),
    });
  return out;
}

/**
 * Versions whose objects must not be pruned yet although the spec no longer names them: during a
 * declarative promotion, the champion traffic still goes to stays until its successor is Ready.
 */
export function retainedVersions(vm: ValuationModel, readyVersions: ReadonlySet<string>): string[] {
  const serving = vm.status?.champion?.version;
  const wanted = new Set(liveVersions(vm).map((v) => v.version));
  if (serving && !wanted.has(serving) && !readyVersions.has(vm.spec.champion.version)) return [serving];
  return [];
}

/** Pure: the Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget of one version. */
export function versionObjects(
  vm: ValuationModel,
  live: LiveVersion,
  defaults: ServingDefaults,
): K8sObject[] {
  const name = versionName(vm, live.version);
  const namespace = vm.metadata.namespace ?? "default";
  const labels = versionLabels(vm, live.version, live.role);
  const selector = selectorLabels(vm, live.version);
  const owner = [ownerRef({ apiVersion: API_VERSION, kind: "ValuationModel", metadata: vm.metadata })];
  const serving = vm.spec.serving ?? {
    minReplicas: 1,
    maxReplicas: 4,
    targetCPUUtilization: 70,
    scaleDownStabilizationSeconds: 300,
  };
  const grpcPort = defaults.grpcPort ?? GRPC_PORT;
  const httpPort = defaults.httpPort ?? HTTP_PORT;
  const env = Object.entries(defaults.modelEnv ?? {})
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([n, value]) => ({ name: n, value }));
  const fetchArgs = [
    "fetch-model",
    "--uri",
    live.uri,
    "--out",
    "/models/model.onnx",
    ...(live.sha256 ? ["--sha256", live.sha256] : []),
  ];
  const deployment: K8sObject = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace, labels, ownerReferences: owner },
    spec: {
      // No replicas field: the HorizontalPodAutoscaler owns it (server-side apply would fight it).
      selector: { matchLabels: selector },
      strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels,
          annotations: {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": String(httpPort),
            "prometheus.io/path": "/metrics",
          },
        },
        spec: {
          securityContext: RESTRICTED_POD_SECURITY,
          automountServiceAccountToken: false,
          terminationGracePeriodSeconds: 30,
          volumes: [
            { name: "models", emptyDir: {} },
            { name: "tmp", emptyDir: {} },
          ],
          initContainers: [
            {
              name: "model-fetch",
              image: defaults.image,
              imagePullPolicy: defaults.imagePullPolicy ?? "IfNotPresent",
              args: fetchArgs,
              env,
              securityContext: RESTRICTED_CONTAINER_SECURITY,
              resources: { requests: { cpu: "50m", memory: "64Mi" }, limits: { memory: "512Mi" } },
              volumeMounts: [
                { name: "models", mountPath: "/models" },
                { name: "tmp", mountPath: "/tmp" },
              ],
            },
          ],
          containers: [
            {
              name: "model-server",
              image: defaults.image,
              imagePullPolicy: defaults.imagePullPolicy ?? "IfNotPresent",
              args: [
                "serve",
                "model-server",
                "--model",
                `${vm.metadata.name}=file:///models/model.onnx`,
                "--model-version",
                live.version,
                ...(live.sha256 ? ["--sha256", live.sha256] : []),
              ],
              env: [
                ...env,
                { name: "GRPC_PORT", value: String(grpcPort) },
                { name: "HTTP_PORT", value: String(httpPort) },
                { name: "MAX_BATCH_SIZE", value: String(serving.batching?.maxBatchSize ?? 64) },
                { name: "MAX_BATCH_DELAY_MICROS", value: String(serving.batching?.maxDelayMicros ?? 500) },
                { name: "SHUTDOWN_DRAIN_DELAY_MS", value: "5000" },
                ...Object.entries(MODEL_SERVER_ENV).map(([name, value]) => ({ name, value })),
                ...tracingEnv(defaults.tracing, name),
              ],
              ports: [
                { name: "grpc", containerPort: grpcPort, protocol: "TCP" },
                { name: "http", containerPort: httpPort, protocol: "TCP" },
              ],
              readinessProbe: {
                httpGet: { path: "/v2/health/ready", port: "http" },
                periodSeconds: 5,
                failureThreshold: 2,
              },
              livenessProbe: {
                httpGet: { path: "/v2/health/live", port: "http" },
                periodSeconds: 10,
                failureThreshold: 3,
              },
              startupProbe: {
                httpGet: { path: "/v2/health/live", port: "http" },
                periodSeconds: 2,
                failureThreshold: 60,
              },
              resources: serving.resources ?? {
                requests: { cpu: "250m", memory: "256Mi" },
                limits: { memory: "1Gi" },
              },
              securityContext: RESTRICTED_CONTAINER_SECURITY,
              volumeMounts: [
                { name: "models", mountPath: "/models", readOnly: true },
                { name: "tmp", mountPath: "/tmp" },
              ],
            },
          ],
        },
      },
    },
  };
  const service: K8sObject = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name, namespace, labels, ownerReferences: owner },
    spec: {
      type: "ClusterIP",
      selector,
      ports: [
        { name: "grpc", port: grpcPort, targetPort: "grpc", protocol: "TCP", appProtocol: "grpc" },
        { name: "http", port: httpPort, targetPort: "http", protocol: "TCP" },
      ],
    },
  };
  const hpa = hpaFor({ name, namespace, labels, ownerReferences: owner }, serving);
  const pdb: K8sObject = {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name, namespace, labels, ownerReferences: owner },
    spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
  };
  return [deployment, service, hpa, pdb];
}

export function serviceEndpoint(vm: ValuationModel, version: string, grpcPort = GRPC_PORT): string {
  return `${versionName(vm, version)}.${vm.metadata.namespace ?? "default"}.svc.cluster.local:${grpcPort}`;
}
