import { trace } from "@opentelemetry/api";
import {
  PatchStrategy,
  type KubernetesObject,
  type CoreV1Api,
  type CustomObjectsApi,
  type KubernetesObjectApi,
  type V1Deployment,
} from "@kubernetes/client-node";
import { ValoraError, canonicalJson, inSpan, resolveServiceAddress, type Logger } from "@valora/kit";
import { GROUP, VERSION, validateObject, type ValuationModel } from "../../api/index.js";
import { TerminalError, httpStatusOf } from "../../runtime/errors.js";
import type { ResilientInformer } from "../../runtime/informer.js";
import { dnsLabel, durationMs, type K8sObject } from "../shared.js";
import { PIPELINE_GRPC_PORT, PIPELINE_HTTP_PORT } from "../asset-pipeline/desired.js";
import type { AnalysisSource } from "./analysis.js";
import type { BacktestSource } from "./backtest.js";
import {
  HTTP_PORT,
  liveVersions,
  retainedVersions,
  serviceEndpoint,
  versionName,
  versionObjects,
  type ServingDefaults,
} from "./desired.js";
import {
  DEFAULT_BACKTEST,
  decideCanary,
  judgeBacktest,
  routing,
  type AnalysisInput,
  type CandidateBacktest,
  type CandidateStatus,
  type RolloutDecision,
} from "./rollout.js";
import {
  invalidSpecConditions,
  rolloutConditions,
  setConditions,
  type RolloutObservation,
} from "./status.js";

export const FIELD_MANAGER = "valora-operator";
export const FINALIZER = "valora.dev/finalizer";
const PLURAL = "valuationmodels";
const OWNED = [
  { apiVersion: "v1", kind: "Service" },
  { apiVersion: "autoscaling/v2", kind: "HorizontalPodAutoscaler" },
  { apiVersion: "policy/v1", kind: "PodDisruptionBudget" },
  { apiVersion: "apps/v1", kind: "Deployment" },
] as const;

export interface ValuationModelControllerDeps {
  models: ResilientInformer<KubernetesObject>;
  deployments: ResilientInformer<V1Deployment>;
  objects: KubernetesObjectApi;
  custom: CustomObjectsApi;
  core: CoreV1Api;
  defaults: ServingDefaults;
  analysis: AnalysisSource;
  /** Where a version's /metrics is (the Service in a cluster; loopback in tests). */
  metricsUrl?: (vm: ValuationModel, version: string) => string;
  /** AssetPipelines: those that route to a model record its paired comparison. */
  pipelines?: ResilientInformer<KubernetesObject>;
  /** Where an AssetPipeline's /metrics is (its Service's http port in a cluster; loopback in tests). */
  pipelineMetricsUrl?: (namespace: string, pipeline: string) => string;
  /** Values recent landed sales with champion and candidate before the candidate gets traffic. */
  backtest?: BacktestSource;
  now?: () => Date;
  logger: Logger;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

/** An AssetPipeline's in-cluster Service address on one of its ports. */
const pipelineAddress = (namespace: string, pipeline: string, port: number) =>
  `${dnsLabel("pipeline", pipeline)}.${namespace}.svc.cluster.local:${port}`;

/** A version's in-cluster metrics address (its Service's HTTP port). */
const metricsAddress = (vm: ValuationModel, version: string) =>
  `${versionName(vm, version)}.${vm.metadata.namespace ?? "default"}.svc.cluster.local:${HTTP_PORT}`;

/**
 * One ValuationModel, level-triggered: read it from the cache, apply what it needs, prune what it
 * no longer needs, step its rollout, write status only when it changed. Safe to run again at any
 * point (a crash mid-way is finished by the next run).
 */
export class ValuationModelReconciler {
  private readonly now: () => Date;
  private readonly metricsUrl: (vm: ValuationModel, version: string) => string;
  private readonly pipelineMetricsUrl: (namespace: string, pipeline: string) => string;

  constructor(private readonly d: ValuationModelControllerDeps) {
    this.now = d.now ?? (() => new Date());
    this.metricsUrl =
      d.metricsUrl ?? ((vm, v) => `http://${resolveServiceAddress(metricsAddress(vm, v))}/metrics`);
    this.pipelineMetricsUrl =
      d.pipelineMetricsUrl ??
      ((ns, p) => `http://${resolveServiceAddress(pipelineAddress(ns, p, PIPELINE_HTTP_PORT))}/metrics`);
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split("/") as [string, string];
    const cached = this.d.models.get(namespace, name);
    if (!cached) return {};
    // The cache holds the object as the API server sent it; validation below gives it its type.
    const raw = structuredClone(cached) as unknown as ValuationModel;
    if (raw.metadata.deletionTimestamp) {
      await this.removeFinalizer(raw);
      return {};
    }
    let vm: ValuationModel;
    try {
      const parsed = validateObject(raw);
      if (parsed.kind !== "ValuationModel") throw new TerminalError("not a ValuationModel");
      vm = parsed;
    } catch (err) {
      if (err instanceof ValoraError) {
        await this.writeStatus(raw, {
          ...(raw.status ?? {}),
          observedGeneration: raw.metadata.generation,
          conditions: setConditions(
            raw.status?.conditions,
            invalidSpecConditions(err.message),
            raw.metadata.generation,
            this.now(),
          ),
        });
        throw new TerminalError(err.message);
      }
      throw err;
    }
    if (!(vm.metadata.finalizers ?? []).includes(FINALIZER)) {
      await this.d.custom.replaceNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        name,
        body: {
          ...raw,
          metadata: { ...raw.metadata, finalizers: [...(raw.metadata.finalizers ?? []), FINALIZER] },
        },
      });
      return { requeueAfterMs: 0 };
    }

    const ready = this.readyVersions(vm);
    const live = liveVersions(vm);
    for (const v of live) for (const obj of versionObjects(vm, v, this.d.defaults)) await this.apply(obj);
    const keep = new Set([
      ...live.map((v) => dnsLabel(v.version)),
      ...retainedVersions(vm, ready.versions).map((v) => dnsLabel(v)),
    ]);
    await this.prune(vm, keep);

    let decision: RolloutDecision | undefined;
    if (vm.spec.candidate) {
      const c = vm.spec.candidate;
      const current = vm.status?.candidate;
      // A canary step is analysed when its interval is over; a shadow every interval too, so a
      // data scientist sees the same paired figures before editing spec.champion.
      const due =
        current?.version === c.version &&
        (current.phase === "Progressing" || current.phase === "Shadowing") &&
        this.now().getTime() - new Date(current.stepStartedAt ?? 0).getTime() >=
          durationMs(c.canary?.interval ?? "1m");
      let analysis: AnalysisInput | undefined;
      if (due) {
        analysis = await inSpan(
          "canary_analysis",
          async (span) => {
            const read = await this.d.analysis
              .analyse({
                namespace,
                model: vm.metadata.name,
                candidate: c.version,
                champion: vm.spec.champion.version,
                candidateUrl: this.metricsUrl(vm, c.version),
                championUrl: this.metricsUrl(vm, vm.spec.champion.version),
                pipelineUrls: this.pipelineObjectsOf(vm).map((p) =>
                  this.pipelineMetricsUrl(namespace, p.name),
                ),
              })
              .catch((err: unknown) => {
                this.d.logger.warn(
                  { vm: key, err: err instanceof Error ? err.message : String(err) },
                  "canary analysis could not read metrics",
                );
                return undefined;
              });
            span.setAttributes({
              "valora.analysis.read": read !== undefined,
              ...(read
                ? {
                    "valora.analysis.requests": read.requests,
                    "valora.analysis.errors": read.errors,
                    "valora.analysis.latency_p99_ms": read.latencyP99Ms,
                    ...(read.paired
                      ? {
                          "valora.analysis.pairs": read.paired.pairs,
                          "valora.analysis.bias_pct": read.paired.biasPct,
                        }
                      : {}),
                  }
                : {}),
            });
            return read;
          },
          { attributes: { "valora.model.name": vm.metadata.name, "valora.candidate": c.version } },
        );
      }
      const candidateReady = ready.versions.has(c.version);
      let backtest = current?.version === c.version ? current.backtest : undefined;
      const beforeTraffic =
        !current ||
        current.version !== c.version ||
        current.phase === "Pending" ||
        current.phase === "Shadowing";
      let holdForBacktest = false;
      if (!backtest && candidateReady && beforeTraffic && this.d.backtest) {
        const pendingSince = current?.version === c.version ? current.stepStartedAt : undefined;
        const outcome = await this.runBacktest(vm, c.version, pendingSince);
        holdForBacktest = outcome === "retry";
        backtest = outcome === "retry" ? undefined : outcome;
        if (backtest?.passed)
          await this.event(
            vm,
            backtest.skipped ? "BacktestSkipped" : "BacktestPassed",
            backtest.message,
            "Normal",
          );
      }
      // The pipeline that runs the backtest is not up yet (a platform starting with a candidate):
      // no traffic moves; the backtest is tried again shortly.
      decision = holdForBacktest
        ? {
            action: "wait",
            candidate: current?.version === c.version ? current : pendingCandidate(c.version, this.now()),
            requeueAfterMs: 5000,
          }
        : decideCanary(vm, this.now(), candidateReady, analysis, backtest);
      const active = trace.getActiveSpan();
      if (active?.isRecording())
        active.setAttributes({ "valora.rollout.action": decision.action, "valora.candidate": c.version });
      if (decision.event)
        await this.event(
          vm,
          decision.event.reason,
          decision.event.message,
          decision.action === "rollback" ? "Warning" : "Normal",
        );
    }

    const routes = routing(vm, ready.versions, decision?.candidate);
    const champion = routes.find((r) => r.role === "champion") ?? routes.find((r) => r.role === "canary");
    const championReady = champion ? ready.versions.has(champion.version) : false;
    if (
      vm.status?.champion?.version &&
      champion &&
      vm.status.champion.version !== champion.version &&
      championReady
    ) {
      await this.event(
        vm,
        "ChampionChanged",
        `traffic moved from ${vm.status.champion.version} to ${champion.version}`,
        "Normal",
      );
    }
    const readyReplicas = champion ? (ready.replicas.get(champion.version) ?? 0) : 0;
    const observation: RolloutObservation = {
      model: vm.metadata.name,
      ...(champion ? { champion: { version: champion.version, readyReplicas, ready: championReady } } : {}),
      specChampion: vm.spec.champion.version,
      ...(decision ? { candidate: decision.candidate } : {}),
    };
    const conditions = setConditions(
      vm.status?.conditions,
      rolloutConditions(observation),
      vm.metadata.generation,
      this.now(),
    );
    const status = {
      observedGeneration: vm.metadata.generation,
      conditions,
      ...(champion
        ? {
            champion: {
              version: champion.version,
              readyReplicas,
              endpoint: serviceEndpoint(vm, champion.version),
            },
          }
        : {}),
      ...(decision ? { candidate: decision.candidate } : {}),
      routing: routes,
    };
    await this.writeStatus(raw, status);
    if (decision?.action === "wait") return { requeueAfterMs: decision.requeueAfterMs };
    if (decision?.action === "start" || decision?.action === "advance")
      return { requeueAfterMs: durationMs(vm.spec.candidate?.canary?.interval ?? "1m") };
    if (live.some((v) => !ready.versions.has(v.version))) return { requeueAfterMs: 5000 };
    return {};
  }

  /** Both versions on recent landed sales, through the first pipeline that routes to the model. */
  private async runBacktest(
    vm: ValuationModel,
    version: string,
    pendingSince: string | undefined,
  ): Promise<CandidateBacktest | "retry"> {
    const at = this.now().toISOString();
    const skipped = (message: string): CandidateBacktest => ({
      passed: true,
      skipped: true,
      message,
      at,
      sales: 0,
    });
    const namespace = vm.metadata.namespace ?? "default";
    const pipeline = this.pipelineObjectsOf(vm)[0];
    if (!pipeline) return skipped("no AssetPipeline routes to this model: backtest skipped");
    const b = vm.spec.candidate?.backtest;
    try {
      const result = await this.d.backtest!.run({
        endpoint: resolveServiceAddress(pipelineAddress(namespace, pipeline.name, PIPELINE_GRPC_PORT)),
        assetClass: pipeline.assetClass,
        champion: {
          version: vm.spec.champion.version,
          endpoint: serviceEndpoint(vm, vm.spec.champion.version),
        },
        candidate: { version, endpoint: serviceEndpoint(vm, version) },
        maxSales: b?.sales ?? DEFAULT_BACKTEST.sales,
        ...(b?.since ? { since: b.since } : {}),
      });
      return judgeBacktest(vm, result, at);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // A pipeline that is not reachable yet gets two minutes from the candidate's readiness.
      const waitedMs = this.now().getTime() - Date.parse(pendingSince ?? this.now().toISOString());
      if (err instanceof ValoraError && err.code === "UNAVAILABLE" && waitedMs < 120_000) return "retry";
      this.d.logger.warn({ vm: `${namespace}/${vm.metadata.name}`, err: message }, "backtest could not run");
      return skipped(`backtest could not run (${message}): skipped`);
    }
  }

  /** The AssetPipelines (names and asset classes) whose spec.model names this ValuationModel. */
  private pipelineObjectsOf(vm: ValuationModel): { name: string; assetClass: string }[] {
    const namespace = vm.metadata.namespace ?? "default";
    return (this.d.pipelines?.list(namespace) ?? [])
      .map(
        (p) =>
          p as { metadata?: { name?: string }; spec?: { assetClass?: string; model?: { name?: string } } },
      )
      .filter((p) => p.spec?.model?.name === vm.metadata.name)
      .map((p) => ({ name: p.metadata!.name!, assetClass: p.spec?.assetClass ?? "" }));
  }

  private readyVersions(vm: ValuationModel): { versions: Set<string>; replicas: Map<string, number> } {
    const byLabel = new Map<string, string>();
    for (const v of [
      ...liveVersions(vm).map((l) => l.version),
      ...(vm.status?.routing ?? []).map((r) => r.version),
    ])
      byLabel.set(dnsLabel(v), v);
    const versions = new Set<string>();
    const replicas = new Map<string, number>();
    for (const d of this.d.deployments.list(vm.metadata.namespace)) {
      if (d.metadata?.labels?.["valora.dev/model"] !== vm.metadata.name) continue;
      const version = byLabel.get(d.metadata.labels["valora.dev/version"] ?? "");
      if (!version) continue;
      const readyReplicas = d.status?.readyReplicas ?? 0;
      replicas.set(version, readyReplicas);
      const current = (d.status?.observedGeneration ?? 0) >= (d.metadata.generation ?? 0);
      if (readyReplicas >= 1 && current) versions.add(version);
    }
    return { versions, replicas };
  }

  private async apply(obj: K8sObject): Promise<void> {
    await this.d.objects.patch(obj, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }

  private async prune(vm: ValuationModel, keep: Set<string>): Promise<void> {
    for (const t of OWNED) {
      const list = await this.d.objects.list(
        t.apiVersion,
        t.kind,
        vm.metadata.namespace,
        undefined,
        undefined,
        undefined,
        undefined,
        `valora.dev/model=${vm.metadata.name},app.kubernetes.io/managed-by=valora-operator`,
      );
      for (const item of list.items) {
        // The selector already says so; checked again because deleting another model's objects is
        // the one mistake a prune must never make.
        if (item.metadata?.labels?.["valora.dev/model"] !== vm.metadata.name) continue;
        const version = item.metadata.labels["valora.dev/version"];
        if (version && !keep.has(version)) {
          this.d.logger.info(
            { vm: `${vm.metadata.namespace}/${vm.metadata.name}`, kind: t.kind, name: item.metadata?.name },
            "pruning object of a retired version",
          );
          await this.d.objects
            .delete({
              apiVersion: t.apiVersion,
              kind: t.kind,
              metadata: { name: item.metadata.name!, namespace: vm.metadata.namespace! },
            })
            .catch((err: unknown) => {
              if (httpStatusOf(err) !== 404) throw err;
            });
        }
      }
    }
  }

  private async writeStatus(raw: ValuationModel, status: Record<string, unknown>): Promise<void> {
    if (canonicalJson(raw.status ?? {}) === canonicalJson(status)) return;
    await this.d.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace: raw.metadata.namespace!,
      plural: PLURAL,
      name: raw.metadata.name,
      body: { ...raw, status },
    });
  }

  private async removeFinalizer(raw: ValuationModel): Promise<void> {
    const finalizers = raw.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER)) return;
    // Owned objects carry owner references: the garbage collector removes them with the model.
    await this.d.custom.replaceNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: raw.metadata.namespace!,
      plural: PLURAL,
      name: raw.metadata.name,
      body: { ...raw, metadata: { ...raw.metadata, finalizers: finalizers.filter((f) => f !== FINALIZER) } },
    });
  }

  private async event(
    vm: ValuationModel,
    reason: string,
    message: string,
    type: "Normal" | "Warning",
  ): Promise<void> {
    const now = this.now();
    this.d.logger.info({ vm: `${vm.metadata.namespace}/${vm.metadata.name}`, reason, message }, "event");
    await this.d.core
      .createNamespacedEvent({
        namespace: vm.metadata.namespace!,
        body: {
          metadata: {
            generateName: `${vm.metadata.name}.`,
            name: `${vm.metadata.name}.${now.getTime().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`,
            namespace: vm.metadata.namespace!,
          },
          involvedObject: {
            apiVersion: `${GROUP}/${VERSION}`,
            kind: "ValuationModel",
            name: vm.metadata.name,
            namespace: vm.metadata.namespace!,
            uid: vm.metadata.uid!,
            resourceVersion: vm.metadata.resourceVersion!,
          },
          reason,
          message,
          type,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          source: { component: FIELD_MANAGER },
          reportingComponent: FIELD_MANAGER,
        },
      })
      .catch((err: unknown) =>
        this.d.logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          "could not record event",
        ),
      );
  }
}

/** A candidate that waits, without traffic, for what must happen before its first step. */
const pendingCandidate = (version: string, now: Date): CandidateStatus => ({
  version,
  phase: "Pending",
  trafficPercent: 0,
  step: 0,
  stepStartedAt: now.toISOString(),
});
