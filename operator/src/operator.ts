import type { KubernetesListObject, KubernetesObject, V1Deployment } from "@kubernetes/client-node";
import { counter, histogram, type Logger, type Registry } from "@valora/kit";
import { GROUP, VERSION } from "./api/index.js";
import { PodMetricsAnalysis, type AnalysisSource } from "./controllers/valuation-model/analysis.js";
import type { ServingDefaults } from "./controllers/valuation-model/desired.js";
import { ValuationModelReconciler, type ValuationModelControllerDeps } from "./controllers/valuation-model/reconcile.js";
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
  metricsUrl?: ValuationModelControllerDeps["metricsUrl"];
  now?: () => Date;
  workers?: number;
  renewIntervalMs?: number;
  leaseDurationSeconds?: number;
  queue?: { baseDelayMs?: number; maxDelayMs?: number };
}

export interface Operator {
  elector: LeaderElector;
  queue: WorkQueue;
  informers: { models: ResilientInformer<KubernetesObject>; deployments: ResilientInformer<V1Deployment> };
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
  const models = new ResilientInformer<KubernetesObject>(o.kc, `/apis/${GROUP}/${VERSION}/valuationmodels`, () => c.custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: "valuationmodels" }) as Promise<KubernetesListObject<KubernetesObject>>, o.logger);
  const deployments = new ResilientInformer<V1Deployment>(o.kc, "/apis/apps/v1/deployments", () => c.apps.listDeploymentForAllNamespaces({ labelSelector: "app.kubernetes.io/managed-by=valora-operator" }), o.logger, "app.kubernetes.io/managed-by=valora-operator");
  models.onChange((_t, obj) => obj.metadata?.namespace && obj.metadata.name && queue.add(`${obj.metadata.namespace}/${obj.metadata.name}`));
  deployments.onChange((_t, obj) => {
    const key = ownerKey(obj, "ValuationModel");
    if (key) queue.add(key);
  });
  const reconciler = new ValuationModelReconciler({ models, deployments, objects: c.objects, custom: c.custom, core: c.core, defaults: o.defaults, analysis: o.analysis ?? new PodMetricsAnalysis(), ...(o.metricsUrl ? { metricsUrl: o.metricsUrl } : {}), ...(o.now ? { now: o.now } : {}), logger: o.logger });
  const total = counter(o.registry, "valora_operator_reconcile_total", "Reconciles by controller and result.", ["controller", "result"]);
  const seconds = histogram(o.registry, "valora_operator_reconcile_seconds", "Reconcile duration.", ["controller"]);

  const elector = new LeaderElector({ api: c.coordination, namespace: o.leaseNamespace, name: "valora-operator", identity: o.identity, logger: o.logger, renewIntervalMs: o.renewIntervalMs ?? 2000, leaseDurationSeconds: o.leaseDurationSeconds ?? 15, ...(o.now ? { now: o.now } : {}) });
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
      try {
        const result = await reconciler.reconcile(key);
        queue.forget(key);
        if (result.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
        total.inc({ controller: "valuationmodel", result: result.requeueAfterMs !== undefined ? "requeue" : "success" });
      } catch (err) {
        if (err instanceof TerminalError) {
          queue.forget(key);
          total.inc({ controller: "valuationmodel", result: "terminal" });
          o.logger.warn({ key, err: err.message }, "reconcile failed for good; waiting for a spec change");
        } else {
          const delay = queue.addRateLimited(key);
          total.inc({ controller: "valuationmodel", result: "error" });
          o.logger.warn({ key, err: err instanceof Error ? err.message : String(err), retryInMs: delay }, "reconcile failed; will retry");
        }
      } finally {
        seconds.observe({ controller: "valuationmodel" }, Number(process.hrtime.bigint() - started) / 1e9);
        queue.done(key);
      }
    }
  };
  elector.onStartedLeading = () => {
    working = true;
    for (const m of models.list()) if (m.metadata?.namespace && m.metadata.name) queue.add(`${m.metadata.namespace}/${m.metadata.name}`);
    for (let i = 0; i < (o.workers ?? 2); i++) void worker();
  };
  elector.onStoppedLeading = () => {
    working = false;
  };
  await Promise.all([models.start(), deployments.start()]);
  await Promise.all([models.waitForSync(), deployments.waitForSync()]);
  elector.start();
  return {
    elector,
    queue,
    informers: { models, deployments },
    reconciler,
    async stop() {
      working = false;
      await elector.stop();
      queue.shutDown();
      await Promise.all([models.stop(), deployments.stop()]);
    },
  };
}
