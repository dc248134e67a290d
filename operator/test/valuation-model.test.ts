import { describe, expect, it } from "vitest";
import { validateObject, type ValuationModel } from "../src/api/index.js";
import {
  liveVersions,
  retainedVersions,
  versionObjects,
} from "../src/controllers/valuation-model/desired.js";
import {
  decideCanary,
  judgeBacktest,
  routing,
  type AnalysisInput,
} from "../src/controllers/valuation-model/rollout.js";
import { MODEL_SERVER_ENV, canonicalJson as canonical } from "@valora/kit";
import { rolloutConditions, setConditions } from "../src/controllers/valuation-model/status.js";
import { dnsLabel } from "../src/controllers/shared.js";

const defaults = {
  image: "ghcr.io/valora/valora:0.1.0",
  modelEnv: { VALORA_MODEL_ALLOWED_HOSTS: "models.example.com" },
};

function model(spec: Record<string, unknown> = {}, status?: Record<string, unknown>): ValuationModel {
  const vm = validateObject({
    apiVersion: "valora.dev/v1alpha1",
    kind: "ValuationModel",
    metadata: { name: "homes", namespace: "valuation", uid: "u-1", generation: 3 },
    spec: {
      assetClass: "real-estate",
      champion: { version: "v1", uri: "https://models.example.com/v1.onnx", sha256: "a".repeat(64) },
      serving: { minReplicas: 2, maxReplicas: 6, targetCPUUtilization: 60 },
      ...spec,
    },
    ...(status ? { status } : {}),
  });
  if (vm.kind !== "ValuationModel") throw new Error("not a ValuationModel");
  return vm;
}

const candidate = {
  version: "v2",
  uri: "https://models.example.com/v2.onnx",
  canary: { steps: [10, 50, 100], interval: "1m" },
};
const unbiased = { pairs: 120, biasPct: 0.1, medianAbsDeltaPct: 1.2, absDeltaP90Pct: 3.5 };
const good: AnalysisInput = { requests: 500, errors: 1, latencyP99Ms: 12, paired: unbiased };
const bad: AnalysisInput = { requests: 500, errors: 40, latencyP99Ms: 12, paired: unbiased };

describe("desired state (pure)", () => {
  it("builds a Deployment, Service, HPA and PDB per live version, owned by the ValuationModel", () => {
    const vm = model({ candidate });
    const objects = liveVersions(vm).flatMap((v) => versionObjects(vm, v, defaults));
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      "Deployment/homes-v1",
      "Service/homes-v1",
      "HorizontalPodAutoscaler/homes-v1",
      "PodDisruptionBudget/homes-v1",
      "Deployment/homes-v2",
      "Service/homes-v2",
      "HorizontalPodAutoscaler/homes-v2",
      "PodDisruptionBudget/homes-v2",
    ]);
    for (const o of objects) {
      expect(o.metadata.namespace).toBe("valuation");
      expect(o.metadata.ownerReferences).toEqual([
        {
          apiVersion: "valora.dev/v1alpha1",
          kind: "ValuationModel",
          name: "homes",
          uid: "u-1",
          controller: true,
          blockOwnerDeletion: true,
        },
      ]);
    }
    const dep = objects[0] as unknown as {
      spec: {
        replicas?: number;
        template: {
          spec: {
            initContainers: { name: string; args: string[] }[];
            containers: {
              args: string[];
              env: { name: string; value: string }[];
              securityContext: Record<string, unknown>;
            }[];
          };
        };
      };
    };
    expect(dep.spec.replicas).toBeUndefined();
    expect(dep.spec.template.spec.initContainers[0]).toMatchObject({
      name: "model-fetch",
      args: [
        "fetch-model",
        "--uri",
        "https://models.example.com/v1.onnx",
        "--out",
        "/models/model.onnx",
        "--sha256",
        "a".repeat(64),
      ],
    });
    expect(dep.spec.template.spec.containers[0]!.args.slice(0, 6)).toEqual([
      "serve",
      "model-server",
      "--model",
      "homes=file:///models/model.onnx",
      "--model-version",
      "v1",
    ]);
    // The model server starts with its memory settings (glibc reads them at process start).
    expect(dep.spec.template.spec.containers[0]!.env).toContainEqual({
      name: "MALLOC_TRIM_THRESHOLD_",
      value: MODEL_SERVER_ENV["MALLOC_TRIM_THRESHOLD_"],
    });
    expect(dep.spec.template.spec.containers[0]!.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    });
    const hpa = objects[2] as unknown as {
      spec: {
        minReplicas: number;
        maxReplicas: number;
        metrics: { resource: { target: { averageUtilization: number } } }[];
      };
    };
    expect(hpa.spec).toMatchObject({ minReplicas: 2, maxReplicas: 6 });
    expect(hpa.spec.metrics[0]!.resource.target.averageUtilization).toBe(60);
  });

  it("is deterministic (no clock, no randomness): building twice gives identical objects", () => {
    const vm = model({ candidate });
    const a = liveVersions(vm).flatMap((v) => versionObjects(vm, v, defaults));
    const b = liveVersions(vm).flatMap((v) => versionObjects(vm, v, defaults));
    expect(canonical(a)).toBe(canonical(b));
  });

  it("keeps the serving champion during a declarative promotion until its successor is Ready", () => {
    const vm = model(
      { champion: { version: "v2", uri: "https://models.example.com/v2.onnx" } },
      { champion: { version: "v1", readyReplicas: 2, endpoint: "x" } },
    );
    expect(retainedVersions(vm, new Set(["v1"]))).toEqual(["v1"]);
    expect(routing(vm, new Set(["v1"]), undefined)).toEqual([
      { version: "v1", role: "champion", endpoint: "homes-v1.valuation.svc.cluster.local:8001", weight: 100 },
    ]);
    expect(retainedVersions(vm, new Set(["v1", "v2"]))).toEqual([]);
    expect(routing(vm, new Set(["v1", "v2"]), undefined)).toEqual([
      { version: "v2", role: "champion", endpoint: "homes-v2.valuation.svc.cluster.local:8001", weight: 100 },
    ]);
  });

  it("makes DNS-safe, bounded names from any version label", () => {
    expect(dnsLabel("homes", "V1.2_rc")).toBe("homes-v1-2-rc");
    const long = dnsLabel("a".repeat(40), "b".repeat(40));
    expect(long.length).toBeLessThanOrEqual(63);
    expect(long).toBe(dnsLabel("a".repeat(40), "b".repeat(40)));
  });
});

describe("canary rollout (pure)", () => {
  const t0 = new Date("2026-01-01T00:00:00Z");
  const later = (ms: number) => new Date(t0.getTime() + ms);

  it("walks a healthy candidate through every step to promotion, with events", () => {
    let vm = model({ candidate });
    const events: string[] = [];
    let now = t0;
    let d = decideCanary(vm, now, true, undefined);
    expect(d).toMatchObject({
      action: "start",
      candidate: { phase: "Progressing", trafficPercent: 10, step: 0 },
    });
    for (let i = 0; i < 10 && d.action !== "promote"; i++) {
      vm = model({ candidate }, { candidate: d.candidate });
      now = later((i + 1) * 61_000);
      d = decideCanary(vm, now, true, good);
      if (d.event) events.push(d.event.reason);
      expect(d.action).not.toBe("rollback");
    }
    expect(d).toMatchObject({ action: "promote", candidate: { phase: "Promoted", trafficPercent: 100 } });
    expect(events).toEqual(["CanaryStepAdvanced", "CanaryStepAdvanced", "CanaryPromoted"]);
  });

  it("rolls a failing candidate back at once, sending it no more traffic", () => {
    const vm = model(
      { candidate },
      {
        candidate: {
          version: "v2",
          phase: "Progressing",
          trafficPercent: 10,
          step: 0,
          stepStartedAt: t0.toISOString(),
        },
      },
    );
    const d = decideCanary(vm, later(61_000), true, bad);
    expect(d.action).toBe("rollback");
    expect(d.event?.message).toContain("error rate 8.00% > 1.00%");
    const after = model({ candidate }, { candidate: d.candidate });
    expect(routing(after, new Set(["v1", "v2"]), d.candidate)).toEqual([
      { version: "v1", role: "champion", endpoint: "homes-v1.valuation.svc.cluster.local:8001", weight: 100 },
    ]);
    expect(d.candidate.lastAnalysis).toMatchObject({ requests: 500, errorRatePct: 8 });
    expect(decideCanary(after, later(200_000), true, good).action).toBe("none");
  });

  it("rolls back a candidate that values every asset 6 % too high, healthy as it otherwise is", () => {
    const vm = model(
      { candidate },
      {
        candidate: {
          version: "v2",
          phase: "Progressing",
          trafficPercent: 10,
          step: 0,
          stepStartedAt: t0.toISOString(),
        },
      },
    );
    const biased = {
      ...good,
      paired: { pairs: 150, biasPct: 6.02, medianAbsDeltaPct: 6.02, absDeltaP90Pct: 6.1 },
    };
    const d = decideCanary(vm, later(61_000), true, biased);
    expect(d.action).toBe("rollback");
    expect(d.event?.message).toContain("bias 6.02% beyond ±2%");
    expect(d.candidate.lastAnalysis).toMatchObject({
      passed: false,
      biasPct: 6.02,
      absDeltaP90Pct: 6.1,
      pairs: 150,
    });
    // A spread too wide fails on its p90 even without a bias.
    const wide = { ...good, paired: { pairs: 150, biasPct: 0, medianAbsDeltaPct: 5, absDeltaP90Pct: 14 } };
    expect(decideCanary(vm, later(61_000), true, wide).event?.message).toContain("|delta| p90 14.00% > 10%");
  });

  it("never passes a step on no evidence: too few pairs waits, then fails with the reason", () => {
    let vm = model(
      { candidate },
      {
        candidate: {
          version: "v2",
          phase: "Progressing",
          trafficPercent: 10,
          step: 0,
          stepStartedAt: t0.toISOString(),
        },
      },
    );
    const noPairs = { ...good, paired: { pairs: 3, biasPct: 0, medianAbsDeltaPct: 0, absDeltaP90Pct: 0 } };
    let d = decideCanary(vm, later(61_000), true, noPairs);
    expect(d).toMatchObject({
      action: "wait",
      candidate: { inconclusiveIntervals: 1, lastAnalysis: { passed: false } },
    });
    expect(d.candidate.lastAnalysis!.message).toBe("3 paired assets, fewer than the 50 an analysis needs");
    // No pipeline readings at all is no evidence either.
    expect(decideCanary(vm, later(61_000), true, { requests: 500, errors: 0, latencyP99Ms: 5 }).action).toBe(
      "wait",
    );
    for (let i = 2; i <= 5; i++) {
      vm = model({ candidate }, { candidate: d.candidate });
      d = decideCanary(vm, later(61_000 * i), true, noPairs);
    }
    expect(d.action).toBe("rollback");
    expect(d.event?.message).toContain("not enough evidence after 5 intervals");
  });

  it("records a shadow's paired figures every interval, and never promotes or rolls it back", () => {
    const shadow = { ...candidate, strategy: "Shadow" as const };
    const vm = model(
      { candidate: shadow },
      {
        candidate: {
          version: "v2",
          phase: "Shadowing",
          trafficPercent: 0,
          step: 0,
          stepStartedAt: t0.toISOString(),
        },
      },
    );
    expect(decideCanary(vm, later(30_000), true, good)).toMatchObject({
      action: "wait",
      requeueAfterMs: 30_000,
    });
    const biased = { ...good, paired: { pairs: 400, biasPct: 6, medianAbsDeltaPct: 6, absDeltaP90Pct: 6.1 } };
    const d = decideCanary(vm, later(61_000), true, biased);
    expect(d.action).toBe("wait");
    expect(d.candidate).toMatchObject({
      phase: "Shadowing",
      trafficPercent: 0,
      stepStartedAt: later(61_000).toISOString(),
      lastAnalysis: { passed: false, biasPct: 6, pairs: 400 },
    });
  });

  it("refuses a candidate less accurate on recent sales before it gets any traffic; too few sales skip the gate", () => {
    const vm = model({ candidate });
    const at = t0.toISOString();
    const accurate = { mdapePct: 5.5, ppe10Pct: 78, biasPct: 0.3 };
    const worse = judgeBacktest(
      vm,
      {
        sales: 120,
        excludedAsTraining: 0,
        champion: accurate,
        candidate: { mdapePct: 26.1, ppe10Pct: 20, biasPct: -1 },
      },
      at,
    );
    expect(worse).toMatchObject({ passed: false, skipped: false, sales: 120 });
    expect(worse.message).toContain("MdAPE 26.10% vs the champion's 5.50% (+20.60 points > 0.5)");
    const d = decideCanary(vm, t0, true, undefined, worse);
    expect(d).toMatchObject({
      action: "rollback",
      candidate: { phase: "RolledBack", trafficPercent: 0, backtest: worse },
    });
    expect(d.event?.message).toContain("refused before any traffic");
    const biased = judgeBacktest(
      vm,
      {
        sales: 120,
        excludedAsTraining: 0,
        champion: accurate,
        candidate: { mdapePct: 5.6, ppe10Pct: 77, biasPct: 6 },
      },
      at,
    );
    expect(biased).toMatchObject({ passed: false });
    expect(biased.message).toContain("bias on sales 6.00% beyond ±2%");
    const few = judgeBacktest(vm, { sales: 12, excludedAsTraining: 3 }, at);
    expect(few).toMatchObject({ passed: true, skipped: true, excludedAsTraining: 3 });
    expect(decideCanary(vm, t0, true, undefined, few)).toMatchObject({
      action: "start",
      candidate: { phase: "Progressing", trafficPercent: 10, backtest: few },
    });
    const fine = judgeBacktest(
      vm,
      {
        sales: 120,
        excludedAsTraining: 0,
        champion: accurate,
        candidate: { mdapePct: 5.8, ppe10Pct: 76, biasPct: 0.5 },
      },
      at,
    );
    expect(fine).toMatchObject({ passed: true, skipped: false, candidate: { mdapePct: 5.8 } });
  });

  it("waits for the interval, for readiness and for enough requests", () => {
    const vm = model(
      { candidate },
      {
        candidate: {
          version: "v2",
          phase: "Progressing",
          trafficPercent: 10,
          step: 0,
          stepStartedAt: t0.toISOString(),
        },
      },
    );
    expect(decideCanary(vm, later(30_000), true, good)).toMatchObject({
      action: "wait",
      requeueAfterMs: 30_000,
    });
    expect(decideCanary(vm, later(61_000), false, good)).toMatchObject({
      action: "wait",
      candidate: { phase: "Pending", trafficPercent: 0 },
    });
    expect(decideCanary(vm, later(61_000), true, { ...good, requests: 3 })).toMatchObject({
      action: "wait",
      candidate: { lastAnalysis: { passed: false } },
    });
  });

  it("splits traffic by the current step, and mirrors without weight in Shadow", () => {
    const vm = model(
      { candidate },
      { candidate: { version: "v2", phase: "Progressing", trafficPercent: 50, step: 1 } },
    );
    expect(routing(vm, new Set(["v1", "v2"]), vm.status!.candidate).map((r) => [r.role, r.weight])).toEqual([
      ["champion", 50],
      ["canary", 50],
    ]);
    const shadow = model({ candidate: { ...candidate, strategy: "Shadow" } });
    expect(decideCanary(shadow, t0, true, undefined).candidate.phase).toBe("Shadowing");
    expect(
      routing(shadow, new Set(["v1", "v2"]), {
        version: "v2",
        phase: "Shadowing",
        trafficPercent: 0,
        step: 0,
      }).map((r) => [r.role, r.weight]),
    ).toEqual([
      ["champion", 100],
      ["shadow", 0],
    ]);
  });
});

describe("status conditions", () => {
  it("keeps lastTransitionTime while a condition's status holds, and moves it when it flips", () => {
    const t1 = new Date("2026-01-01T00:00:00Z");
    const t2 = new Date("2026-01-01T01:00:00Z");
    const first = setConditions(
      undefined,
      [{ type: "Ready", status: false, reason: "Deploying", message: "0/2 ready" }],
      1,
      t1,
    );
    const same = setConditions(
      first,
      [{ type: "Ready", status: false, reason: "Deploying", message: "1/2 ready" }],
      1,
      t2,
    );
    expect(same[0]!.lastTransitionTime).toBe(t1.toISOString());
    const flipped = setConditions(
      same,
      [{ type: "Ready", status: true, reason: "Available", message: "2/2 ready" }],
      2,
      t2,
    );
    expect(flipped[0]).toMatchObject({
      status: "True",
      lastTransitionTime: t2.toISOString(),
      observedGeneration: 2,
    });
    expect(canonical({ b: 1, a: [2, { d: 3, c: undefined }] })).toBe('{"a":[2,{"d":3}],"b":1}');
  });

  it("says where to look when the champion is not ready: its pods, by the labels they carry", () => {
    const [notReady] = rolloutConditions({
      model: "autos",
      champion: { version: "gm.v2", readyReplicas: 0, ready: false },
      specChampion: "gm.v2",
    });
    expect(notReady).toMatchObject({
      status: false,
      reason: "ChampionNotReady",
      message:
        "gm.v2: 0 ready replicas; why: kubectl describe pods -l valora.dev/model=autos,valora.dev/version=gm-v2",
    });
    const [ready] = rolloutConditions({
      model: "autos",
      champion: { version: "gm-v1", readyReplicas: 1, ready: true },
      specChampion: "gm-v1",
    });
    expect(ready!.message).toBe("gm-v1: 1 ready replicas");
  });
});

describe("render (what `valora render -f` prints)", () => {
  it("renders the objects of a ValuationModel and an AssetPipeline and ignores other kinds", async () => {
    const { renderObjects } = await import("../src/index.js");
    const { readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const text = `apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\n${readFileSync(join(import.meta.dirname, "..", "..", "manifests", "real-estate.yaml"), "utf8")}`;
    const objects = renderObjects(text, defaults, "valuation");
    expect(objects.map((o) => o.kind)).toEqual([
      "Deployment",
      "Service",
      "HorizontalPodAutoscaler",
      "PodDisruptionBudget",
      "ConfigMap",
      "Deployment",
      "Service",
      "HorizontalPodAutoscaler",
    ]);
    const cm = objects[4] as unknown as { data: Record<string, string> };
    expect(cm.data["pipeline.yaml"]).toContain("assetClass: real-estate");
    const dep = objects[5] as unknown as {
      spec: { template: { metadata: { annotations: Record<string, string> } } };
    };
    expect(dep.spec.template.metadata.annotations["valora.dev/config-hash"]).toMatch(/^[0-9a-f]{8}$/);
    expect(() =>
      renderObjects(
        "kind: ValuationModel\napiVersion: valora.dev/v1alpha1\nmetadata: {name: x}\nspec: {}\n",
        defaults,
      ),
    ).toThrow(/spec.assetClass/);
  });
});
