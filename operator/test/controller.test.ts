import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createRegistry } from "@valora/kit";
import { captureLogs } from "@valora/kit/testing";
import { kubeConfig, startOperator, FINALIZER, type AnalysisSource, type Operator } from "../src/index.js";
import type { AnalysisInput } from "../src/controllers/valuation-model/rollout.js";
import { FakeApiServer } from "./support/fake-apiserver.js";

const NS = "valuation";
const defaults = { image: "valora:test" };
const paired = { pairs: 100, biasPct: 0.2, medianAbsDeltaPct: 1, absDeltaP90Pct: 2.5 };
const good: AnalysisInput = { requests: 500, errors: 0, latencyP99Ms: 8, paired };
const bad: AnalysisInput = { requests: 500, errors: 60, latencyP99Ms: 8, paired };

function vm(name: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: "valora.dev/v1alpha1",
    kind: "ValuationModel",
    metadata: { name, namespace: NS },
    spec: {
      assetClass: "real-estate",
      champion: { version: "v1", uri: "file:///models/v1.onnx" },
      serving: { minReplicas: 1, maxReplicas: 3, targetCPUUtilization: 70 },
      ...spec,
    },
  };
}

describe("ValuationModel controller against an API server double (via @kubernetes/client-node)", () => {
  const api = new FakeApiServer();
  let url = "";
  const analysis: AnalysisSource & { result: AnalysisInput } = {
    result: good,
    analyse: async () => analysis.result,
  };
  const operators: Operator[] = [];
  const { logger, lines } = captureLogs("operator");

  // Plays the Deployment controller: every Deployment the operator creates becomes ready.
  let kubelet: NodeJS.Timeout;
  const autoReady = new Set<string>();
  beforeAll(async () => {
    url = await api.start();
    kubelet = setInterval(() => {
      for (const d of api.list("deployments", NS)) {
        const gen = Number(d.metadata["generation"]);
        const st = d["status"] as { observedGeneration?: number } | undefined;
        if (autoReady.has(d.metadata.name) && st?.observedGeneration !== gen)
          api.setStatus("deployments", NS, d.metadata.name, {
            replicas: 1,
            readyReplicas: 1,
            availableReplicas: 1,
            updatedReplicas: 1,
            observedGeneration: gen,
          });
      }
    }, 20);
  });
  afterAll(async () => {
    clearInterval(kubelet);
    await api.stop();
  });
  afterEach(async () => {
    await Promise.all(operators.splice(0).map((o) => o.stop()));
  });

  const start = async (identity = "op-1") => {
    const op = await startOperator({
      kc: kubeConfig(url),
      identity,
      leaseNamespace: "valora-system",
      defaults,
      logger,
      registry: createRegistry({ service: identity, collectDefault: false }),
      analysis,
      renewIntervalMs: 100,
      leaseDurationSeconds: 1,
      queue: { baseDelayMs: 5, maxDelayMs: 200 },
    });
    operators.push(op);
    return op;
  };
  const status = (name: string) =>
    api.get("valuationmodels", NS, name)?.["status"] as Record<string, any> | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any -- status documents are asserted on by shape
  const condition = (name: string, type: string) =>
    (status(name)?.conditions as { type: string; status: string; reason: string }[] | undefined)?.find(
      (c) => c.type === type,
    );
  const events = (name: string) =>
    api
      .list("events", NS)
      .filter((e) => (e["involvedObject"] as { name: string }).name === name)
      .map((e) => e["reason"] as string);

  it("creates a Deployment, Service, HPA and PDB per version with owner references, a finalizer, and Ready status", async () => {
    await start();
    autoReady.add("homes-v1");
    api.put(vm("homes"));
    await expect.poll(() => condition("homes", "Ready")?.status, { timeout: 10_000 }).toBe("True");
    for (const plural of ["deployments", "services", "horizontalpodautoscalers", "poddisruptionbudgets"]) {
      const o = api.get(plural, NS, "homes-v1");
      expect(o, plural).toBeDefined();
      expect((o!.metadata["ownerReferences"] as { kind: string; name: string }[])[0]).toMatchObject({
        kind: "ValuationModel",
        name: "homes",
      });
    }
    expect(api.get("valuationmodels", NS, "homes")!.metadata["finalizers"]).toEqual([FINALIZER]);
    expect(status("homes")).toMatchObject({
      observedGeneration: 1,
      champion: { version: "v1", readyReplicas: 1, endpoint: "homes-v1.valuation.svc.cluster.local:8001" },
      routing: [{ version: "v1", role: "champion", weight: 100 }],
    });
    expect(
      api.requests.some(
        (r) =>
          r.method === "PATCH" &&
          r.contentType?.startsWith("application/apply-patch") &&
          r.path.includes("fieldManager=valora-operator"),
      ),
    ).toBe(true);
  });

  it("promotes a healthy canary step by step, with Events", async () => {
    await start();
    autoReady.add("canary-ok-v1").add("canary-ok-v2");
    api.put(
      vm("canary-ok", {
        candidate: {
          version: "v2",
          uri: "file:///models/v2.onnx",
          canary: { steps: [20, 60, 100], interval: "200ms" },
        },
      }),
    );
    analysis.result = good;
    await expect.poll(() => status("canary-ok")?.candidate?.phase, { timeout: 15_000 }).toBe("Promoted");
    expect(status("canary-ok")!.routing).toEqual([
      {
        version: "v2",
        role: "canary",
        endpoint: "canary-ok-v2.valuation.svc.cluster.local:8001",
        weight: 100,
        pairedSamplePercent: 20,
      },
    ]);
    expect(events("canary-ok")).toEqual(expect.arrayContaining(["CanaryStepAdvanced", "CanaryPromoted"]));
  });

  it("rolls a failing canary back and reports Degraded, with a Warning Event", async () => {
    await start();
    autoReady.add("canary-bad-v1").add("canary-bad-v2");
    analysis.result = bad;
    api.put(
      vm("canary-bad", {
        candidate: {
          version: "v2",
          uri: "file:///models/v2.onnx",
          canary: { steps: [20, 100], interval: "200ms" },
        },
      }),
    );
    await expect.poll(() => status("canary-bad")?.candidate?.phase, { timeout: 15_000 }).toBe("RolledBack");
    expect(condition("canary-bad", "Degraded")).toMatchObject({ status: "True", reason: "CanaryRolledBack" });
    expect(status("canary-bad")!.routing).toEqual([
      {
        version: "v1",
        role: "champion",
        endpoint: "canary-bad-v1.valuation.svc.cluster.local:8001",
        weight: 100,
      },
    ]);
    const warning = api.list("events", NS).find((e) => e["reason"] === "CanaryRolledBack");
    expect(warning?.["type"]).toBe("Warning");
    analysis.result = good;
  });

  it("promotes declaratively with zero downtime: routing moves only once the new version is Ready, then the old one is pruned", async () => {
    await start();
    autoReady.add("zd-v1");
    api.put(vm("zd"));
    await expect.poll(() => condition("zd", "Ready")?.status, { timeout: 10_000 }).toBe("True");
    api.put(vm("zd", { champion: { version: "v2", uri: "file:///models/v2.onnx" } }));
    await expect.poll(() => api.get("deployments", NS, "zd-v2"), { timeout: 10_000 }).toBeDefined();
    await new Promise((r) => setTimeout(r, 300));
    expect(status("zd")!.routing[0].version).toBe("v1");
    expect(api.get("deployments", NS, "zd-v1")).toBeDefined();
    autoReady.add("zd-v2");
    await expect.poll(() => status("zd")?.routing?.[0]?.version, { timeout: 10_000 }).toBe("v2");
    await expect.poll(() => api.get("deployments", NS, "zd-v1"), { timeout: 10_000 }).toBeUndefined();
    expect(api.get("services", NS, "zd-v1")).toBeUndefined();
    expect(events("zd")).toContain("ChampionChanged");
  });

  it("refuses an invalid spec with a Degraded condition and creates nothing", async () => {
    await start();
    api.put(vm("broken", { candidate: { version: "v1", uri: "file:///models/v1b.onnx" } }));
    await expect.poll(() => condition("broken", "Degraded")?.reason, { timeout: 10_000 }).toBe("InvalidSpec");
    expect(api.get("deployments", NS, "broken-v1")).toBeUndefined();
  });

  it("runs one leader among two replicas and fails over when the leader stops", async () => {
    const a = await start("op-a");
    const b = await start("op-b");
    await expect
      .poll(() => [a.elector.isLeader, b.elector.isLeader].filter(Boolean).length, { timeout: 5000 })
      .toBe(1);
    const [leader, standby] = a.elector.isLeader ? [a, b] : [b, a];
    await leader.stop();
    operators.splice(operators.indexOf(leader), 1);
    await expect.poll(() => standby.elector.isLeader, { timeout: 5000 }).toBe(true);
    autoReady.add("failover-v1");
    api.put(vm("failover"));
    await expect.poll(() => condition("failover", "Ready")?.status, { timeout: 10_000 }).toBe("True");
  });

  it("survives dropped watches and 410 Gone: the informers restart and re-list", async () => {
    const op = await start();
    await expect.poll(() => op.elector.isLeader, { timeout: 5000 }).toBe(true);
    api.compact();
    api.dropWatches();
    autoReady.add("after-drop-v1");
    api.put(vm("after-drop"));
    await expect.poll(() => condition("after-drop", "Ready")?.status, { timeout: 15_000 }).toBe("True");
  });

  it("finishes the work of an operator killed mid-reconcile: a fresh one converges", async () => {
    const first = await start();
    await expect.poll(() => first.elector.isLeader, { timeout: 5000 }).toBe(true);
    api.put(vm("crashy"));
    await expect.poll(() => api.get("deployments", NS, "crashy-v1"), { timeout: 10_000 }).toBeDefined();
    await first.stop();
    operators.splice(operators.indexOf(first), 1);
    // Leave a half-done state behind, as a crash between two applies would: no Service.
    await fetch(`${url}/api/v1/namespaces/${NS}/services/crashy-v1`, { method: "DELETE" });
    expect(api.get("services", NS, "crashy-v1")).toBeUndefined();
    autoReady.add("crashy-v1");
    await start("op-2");
    await expect.poll(() => condition("crashy", "Ready")?.status, { timeout: 15_000 }).toBe("True");
    expect(api.get("services", NS, "crashy-v1")).toBeDefined();
    expect(lines.some((l) => l["msg"] === "became leader")).toBe(true);
  });

  it("chaos: an operator stopped in the middle of a canary; a fresh one resumes from status, traffic never jumps", async () => {
    const first = await start();
    await expect.poll(() => first.elector.isLeader, { timeout: 5000 }).toBe(true);
    autoReady.add("resumed-v1").add("resumed-v2");
    analysis.result = good;
    api.put(
      vm("resumed", {
        candidate: {
          version: "v2",
          uri: "file:///models/v2.onnx",
          canary: { steps: [20, 60, 100], interval: "1500ms" },
        },
      }),
    );
    // Every traffic share the pipelines are told, watched from outside the operator.
    const seen: number[] = [];
    const watch = setInterval(() => {
      const t = status("resumed")?.candidate?.trafficPercent;
      if (t !== undefined && seen.at(-1) !== t) seen.push(t);
    }, 25);
    try {
      await expect.poll(() => status("resumed")?.candidate?.trafficPercent, { timeout: 15_000 }).toBe(60);
      const stoppedAt = Date.now();
      await first.stop();
      operators.splice(operators.indexOf(first), 1);
      await new Promise((r) => setTimeout(r, 500));
      expect(status("resumed")?.candidate).toMatchObject({
        phase: "Progressing",
        step: 1,
        trafficPercent: 60,
      });
      await start("op-resume");
      await expect.poll(() => status("resumed")?.candidate?.phase, { timeout: 20_000 }).toBe("Promoted");
      process.stdout.write(
        `chaos operator-stopped-mid-canary: ${JSON.stringify({ traffic: seen, promotedAfterSeconds: (Date.now() - stoppedAt) / 1000 })}\n`,
      );
    } finally {
      clearInterval(watch);
    }
    // The steps in order, none skipped, none repeated from the start.
    expect(seen.filter((t) => t > 0)).toEqual([20, 60, 100]);
  });

  it("retries after conflicting writes (409) with backoff and converges", async () => {
    const op = await start();
    await expect.poll(() => op.elector.isLeader, { timeout: 5000 }).toBe(true);
    api.conflictNext("valuationmodels", 3);
    autoReady.add("contended-v1");
    api.put(vm("contended"));
    await expect.poll(() => condition("contended", "Ready")?.status, { timeout: 15_000 }).toBe("True");
    expect(
      lines.some((l) => l["msg"] === "reconcile failed; will retry" && String(l["err"]).includes("409")),
    ).toBe(true);
  });

  it("reconciles an AssetPipeline into its ConfigMap, Deployment, Service and HPA, bound to its model", async () => {
    await start();
    autoReady.add("houses-v1").add("pipeline-houses");
    api.put(vm("houses"));
    await expect.poll(() => condition("houses", "Ready")?.status, { timeout: 15_000 }).toBe("True");
    const { parseAllDocuments } = await import("yaml");
    const { readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const ap = parseAllDocuments(
      readFileSync(join(import.meta.dirname, "..", "..", "manifests", "real-estate.yaml"), "utf8"),
    )[1]!.toJS();
    api.put({
      ...ap,
      metadata: { name: "houses", namespace: NS },
      spec: { ...ap.spec, model: { name: "houses" } },
    });
    const apStatus = () =>
      api.get("assetpipelines", NS, "houses")?.["status"] as
        { model?: { championVersion?: string }; conditions?: { type: string; status: string }[] } | undefined;
    // Polled with its reason and message, so a failure says why the pipeline is not Ready.
    await expect
      .poll(
        () => {
          const c = apStatus()?.conditions?.find((x) => x.type === "Ready") as
            { status: string; reason?: string; message?: string } | undefined;
          return `${c?.status}: ${c?.reason} ${c?.message} (deployment ${JSON.stringify(api.get("deployments", NS, "pipeline-houses")?.["status"] ?? null)}; model ${JSON.stringify(condition("houses", "Ready"))}; cached model ${JSON.stringify((operators[0]?.informers.models.get(NS, "houses") as { status?: { conditions?: unknown[] } } | undefined)?.status?.conditions ?? null)})`;
        },
        { timeout: 25_000 },
      )
      .toMatch(/^True/);
    expect(apStatus()?.model).toEqual({ name: "houses", championVersion: "v1" });
    for (const plural of ["configmaps", "deployments", "services", "horizontalpodautoscalers"])
      expect(api.get(plural, NS, "pipeline-houses"), plural).toBeDefined();
    expect(
      (api.get("configmaps", NS, "pipeline-houses")!["data"] as Record<string, string>)["pipeline.yaml"],
    ).toContain("assetClass: real-estate");
  });

  it("deletes cleanly: the finalizer is removed and owned objects are garbage-collected", async () => {
    await start();
    autoReady.add("gone-v1");
    api.put(vm("gone"));
    await expect.poll(() => condition("gone", "Ready")?.status, { timeout: 10_000 }).toBe("True");
    const res = await fetch(`${url}/apis/valora.dev/v1alpha1/namespaces/${NS}/valuationmodels/gone`, {
      method: "DELETE",
    });
    expect(res.status).toBe(200);
    await expect.poll(() => api.get("valuationmodels", NS, "gone"), { timeout: 10_000 }).toBeUndefined();
    expect(api.get("deployments", NS, "gone-v1")).toBeUndefined();
  });
});

describe("valora serve operator (built)", () => {
  it("starts from its environment, takes the Lease and reconciles, then drains on SIGTERM", async () => {
    const { existsSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { spawn } = await import("node:child_process");
    const { createInterface } = await import("node:readline");
    const bin = join(import.meta.dirname, "..", "..", "services", "cli", "dist", "bin.js");
    if (!existsSync(bin)) return;
    const api = new FakeApiServer();
    const url = await api.start();
    const child = spawn(process.execPath, [bin, "serve", "operator"], {
      env: {
        ...process.env,
        KUBE_API_SERVER: url,
        POD_NAME: "op-smoke",
        POD_NAMESPACE: "valora-system",
        METRICS_PORT: "0",
        HOST: "127.0.0.1",
        VALORA_IMAGE: "valora:smoke",
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    const logs: string[] = [];
    createInterface({ input: child.stdout }).on("line", (l) => logs.push(l));
    try {
      await expect.poll(() => logs.some((l) => l.includes("became leader")), { timeout: 15_000 }).toBe(true);
      api.put(vm("smoke"));
      await expect.poll(() => api.get("deployments", NS, "smoke-v1"), { timeout: 15_000 }).toBeDefined();
      const image = (
        api.get("deployments", NS, "smoke-v1")!["spec"] as {
          template: { spec: { containers: { image: string }[] } };
        }
      ).template.spec.containers[0]!.image;
      expect(image).toBe("valora:smoke");
    } finally {
      const exited = new Promise<number | null>((r) => child.on("exit", r));
      child.kill("SIGTERM");
      expect(await exited).toBe(0);
      await api.stop();
    }
  }, 40_000);
});
