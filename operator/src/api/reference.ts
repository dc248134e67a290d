import { GROUP, VERSION } from "./common.js";

type Json = Record<string, unknown>;

/** One row of a field table: where the field is and what the schema says about it. */
export interface FieldRow {
  path: string;
  type: string;
  required: boolean;
  description: string;
  constraints: string[];
}

const text = (v: unknown): string => (typeof v === "string" ? v : "");

const asJson = (v: unknown): Json => (v && typeof v === "object" && !Array.isArray(v) ? (v as Json) : {});

function typeOf(schema: Json): string {
  if (schema["x-kubernetes-preserve-unknown-fields"]) return "any";
  const type = text(schema["type"]) || "object";
  if (type === "array") return `${typeOf(asJson(schema["items"]))}[]`;
  if (type === "object" && schema["additionalProperties"]) {
    return `map[string]${typeOf(asJson(schema["additionalProperties"]))}`;
  }
  return type;
}

/** The validation a field carries, in the words a reader of `kubectl explain` would use. */
function constraintsOf(schema: Json): string[] {
  const out: string[] = [];
  const show = (v: unknown) => JSON.stringify(v);
  if (Array.isArray(schema["enum"])) out.push(`one of ${schema["enum"].map(show).join(", ")}`);
  if (schema["default"] !== undefined) out.push(`default ${show(schema["default"])}`);
  for (const [key, label] of [
    ["minimum", "≥"],
    ["maximum", "≤"],
    ["exclusiveMinimum", ">"],
    ["exclusiveMaximum", "<"],
    ["minLength", "length ≥"],
    ["maxLength", "length ≤"],
    ["minItems", "items ≥"],
    ["maxItems", "items ≤"],
  ] as const) {
    // zod's int() writes the safe-integer bounds: they say nothing to a reader.
    const value = schema[key];
    if (typeof value === "number" && Math.abs(value) < Number.MAX_SAFE_INTEGER)
      out.push(`${label} ${String(value)}`);
  }
  if (typeof schema["pattern"] === "string") out.push(`pattern \`${schema["pattern"]}\``);
  const rules = Array.isArray(schema["x-kubernetes-validations"]) ? schema["x-kubernetes-validations"] : [];
  for (const rule of rules.map(asJson)) out.push(`rule: ${String(rule["message"] ?? rule["rule"])}`);
  return out;
}

/** Every field under a structural schema, depth first, in declaration order (pure). */
export function fieldRows(schema: Json, prefix: string): FieldRow[] {
  const rows: FieldRow[] = [];
  const walk = (node: Json, path: string) => {
    const target = node["type"] === "array" ? asJson(node["items"]) : node;
    const childPrefix = node["type"] === "array" ? `${path}[]` : path;
    const required = new Set(Array.isArray(target["required"]) ? (target["required"] as string[]) : []);
    for (const [name, child] of Object.entries(asJson(target["properties"]))) {
      const field = asJson(child);
      rows.push({
        path: `${childPrefix}.${name}`,
        type: typeOf(field),
        required: required.has(name),
        description: typeof field["description"] === "string" ? field["description"] : "",
        constraints: constraintsOf(field),
      });
      walk(field, `${childPrefix}.${name}`);
    }
  };
  walk(schema, prefix);
  return rows;
}

const cell = (text: string) => text.replace(/\|/g, "\\|").replace(/\n/g, " ");

function table(rows: FieldRow[]): string {
  const lines = ["| field | type | required | description |", "| --- | --- | --- | --- |"];
  for (const r of rows) {
    const notes = r.constraints.length ? ` _(${r.constraints.join("; ")})_` : "";
    lines.push(
      `| \`${r.path}\` | ${cell(r.type)} | ${r.required ? "yes" : ""} | ${cell(r.description + notes)} |`,
    );
  }
  return lines.join("\n");
}

/** The reference section of one CRD (pure): names, printer columns, spec and status fields. */
export function crdReference(crd: Json): string {
  const spec = asJson(crd["spec"]);
  const names = asJson(spec["names"]);
  const version = asJson((spec["versions"] as unknown[])[0]);
  const root = asJson(asJson(version["schema"])["openAPIV3Schema"]);
  const properties = asJson(root["properties"]);
  const columns = (version["additionalPrinterColumns"] as Json[]).map(
    (c) => `| ${String(c["name"])} | \`${cell(String(c["jsonPath"]))}\` | ${cell(text(c["description"]))} |`,
  );
  const shortNames = (names["shortNames"] as string[]).map((s) => `\`${s}\``).join(", ");
  return [
    `## ${String(names["kind"])}`,
    "",
    text(root["description"]),
    "",
    `\`${GROUP}/${VERSION}\`, plural \`${String(names["plural"])}\`, short names ${shortNames}, namespaced, ` +
      "status subresource.",
    "",
    "Printer columns (`kubectl get`):",
    "",
    "| column | JSONPath | description |",
    "| --- | --- | --- |",
    ...columns,
    "",
    "### spec",
    "",
    table(fieldRows(asJson(properties["spec"]), "spec")),
    "",
    "### status",
    "",
    table(fieldRows(asJson(properties["status"]), "status")),
    "",
  ].join("\n");
}

/** docs/reference/crds.md (pure; `npm run crds` writes it, a test fails when it drifts). */
export function crdReferenceDocument(crds: Json[]): string {
  return [
    "# CRD reference",
    "",
    "<!-- Generated from operator/src/api (the zod schemas) by `npm run crds`. Do not edit. -->",
    "",
    "Every field of Valora's custom resources, as the API server validates them. The same text is",
    "served by `kubectl explain`; CEL rules (`rule:`) are checked on every write.",
    "",
    ...crds.map(crdReference),
  ].join("\n");
}
