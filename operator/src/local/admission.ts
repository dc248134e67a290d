import { ValoraError } from "@valora/kit";
import { GROUP as API_GROUP } from "../api/common.js";
import { validateObject } from "../api/validate.js";

/** A write the schema or a CEL rule refuses: answered 422 Invalid with this Status. */
export class InvalidObject extends Error {
  constructor(readonly status: Record<string, unknown>) {
    super(String(status["message"]));
  }
}

/**
 * Pure: the Status a Kubernetes API server answers for a Valora object its CRD schema or CEL rules
 * refuse (422, reason Invalid, a cause per field), so kubectl prints `The ValuationModel "x" is
 * invalid: spec...: Invalid value: ...` and exits 1; undefined for a valid object or another kind.
 */
export function invalidStatus(obj: {
  kind?: unknown;
  metadata: Record<string, unknown>;
}): Record<string, unknown> | undefined {
  if (obj.kind !== "ValuationModel" && obj.kind !== "AssetPipeline") return undefined;
  try {
    validateObject(obj);
    return undefined;
  } catch (err) {
    if (!(err instanceof ValoraError)) throw err;
    const name = typeof obj.metadata["name"] === "string" ? obj.metadata["name"] : "";
    const causes = err.details.map((d) => ({
      reason: "FieldValueInvalid",
      message: `Invalid value: ${d.description}`,
      field: d.field,
    }));
    const listed = causes.map((c) => `${c.field}: ${c.message}`);
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: `${obj.kind}.${API_GROUP} "${name}" is invalid: ${listed.length > 1 ? `[${listed.join(", ")}]` : listed[0]}`,
      reason: "Invalid",
      details: { name, group: API_GROUP, kind: obj.kind, causes },
      code: 422,
    };
  }
}
