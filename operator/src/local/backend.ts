import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Logger } from "@valora/kit";
import type { LocalApiServer, Obj } from "./apiserver.js";
import { LocalPod, type PodRuntime } from "./pod.js";
import {
  deploymentStatus,
  localReplicas,
  rolloutStep,
  templateHash,
  type DeploymentLike,
} from "./pod-spec.js";
import { ServiceProxies } from "./service-proxy.js";
import { podObject } from "./pod-object.js";

export interface LocalBackendOptions {
  api: LocalApiServer;
  /** The API server's URL, given to every pod as KUBE_API_URL (a pod's in-cluster API address). */
  apiUrl: string;
  /** Pods' folders and the service map live here. */
  runDir: string;
  entrypoint: string[];
  imagePaths: Record<string, string>;
  /** Passed to every container (e.g. PATH, HOME); the backend adds KUBE_API_URL, VALORA_SERVICE_MAP, HOST, VALORA_EXIT_WITH_PARENT. */
  env?: Record<string, string>;
  logger: Logger;
  /** Where containers' output lines go (default: this process's stdout and stderr). */
  podOutput?: PodRuntime["output"];
  /** Pods per Deployment at most (default 1: one machine, few cores). */
  maxReplicas?: number;
  probePeriodMs?: number;
  /** Where pods' ports come from (default: outside the ephemeral range, see PodPorts). */
  ports?: PodRuntime["ports"];
}

const decode = (o: Obj | undefined): Record<string, string> | undefined => {
  if (!o) return undefined;
  const data = Object.fromEntries(
    Object.entries((o["data"] as Record<string, string> | undefined) ?? {}).map(([k, v]) => [
      k,
      o.kind === "Secret" ? Buffer.from(v, "base64").toString("utf8") : v,
    ]),
  );
  return { ...data, ...((o["stringData"] as Record<string, string> | undefined) ?? {}) };
};

/**
 * The cluster's data plane for `valora up`: what the Deployment controller, the kubelet and
 * kube-proxy do, for the objects in the local API server. Each Deployment's pods run as local
 * processes (the image's entrypoint being this checkout's `valora`), rolled when the template
 * changes, their readiness reported in the Deployment's status; each Service is a loopback proxy.
 * The operator cannot tell it from a cluster: it reads the same statuses and writes the same objects.
 */
export class LocalProcessBackend {
  private pods = new Map<string, LocalPod[]>();
  private proxies: ServiceProxies;
  private runtime: PodRuntime;
  private unsubscribe: (() => void) | undefined;
  private pending = new Set<string>();
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly o: LocalBackendOptions) {
    const mapFile = join(o.runDir, "services.json");
    this.proxies = new ServiceProxies(
      mapFile,
      () =>
        [...this.pods.values()]
          .flat()
          .map((p) => ({ labels: p.labels, ready: p.ready, declaredPorts: p.declaredPorts, ports: p.ports })),
      o.logger,
    );
    this.runtime = {
      ...(o.podOutput ? { output: o.podOutput } : {}),
      entrypoint: o.entrypoint,
      imagePaths: o.imagePaths,
      baseEnv: {
        ...o.env,
        KUBE_API_URL: o.apiUrl,
        VALORA_SERVICE_MAP: mapFile,
        VALORA_EXIT_WITH_PARENT: "1",
        HOST: "127.0.0.1",
        METRICS_PORT: "0",
      },
      sources: {
        namespace: "",
        secret: () => undefined,
        configMap: () => undefined,
      },
      logger: o.logger,
      event: (pod, reason, message, type) => this.podEvent(pod, reason, message, type),
      probePeriodMs: o.probePeriodMs ?? 1000,
      ...(o.ports ? { ports: o.ports } : {}),
    };
  }

  /** The file mapping Service addresses to loopback (set VALORA_SERVICE_MAP to it in this process too). */
  get serviceMapFile(): string {
    return this.proxies.mapFile;
  }

  async start(): Promise<void> {
    // Pods of an earlier run are gone with it.
    for (const p of this.o.api.list("pods")) this.o.api.delete("pods", p.metadata.namespace, p.metadata.name);
    this.o.api.setPodLogs((namespace, name, container, previous) =>
      this.findPod(namespace, name)?.pod.logFile(container, previous),
    );
    this.unsubscribe = this.o.api.subscribe((type, plural, obj) => {
      if (plural === "pods" && type === "DELETED")
        this.podDeleted(obj.metadata.namespace ?? "", obj.metadata.name);
      else if (plural === "deployments") this.enqueue(`${obj.metadata.namespace}/${obj.metadata.name}`);
      else if (plural === "horizontalpodautoscalers") {
        const target = (obj["spec"] as { scaleTargetRef?: { name?: string } } | undefined)?.scaleTargetRef
          ?.name;
        if (target) this.enqueue(`${obj.metadata.namespace}/${target}`);
      } else if (plural === "services") this.enqueue("services");
    });
    this.enqueue("services");
    for (const d of this.o.api.list("deployments"))
      this.enqueue(`${d.metadata.namespace}/${d.metadata.name}`);
    await this.running;
  }

  /** Stops every pod (in parallel, each with its grace period) and the proxies. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    await this.running;
    await Promise.all([...this.pods.values()].flat().map((p) => p.stop()));
    this.pods.clear();
    await this.proxies.close();
  }

  private findPod(namespace: string, name: string): { key: string; pod: LocalPod } | undefined {
    for (const [key, pods] of this.pods) {
      if (!key.startsWith(`${namespace}/`)) continue;
      const pod = pods.find((p) => p.name === name);
      if (pod) return { key, pod };
    }
    return undefined;
  }

  /** `kubectl delete pod`: the pod is stopped and its Deployment gets a new one, as a ReplicaSet would. */
  private podDeleted(namespace: string, name: string): void {
    const found = this.findPod(namespace, name);
    if (!found) return; // one this backend removed itself
    const list = this.pods.get(found.key)!;
    list.splice(list.indexOf(found.pod), 1);
    this.o.logger.info({ pod: name }, "pod deleted; its Deployment gets a new one");
    void found.pod.stop();
    this.enqueue(found.key);
  }

  /** An Event about a pod, as the kubelet records them (shown by kubectl describe and get events). */
  private podEvent(pod: LocalPod, reason: string, message: string, type: "Normal" | "Warning"): void {
    const namespace = pod.namespace;
    if (!namespace || this.stopped) return;
    const now = new Date().toISOString();
    try {
      this.o.api.put({
        apiVersion: "v1",
        kind: "Event",
        metadata: {
          name: `${pod.name}.${Date.now().toString(36)}${randomBytes(3).toString("hex")}`,
          namespace,
        },
        involvedObject: { apiVersion: "v1", kind: "Pod", name: pod.name, namespace, uid: pod.uid },
        reason,
        message,
        type,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: "kubelet", host: "local" },
        reportingComponent: "kubelet",
      });
    } catch (err) {
      this.o.logger.warn(
        { err: err instanceof Error ? err.message : String(err) },
        "could not record a pod event",
      );
    }
  }

  /** The Deployment's pods as `v1` Pod objects; those it no longer has are removed. */
  private publishPods(namespace: string, deployment: Obj, pods: LocalPod[]): void {
    const owner = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: deployment.metadata.name,
      uid: typeof deployment.metadata["uid"] === "string" ? deployment.metadata["uid"] : "",
    };
    const names = new Set(pods.map((p) => p.name));
    for (const o of this.o.api.list("pods", namespace)) {
      const refs = (o.metadata["ownerReferences"] as { uid?: string }[] | undefined) ?? [];
      if (refs[0]?.uid === owner.uid && !names.has(o.metadata.name))
        this.o.api.delete("pods", namespace, o.metadata.name);
    }
    for (const p of pods) {
      const next = podObject(p.facts(namespace, owner));
      const prev = this.o.api.get("pods", namespace, p.name);
      const same =
        prev &&
        JSON.stringify(prev["status"]) === JSON.stringify(next["status"]) &&
        Boolean(prev.metadata["deletionTimestamp"]) === Boolean(next.metadata["deletionTimestamp"]);
      if (!same) this.o.api.put(next as Obj);
    }
  }

  /** Pods per Deployment key (namespace/name), for tests and `valora up`'s summary. */
  podsOf(key: string): readonly LocalPod[] {
    return this.pods.get(key) ?? [];
  }

  /** Keys are handled one at a time, in order, each at most once while queued. */
  private enqueue(key: string): void {
    if (this.stopped || this.pending.has(key)) return;
    this.pending.add(key);
    this.running = this.running.then(async () => {
      this.pending.delete(key);
      if (this.stopped) return;
      try {
        if (key === "services") await this.proxies.sync(this.o.api.list("services"));
        else await this.syncDeployment(key);
      } catch (err) {
        this.o.logger.error(
          { key, err: err instanceof Error ? err.message : String(err) },
          "local backend could not sync; retrying in 2 s",
        );
        setTimeout(() => this.enqueue(key), 2000).unref();
      }
    });
  }

  private async syncDeployment(key: string): Promise<void> {
    const [namespace, name] = key.split("/") as [string, string];
    const obj = this.o.api.get("deployments", namespace, name);
    const pods = this.pods.get(key) ?? [];
    if (!obj || obj.metadata["deletionTimestamp"]) {
      this.pods.delete(key);
      await Promise.all(pods.map((p) => p.stop()));
      for (const p of pods) this.o.api.delete("pods", namespace, p.name);
      if (pods.length > 0) this.o.logger.info({ deployment: key }, "deployment gone; pods stopped");
      return;
    }
    const d = obj as unknown as DeploymentLike;
    const hpa = this.o.api
      .list("horizontalpodautoscalers", namespace)
      .find((h) => (h["spec"] as { scaleTargetRef?: { name?: string } }).scaleTargetRef?.name === name);
    const replicas = localReplicas(
      d,
      (hpa?.["spec"] as { minReplicas?: number } | undefined)?.minReplicas,
      this.o.maxReplicas ?? 1,
    );
    const hash = templateHash(d.spec.template);
    const step = rolloutStep(pods, hash, replicas);
    for (const podName of step.stop) {
      const pod = pods.find((p) => p.name === podName)!;
      pods.splice(pods.indexOf(pod), 1);
      this.o.logger.info({ deployment: key, pod: podName }, "stopping pod");
      void pod.stop().then(() => this.o.api.delete("pods", namespace, podName));
    }
    for (let i = 0; i < step.start; i++) {
      const podName = `${name}-${hash.slice(0, 6)}-${randomBytes(3).toString("hex")}`;
      const pod = new LocalPod(
        podName,
        hash,
        d.spec.template.metadata?.labels ?? {},
        d.spec.template,
        join(this.o.runDir, "pods", podName),
        { ...this.runtime, sources: this.sourcesFor(namespace) },
        () => this.enqueue(key),
      );
      pods.push(pod);
      this.o.logger.info({ deployment: key, pod: podName }, "starting pod");
      pod.start().catch((err: unknown) => {
        this.o.logger.error(
          { pod: podName, err: err instanceof Error ? err.message : String(err) },
          "pod failed to start; replacing it",
        );
        const list = this.pods.get(key) ?? [];
        if (list.includes(pod)) list.splice(list.indexOf(pod), 1);
        void pod.stop();
        setTimeout(() => this.enqueue(key), 5000).unref();
      });
    }
    this.pods.set(key, pods);
    this.publishPods(namespace, obj, pods);
    const status = deploymentStatus(d, pods, hash, replicas);
    if (JSON.stringify(status) !== JSON.stringify(obj["status"] ?? {}))
      this.o.api.setStatus("deployments", namespace, name, status);
  }

  private sourcesFor(namespace: string): PodRuntime["sources"] {
    return {
      namespace,
      secret: (n) => decode(this.o.api.get("secrets", namespace, n)),
      configMap: (n) => decode(this.o.api.get("configmaps", namespace, n)),
    };
  }
}
