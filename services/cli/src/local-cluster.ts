import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger, Registry } from "@valora/kit";
import {
  LocalApiServer,
  LocalProcessBackend,
  ManifestSync,
  kubeConfig,
  startOperator,
  tracingDefaultsFrom,
  type Obj,
  type Operator,
} from "@valora/operator";

export interface LocalClusterOptions {
  dataDir: string;
  manifestsDir: string;
  /** The image's /opt/valora/models on this machine: where the default CRs' file:// URIs point. */
  modelsDir: string;
  namespace: string;
  /** The pipeline pods' environment (DATABASE_URL, MARKET_DATA_ADDR), as the chart's Secret holds it. */
  pipelineEnv: Record<string, string>;
  kubePort: number;
  logger: Logger;
  registry: Registry;
  /** Where pods' output lines go (a terminal's pretty printer; stdout / stderr by default). */
  podOutput?: (line: string, stream: "stdout" | "stderr") => void;
}

export interface LocalCluster {
  api: LocalApiServer;
  apiUrl: string;
  backend: LocalProcessBackend;
  manifests: ManifestSync;
  operator: Operator;
  /** Errors of manifests refused at start (the others were applied). */
  refused: string[];
  close(): Promise<void>;
}

export const PIPELINE_ENV_SECRET = "valora-pipeline-env";
const OTLP_HEADERS_SECRET = "valora-otlp-headers";

/**
 * Kubernetes without Kubernetes, for `valora up`: the local API server (objects persisted in the
 * data directory), the CRs of `manifestsDir` applied and followed as they are edited, the
 * operator's own controllers reconciling them, and the process backend running what they create
 * (a model server per live model version, a pipeline per AssetPipeline) on loopback.
 */
export async function startLocalCluster(o: LocalClusterOptions): Promise<LocalCluster> {
  const api = new LocalApiServer({ stateFile: join(o.dataDir, "kube", "state.json") });
  const apiUrl = await api.start("127.0.0.1", o.kubePort);
  const secret: Obj = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: PIPELINE_ENV_SECRET, namespace: o.namespace },
    type: "Opaque",
    stringData: o.pipelineEnv,
  };
  api.put(secret);
  // The pods export traces where this process does (OTEL_* as the chart's tracing values set them
  // for the operator); a collector's headers travel in a Secret, as in a cluster.
  const tracing = tracingDefaultsFrom(process.env);
  const headers = process.env["OTEL_EXPORTER_OTLP_HEADERS"];
  if (tracing && headers) {
    api.put({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: OTLP_HEADERS_SECRET, namespace: o.namespace },
      type: "Opaque",
      stringData: { headers },
    });
    tracing.headersSecret = OTLP_HEADERS_SECRET;
  }
  const backend = new LocalProcessBackend({
    api,
    apiUrl,
    runDir: join(o.dataDir, "run"),
    entrypoint: [process.execPath, fileURLToPath(new URL("./bin.js", import.meta.url))],
    imagePaths: { "/opt/valora/models": o.modelsDir },
    env: Object.fromEntries(
      ["PATH", "HOME", "LANG", "TZ", "LOG_LEVEL", "NODE_OPTIONS"].flatMap((k) =>
        process.env[k] ? [[k, process.env[k]]] : [],
      ),
    ),
    logger: o.logger,
    ...(o.podOutput ? { podOutput: o.podOutput } : {}),
  });
  // This process resolves Service names (pipelines, model servers) through the same map as the pods.
  process.env["VALORA_SERVICE_MAP"] = backend.serviceMapFile;
  const manifests = new ManifestSync({ dir: o.manifestsDir, api, namespace: o.namespace, logger: o.logger });
  const refused = manifests.syncAll();
  manifests.watch();
  // Pods first: on a restart the stored Deployment statuses are stale until the backend has
  // reported that nothing runs yet, and the operator must not act on them.
  await backend.start();
  const operator = await startOperator({
    kc: kubeConfig(apiUrl),
    identity: `valora-up-${process.pid}`,
    leaseNamespace: o.namespace,
    defaults: {
      image: "valora:local",
      pipelineEnvSecret: PIPELINE_ENV_SECRET,
      ...(tracing ? { tracing } : {}),
    },
    logger: o.logger,
    registry: o.registry,
  });
  return {
    api,
    apiUrl,
    backend,
    manifests,
    operator,
    refused,
    async close() {
      manifests.close();
      await operator.stop();
      await backend.stop();
      await api.stop();
    },
  };
}

type Conditioned = {
  metadata: { name: string; ownerReferences?: { kind: string; name: string }[] };
  status?: {
    readyReplicas?: number;
    conditions?: { type: string; status: string; reason?: string; message?: string }[];
  };
};

/**
 * Resolves once every AssetPipeline is Ready and its pipeline pods report ready (the status an
 * AssetPipeline kept from the last run may be stale for a moment); logs what it still waits for.
 */
export async function waitForPipelines(
  api: LocalApiServer,
  namespace: string,
  logger: Logger,
  timeoutMs: number,
): Promise<void> {
  const started = Date.now();
  let lastReport = 0;
  for (;;) {
    const pipelines = api.list("assetpipelines", namespace) as unknown as Conditioned[];
    const deployments = api.list("deployments", namespace) as unknown as Conditioned[];
    const podsReady = (p: Conditioned) =>
      deployments.some(
        (d) =>
          d.metadata.ownerReferences?.some((r) => r.kind === "AssetPipeline" && r.name === p.metadata.name) &&
          (d.status?.readyReplicas ?? 0) > 0,
      );
    const waiting = pipelines.filter(
      (p) => p.status?.conditions?.find((c) => c.type === "Ready")?.status !== "True" || !podsReady(p),
    );
    if (pipelines.length > 0 && waiting.length === 0) return;
    const reasons = waiting.map((p) => {
      const ready = p.status?.conditions?.find((c) => c.type === "Ready");
      let why = "not reconciled yet";
      if (ready?.status === "True") why = "pipeline pods starting";
      else if (ready) why = `${ready.reason} (${ready.message})`;
      return `${p.metadata.name}: ${why}`;
    });
    if (Date.now() - started > timeoutMs)
      throw new Error(
        pipelines.length === 0
          ? "no AssetPipelines in the manifests"
          : `not ready after ${timeoutMs} ms: ${reasons.join("; ")}`,
      );
    if (Date.now() - lastReport > 5000) {
      lastReport = Date.now();
      logger.info({ waitingFor: reasons }, "waiting for asset pipelines");
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
