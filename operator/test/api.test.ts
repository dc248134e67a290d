import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { describe, expect, it } from "vitest";
import { ValoraError } from "@valora/kit";
import { crdFiles, crdReferenceMarkdown, validateObject, VALUATION_MODEL_CRD } from "../src/api/index.js";

const root = join(import.meta.dirname, "..", "..");

function walk(node: unknown, path: string, visit: (n: Record<string, unknown>, path: string) => void): void {
  if (!node || typeof node !== "object" || Array.isArray(node)) return;
  const n = node as Record<string, unknown>;
  visit(n, path);
  for (const [k, v] of Object.entries((n["properties"] as Record<string, unknown>) ?? {}))
    walk(v, `${path}.${k}`, visit);
  if (n["items"]) walk(n["items"], `${path}[]`, visit);
  if (n["additionalProperties"] && typeof n["additionalProperties"] === "object")
    walk(n["additionalProperties"], `${path}{}`, visit);
}

describe("CRDs", () => {
  it("in crds/ are what `npm run crds` generates from operator/src/api (no drift)", () => {
    for (const [name, text] of Object.entries(crdFiles())) {
      expect(readFileSync(join(root, "crds", name), "utf8"), `crds/${name} drifted: run npm run crds`).toBe(
        text,
      );
    }
    expect(readdirSync(join(root, "crds")).sort()).toEqual(Object.keys(crdFiles()).sort());
    // The Helm chart installs the same CRDs.
    for (const [name, text] of Object.entries(crdFiles()))
      expect(
        readFileSync(join(root, "charts", "valora", "crds", name), "utf8"),
        `charts/valora/crds/${name} drifted: run npm run crds`,
      ).toBe(text);
  });

  it("are documented in docs/reference/crds.md, generated from the same schemas (no drift)", () => {
    const doc = readFileSync(join(root, "docs", "reference", "crds.md"), "utf8");
    expect(doc, "docs/reference/crds.md drifted: run npm run crds").toBe(crdReferenceMarkdown());
    // Every spec field of the CRD, with its CEL rules, is in the reference.
    expect(doc).toContain("| `spec.candidate.canary.steps` | integer[] |");
    expect(doc).toContain("rule: canary steps must be ascending");
    expect(doc).toContain("| Traffic | `.status.candidate.trafficPercent` |");
  });

  it("have structural schemas: every node typed (or preserving unknown fields), no unions, no $schema", () => {
    for (const text of Object.values(crdFiles())) {
      const crd = parseAllDocuments(text)[0]!.toJS();
      const schema = crd.spec.versions[0].schema.openAPIV3Schema;
      walk(schema, "", (n, path) => {
        expect(n["type"] ?? n["x-kubernetes-preserve-unknown-fields"], `untyped node ${path}`).toBeDefined();
        for (const banned of ["anyOf", "oneOf", "$schema", "propertyNames", "const"])
          expect(n, `${banned} at ${path}`).not.toHaveProperty(banned);
        if (n["properties"]) expect(n["type"]).toBe("object");
      });
    }
  });

  it("declare short names, the valora category, the status subresource and the printer columns", () => {
    const crd = VALUATION_MODEL_CRD() as {
      spec: {
        names: { shortNames: string[]; categories: string[] };
        versions: { subresources: unknown; additionalPrinterColumns: { name: string }[] }[];
      };
    };
    expect(crd.spec.names.shortNames).toEqual(["vm"]);
    expect(crd.spec.names.categories).toEqual(["valora"]);
    expect(crd.spec.versions[0]!.subresources).toEqual({ status: {} });
    expect(crd.spec.versions[0]!.additionalPrinterColumns.map((c) => c.name)).toEqual([
      "Champion",
      "Candidate",
      "Traffic",
      "Phase",
      "Bias%",
      "AbsDeltaP90%",
      "Champ-MdAPE%",
      "Cand-MdAPE%",
      "Ready",
      "Age",
    ]);
  });
});

const vm = (spec: Record<string, unknown>) => ({
  apiVersion: "valora.dev/v1alpha1",
  kind: "ValuationModel",
  metadata: { name: "homes" },
  spec: { assetClass: "real-estate", champion: { version: "v1", uri: "file:///models/a.onnx" }, ...spec },
});

function violation(raw: unknown): string[] {
  try {
    validateObject(raw);
  } catch (err) {
    if (err instanceof ValoraError) return err.details.map((d) => `${d.field}: ${d.description}`);
    throw err;
  }
  return [];
}

describe("validateObject (the CRD rules without an API server)", () => {
  it("accepts the manifests the trainer emitted for the default models, with defaults applied", () => {
    for (const file of ["manifests/real-estate.yaml", "manifests/autos.yaml"]) {
      const docs = parseAllDocuments(readFileSync(join(root, file), "utf8")).map((d) => d.toJS());
      const objects = docs.map((d) => validateObject(d));
      expect(objects.map((o) => o.kind)).toEqual(["ValuationModel", "AssetPipeline"]);
    }
    const v = validateObject(vm({ candidate: { version: "v2", uri: "s3://models/b.onnx", canary: {} } }));
    expect(v.kind === "ValuationModel" && v.spec.candidate?.canary?.steps).toEqual([10, 25, 50, 100]);
    expect(v.kind === "ValuationModel" && v.spec.candidate?.strategy).toBe("Canary");
  });

  it.each([
    [
      vm({ candidate: { version: "v1", uri: "file:///b.onnx" } }),
      "spec.candidate.version: candidate.version must differ from champion.version",
    ],
    [
      vm({ candidate: { version: "v2", uri: "file:///b.onnx", canary: { steps: [50, 10] } } }),
      "spec.candidate.canary.steps: canary steps must be ascending",
    ],
    [
      vm({ candidate: { version: "v2", uri: "file:///b.onnx", canary: { steps: [0, 150] } } }),
      "spec.candidate.canary.steps.0",
    ],
    [vm({ champion: { version: "v1", uri: "file:///a.onnx", sha256: "XYZ" } }), "spec.champion.sha256"],
    [
      vm({ serving: { minReplicas: 5, maxReplicas: 2 } }),
      "spec.serving: minReplicas must not exceed maxReplicas",
    ],
    [{ ...vm({}), kind: "Pod" }, "kind: unknown kind"],
    [
      vm({ champion: { version: "v1", uri: "http://169.254.169.254/model.onnx" } }),
      "spec.champion.uri: uri must start with file://, https:// or s3://",
    ],
  ])("refuses invalid objects naming the field %#", (raw, expected) => {
    expect(violation(raw).join("\n")).toContain(expected);
  });
});
