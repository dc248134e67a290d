/** What a local pod's container has been doing, as a kubelet reports it. */
export interface ContainerState {
  name: string;
  image: string;
  restartCount: number;
  ready: boolean;
  /** Running since, or waiting (with a reason), or terminated (init containers that finished). */
  state:
    | { running: { startedAt: string } }
    | { waiting: { reason: string; message?: string } }
    | { terminated: { exitCode: number; reason: string; startedAt?: string; finishedAt: string } };
  lastState?: { terminated: { exitCode: number; reason: string; finishedAt: string } };
}

export interface PodFacts {
  name: string;
  namespace: string;
  uid: string;
  labels: Record<string, string>;
  owner?: { apiVersion: string; kind: string; name: string; uid: string };
  spec: Record<string, unknown>;
  createdAt: string;
  startedAt?: string;
  ready: boolean;
  stopping: boolean;
  initContainers: ContainerState[];
  containers: ContainerState[];
}

/**
 * Pure: a local pod as a `v1` Pod object — phase, the four conditions, container statuses with
 * restart counts and states, owner reference — so `kubectl get pods`, `describe` and `logs` find
 * it as they find a kubelet's.
 */
export function podObject(f: PodFacts): Record<string, unknown> & { metadata: Record<string, unknown> } {
  const initialized = f.initContainers.every(
    (c) => "terminated" in c.state && c.state.terminated.exitCode === 0,
  );
  const running = f.containers.some((c) => "running" in c.state);
  const phase = running || (initialized && f.containers.length > 0 && f.startedAt) ? "Running" : "Pending";
  const condition = (type: string, ok: boolean) => ({
    type,
    status: ok ? "True" : "False",
    lastTransitionTime: f.startedAt ?? f.createdAt,
  });
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name: f.name,
      namespace: f.namespace,
      uid: f.uid,
      labels: f.labels,
      creationTimestamp: f.createdAt,
      ...(f.stopping ? { deletionTimestamp: new Date().toISOString() } : {}),
      ...(f.owner ? { ownerReferences: [{ ...f.owner, controller: true, blockOwnerDeletion: true }] } : {}),
    },
    spec: { ...f.spec, nodeName: "local" },
    status: {
      phase,
      conditions: [
        condition("PodScheduled", true),
        condition("Initialized", initialized),
        condition("ContainersReady", f.ready),
        condition("Ready", f.ready),
      ],
      hostIP: "127.0.0.1",
      podIP: "127.0.0.1",
      podIPs: [{ ip: "127.0.0.1" }],
      ...(f.startedAt ? { startTime: f.startedAt } : {}),
      initContainerStatuses: f.initContainers.map(status),
      containerStatuses: f.containers.map(status),
      qosClass: "BestEffort",
    },
  };
}

const status = (c: ContainerState) => ({
  name: c.name,
  image: c.image,
  imageID: "",
  ready: c.ready,
  started: "running" in c.state,
  restartCount: c.restartCount,
  state: c.state,
  ...(c.lastState ? { lastState: c.lastState } : {}),
});
