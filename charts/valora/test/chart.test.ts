import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { renderObjects, tracingDefaultsFrom } from "@valora/operator";
// @ts-expect-error -- a plain ES module without types
import { helmPath } from "../../../scripts/helm.mjs";

const root = join(import.meta.dirname, "..", "..", "..");
const chart = join(root, "charts", "valora");
const helm = (helmPath as () => string)();

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
}

const FULL = ["-f", join(chart, "ci", "full-values.yaml")];
const EXTERNAL = ["-f", join(chart, "ci", "external-values.yaml")];

function template(args: string[]): K8sObject[] {
  const out = execFileSync(
    helm,
    ["template", "valora", chart, "--namespace", "valora", "--include-crds", ...args],
    { encoding: "utf8", maxBuffer: 32 * 1024 * 1024 },
  );
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

/** Every rendered object against the Kubernetes OpenAPI schemas (kubernetes-models: Kubernetes 1.3x). */
async function validate(o: K8sObject): Promise<void> {
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  const module =
    group === "monitoring.coreos.com"
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}`
      : `kubernetes-models/${group ? `${group}/` : ""}${version}/${o.kind}`;
  const Model = ((await import(module)) as Record<string, new (d: unknown) => { validate(): void }>)[o.kind]!;
  new Model(o).validate();
}

type Pod = {
  securityContext?: Record<string, unknown>;
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  volumes?: Record<string, unknown>[];
  containers: Container[];
  initContainers?: Container[];
};
type Container = {
  name: string;
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    runAsUser?: number;
    privileged?: boolean;
    capabilities?: { drop?: string[]; add?: string[] };
    seccompProfile?: { type?: string };
  };
  resources?: { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
};

/** Pure: how a pod spec breaks the Pod Security Standards "restricted" profile (plus our resource rule). */
export function restrictedViolations(pod: Pod): string[] {
  const v: string[] = [];
  const psc = (pod.securityContext ?? {}) as {
    runAsNonRoot?: boolean;
    runAsUser?: number;
    seccompProfile?: { type?: string };
  };
  if (pod.hostNetwork || pod.hostPID || pod.hostIPC) v.push("host namespaces");
  if ((pod.volumes ?? []).some((vol) => "hostPath" in vol)) v.push("hostPath volume");
  if (psc.runAsUser === 0) v.push("pod runAsUser 0");
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    const sc = c.securityContext ?? {};
    const at = (what: string) => v.push(`${c.name}: ${what}`);
    if (sc.allowPrivilegeEscalation !== false) at("allowPrivilegeEscalation must be false");
    if (sc.readOnlyRootFilesystem !== true) at("readOnlyRootFilesystem must be true");
    if (sc.privileged) at("privileged");
    if (!(sc.capabilities?.drop ?? []).includes("ALL")) at("capabilities must drop ALL");
    if ((sc.capabilities?.add ?? []).some((cap) => cap !== "NET_BIND_SERVICE")) at("adds capabilities");
    if (sc.runAsNonRoot !== true && psc.runAsNonRoot !== true) at("runAsNonRoot must be true");
    if (sc.runAsUser === 0) at("runAsUser 0");
    const seccomp = sc.seccompProfile?.type ?? psc.seccompProfile?.type;
    if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost") at("seccompProfile must be RuntimeDefault");
    if (
      !c.resources?.requests?.["cpu"] ||
      !c.resources?.requests?.["memory"] ||
      !c.resources?.limits?.["memory"]
    )
      at("needs cpu/memory requests and a memory limit");
  }
  return v;
}

const podOf = (o: K8sObject): Pod | undefined =>
  ["Deployment", "StatefulSet", "DaemonSet", "Job"].includes(o.kind)
    ? (o.spec?.["template"] as { spec: Pod }).spec
    : undefined;

describe("the Helm chart (charts/valora)", () => {
  it("passes helm lint with default and full values", () => {
    for (const args of [[], FULL]) {
      const r = spawnSync(helm, ["lint", chart, "--strict", ...args], { encoding: "utf8" });
      expect(r.status, r.stdout + r.stderr).toBe(0);
    }
  });

  it.each([
    ["default", []],
    ["full (monitoring, MinIO, Stripe, OIDC, plans, feeds)", FULL],
    ["external PostgreSQL and Redis, no network policies", EXTERNAL],
  ])("renders %s values into objects valid against the Kubernetes schemas", async (_name, args) => {
    const objects = template(args);
    expect(objects.length).toBeGreaterThan(20);
    for (const o of objects)
      await validate(o).catch((err: unknown) =>
        expect.fail(`${o.kind}/${o.metadata.name}: ${err instanceof Error ? err.message : String(err)}`),
      );
    const kinds = new Set(objects.map((o) => o.kind));
    for (const k of [
      "CustomResourceDefinition",
      "Deployment",
      "Service",
      "HorizontalPodAutoscaler",
      "PodDisruptionBudget",
      "ServiceAccount",
      "ClusterRole",
    ])
      expect(kinds, k).toContain(k);
    const deployments = objects.filter((o) => o.kind === "Deployment").map((o) => o.metadata.name);
    for (const c of [
      "operator",
      "gateway",
      "orchestrator",
      "tenants",
      "usage",
      "billing",
      "market-data",
      "ingest",
    ])
      expect(deployments).toContain(`valora-${c}`);
  });

  it("puts every pod, the chart's and the operator's, under the restricted profile", () => {
    const pods = [...template([]), ...template(FULL)].flatMap((o) =>
      podOf(o) ? [[`${o.kind}/${o.metadata.name}`, podOf(o)!] as const] : [],
    );
    const rendered = ["real-estate", "autos"].flatMap(
      (c) =>
        renderObjects(
          readFileSync(join(root, "manifests", `${c}.yaml`), "utf8"),
          { image: "valora:test" },
          "valora",
        ) as unknown as K8sObject[],
    );
    for (const o of rendered)
      if (podOf(o)) pods.push([`operator-rendered ${o.kind}/${o.metadata.name}`, podOf(o)!]);
    expect(pods.length).toBeGreaterThan(10);
    for (const [name, pod] of pods) expect(restrictedViolations(pod), name).toEqual([]);
    // The check itself finds what it should.
    expect(
      restrictedViolations({
        containers: [{ name: "x", securityContext: { capabilities: { drop: ["ALL"] } } }],
      }),
    ).toEqual(
      expect.arrayContaining([
        "x: allowPrivilegeEscalation must be false",
        "x: readOnlyRootFilesystem must be true",
        "x: runAsNonRoot must be true",
        "x: seccompProfile must be RuntimeDefault",
      ]),
    );
  });

  it("labels every object app.kubernetes.io/* and wires the services to each other", () => {
    const objects = template(FULL).filter((o) => o.kind !== "CustomResourceDefinition");
    for (const o of objects)
      expect(Object.keys(o.metadata.labels ?? {}), `${o.kind}/${o.metadata.name}`).toEqual(
        expect.arrayContaining([
          "app.kubernetes.io/name",
          "app.kubernetes.io/instance",
          "app.kubernetes.io/part-of",
          "app.kubernetes.io/managed-by",
          "app.kubernetes.io/component",
        ]),
      );
    const env = (name: string) =>
      (
        objects.find((o) => o.kind === "Deployment" && o.metadata.name === name)!.spec!["template"] as {
          spec: { containers: { env: { name: string; value?: string }[] }[] };
        }
      ).spec.containers[0]!.env;
    expect(env("valora-gateway")).toEqual(
      expect.arrayContaining([
        { name: "ORCHESTRATOR_ADDR", value: "valora-orchestrator:9090" },
        { name: "TENANTS_ADDR", value: "valora-tenants:9090" },
        { name: "REDIS_URL", value: "redis://valora-redis:6379" },
      ]),
    );
    expect(env("valora-billing").map((e) => e.name)).toEqual(
      expect.arrayContaining([
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "STRIPE_PRICES",
        "DATABASE_URL",
        "VALORA_PLANS",
      ]),
    );
    const services = new Set(objects.filter((o) => o.kind === "Service").map((o) => o.metadata.name));
    for (const e of env("valora-gateway"))
      if (e.name.endsWith("_ADDR")) expect(services, e.name).toContain(e.value!.split(":")[0]);
  });

  it("sends every pod's traces to tracing.endpoint, and the operator passes it on to the pods it makes", () => {
    type Env = { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } };
    const envOf = (o: K8sObject): Env[] => (podOf(o)?.containers[0] as unknown as { env?: Env[] }).env ?? [];
    const valoraDeployments = (objects: K8sObject[]) =>
      objects.filter(
        (o) => o.kind === "Deployment" && o.metadata.labels?.["app.kubernetes.io/part-of"] === "valora",
      );
    // Off by default: not one OTEL_ variable.
    for (const o of valoraDeployments(template([])))
      expect(
        envOf(o).filter((e) => e.name.startsWith("OTEL_")),
        o.metadata.name,
      ).toEqual([]);
    const deployments = valoraDeployments(template(FULL)).filter(
      (o) => !/minio|postgres|redis/.test(o.metadata.name),
    );
    expect(deployments.length).toBeGreaterThanOrEqual(8);
    for (const o of deployments) {
      const env = new Map(envOf(o).map((e) => [e.name, e]));
      expect(env.get("OTEL_EXPORTER_OTLP_ENDPOINT")?.value, o.metadata.name).toBe(
        "http://otel-collector.observability:4318",
      );
      expect(env.get("OTEL_TRACES_SAMPLER_ARG")?.value).toBe("0.25");
      expect(env.get("OTEL_SERVICE_NAME")?.value).toBe(o.metadata.name);
      expect(env.get("OTEL_EXPORTER_OTLP_HEADERS")?.valueFrom?.secretKeyRef).toEqual({
        name: "otlp-headers",
        key: "headers",
        optional: true,
      });
      // $(VAR) refers to variables defined before it, as the kubelet expands them.
      const names = [...env.keys()];
      expect(names.indexOf("K8S_POD_NAME")).toBeLessThan(names.indexOf("OTEL_RESOURCE_ATTRIBUTES"));
      expect(env.get("OTEL_RESOURCE_ATTRIBUTES")?.value).toBe(
        `k8s.namespace.name=$(K8S_NAMESPACE_NAME),k8s.pod.name=$(K8S_POD_NAME),k8s.deployment.name=${o.metadata.name}`,
      );
    }
    // What the operator makes from its own environment: the same settings on pipeline and model-server pods.
    const operator = deployments.find((o) => o.metadata.name === "valora-operator")!;
    const tracing = tracingDefaultsFrom(
      Object.fromEntries(envOf(operator).flatMap((e) => (e.value !== undefined ? [[e.name, e.value]] : []))),
    );
    expect(tracing).toMatchObject({ headersSecret: "otlp-headers" });
    const made = renderObjects(
      readFileSync(join(root, "manifests", "autos.yaml"), "utf8"),
      { image: "v", tracing: tracing! },
      "valora",
    );
    const pods = (made as unknown as K8sObject[]).filter((o) => o.kind === "Deployment");
    expect(pods.length).toBe(2);
    for (const o of pods) {
      const env = new Map(envOf(o).map((e) => [e.name, e]));
      expect(env.get("OTEL_EXPORTER_OTLP_ENDPOINT")?.value).toBe("http://otel-collector.observability:4318");
      expect(env.get("OTEL_TRACES_SAMPLER")?.value).toBe("parentbased_traceidratio");
      expect(env.get("OTEL_SERVICE_NAME")?.value).toBe(o.metadata.name);
      expect(env.get("OTEL_EXPORTER_OTLP_HEADERS")?.valueFrom?.secretKeyRef?.name).toBe("otlp-headers");
    }
  });

  it("refuses invalid values through values.schema.json, naming the field", () => {
    for (const [set, field] of [
      ["gateway.replicas=0", "/gateway/replicas"],
      ["image.pullPolicy=Sometimes", "/image/pullPolicy"],
      ["bogus=1", "bogus"],
      ["stripe.enabled=true", "/stripe/existingSecret"],
      ["tracing.protocol=thrift", "/tracing/protocol"],
    ] as const) {
      const r = spawnSync(helm, ["template", "valora", chart, "--set", set], { encoding: "utf8" });
      expect(r.status, set).not.toBe(0);
      expect(r.stderr, set).toContain(field);
    }
  });
});
