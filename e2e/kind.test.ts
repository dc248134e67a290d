import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import { createClient } from "@valora/kit";
import { CAR, GRPC, HOUSE, KEY, NAMESPACE, api, kubectl, kubectlApply, skipReason } from "./support.js";

const reason = skipReason();
if (reason) console.warn(`kind e2e skipped: ${reason}`);
const root = join(import.meta.dirname, "..");
const autosVm = () =>
  parseAllDocuments(readFileSync(join(root, "manifests", "autos.yaml"), "utf8"))[0]!.toJS() as {
    metadata: { name: string };
    spec: { champion: { version: string; uri: string; sha256: string } } & Record<string, unknown>;
  };
const vmStatus = () =>
  JSON.parse(kubectl("get", "vm", "autos", "-o", "json")) as {
    status?: { champion?: { version: string }; candidate?: { version: string; phase: string } };
  };

// On a machine without Docker (CI here) every test below is skipped, and the reason is the suite's name.
describe.skipIf(reason !== undefined)(`Valora on kind${reason ? ` — skipped: ${reason}` : ""}`, () => {
  it("applies the default asset classes with kubectl and reports them Ready", () => {
    kubectl(
      "apply",
      "-f",
      join(root, "manifests", "real-estate.yaml"),
      "-f",
      join(root, "manifests", "autos.yaml"),
    );
    kubectl("wait", "vm", "--all", "--for=condition=Ready", "--timeout=5m");
    expect(kubectl("get", "vm", "-o", "name")).toContain("valuationmodel.valora.dev/autos");
    expect(kubectl("get", "ap", "-o", "name")).toContain("assetpipeline.valora.dev/real-estate");
  }, 360_000);

  it("values a house and a car over REST, and a car over gRPC", async () => {
    const house = await api<{
      value: number;
      comparables: unknown[];
      explanation: { contributions: unknown[] };
    }>("POST", "/v1/valuations", { assetClass: "real-estate", attributes: HOUSE });
    expect(house.status, JSON.stringify(house.body.error)).toBe(200);
    expect(house.body.data.value).toBeGreaterThan(50_000);
    expect(house.body.data.comparables.length).toBeGreaterThan(0);
    const car = await api<{ value: number }>("POST", "/v1/valuations", {
      assetClass: "autos",
      attributes: CAR,
    });
    expect(car.status).toBe(200);
    const client = createClient(ValuationService, GRPC, { timeoutMs: 10_000 });
    try {
      const { valuation } = await client.value(
        { assetClass: "autos", attributes: CAR },
        { metadata: { authorization: `Bearer ${KEY}` } },
      );
      expect(valuation!.value).toBeGreaterThan(1000);
    } finally {
      client.close();
    }
  }, 60_000);

  it("runs a canary to promotion when its analysis passes", async () => {
    const vm = autosVm();
    const next = { ...vm.spec.champion, version: `${vm.spec.champion.version}-canary` };
    kubectlApply(
      stringify({
        ...vm,
        metadata: { ...vm.metadata, namespace: NAMESPACE },
        spec: {
          ...vm.spec,
          candidate: {
            ...next,
            strategy: "Canary",
            canary: { steps: [25, 100], interval: "30s", autoPromote: true },
          },
        },
      }),
    );
    // Traffic during the rollout feeds the analysis.
    const deadline = Date.now() + 8 * 60_000;
    while (vmStatus().status?.champion?.version !== next.version && Date.now() < deadline) {
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          api("POST", "/v1/valuations", {
            assetClass: "autos",
            attributes: { ...CAR, mileage: 5000 + i * 97 },
            skipCache: true,
          }),
        ),
      );
      await new Promise((r) => setTimeout(r, 2000));
    }
    expect(vmStatus().status?.champion?.version).toBe(next.version);
    const car = await api<{ model: { version: string } }>("POST", "/v1/valuations", {
      assetClass: "autos",
      attributes: CAR,
      skipCache: true,
    });
    expect(car.body.data.model.version).toBe(next.version);
  }, 600_000);

  it("rolls a failing canary back (its model cannot load) and keeps serving the champion", async () => {
    const vm = autosVm();
    const champion = vmStatus().status!.champion!.version;
    kubectlApply(
      stringify({
        ...vm,
        metadata: { ...vm.metadata, namespace: NAMESPACE },
        spec: {
          ...vm.spec,
          champion: { ...vm.spec.champion, version: champion },
          candidate: {
            ...vm.spec.champion,
            version: "broken",
            sha256: "0".repeat(64),
            strategy: "Canary",
            canary: { steps: [50, 100], interval: "20s", autoPromote: true },
          },
        },
      }),
    );
    const deadline = Date.now() + 6 * 60_000;
    while (vmStatus().status?.candidate?.phase !== "RolledBack" && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 3000));
    expect(vmStatus().status?.candidate?.phase).toBe("RolledBack");
    const car = await api<{ model: { version: string } }>("POST", "/v1/valuations", {
      assetClass: "autos",
      attributes: CAR,
      skipCache: true,
    });
    expect(car.body.data.model.version).toBe(champion);
  }, 420_000);

  it("scales the orchestrator out under load (HPA)", async () => {
    const replicas = () =>
      Number(kubectl("get", "hpa", "valora-orchestrator", "-o", "jsonpath={.status.currentReplicas}") || "0");
    const before = replicas();
    const deadline = Date.now() + 6 * 60_000;
    while (replicas() <= before && Date.now() < deadline) {
      await Promise.all(
        Array.from({ length: 64 }, (_, i) =>
          api("POST", "/v1/valuations", {
            assetClass: "real-estate",
            attributes: { ...HOUSE, lot_area: 8000 + ((Date.now() + i) % 20_000) },
            skipCache: true,
          }).catch(() => undefined),
        ),
      );
    }
    expect(replicas()).toBeGreaterThan(before);
  }, 420_000);
});
