import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger } from "@valora/kit";
import { LocalApiServer, fieldMatcher, labelMatcher } from "../src/local/apiserver.js";
import { ManifestSync, SOURCE_ANNOTATION } from "../src/local/manifests.js";
import { kubectl } from "./support/kubectl.js";

describe("the local API server's label selectors", () => {
  it("reads equality-based selectors as the API server does", () => {
    const labels = { "valora.dev/model": "homes", "valora.dev/version": "v1", tier: "gold" };
    expect(labelMatcher("valora.dev/model=homes,valora.dev/version=v1")(labels)).toBe(true);
    expect(labelMatcher("valora.dev/model=houses")(labels)).toBe(false);
    expect(labelMatcher("valora.dev/model==homes,tier!=silver")(labels)).toBe(true);
    expect(labelMatcher("tier")(labels)).toBe(true);
    expect(labelMatcher("!tier")(labels)).toBe(false);
    expect(labelMatcher(null)(undefined)).toBe(true);
    expect(labelMatcher("a=b")(undefined)).toBe(false);
  });

  it("reads field selectors as the API server does: dotted paths, = == !=", () => {
    const event = { involvedObject: { kind: "ValuationModel", name: "cars" }, type: "Warning", count: 2 };
    expect(fieldMatcher("involvedObject.name=cars,involvedObject.kind==ValuationModel")(event)).toBe(true);
    expect(fieldMatcher("involvedObject.name=homes")(event)).toBe(false);
    expect(fieldMatcher("type!=Normal,count=2")(event)).toBe(true);
    expect(fieldMatcher("involvedObject.uid=")(event)).toBe(true);
    expect(fieldMatcher(null)(event)).toBe(true);
  });
});

describe("the local API server's file-backed store and the manifests folder", () => {
  const logger = createLogger({ service: "test", level: "silent" });
  const vm = (version: string) => `apiVersion: valora.dev/v1alpha1
kind: ValuationModel
metadata: {name: cars}
spec:
  assetClass: cars
  champion: {version: "${version}", uri: "file:///models/cars.onnx"}
---
apiVersion: kind.x-k8s.io/v1alpha4
kind: Cluster
`;

  it("applies a folder's CRs, follows edits, refuses an invalid file whole, and prunes what a file drops", () => {
    const dir = mkdtempSync(join(tmpdir(), "valora-manifests-"));
    const api = new LocalApiServer();
    const sync = new ManifestSync({ dir, api, namespace: "default", logger });
    writeFileSync(join(dir, "cars.yaml"), vm("v1"));
    writeFileSync(join(dir, "notes.txt"), "not a manifest");
    expect(sync.syncAll()).toEqual([]);
    const applied = api.get("valuationmodels", "default", "cars")!;
    expect(applied.metadata["annotations"]).toEqual({ [SOURCE_ANNOTATION]: "cars.yaml" });
    expect(applied.metadata["generation"]).toBe(1);
    // The same content again changes nothing (no new resourceVersion, no reconcile).
    expect(sync.syncAll()).toEqual([]);
    expect(api.get("valuationmodels", "default", "cars")!.metadata["resourceVersion"]).toBe(
      applied.metadata["resourceVersion"],
    );
    writeFileSync(join(dir, "cars.yaml"), vm("v2"));
    sync.syncAll();
    expect(api.get("valuationmodels", "default", "cars")).toMatchObject({
      metadata: { generation: 2 },
      spec: { champion: { version: "v2" } },
    });
    writeFileSync(join(dir, "cars.yaml"), vm("v3").replace("file://", "ftp://"));
    const [refusal] = sync.syncAll();
    expect(refusal).toMatch(/cars\.yaml: ValuationModel cars: .*spec\.champion\.uri/);
    expect(api.get("valuationmodels", "default", "cars")).toMatchObject({
      spec: { champion: { version: "v2" } },
    });
    rmSync(join(dir, "cars.yaml"));
    sync.syncAll();
    expect(api.get("valuationmodels", "default", "cars")).toBeUndefined();
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps objects across restarts in its state file; watches resume with a re-list", async () => {
    const dir = mkdtempSync(join(tmpdir(), "valora-kube-"));
    const stateFile = join(dir, "state.json");
    const first = new LocalApiServer({ stateFile });
    first.put({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "c", namespace: "ns" },
      data: { a: "1" },
    });
    first.put({
      apiVersion: "coordination.k8s.io/v1",
      kind: "Lease",
      metadata: { name: "l", namespace: "ns" },
      spec: {},
    });
    const rv = Number(first.get("configmaps", "ns", "c")!.metadata["resourceVersion"]);
    await first.start();
    await first.stop();
    const second = new LocalApiServer({ stateFile });
    const url = await second.start();
    expect(second.get("configmaps", "ns", "c")).toMatchObject({ data: { a: "1" } });
    expect(second.get("leases", "ns", "l")).toBeUndefined(); // leadership does not survive a restart
    const res = await fetch(`${url}/api/v1/namespaces/ns/configmaps?watch=true&resourceVersion=${rv - 1}`);
    expect(await res.text()).toContain('"code":410');
    await second.stop();
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("the local API server enforces the CRDs' schemas and CEL rules on writes (real kubectl)", () => {
  const vm = (steps: number[]) => `apiVersion: valora.dev/v1alpha1
kind: ValuationModel
metadata: {name: cars, namespace: default}
spec:
  assetClass: cars
  champion: {version: v1, uri: "file:///models/cars.onnx"}
  candidate:
    version: v2
    uri: "file:///models/cars-v2.onnx"
    canary: {steps: [${steps.join(", ")}]}
`;

  it("refuses a ValuationModel whose canary steps descend as the API server does: 422 Invalid, exit 1", async () => {
    const api = new LocalApiServer();
    const server = await api.start();
    try {
      const bad = await kubectl(server, ["apply", "-f", "-"], vm([60, 20]));
      expect(bad.status, bad.stderr).toBe(1);
      expect(bad.stderr).toMatch(
        /The ValuationModel "cars" is invalid: spec\.candidate\.canary\.steps: Invalid value: canary steps must be ascending/,
      );
      expect(api.get("valuationmodels", "default", "cars")).toBeUndefined();
      const good = await kubectl(server, ["apply", "-f", "-"], vm([20, 60]));
      expect(good.status, good.stderr).toBe(0);
      expect(good.stdout).toMatch(/valuationmodel.valora.dev\/cars created/);
      // An edit that breaks a rule is refused too, and the stored object stays as it was.
      const edit = await kubectl(server, [
        "patch",
        "vm",
        "cars",
        "--type=merge",
        "-p",
        '{"spec":{"candidate":{"version":"v1"}}}',
      ]);
      expect(edit.status).toBe(1);
      expect(edit.stderr).toMatch(/candidate.version must differ from champion.version/);
      expect(api.get("valuationmodels", "default", "cars")).toMatchObject({
        spec: { candidate: { version: "v2" } },
      });
    } finally {
      await api.stop();
    }
  });
});

describe("the local API server's OpenAPI v3 (real kubectl)", () => {
  it("answers kubectl explain from the CRDs' schemas", async () => {
    const api = new LocalApiServer();
    const server = await api.start();
    try {
      const explained = await kubectl(server, ["explain", "valuationmodel.spec.candidate"]);
      const r = { status: explained.status, out: explained.stdout + explained.stderr };
      expect(r.status, r.out).toBe(0);
      expect(r.out).toMatch(/GROUP:\s+valora\.dev/);
      expect(r.out).toMatch(/KIND:\s+ValuationModel/);
      expect(r.out).toMatch(/FIELD: candidate/);
      expect(r.out).toMatch(/canary\s+<Object>/);
    } finally {
      await api.stop();
    }
  });
});

describe("the local API server's garbage collector", () => {
  it("deletes an object created for an owner that no longer exists, as the API server's GC does", async () => {
    const api = new LocalApiServer();
    const owner = api.put({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "owner", namespace: "ns" },
    });
    const child = (name: string, uid: string) => ({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: {
        name,
        namespace: "ns",
        ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid }],
      },
    });
    api.put(child("kept", owner.metadata["uid"] as string));
    api.put(child("orphan", "gone-uid"));
    await new Promise((r) => setImmediate(r));
    expect(
      api
        .list("configmaps", "ns")
        .map((o) => o.metadata.name)
        .sort(),
    ).toEqual(["kept", "owner"]);
    api.delete("configmaps", "ns", "owner");
    expect(api.list("configmaps", "ns")).toEqual([]);
  });
});
