import { describe, expect, it } from "vitest";
import { VALUATION_MODEL_CRD } from "../src/api/index.js";
import { humanDuration, jsonPathValue, toTable, wantsTable } from "../src/local/printers.js";

const now = new Date("2026-12-01T12:00:00Z");
const created = "2026-12-01T11:55:00Z";

describe("server-side printing (the Table kubectl asks for)", () => {
  it("recognises kubectl's Accept header", () => {
    expect(
      wantsTable(
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json",
      ),
    ).toBe(true);
    expect(wantsTable("application/json")).toBe(false);
    expect(wantsTable(undefined)).toBe(false);
  });

  it("prints ages as kubectl does", () => {
    expect(
      [45_000, 150_000, 30 * 60_000, 185 * 60_000, 30 * 3_600_000, 3 * 86_400_000].map(humanDuration),
    ).toEqual(["45s", "2m30s", "30m", "3h5m", "30h", "3d"]);
  });

  it("evaluates CRD printer-column JSONPath, filters included", () => {
    const vm = {
      status: {
        conditions: [
          { type: "Progressing", status: "False" },
          { type: "Ready", status: "True" },
        ],
      },
    };
    expect(jsonPathValue(vm, '.status.conditions[?(@.type=="Ready")].status')).toBe("True");
    expect(jsonPathValue(vm, '.status.conditions[?(@.type=="Degraded")].status')).toBeUndefined();
    expect(jsonPathValue(vm, ".status.candidate.version")).toBeUndefined();
  });

  it("gives a ValuationModel its CRD's columns, in order, with the cells of its status", () => {
    const vm = {
      apiVersion: "valora.dev/v1alpha1",
      kind: "ValuationModel",
      metadata: { name: "autos", namespace: "default", creationTimestamp: created },
      status: {
        champion: { version: "gm-v1" },
        candidate: {
          version: "gm-x106",
          phase: "RolledBack",
          trafficPercent: 0,
          lastAnalysis: { biasPct: 5.95, absDeltaP90Pct: 5.99 },
          backtest: { champion: { mdapePct: 3.03 }, candidate: { mdapePct: 32.83 } },
        },
        conditions: [{ type: "Ready", status: "True" }],
      },
    };
    const t = toTable("ValuationModel", [vm], now);
    const crdColumns = (
      VALUATION_MODEL_CRD() as { spec: { versions: { additionalPrinterColumns: { name: string }[] }[] } }
    ).spec.versions[0]!.additionalPrinterColumns.map((c) => c.name);
    expect(t.columnDefinitions.map((c) => c.name)).toEqual(["Name", ...crdColumns]);
    expect(t.rows[0]!.cells).toEqual([
      "autos",
      "gm-v1",
      "gm-x106",
      0,
      "RolledBack",
      5.95,
      5.99,
      3.03,
      32.83,
      "True",
      "5m",
    ]);
    expect(t.rows[0]!.object).toMatchObject({ kind: "PartialObjectMetadata", metadata: { name: "autos" } });
  });

  it("prints Deployments, Services and HPAs with Kubernetes' own columns (wide ones at priority 1)", () => {
    const deploy = {
      metadata: { name: "autos-gm-v1", creationTimestamp: created },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: "x" } },
        template: { spec: { containers: [{ name: "model-server", image: "valora:dev" }] } },
      },
      status: { readyReplicas: 1, updatedReplicas: 2, availableReplicas: 1 },
    };
    const d = toTable("Deployment", [deploy], now);
    expect(d.columnDefinitions.filter((c) => c.priority === 0).map((c) => c.name)).toEqual([
      "Name",
      "Ready",
      "Up-to-date",
      "Available",
      "Age",
    ]);
    expect(d.rows[0]!.cells.slice(0, 5)).toEqual(["autos-gm-v1", "1/2", 2, 1, "5m"]);
    const hpa = {
      metadata: { name: "autos-gm-v1", creationTimestamp: created },
      spec: {
        scaleTargetRef: { kind: "Deployment", name: "autos-gm-v1" },
        minReplicas: 1,
        maxReplicas: 4,
        metrics: [{ type: "Resource", resource: { name: "cpu", target: { averageUtilization: 70 } } }],
      },
    };
    expect(toTable("HorizontalPodAutoscaler", [hpa], now).rows[0]!.cells).toEqual([
      "autos-gm-v1",
      "Deployment/autos-gm-v1",
      "cpu: <unknown>/70%",
      1,
      4,
      0,
      "5m",
    ]);
    const svc = {
      metadata: { name: "autos-gm-v1", creationTimestamp: created },
      spec: { type: "ClusterIP", ports: [{ port: 8001, protocol: "TCP" }, { port: 8000 }] },
    };
    expect(toTable("Service", [svc], now).rows[0]!.cells.slice(0, 5)).toEqual([
      "autos-gm-v1",
      "ClusterIP",
      "<none>",
      "<none>",
      "8001/TCP,8000/TCP",
    ]);
  });
});
