import { ASSET_PIPELINE_CRD, VALUATION_MODEL_CRD } from "../api/index.js";

/**
 * Server-side printing, as a Kubernetes API server answers `Accept: application/json;as=Table;
 * v=v1;g=meta.k8s.io` (what kubectl asks for): the columns kubectl shows for each kind. Built-in
 * kinds get the columns of Kubernetes' own printers; custom resources their CRD's
 * additionalPrinterColumns, JSONPath evaluated as the API server does. Pure: objects and a clock in,
 * a meta.k8s.io/v1 Table out.
 */

type Obj = Record<string, unknown> & { metadata: Record<string, unknown> };

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface Table {
  kind: "Table";
  apiVersion: "meta.k8s.io/v1";
  metadata: { resourceVersion?: string };
  columnDefinitions: ColumnDefinition[];
  rows: { cells: unknown[]; object: unknown }[];
}

interface Column {
  name: string;
  type?: string;
  priority?: number;
  description?: string;
  cell: (o: Obj, now: Date) => unknown;
}

/** Pure: a duration as kubectl shows ages (`45s`, `12m`, `3h5m`, `4d`), from Kubernetes' HumanDuration. */
export function humanDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (d < 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (d < 365 * 2) return `${d}d`;
  return `${Math.floor(d / 365)}y`;
}

const get = (o: unknown, path: string[]): unknown =>
  path.reduce<unknown>(
    (v, k) => (v && typeof v === "object" ? (v as Record<string, unknown>)[k] : undefined),
    o,
  );

/** Pure: the age of a timestamp as kubectl prints it (`<unknown>` when there is none). */
const since = (timestamp: unknown, now: Date): string => {
  const t = typeof timestamp === "string" ? Date.parse(timestamp) : Number.NaN;
  return Number.isFinite(t) ? humanDuration(now.getTime() - t) : "<unknown>";
};

const age = (o: Obj, now: Date): string => since(o.metadata["creationTimestamp"], now);

const name: Column = { name: "Name", cell: (o) => o.metadata["name"] };
const ageColumn: Column = { name: "Age", cell: age };
const orNone = (v: unknown): unknown => (v === undefined || v === null || v === "" ? "<none>" : v);
const num = (v: unknown): number => (typeof v === "number" ? v : 0);

/**
 * Pure: a JSONPath of a CRD printer column evaluated against an object, as the API server does for
 * the forms CRDs use: `.a.b.c` and one filter `.a[?(@.k=="v")].b`. Missing values print empty.
 */
export function jsonPathValue(o: unknown, path: string): unknown {
  const filter = /^(.*?)\[\?\(@\.(\w+)\s*==\s*["']([^"']*)["']\)\](.*)$/.exec(path);
  if (filter) {
    const list: unknown = jsonPathValue(o, filter[1]!);
    if (!Array.isArray(list)) return undefined;
    const hit: unknown = (list as unknown[]).find((x) => get(x, [filter[2]!]) === filter[3]);
    return hit === undefined ? undefined : jsonPathValue(hit, filter[4]!);
  }
  const keys = path.split(".").filter(Boolean);
  return keys.length === 0 ? o : get(o, keys);
}

/** Columns of a CRD's additionalPrinterColumns (Name first, dates as ages). */
function crdColumns(crd: Record<string, unknown>): Column[] {
  const version = (get(crd, ["spec", "versions"]) as Record<string, unknown>[])[0]!;
  const columns = version["additionalPrinterColumns"] as {
    name: string;
    type: string;
    jsonPath: string;
    description?: string;
    priority?: number;
  }[];
  return [
    name,
    ...columns.map<Column>((c) => ({
      name: c.name,
      type: c.type === "date" ? "string" : c.type,
      ...(c.priority ? { priority: c.priority } : {}),
      ...(c.description ? { description: c.description } : {}),
      cell: (o, now) => {
        const v = jsonPathValue(o, c.jsonPath);
        if (c.type === "date") return since(v, now);
        return v ?? null;
      },
    })),
  ];
}

const ports = (o: Obj): string =>
  ((get(o, ["spec", "ports"]) as { port: number; protocol?: string; nodePort?: number }[] | undefined) ?? [])
    .map((p) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ""}/${p.protocol ?? "TCP"}`)
    .join(",") || "<none>";

const selector = (labels: unknown): string =>
  labels && typeof labels === "object"
    ? Object.entries(labels as Record<string, string>)
        .map(([k, v]) => `${k}=${v}`)
        .join(",") || "<none>"
    : "<none>";

const containers = (o: Obj): { name: string; image: string }[] =>
  (get(o, ["spec", "template", "spec", "containers"]) as { name: string; image: string }[] | undefined) ?? [];

/** Pure: an HPA's TARGETS cell, e.g. `cpu: 12%/70%` (`<unknown>` before the first reading). */
function hpaTargets(o: Obj): string {
  const specs = (get(o, ["spec", "metrics"]) as Record<string, unknown>[] | undefined) ?? [];
  const current = (get(o, ["status", "currentMetrics"]) as Record<string, unknown>[] | undefined) ?? [];
  const shown = specs.map((m) => {
    const resource = m["resource"] as { name: string; target: { averageUtilization?: number } } | undefined;
    if (!resource) return "<unknown>/<unknown>";
    const now = current.find((c) => get(c, ["resource", "name"]) === resource.name);
    const value = get(now, ["resource", "current", "averageUtilization"]);
    const target = resource.target.averageUtilization;
    return `${resource.name}: ${typeof value === "number" ? `${value}%` : "<unknown>"}/${target ?? "<unknown>"}%`;
  });
  return shown.join(", ") || "<none>";
}

/** Pure: a pod's STATUS as kubectl prints it: a waiting container's reason, Terminating, else the phase. */
function podStatus(o: Obj): string {
  if (o.metadata["deletionTimestamp"]) return "Terminating";
  const statuses =
    (get(o, ["status", "containerStatuses"]) as
      { state?: Record<string, { reason?: string }> }[] | undefined) ?? [];
  for (const c of statuses) {
    const reason = c.state?.["waiting"]?.reason;
    if (reason) return reason;
  }
  const init =
    (get(o, ["status", "initContainerStatuses"]) as { state?: Record<string, unknown> }[] | undefined) ?? [];
  const waitingInit = init.findIndex((c) => !c.state?.["terminated"]);
  if (waitingInit >= 0) return `Init:${waitingInit}/${init.length}`;
  const phase = get(o, ["status", "phase"]);
  return typeof phase === "string" ? phase : "Pending";
}

const podContainers = (o: Obj) =>
  (get(o, ["status", "containerStatuses"]) as
    | { ready?: boolean; restartCount?: number; lastState?: { terminated?: { finishedAt?: string } } }[]
    | undefined) ?? [];

const BUILT_IN: Record<string, Column[]> = {
  Pod: [
    name,
    {
      name: "Ready",
      cell: (o) => `${podContainers(o).filter((c) => c.ready).length}/${podContainers(o).length}`,
    },
    { name: "Status", cell: podStatus },
    {
      name: "Restarts",
      cell: (o, now) => {
        const cs = podContainers(o);
        const restarts = cs.reduce((n, c) => n + (c.restartCount ?? 0), 0);
        const last = cs
          .map((c) => c.lastState?.terminated?.finishedAt)
          .filter((t): t is string => Boolean(t))
          .sort()
          .at(-1);
        return last && restarts > 0 ? `${restarts} (${since(last, now)} ago)` : String(restarts);
      },
    },
    ageColumn,
    { name: "IP", priority: 1, cell: (o) => orNone(get(o, ["status", "podIP"])) },
    { name: "Node", priority: 1, cell: (o) => orNone(get(o, ["spec", "nodeName"])) },
  ],
  Deployment: [
    name,
    {
      name: "Ready",
      cell: (o) => `${num(get(o, ["status", "readyReplicas"]))}/${num(get(o, ["spec", "replicas"]) ?? 1)}`,
    },
    { name: "Up-to-date", type: "integer", cell: (o) => num(get(o, ["status", "updatedReplicas"])) },
    { name: "Available", type: "integer", cell: (o) => num(get(o, ["status", "availableReplicas"])) },
    ageColumn,
    {
      name: "Containers",
      priority: 1,
      cell: (o) =>
        containers(o)
          .map((c) => c.name)
          .join(","),
    },
    {
      name: "Images",
      priority: 1,
      cell: (o) =>
        containers(o)
          .map((c) => c.image)
          .join(","),
    },
    { name: "Selector", priority: 1, cell: (o) => selector(get(o, ["spec", "selector", "matchLabels"])) },
  ],
  Service: [
    name,
    { name: "Type", cell: (o) => get(o, ["spec", "type"]) ?? "ClusterIP" },
    { name: "Cluster-IP", cell: (o) => orNone(get(o, ["spec", "clusterIP"])) },
    { name: "External-IP", cell: () => "<none>" },
    { name: "Port(s)", cell: ports },
    ageColumn,
    { name: "Selector", priority: 1, cell: (o) => selector(get(o, ["spec", "selector"])) },
  ],
  HorizontalPodAutoscaler: [
    name,
    {
      name: "Reference",
      cell: (o) =>
        `${String(get(o, ["spec", "scaleTargetRef", "kind"]))}/${String(get(o, ["spec", "scaleTargetRef", "name"]))}`,
    },
    { name: "Targets", cell: hpaTargets },
    { name: "MinPods", type: "integer", cell: (o) => get(o, ["spec", "minReplicas"]) ?? 1 },
    { name: "MaxPods", type: "integer", cell: (o) => get(o, ["spec", "maxReplicas"]) },
    { name: "Replicas", type: "integer", cell: (o) => num(get(o, ["status", "currentReplicas"])) },
    ageColumn,
  ],
  PodDisruptionBudget: [
    name,
    { name: "Min Available", cell: (o) => get(o, ["spec", "minAvailable"]) ?? "N/A" },
    { name: "Max Unavailable", cell: (o) => get(o, ["spec", "maxUnavailable"]) ?? "N/A" },
    {
      name: "Allowed Disruptions",
      type: "integer",
      cell: (o) => num(get(o, ["status", "disruptionsAllowed"])),
    },
    ageColumn,
  ],
  ConfigMap: [
    name,
    { name: "Data", type: "integer", cell: (o) => Object.keys(o["data"] ?? {}).length },
    ageColumn,
  ],
  Secret: [
    name,
    { name: "Type", cell: (o) => o["type"] ?? "Opaque" },
    { name: "Data", type: "integer", cell: (o) => Object.keys(o["data"] ?? o["stringData"] ?? {}).length },
    ageColumn,
  ],
  Namespace: [name, { name: "Status", cell: (o) => get(o, ["status", "phase"]) ?? "Active" }, ageColumn],
  Lease: [name, { name: "Holder", cell: (o) => get(o, ["spec", "holderIdentity"]) ?? "" }, ageColumn],
  Event: [
    {
      name: "Last Seen",
      cell: (o, now) => since(o["lastTimestamp"] ?? o["eventTime"] ?? o.metadata["creationTimestamp"], now),
    },
    { name: "Type", cell: (o) => o["type"] ?? "Normal" },
    { name: "Reason", cell: (o) => o["reason"] ?? "" },
    {
      name: "Object",
      cell: (o) =>
        `${String(get(o, ["involvedObject", "kind"])).toLowerCase()}/${String(get(o, ["involvedObject", "name"]))}`,
    },
    { name: "Message", cell: (o) => o["message"] ?? "" },
  ],
};

const CRD_COLUMNS: Record<string, Column[]> = {
  ValuationModel: crdColumns(VALUATION_MODEL_CRD()),
  AssetPipeline: crdColumns(ASSET_PIPELINE_CRD()),
};

/** Pure: the columns of a kind (Name and Age for kinds without printers). */
export function columnsOf(kind: string): Column[] {
  return BUILT_IN[kind] ?? CRD_COLUMNS[kind] ?? [name, ageColumn];
}

/** Pure: does an Accept header ask for the Table form (as kubectl does)? */
export const wantsTable = (accept: string | undefined): boolean =>
  (accept ?? "").split(",").some((a) => /;\s*as=Table/.test(a) && /g=meta\.k8s\.io/.test(a));

/**
 * Pure: a Table of `objects` of one kind. `includeObject` follows the API's query parameter
 * (None, Metadata — the default — or Object).
 */
export function toTable(
  kind: string,
  objects: Obj[],
  now: Date,
  o: { resourceVersion?: string; includeObject?: string | null } = {},
): Table {
  const columns = columnsOf(kind);
  const objectOf = (x: Obj): unknown => {
    if (o.includeObject === "None") return null;
    if (o.includeObject === "Object") return x;
    return { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: x.metadata };
  };
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: o.resourceVersion ? { resourceVersion: o.resourceVersion } : {},
    columnDefinitions: columns.map((c) => ({
      name: c.name,
      type: c.type ?? "string",
      format: c.name === "Name" ? "name" : "",
      description: c.description ?? "",
      priority: c.priority ?? 0,
    })),
    rows: objects.map((x) => ({ cells: columns.map((c) => c.cell(x, now)), object: objectOf(x) })),
  };
}
