import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createLogger } from "@valora/kit";
import { LocalApiServer, labelMatcher } from "../src/local/apiserver.js";
import { ManifestSync, SOURCE_ANNOTATION } from "../src/local/manifests.js";

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
