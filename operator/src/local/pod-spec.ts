import { createHash } from "node:crypto";
import { canonicalJson } from "@valora/kit";

/** The parts of a pod template the local backend reads. */
export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: {
    fieldRef?: { fieldPath: string };
    secretKeyRef?: { name: string; key: string; optional?: boolean };
    configMapKeyRef?: { name: string; key: string; optional?: boolean };
  };
}
export interface ContainerPort {
  name?: string;
  containerPort: number;
}
export interface Probe {
  httpGet?: { path?: string; port: number | string };
  grpc?: { port: number; service?: string };
  tcpSocket?: { port: number | string };
  periodSeconds?: number;
  failureThreshold?: number;
}
export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: EnvVar[];
  envFrom?: {
    secretRef?: { name: string; optional?: boolean };
    configMapRef?: { name: string; optional?: boolean };
  }[];
  ports?: ContainerPort[];
  readinessProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string }[];
}
export interface Volume {
  name: string;
  emptyDir?: object;
  configMap?: { name: string; optional?: boolean };
  secret?: { secretName: string; optional?: boolean };
}
export interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    containers: Container[];
    initContainers?: Container[];
    volumes?: Volume[];
    terminationGracePeriodSeconds?: number;
  };
}
export interface DeploymentLike {
  metadata: { name: string; namespace?: string; generation?: number };
  spec: { replicas?: number; selector?: { matchLabels?: Record<string, string> }; template: PodTemplate };
}

/** Pure: a short stable hash of a pod template; a change rolls the pods, as pod-template-hash does. */
export function templateHash(template: PodTemplate): string {
  return createHash("sha256").update(canonicalJson(template)).digest("hex").slice(0, 10);
}

/**
 * Pure: how many pods a Deployment gets on this machine: its replicas, else the minimum of the
 * HorizontalPodAutoscaler that owns the field, else 1; at most `cap` (one machine has few cores).
 */
export function localReplicas(d: DeploymentLike, hpaMinReplicas: number | undefined, cap: number): number {
  const wanted = d.spec.replicas ?? hpaMinReplicas ?? 1;
  return Math.max(0, Math.min(wanted, cap));
}

export interface PodState {
  name: string;
  hash: string;
  ready: boolean;
}

/**
 * Pure: a rolling update with maxSurge 1 and maxUnavailable 0, as the Deployment controller runs
 * it: start pods of the current template up to the replica count; stop old-template pods only
 * once as many current pods are ready; stop surplus current pods.
 */
export function rolloutStep(
  pods: PodState[],
  hash: string,
  replicas: number,
): { start: number; stop: string[] } {
  const current = pods.filter((p) => p.hash === hash);
  const old = pods.filter((p) => p.hash !== hash);
  const stop: string[] = [];
  if (current.length > replicas) stop.push(...current.slice(replicas).map((p) => p.name));
  const readyCurrent = current.slice(0, replicas).filter((p) => p.ready).length;
  if (readyCurrent >= replicas) stop.push(...old.map((p) => p.name));
  return { start: Math.max(0, replicas - current.length), stop };
}

/** Pure: the Deployment status the controller would report for these pods. */
export function deploymentStatus(
  d: DeploymentLike,
  pods: PodState[],
  hash: string,
  replicas: number,
): Record<string, unknown> {
  const ready = pods.filter((p) => p.ready).length;
  const updated = pods.filter((p) => p.hash === hash).length;
  const available = ready >= replicas && replicas > 0;
  return {
    observedGeneration: d.metadata.generation ?? 1,
    replicas: pods.length,
    updatedReplicas: updated,
    readyReplicas: ready,
    availableReplicas: ready,
    ...(pods.length > ready ? { unavailableReplicas: pods.length - ready } : {}),
    conditions: [
      {
        type: "Available",
        status: available ? "True" : "False",
        reason: available ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
      },
      {
        type: "Progressing",
        status: "True",
        reason: updated >= replicas && ready >= replicas ? "NewReplicaSetAvailable" : "ReplicaSetUpdated",
      },
    ],
  };
}

/**
 * Pure: a path inside the container as a path on this machine. Mounts (and the image's own
 * folders, e.g. /opt/valora/models) are matched longest first, on whole path segments, wherever
 * the path starts a value, follows `=`, or follows `file://`.
 */
export function rewritePaths(
  value: string,
  mounts: Record<string, string>,
  exists?: (path: string) => boolean,
): string {
  const froms = Object.keys(mounts).sort((a, b) => b.length - a.length);
  if (froms.length === 0) return value;
  // One pass: a rewritten path (e.g. under /tmp on this machine) is never rewritten again.
  const alternation = froms.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
  return value.replace(
    new RegExp(`(^|=|file://)(${alternation})(?=/|$)([^\\s,]*)`, "g"),
    (_m, lead: string, from: string, rest: string) => {
      const local = `${mounts[from]}${rest}`;
      // A file:// URI in a CR may name a file of this machine (where `valora train --out /tmp/x`
      // wrote it) rather than one in the pod's volumes: the file that exists wins, the pod's first.
      if (lead === "file://" && exists && !exists(local) && exists(`${from}${rest}`))
        return `${lead}${from}${rest}`;
      return `${lead}${local}`;
    },
  );
}

export interface EnvSources {
  namespace: string;
  podName: string;
  secret(name: string): Record<string, string> | undefined;
  configMap(name: string): Record<string, string> | undefined;
}

/**
 * Pure: a container's environment as the kubelet builds it (envFrom first, then env, which wins),
 * with declared container ports mapped to the ports this pod got on loopback: a variable whose
 * name ends in PORT and whose value is a declared containerPort takes the local port.
 */
export function containerEnv(
  c: Container,
  src: EnvSources,
  ports: Map<number, number>,
  mounts: Record<string, string>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of c.envFrom ?? []) {
    const data = from.secretRef
      ? src.secret(from.secretRef.name)
      : from.configMapRef
        ? src.configMap(from.configMapRef.name)
        : undefined;
    const ref = from.secretRef ?? from.configMapRef;
    if (!data && ref && !ref.optional) throw new Error(`envFrom ${ref.name} not found`);
    Object.assign(env, data ?? {});
  }
  for (const v of c.env ?? []) {
    const f = v.valueFrom;
    let value = v.value;
    if (f?.fieldRef)
      value =
        f.fieldRef.fieldPath === "metadata.namespace"
          ? src.namespace
          : f.fieldRef.fieldPath === "metadata.name"
            ? src.podName
            : "";
    else if (f?.secretKeyRef || f?.configMapKeyRef) {
      const ref = (f.secretKeyRef ?? f.configMapKeyRef)!;
      value = (f.secretKeyRef ? src.secret(ref.name) : src.configMap(ref.name))?.[ref.key];
      if (value === undefined && !ref.optional)
        throw new Error(`${v.name}: key ${ref.key} of ${ref.name} not found`);
    }
    if (value !== undefined) env[v.name] = f ? value : expandEnvRefs(value, env);
  }
  for (const [k, v] of Object.entries(env)) {
    const port = /PORT$/.test(k) && /^\d+$/.test(v) ? ports.get(Number(v)) : undefined;
    env[k] = port !== undefined ? String(port) : rewritePaths(v, mounts);
  }
  return env;
}

/**
 * Pure: the kubelet's dependent variables: `$(NAME)` in a value becomes NAME's value when a variable
 * defined before it in the container has one (otherwise it stays as written); `$$` is a literal `$`.
 */
export function expandEnvRefs(value: string, defined: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) =>
    name === undefined ? "$" : (defined[name] ?? whole),
  );
}

/** Pure: the local port a probe or Service targets (a port name or a containerPort number). */
export function targetPort(
  port: number | string,
  declared: ContainerPort[],
  ports: Map<number, number>,
): number | undefined {
  const container =
    typeof port === "number" || /^\d+$/.test(port)
      ? Number(port)
      : declared.find((p) => p.name === port)?.containerPort;
  return container === undefined ? undefined : ports.get(container);
}

/** Pure: does a label set satisfy a Service or Deployment selector (matchLabels)? */
export function selects(
  selector: Record<string, string> | undefined,
  labels: Record<string, string> | undefined,
): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels?.[k] === v);
}
