import { hostname } from "node:os";
import { createOpsServer, createServiceBase, loadConfig, vars, z } from "@valora/kit";
import { startOperator } from "./operator.js";
import { PodMetricsAnalysis, PrometheusAnalysis } from "./controllers/valuation-model/analysis.js";
import { kubeConfig } from "./runtime/kube.js";
import { tracingDefaultsFrom } from "./controllers/shared.js";

const OperatorEnv = z.object({
  VALORA_IMAGE: z.string().min(1).default("ghcr.io/valora/valora:0.1.0"),
  POD_NAME: z.string().default(hostname()),
  POD_NAMESPACE: z.string().default("valora-system"),
  /** Talk to this API server instead of the in-cluster or KUBECONFIG one (e.g. `kubectl proxy`). */
  KUBE_API_SERVER: vars.url().optional(),
  METRICS_PORT: vars.port(8080),
  HOST: vars.host("0.0.0.0"),
  LOG_LEVEL: vars.logLevel(),
  WORKERS: vars.int(2, 1),
  /** Passed to model-server pods: the SSRF allow-list and S3 settings for model downloads. */
  VALORA_MODEL_ALLOWED_HOSTS: z.string().optional(),
  VALORA_MODEL_ALLOWED_BUCKETS: z.string().optional(),
  VALORA_S3_ENDPOINT: z.string().optional(),
  /** Canary analysis from Prometheus' HTTP API when set; otherwise from each version's own /metrics. */
  PROMETHEUS_URL: vars.url().optional(),
  /** Secret holding the pipeline pods' DATABASE_URL and MARKET_DATA_ADDR (the chart makes it). */
  VALORA_PIPELINE_ENV_SECRET: z.string().optional(),
});

/** `valora serve operator`: wiring from the environment only. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const config = loadConfig(OperatorEnv, env);
  const base = createServiceBase({
    name: "operator",
    logLevel: config.LOG_LEVEL,
    exit: (code) => process.exit(code),
  });
  const modelEnv: Record<string, string> = {};
  for (const k of [
    "VALORA_MODEL_ALLOWED_HOSTS",
    "VALORA_MODEL_ALLOWED_BUCKETS",
    "VALORA_S3_ENDPOINT",
  ] as const)
    if (config[k]) modelEnv[k] = config[k];
  // The operator's own OTEL_* settings (the chart's tracing values) go to the pods it makes.
  const tracing = tracingDefaultsFrom(env);
  const ops = createOpsServer(base);
  await ops.listen(config.METRICS_PORT, config.HOST);
  let synced = false;
  base.health.addCheck("informers-synced", () => synced);
  const operator = await startOperator({
    kc: kubeConfig(config.KUBE_API_SERVER),
    identity: config.POD_NAME,
    leaseNamespace: config.POD_NAMESPACE,
    defaults: {
      image: config.VALORA_IMAGE,
      modelEnv,
      ...(config.VALORA_PIPELINE_ENV_SECRET ? { pipelineEnvSecret: config.VALORA_PIPELINE_ENV_SECRET } : {}),
      ...(tracing ? { tracing } : {}),
    },
    analysis: config.PROMETHEUS_URL
      ? new PrometheusAnalysis(config.PROMETHEUS_URL)
      : new PodMetricsAnalysis(),
    logger: base.logger,
    registry: base.registry,
    workers: config.WORKERS,
  });
  synced = true; // startOperator resolves once both informers have listed
  base.shutdown.register("operator", () => operator.stop());
  base.shutdown.register("ops-http", () => ops.close());
  base.shutdown.installSignalHandlers();
  base.logger.info(
    { identity: config.POD_NAME, lease: `${config.POD_NAMESPACE}/valora-operator` },
    "operator started; waiting for leadership",
  );
}
