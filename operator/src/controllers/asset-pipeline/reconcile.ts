import {
  PatchStrategy,
  type CustomObjectsApi,
  type KubernetesObject,
  type KubernetesObjectApi,
  type V1Deployment,
} from "@kubernetes/client-node";
import { ValoraError, canonicalJson, type Logger } from "@valora/kit";
import { GROUP, VERSION, validateObject, type AssetPipeline, type ValuationModel } from "../../api/index.js";
import { TerminalError } from "../../runtime/errors.js";
import type { ResilientInformer } from "../../runtime/informer.js";
import { setConditions } from "../valuation-model/status.js";
import { FIELD_MANAGER } from "../valuation-model/reconcile.js";
import { pipelineObjects, type PipelineDefaults } from "./desired.js";
import { dnsLabel } from "../shared.js";

export interface AssetPipelineControllerDeps {
  pipelines: ResilientInformer<KubernetesObject>;
  models: ResilientInformer<KubernetesObject>;
  deployments: ResilientInformer<V1Deployment>;
  objects: KubernetesObjectApi;
  custom: CustomObjectsApi;
  defaults: PipelineDefaults;
  now?: () => Date;
  logger: Logger;
}

/** One AssetPipeline: apply its ConfigMap, Deployment, Service and HPA; report the model it is bound to and readiness. */
export class AssetPipelineReconciler {
  private readonly now: () => Date;

  constructor(private readonly d: AssetPipelineControllerDeps) {
    this.now = d.now ?? (() => new Date());
  }

  async reconcile(key: string): Promise<{ requeueAfterMs?: number }> {
    const [namespace, name] = key.split("/") as [string, string];
    const cached = this.d.pipelines.get(namespace, name);
    if (!cached || cached.metadata?.deletionTimestamp) return {};
    const raw = structuredClone(cached) as unknown as AssetPipeline;
    let ap: AssetPipeline;
    try {
      const parsed = validateObject(raw);
      if (parsed.kind !== "AssetPipeline") throw new TerminalError("not an AssetPipeline");
      ap = parsed;
    } catch (err) {
      if (err instanceof ValoraError) {
        await this.writeStatus(raw, {
          observedGeneration: raw.metadata.generation,
          conditions: setConditions(
            raw.status?.conditions,
            [
              { type: "Ready", status: false, reason: "InvalidSpec", message: err.message },
              { type: "Degraded", status: true, reason: "InvalidSpec", message: err.message },
            ],
            raw.metadata.generation,
            this.now(),
          ),
        });
        throw new TerminalError(err.message);
      }
      throw err;
    }
    for (const obj of pipelineObjects(ap, this.d.defaults))
      await this.d.objects.patch(
        obj,
        undefined,
        undefined,
        FIELD_MANAGER,
        true,
        PatchStrategy.ServerSideApply,
      );

    const model = this.d.models.get(namespace, ap.spec.model.name) as unknown as ValuationModel | undefined;
    const championVersion = model?.status?.champion?.version;
    const modelReady = model?.status?.conditions?.find((c) => c.type === "Ready")?.status === "True";
    const deployment = this.d.deployments.get(namespace, dnsLabel("pipeline", ap.metadata.name));
    const readyReplicas = deployment?.status?.readyReplicas ?? 0;
    const ready = readyReplicas >= 1 && modelReady;
    const reason = !model
      ? "ModelNotFound"
      : !modelReady
        ? "ModelNotReady"
        : readyReplicas < 1
          ? "PipelineNotReady"
          : "Available";
    const message = !model
      ? `ValuationModel ${ap.spec.model.name} does not exist`
      : !modelReady
        ? `ValuationModel ${ap.spec.model.name} is not ready`
        : `${readyReplicas} ready replicas, model ${ap.spec.model.name}@${championVersion}`;
    await this.writeStatus(raw, {
      observedGeneration: ap.metadata.generation,
      conditions: setConditions(
        raw.status?.conditions,
        [
          { type: "Ready", status: ready, reason, message },
          {
            type: "Degraded",
            status: !model,
            reason: model ? "AsExpected" : "ModelNotFound",
            message: model ? "" : message,
          },
        ],
        ap.metadata.generation,
        this.now(),
      ),
      model: { name: ap.spec.model.name, ...(championVersion ? { championVersion } : {}) },
      readyReplicas,
    });
    return ready ? {} : { requeueAfterMs: 10_000 };
  }

  private async writeStatus(raw: AssetPipeline, status: Record<string, unknown>): Promise<void> {
    if (canonicalJson(raw.status ?? {}) === canonicalJson(status)) return;
    await this.d.custom.replaceNamespacedCustomObjectStatus({
      group: GROUP,
      version: VERSION,
      namespace: raw.metadata.namespace!,
      plural: "assetpipelines",
      name: raw.metadata.name,
      body: { ...raw, status },
    });
  }
}
