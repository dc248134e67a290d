import { createHash } from "node:crypto";
import { ASSET_PIPELINE_CRD, VALUATION_MODEL_CRD } from "../api/crd.js";

/** A kind the local API server holds, as discovery lists it. */
export interface OpenApiType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

type Json = Record<string, unknown>;

const gvPath = (t: { group: string; version: string }) =>
  t.group ? `apis/${t.group}/${t.version}` : `api/${t.version}`;
/** `dev.valora.v1alpha1.ValuationModel`, `io.k8s.api.apps.v1.Deployment`: how Kubernetes names definitions. */
const definitionName = (t: OpenApiType) =>
  t.group.endsWith("valora.dev")
    ? `${t.group.split(".").reverse().join(".")}.${t.version}.${t.kind}`
    : `io.k8s.api.${t.group ? t.group.split(".")[0] : "core"}.${t.version}.${t.kind}`;

/** The CRDs' OpenAPI v3 schemas, by kind (what `kubectl explain` walks). */
function crdSchemas(): Map<string, Json> {
  const out = new Map<string, Json>();
  for (const crd of [VALUATION_MODEL_CRD(), ASSET_PIPELINE_CRD()]) {
    const spec = crd["spec"] as {
      names: { kind: string };
      versions: { schema: { openAPIV3Schema: Json } }[];
    };
    out.set(spec.names.kind, spec.versions[0]!.schema.openAPIV3Schema);
  }
  return out;
}

/**
 * Pure: the OpenAPI v3 document of one group-version, as an API server serves it at
 * /openapi/v3/apis/{group}/{version}: each kind's schema (the CRD's; built-in kinds a permissive
 * object, as this server stores them as given) tagged with its group-version-kind, and the
 * write operations, which take `fieldValidation` (so kubectl validates on the server, where the
 * CRD's schema and CEL rules are enforced).
 */
export function openApiV3Document(types: OpenApiType[], group: string, version: string): Json | undefined {
  const mine = types.filter((t) => t.group === group && t.version === version);
  if (mine.length === 0) return undefined;
  const crds = crdSchemas();
  const schemas: Json = {};
  const paths: Json = {};
  const param = (name: string, where: "query" | "path") => ({
    name,
    in: where,
    ...(where === "path" ? { required: true } : {}),
    schema: { type: "string", uniqueItems: true },
  });
  for (const t of mine) {
    const gvk = { group: t.group, version: t.version, kind: t.kind };
    const ref = { $ref: `#/components/schemas/${definitionName(t)}` };
    schemas[definitionName(t)] = {
      ...(crds.get(t.kind) ?? { type: "object", "x-kubernetes-preserve-unknown-fields": true }),
      "x-kubernetes-group-version-kind": [gvk],
    };
    const write = (action: string) => ({
      operationId: `${action}${t.kind}`,
      parameters: [
        param("dryRun", "query"),
        param("fieldManager", "query"),
        param("fieldValidation", "query"),
      ],
      requestBody: { content: { "application/json": { schema: ref } } },
      responses: { "200": { description: "OK", content: { "application/json": { schema: ref } } } },
      "x-kubernetes-action": action,
      "x-kubernetes-group-version-kind": gvk,
    });
    const base = `/${gvPath(t)}${t.namespaced ? "/namespaces/{namespace}" : ""}/${t.plural}`;
    const scope = t.namespaced ? [param("namespace", "path")] : [];
    paths[base] = { parameters: scope, post: write("post") };
    paths[`${base}/{name}`] = {
      parameters: [...scope, param("name", "path")],
      put: write("put"),
      patch: {
        ...write("patch"),
        requestBody: { content: { "application/merge-patch+json": { schema: { type: "object" } } } },
      },
    };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: "v1.34.0" },
    paths,
    components: { schemas },
  };
}

/** Pure: /openapi/v3, the index of group-version documents (with a content hash, as kubectl caches by it). */
export function openApiV3Index(types: OpenApiType[]): Json {
  const gvs = [...new Map(types.map((t) => [gvPath(t), t])).values()];
  return {
    paths: Object.fromEntries(
      gvs.map((t) => {
        const hash = createHash("sha512")
          .update(JSON.stringify(openApiV3Document(types, t.group, t.version)))
          .digest("hex")
          .slice(0, 32)
          .toUpperCase();
        return [gvPath(t), { serverRelativeURL: `/openapi/v3/${gvPath(t)}?hash=${hash}` }];
      }),
    ),
  };
}
