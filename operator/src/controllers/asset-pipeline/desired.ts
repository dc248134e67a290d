import { stringify } from "yaml";
import { API_VERSION, type AssetPipeline } from "../../api/index.js";
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

/** The pipeline pods' ports: gRPC (PipelineService) and HTTP (/metrics, health). */
export const PIPELINE_GRPC_PORT = 9090;
export const PIPELINE_HTTP_PORT = 9464;

export interface PipelineDefaults {
  image: string;
  imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  grpcPort?: number;
  httpPort?: number;
  /** ServiceAccount allowed to read ValuationModel status (see the chart's RBAC). */
  serviceAccountName?: string;
  /** Secret whose keys become the pipeline's environment (DATABASE_URL for comparables, MARKET_DATA_ADDR). */
  envSecret?: string;
  /** OTLP trace export for the pods (tracingDefaultsFrom); none when absent. */
  tracing?: TracingDefaults;
}

/** Pure: the rendered pipeline configuration the pipeline pods read from their ConfigMap. */
export function pipelineConfig(ap: AssetPipeline): string {
  return stringify(
    {
      assetClass: ap.spec.assetClass,
      model: ap.spec.model,
      currency: ap.spec.currency,
      input: ap.spec.input,
      comparables: ap.spec.comparables ?? null,
      explain: ap.spec.explain ?? { topK: 5 },
      interval: ap.spec.interval ?? { coverage: 0.8 },
      fallback: ap.spec.fallback ?? { mode: "comparables" },
      cache: ap.spec.cache ?? { ttlSeconds: 3600 },
    },
    { sortMapEntries: true },
  );
}

/** FNV-1a of the config: a pod-template annotation, so a config change rolls the pods (and only then). */
export function configHash(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

/** Pure: ConfigMap, Deployment, Service and HPA of one AssetPipeline. */
export function pipelineObjects(ap: AssetPipeline, defaults: PipelineDefaults): K8sObject[] {
  const name = dnsLabel("pipeline", ap.metadata.name);
  const namespace = ap.metadata.namespace ?? "default";
  const selector = { "valora.dev/pipeline": ap.metadata.name };
  const labels = {
    "app.kubernetes.io/name": "valora-pipeline",
    "app.kubernetes.io/instance": name,
    "app.kubernetes.io/component": "pipeline",
    "app.kubernetes.io/part-of": "valora",
    "app.kubernetes.io/managed-by": "valora-operator",
    ...selector,
  };
  const owner = [ownerRef({ apiVersion: API_VERSION, kind: "AssetPipeline", metadata: ap.metadata })];
  const serving = ap.spec.serving ?? {
    minReplicas: 1,
    maxReplicas: 4,
    targetCPUUtilization: 70,
    scaleDownStabilizationSeconds: 300,
  };
  const config = pipelineConfig(ap);
  const grpcPort = defaults.grpcPort ?? PIPELINE_GRPC_PORT;
  const httpPort = defaults.httpPort ?? PIPELINE_HTTP_PORT;
  return [
    {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name, namespace, labels, ownerReferences: owner },
      data: { "pipeline.yaml": config },
    },
    {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name, namespace, labels, ownerReferences: owner },
      spec: {
        selector: { matchLabels: selector },
        strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: {
            labels,
            annotations: {
              "valora.dev/config-hash": configHash(config),
              "prometheus.io/scrape": "true",
              "prometheus.io/port": String(httpPort),
            },
          },
          spec: {
            securityContext: RESTRICTED_POD_SECURITY,
            ...(defaults.serviceAccountName ? { serviceAccountName: defaults.serviceAccountName } : {}),
            volumes: [
              { name: "config", configMap: { name } },
              { name: "tmp", emptyDir: {} },
            ],
            containers: [
              {
                name: "pipeline",
                image: defaults.image,
                imagePullPolicy: defaults.imagePullPolicy ?? "IfNotPresent",
                args: ["serve", "pipeline"],
                env: [
                  { name: "PIPELINE_CONFIG", value: "/etc/valora/pipeline.yaml" },
                  { name: "GRPC_PORT", value: String(grpcPort) },
                  { name: "METRICS_PORT", value: String(httpPort) },
                  { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
                  ...tracingEnv(defaults.tracing, name),
                ],
                ...(defaults.envSecret
                  ? { envFrom: [{ secretRef: { name: defaults.envSecret, optional: true } }] }
                  : {}),
                ports: [
                  { name: "grpc", containerPort: grpcPort },
                  { name: "http", containerPort: httpPort },
                ],
                readinessProbe: { grpc: { port: grpcPort }, periodSeconds: 5 },
                livenessProbe: { httpGet: { path: "/healthz", port: "http" }, periodSeconds: 10 },
                resources: serving.resources ?? {
                  requests: { cpu: "200m", memory: "192Mi" },
                  limits: { memory: "768Mi" },
                },
                securityContext: RESTRICTED_CONTAINER_SECURITY,
                volumeMounts: [
                  { name: "config", mountPath: "/etc/valora", readOnly: true },
                  { name: "tmp", mountPath: "/tmp" },
                ],
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace, labels, ownerReferences: owner },
      spec: {
        type: "ClusterIP",
        selector,
        ports: [
          { name: "grpc", port: grpcPort, targetPort: "grpc", appProtocol: "grpc" },
          { name: "http", port: httpPort, targetPort: "http" },
        ],
      },
    },
    hpaFor({ name, namespace, labels, ownerReferences: owner }, serving),
  ];
}
