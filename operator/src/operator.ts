import type { KubernetesListObject, KubernetesObject, V1Deployment } from "@kubernetes/client-node";
import { counter, histogram, inSpan, type Logger, type Registry } from "@valora/kit";
import { GROUP, VERSION } from "./api/index.js";
import { PodMetricsAnalysis, type AnalysisSource } from "./controllers/valuation-model/analysis.js";
import { GrpcBacktest, type BacktestSource } from "./controllers/valuation-model/backtest.js";
import type { ServingDefaults } from "./controllers/valuation-model/desired.js";
import {
  ValuationModelReconciler,
  type ValuationModelControllerDeps,
} from "./controllers/valuation-model/reconcile.js";
import { AssetPipelineReconciler } from "./controllers/asset-pipeline/reconcile.js";
import { TerminalError } from "./runtime/errors.js";
import { ResilientInformer } from "./runtime/informer.js";
import { clients as makeClients, type Clients } from "./runtime/kube.js";
import { LeaderElector } from "./runtime/leader.js";
import { WorkQueue } from "./runtime/workqueue.js";

export interface OperatorOptions {
  kc: Clients["kc"];
  identity: string;
  leaseNamespace: string;
  defaults: ServingDefaults;
  logger: Logger;
  registry: Registry;
  analysis?: AnalysisSource;
  backtest?: BacktestSource;
  metricsUrl?: ValuationModelControllerDeps["metricsUrl"];
  pipelineMetricsUrl?: ValuationModelControllerDeps["pipelineMetricsUrl"];
  now?: () => Date;
  workers?: number;
  renewIntervalMs?: number;
  leaseDurationSeconds?: number;
  queue?: { baseDelayMs?: number; maxDelayMs?: number };
}

export interface Operator {
  elector: LeaderElector;
  queue: WorkQueue;
  informers: {
    models: ResilientInformer<KubernetesObject>;
    pipelines: ResilientInformer<KubernetesObject>;
    deployments: ResilientInformer<V1Deployment>;
  };
  reconciler: ValuationModelReconciler;
  stop(): Promise<void>;
}

const ownerKey = (obj: KubernetesObject, kind: string): string | undefined => {
  const owner = obj.metadata?.ownerReferences?.find((o) => o.kind === kind && o.controller);
  return owner && obj.metadata?.namespace ? `${obj.metadata.namespace}/${owner.name}` : undefined;
};

/**
 * The operator process: informers fill caches and enqueue keys; while this replica holds the
 * Lease, workers take keys from the queue and reconcile them (errors back off, terminal errors
 * stop, requeue-after reschedules).
 */
export async function startOperator(o: OperatorOptions): Promise<Operator> {
  const c = makeClients(o.kc);
  const queue = new WorkQueue(o.queue);
  const models = new ResilientInformer<KubernetesObject>(
    o.kc,
    `/apis/${GROUP}/${VERSION}/valuationmodels`,
    () =>
      c.custom.listClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: "valuationmodels",
      }) as Promise<KubernetesListObject<KubernetesObject>>,
    o.logger,
  );
  const deployments = new ResilientInformer<V1Deployment>(
    o.kc,
    "/apis/apps/v1/deployments",
    () =>
      c.apps.listDeploymentForAllNamespaces({
        labelSelector: "app.kubernetes.io/managed-by=valora-operator",
      }),
    o.logger,
    "app.kubernetes.io/managed-by=valora-operator",
  );
  const pipelines = new ResilientInformer<KubernetesObject>(
    o.kc,
    `/apis/${GROUP}/${VERSION}/assetpipelines`,
    () =>
      c.custom.listClusterCustomObject({
        group: GROUP,
        version: VERSION,
        plural: "assetpipelines",
      }) as Promise<KubernetesListObject<KubernetesObject>>,
    o.logger,
  );
  // Keys carry their kind: "vm:ns/name" and "ap:ns/name" share one queue.
  models.onChange((_t, obj) => {
    if (!obj.metadata?.namespace || !obj.metadata.name) return;
    queue.add(`vm:${obj.metadata.namespace}/${obj.metadata.name}`);
    // Pipelines report the champion of the model they route to.
    for (const p of pipelines.list(obj.metadata.namespace)) {
      if ((p as unknown as { spec?: { model?: { name?: string } } }).spec?.model?.name === obj.metadata.name)
        queue.add(`ap:${obj.metadata.namespace}/${p.metadata!.name!}`);
    }
  });
  pipelines.onChange(
    (_t, obj) =>
      obj.metadata?.namespace &&
      obj.metadata.name &&
      queue.add(`ap:${obj.metadata.namespace}/${obj.metadata.name}`),
  );
  deployments.onChange((_t, obj) => {
    const vmKey = ownerKey(obj, "ValuationModel");
    if (vmKey) queue.add(`vm:${vmKey}`);
    const apKey = ownerKey(obj, "AssetPipeline");
    if (apKey) queue.add(`ap:${apKey}`);
  });
  const reconciler = new ValuationModelReconciler({
    models,
    deployments,
    objects: c.objects,
    custom: c.custom,
    core: c.core,
    defaults: o.defaults,
    analysis: o.analysis ?? new PodMetricsAnalysis(),
    backtest: o.backtest ?? new GrpcBacktest(),
    pipelines,
    ...(o.metricsUrl ? { metricsUrl: o.metricsUrl } : {}),
    ...(o.pipelineMetricsUrl ? { pipelineMetricsUrl: o.pipelineMetricsUrl } : {}),
    ...(o.now ? { now: o.now } : {}),
    logger: o.logger,
  });
  const pipelineReconciler = new AssetPipelineReconciler({
    pipelines,
    models,
    deployments,
    objects: c.objects,
    custom: c.custom,
    defaults: {
      image: o.defaults.image,
      serviceAccountName: "valora-pipeline",
      ...(o.defaults.pipelineEnvSecret ? { envSecret: o.defaults.pipelineEnvSecret } : {}),
      ...(o.defaults.tracing ? { tracing: o.defaults.tracing } : {}),
    },
    ...(o.now ? { now: o.now } : {}),
    logger: o.logger,
  });
  const total = counter(
    o.registry,
    "valora_operator_reconcile_total",
    "Reconciles by controller and result.",
    ["controller", "result"],
  );
  const seconds = histogram(o.registry, "valora_operator_reconcile_seconds", "Reconcile duration.", [
    "controller",
  ]);

  const elector = new LeaderElector({
    api: c.coordination,
    namespace: o.leaseNamespace,
    name: "valora-operator",
    identity: o.identity,
    logger: o.logger,
    renewIntervalMs: o.renewIntervalMs ?? 2000,
    leaseDurationSeconds: o.leaseDurationSeconds ?? 15,
    ...(o.now ? { now: o.now } : {}),
  });
  let working = false;
  const worker = async (): Promise<void> => {
    while (working) {
      const key = await queue.get();
      if (key === undefined) return;
      if (!working) {
        queue.done(key);
        queue.add(key);
        return;
      }
      const started = process.hrtime.bigint();
      const controller = key.startsWith("ap:") ? "assetpipeline" : "valuationmodel";
      try {
        // One trace per reconcile, named by the object's key.
        const result = await inSpan(
          "reconcile",
          async (span) => {
            const r =
              controller === "assetpipeline"
                ? await pipelineReconciler.reconcile(key.slice(3))
                : await reconciler.reconcile(key.slice(3));
            if (r.requeueAfterMs !== undefined)
              span.setAttribute("valora.requeue_after_ms", r.requeueAfterMs);
            return r;
          },
          {
            attributes: {
              "valora.controller": controller,
              "k8s.object.key": key.slice(3),
              "k8s.namespace.name": key.slice(3).split("/")[0]!,
            },
          },
        );
        queue.forget(key);
        if (result.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
        total.inc({ controller, result: result.requeueAfterMs !== undefined ? "requeue" : "success" });
      } catch (err) {
        if (err instanceof TerminalError) {
          queue.forget(key);
          total.inc({ controller, result: "terminal" });
          o.logger.warn({ key, err: err.message }, "reconcile failed for good; waiting for a spec change");
        } else {
          const delay = queue.addRateLimited(key);
          total.inc({ controller, result: "error" });
          o.logger.warn(
            { key, err: err instanceof Error ? err.message : String(err), retryInMs: delay },
            "reconcile failed; will retry",
          );
        }
      } finally {
        seconds.observe({ controller }, Number(process.hrtime.bigint() - started) / 1e9);
        queue.done(key);
      }
    }
  };
  elector.onStartedLeading = () => {
    working = true;
    for (const m of models.list())
      if (m.metadata?.namespace && m.metadata.name)
        queue.add(`vm:${m.metadata.namespace}/${m.metadata.name}`);
    for (const p of pipelines.list())
      if (p.metadata?.namespace && p.metadata.name)
        queue.add(`ap:${p.metadata.namespace}/${p.metadata.name}`);
    for (let i = 0; i < (o.workers ?? 2); i++) void worker();
  };
  elector.onStoppedLeading = () => {
    working = false;
  };
  await Promise.all([models.start(), pipelines.start(), deployments.start()]);
  await Promise.all([models.waitForSync(), pipelines.waitForSync(), deployments.waitForSync()]);
  elector.start();
  return {
    elector,
    queue,
    informers: { models, pipelines, deployments },
    reconciler,
    async stop() {
      working = false;
      await elector.stop();
      queue.shutDown();
      await Promise.all([models.stop(), pipelines.stop(), deployments.stop()]);
    },
  };
}
