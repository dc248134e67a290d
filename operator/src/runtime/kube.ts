import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
} from "@kubernetes/client-node";

/** A KubeConfig from the pod's service account, KUBECONFIG, or an explicit server (tests, `kubectl proxy`). */
export function kubeConfig(server?: string): KubeConfig {
  const kc = new KubeConfig();
  if (server) {
    kc.loadFromOptions({
      clusters: [{ name: "target", server, skipTLSVerify: true }],
      users: [{ name: "operator" }],
      contexts: [{ name: "target", cluster: "target", user: "operator", namespace: "default" }],
      currentContext: "target",
    });
  } else {
    kc.loadFromDefault();
  }
  return kc;
}

export interface Clients {
  kc: KubeConfig;
  objects: KubernetesObjectApi;
  custom: CustomObjectsApi;
  core: CoreV1Api;
  apps: AppsV1Api;
  coordination: CoordinationV1Api;
}

export function clients(kc: KubeConfig): Clients {
  return {
    kc,
    objects: KubernetesObjectApi.makeApiClient(kc),
    custom: kc.makeApiClient(CustomObjectsApi),
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
  };
}
