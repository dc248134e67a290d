import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { toTable, wantsTable } from "./printers.js";
import { InvalidObject, invalidStatus } from "./admission.js";
import { openApiV3Document, openApiV3Index } from "./openapi.js";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";
import { dirname } from "node:path";

/**
 * The Kubernetes API as `valora up` serves it on one machine (and as the operator's tests talk to
 * it): discovery, list and watch with resourceVersion (bookmarks, 410 Gone after compaction), get,
 * create, update with optimistic concurrency (409), server-side apply with one field manager,
 * JSON merge patch, the status subresource, finalizers, deletion with owner-reference garbage
 * collection. With a state file, objects survive restarts (written atomically a moment after each
 * change), like etcd behind a real API server. The operator talks to it through
 * @kubernetes/client-node exactly as to a cluster; it runs no pods itself (see LocalProcessBackend).
 */
export type Obj = {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown> & { name: string; namespace?: string };
  [k: string]: unknown;
};

export interface LocalApiServerOptions {
  /** JSON file the objects are kept in; in memory only when absent. */
  stateFile?: string;
  /** Watch history kept for resuming watches; older resourceVersions get 410 Gone. */
  historyLimit?: number;
  /** Events kept per namespace (the API server expires Events after an hour). */
  eventLimit?: number;
}

/** The log file of a pod's container (the previous run's with `previous`), when there is one. */
export type PodLogs = (
  namespace: string,
  pod: string,
  container: string | undefined,
  previous: boolean,
) => string | undefined;

export type StoreListener = (type: "ADDED" | "MODIFIED" | "DELETED", plural: string, obj: Obj) => void;

interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  status: boolean;
  shortNames?: string[];
}

const TYPES: ResourceType[] = [
  {
    group: "",
    version: "v1",
    plural: "pods",
    kind: "Pod",
    namespaced: true,
    status: true,
    shortNames: ["po"],
  },
  {
    group: "",
    version: "v1",
    plural: "services",
    kind: "Service",
    namespaced: true,
    status: true,
    shortNames: ["svc"],
  },
  {
    group: "",
    version: "v1",
    plural: "configmaps",
    kind: "ConfigMap",
    namespaced: true,
    status: false,
    shortNames: ["cm"],
  },
  { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true, status: false },
  {
    group: "",
    version: "v1",
    plural: "namespaces",
    kind: "Namespace",
    namespaced: false,
    status: true,
    shortNames: ["ns"],
  },
  {
    group: "",
    version: "v1",
    plural: "events",
    kind: "Event",
    namespaced: true,
    status: false,
    shortNames: ["ev"],
  },
  {
    group: "apps",
    version: "v1",
    plural: "deployments",
    kind: "Deployment",
    namespaced: true,
    status: true,
    shortNames: ["deploy"],
  },
  {
    group: "autoscaling",
    version: "v2",
    plural: "horizontalpodautoscalers",
    kind: "HorizontalPodAutoscaler",
    namespaced: true,
    status: true,
    shortNames: ["hpa"],
  },
  {
    group: "policy",
    version: "v1",
    plural: "poddisruptionbudgets",
    kind: "PodDisruptionBudget",
    namespaced: true,
    status: true,
    shortNames: ["pdb"],
  },
  {
    group: "coordination.k8s.io",
    version: "v1",
    plural: "leases",
    kind: "Lease",
    namespaced: true,
    status: false,
  },
  {
    group: "valora.dev",
    version: "v1alpha1",
    plural: "valuationmodels",
    kind: "ValuationModel",
    namespaced: true,
    status: true,
    shortNames: ["vm"],
  },
  {
    group: "valora.dev",
    version: "v1alpha1",
    plural: "assetpipelines",
    kind: "AssetPipeline",
    namespaced: true,
    status: true,
    shortNames: ["ap"],
  },
];

interface WatchEvent {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  plural: string;
  object: Obj;
}

const gv = (t: ResourceType): string => (t.group ? `${t.group}/${t.version}` : t.version);
const clone = <T>(v: T): T => structuredClone(v);

export class LocalApiServer {
  private server: Server;
  private store = new Map<string, Obj>();
  private log: WatchEvent[] = [];
  private rv = 100;
  private compactedBefore = 0;
  private watchers = new Set<{
    plural: string;
    namespace?: string;
    res: ServerResponse;
    send: (e: WatchEvent) => void;
  }>();
  private listeners: StoreListener[] = [];
  private podLogs: PodLogs | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  port = 0;

  constructor(private readonly options: LocalApiServerOptions = {}) {
    this.server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) =>
        err instanceof InvalidObject
          ? this.json(res, 422, err.status)
          : this.status(res, 500, "InternalError", String(err)),
      );
    });
    if (options.stateFile) this.load(options.stateFile);
  }

  async start(host = "127.0.0.1", port = 0): Promise<string> {
    await new Promise<void>((r) => this.server.listen(port, host, r));
    this.port = (this.server.address() as AddressInfo).port;
    return `http://${host}:${this.port}`;
  }

  async stop(): Promise<void> {
    this.dropWatches();
    this.save();
    await new Promise<void>((r) => this.server.close(() => r()));
    this.server.closeAllConnections();
  }

  /** In-process watch of every change (what a kubelet or kube-proxy would watch). */
  subscribe(listener: StoreListener): () => void {
    this.listeners.push(listener);
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  /** Deletes an object as `kubectl delete` would (finalizers first, then owned objects). */
  delete(plural: string, namespace: string | undefined, name: string): boolean {
    const existing = this.store.get(this.key(plural, namespace, name));
    if (!existing) return false;
    this.remove(plural, existing);
    return true;
  }

  /** Where pods' logs are (the local backend's containers' files), for `kubectl logs`. */
  setPodLogs(provider: PodLogs): void {
    this.podLogs = provider;
  }

  /** GET .../pods/{name}/log: the container's log file, its last `tailLines`, followed with `follow=true`. */
  private async servePodLog(namespace: string, name: string, url: URL, res: ServerResponse): Promise<void> {
    const q = url.searchParams;
    const file = this.podLogs?.(
      namespace,
      name,
      q.get("container") ?? undefined,
      q.get("previous") === "true",
    );
    if (!file)
      return this.status(
        res,
        q.get("previous") === "true" ? 400 : 404,
        q.get("previous") === "true" ? "BadRequest" : "NotFound",
        `no logs for pod "${name}"${q.get("container") ? ` container "${q.get("container")}"` : ""}`,
      );
    res.writeHead(200, { "content-type": "text/plain" });
    let text = readFileSync(file, "utf8");
    const tail = Number(q.get("tailLines") ?? "-1");
    if (tail >= 0)
      text = text
        .split("\n")
        .slice(-(tail + 1))
        .join("\n");
    res.write(text);
    if (q.get("follow") !== "true") return void res.end();
    // Follow: what the file gains, until the client goes or the pod is gone.
    let offset = statSync(file).size;
    const timer = setInterval(() => {
      if (!existsSync(file) || !this.store.has(this.key("pods", namespace, name))) {
        clearInterval(timer);
        return void res.end();
      }
      const size = statSync(file).size;
      if (size < offset) offset = 0; // rotated
      if (size > offset) {
        const fd = openSync(file, "r");
        const chunk = Buffer.alloc(size - offset);
        readSync(fd, chunk, 0, chunk.length, offset);
        closeSync(fd);
        offset = size;
        res.write(chunk);
      }
    }, 200);
    res.on("close", () => clearInterval(timer));
  }

  /** Fault injection for tests: true makes an update fail with 409 as a concurrent writer would. */
  protected injectConflict(_plural: string): boolean {
    return false;
  }

  /** Every request, before it is served (tests record them). */
  protected onRequest(_method: string, _path: string, _contentType: string | undefined): void {}

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      return;
    }
    const state = JSON.parse(text) as { resourceVersion: number; objects: Obj[] };
    this.rv = state.resourceVersion;
    this.compactedBefore = this.rv + 1; // no history survives a restart: watchers re-list
    for (const o of state.objects) {
      const t = this.typeOfKind(o.kind);
      if (t) this.store.set(this.key(t.plural, o.metadata.namespace, o.metadata.name), o);
    }
  }

  /** Writes the objects now (otherwise a moment after the last change). */
  save(): void {
    clearTimeout(this.saveTimer);
    this.saveTimer = undefined;
    const file = this.options.stateFile;
    if (!file) return;
    mkdirSync(dirname(file), { recursive: true });
    const objects = [...this.store.values()].filter(
      (o) => o.kind !== "Event" && o.kind !== "Lease" && o.kind !== "Pod",
    );
    writeFileSync(`${file}.tmp`, JSON.stringify({ resourceVersion: this.rv, objects }));
    renameSync(`${file}.tmp`, file);
  }

  private scheduleSave(): void {
    if (!this.options.stateFile || this.saveTimer) return;
    this.saveTimer = setTimeout(() => this.save(), 200);
    this.saveTimer.unref();
  }

  /** Ends every open watch, as an API server restart or a load balancer timeout would. */
  dropWatches(): void {
    for (const w of this.watchers) w.res.end();
    this.watchers.clear();
  }

  /** Forgets history: watches from an older resourceVersion get 410 Gone and must re-list. */
  compact(): void {
    this.compactedBefore = this.rv + 1;
    this.log = [];
  }

  list(plural: string, namespace?: string): Obj[] {
    return [...this.store.values()]
      .filter(
        (o) =>
          this.typeOfKind(o.kind)?.plural === plural && (!namespace || o.metadata.namespace === namespace),
      )
      .map(clone);
  }

  get(plural: string, namespace: string, name: string): Obj | undefined {
    const o = this.store.get(this.key(plural, namespace, name));
    return o ? clone(o) : undefined;
  }

  /** Plays a controller that owns status (e.g. the Deployment controller marking replicas ready). */
  setStatus(plural: string, namespace: string, name: string, status: Record<string, unknown>): void {
    const o = this.store.get(this.key(plural, namespace, name));
    if (!o) throw new Error(`no ${plural} ${namespace}/${name}`);
    this.write(plural, { ...o, status }, "MODIFIED");
  }

  /** Writes an object as a user with kubectl would (create or update, bumping generation on spec change). */
  put(obj: Obj): Obj {
    const t = this.typeOfKind(obj.kind)!;
    const ns = t.namespaced ? (obj.metadata.namespace ?? "default") : undefined;
    const existing = this.store.get(this.key(t.plural, ns, obj.metadata.name));
    const next: Obj = clone({
      ...obj,
      metadata: { ...(existing?.metadata ?? {}), ...obj.metadata, ...(ns ? { namespace: ns } : {}) },
    });
    if (existing?.["status"] && !("status" in obj)) next["status"] = existing["status"];
    return this.write(t.plural, next, existing ? "MODIFIED" : "ADDED");
  }

  private typeOfKind(kind: string): ResourceType | undefined {
    return TYPES.find((t) => t.kind === kind);
  }

  private key(plural: string, ns: string | undefined, name: string): string {
    return `${plural}/${ns ?? ""}/${name}`;
  }

  /** Stores a change; `admit` (writes from API clients) enforces the CRDs' schemas and CEL rules first. */
  private write(plural: string, obj: Obj, type: WatchEvent["type"], admit = false): Obj {
    const k = this.key(plural, obj.metadata.namespace, obj.metadata.name);
    const prev = this.store.get(k);
    const meta = obj.metadata;
    meta["uid"] ??= prev?.metadata["uid"] ?? randomUUID();
    meta["creationTimestamp"] ??= prev?.metadata["creationTimestamp"] ?? new Date().toISOString();
    const specChanged = JSON.stringify(prev?.["spec"]) !== JSON.stringify(obj["spec"]);
    // The CRD's schema and CEL rules, enforced on every write of a spec as the API server does.
    if (admit && specChanged && type !== "DELETED") {
      const invalid = invalidStatus(obj);
      if (invalid) throw new InvalidObject(invalid);
    }
    meta["generation"] = prev ? Number(prev.metadata["generation"] ?? 1) + (specChanged ? 1 : 0) : 1;
    meta["resourceVersion"] = String(++this.rv);
    if (type === "DELETED") this.store.delete(k);
    else this.store.set(k, clone(obj));
    const event: WatchEvent = { rv: this.rv, type, plural, object: clone(obj) };
    this.log.push(event);
    const limit = this.options.historyLimit ?? 10_000;
    if (this.log.length > limit) {
      const dropped = this.log.splice(0, this.log.length - Math.floor(limit / 2));
      this.compactedBefore = dropped[dropped.length - 1]!.rv + 1;
    }
    for (const w of this.watchers)
      if (w.plural === plural && (!w.namespace || w.namespace === obj.metadata.namespace)) w.send(event);
    for (const l of this.listeners) l(type, plural, clone(obj));
    if (type === "ADDED" && plural === "events") this.expireEvents(obj.metadata.namespace);
    if (type === "ADDED") this.collectIfOrphan(plural, obj);
    this.scheduleSave();
    return clone(obj);
  }

  private expireEvents(namespace: string | undefined): void {
    const events = [...this.store.values()].filter(
      (o) => o.kind === "Event" && o.metadata.namespace === namespace,
    );
    const excess = events.length - (this.options.eventLimit ?? 500);
    for (const e of events.slice(0, Math.max(0, excess)))
      this.store.delete(this.key("events", namespace, e.metadata.name));
  }

  /**
   * The garbage collector's other half: an object created with owners none of which exists (a
   * controller re-creating a child of an owner just deleted) is deleted, as the API server's GC does.
   */
  private collectIfOrphan(plural: string, obj: Obj): void {
    const owners = (obj.metadata["ownerReferences"] as { uid: string }[] | undefined) ?? [];
    if (owners.length === 0) return;
    const uids = new Set([...this.store.values()].map((o) => o.metadata["uid"]));
    if (owners.some((o) => uids.has(o.uid))) return;
    setImmediate(() => {
      const current = this.store.get(this.key(plural, obj.metadata.namespace, obj.metadata.name));
      if (current && current.metadata["uid"] === obj.metadata["uid"]) this.remove(plural, current);
    });
  }

  private remove(plural: string, obj: Obj): void {
    const finalizers = (obj.metadata["finalizers"] as string[] | undefined) ?? [];
    if (finalizers.length > 0) {
      if (!obj.metadata["deletionTimestamp"])
        this.write(
          plural,
          { ...obj, metadata: { ...obj.metadata, deletionTimestamp: new Date().toISOString() } },
          "MODIFIED",
        );
      return;
    }
    this.write(plural, obj, "DELETED");
    // Background cascading deletion of everything this object owns.
    const uid = obj.metadata["uid"];
    for (const dependent of [...this.store.values()]) {
      const owners = (dependent.metadata["ownerReferences"] as { uid: string }[] | undefined) ?? [];
      if (owners.some((o) => o.uid === uid)) this.remove(this.typeOfKind(dependent.kind)!.plural, dependent);
    }
  }

  private status(res: ServerResponse, code: number, reason: string, message: string): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        kind: "Status",
        apiVersion: "v1",
        metadata: {},
        status: "Failure",
        message,
        reason,
        code,
      }),
    );
  }

  private json(res: ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  }

  private async body(req: IncomingMessage): Promise<Obj> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}") as Obj;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    this.onRequest(req.method ?? "", url.pathname + url.search, req.headers["content-type"]);
    const parts = url.pathname.split("/").filter(Boolean);
    // OpenAPI v3, for kubectl explain and server-side field validation.
    if (parts[0] === "openapi" && parts[1] === "v3" && req.method === "GET") {
      if (parts.length === 2) return this.json(res, 200, openApiV3Index(TYPES));
      const [g, v] = parts[2] === "api" ? ["", parts[3] ?? ""] : [parts[3] ?? "", parts[4] ?? ""];
      const doc = openApiV3Document(TYPES, g, v);
      return doc ? this.json(res, 200, doc) : this.status(res, 404, "NotFound", url.pathname);
    }
    // Discovery: /api/v1 and /apis/{group}/{version}
    let group = "";
    let version: string;
    let rest: string[];
    if (parts[0] === "api") {
      version = parts[1] ?? "";
      rest = parts.slice(2);
    } else if (parts[0] === "apis") {
      group = parts[1] ?? "";
      version = parts[2] ?? "";
      rest = parts.slice(3);
    } else return this.status(res, 404, "NotFound", url.pathname);
    if (parts.length === 1 && parts[0] === "api")
      return this.json(res, 200, { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] });
    if (parts.length === 1) {
      const groups = [...new Set(TYPES.filter((t) => t.group).map((t) => `${t.group}/${t.version}`))].map(
        (g) => {
          const [name, v] = g.split("/") as [string, string];
          return {
            name,
            versions: [{ groupVersion: g, version: v }],
            preferredVersion: { groupVersion: g, version: v },
          };
        },
      );
      return this.json(res, 200, { kind: "APIGroupList", apiVersion: "v1", groups });
    }
    const types = TYPES.filter((t) => t.group === group && t.version === version);
    if (rest.length === 0) {
      return this.json(res, 200, {
        kind: "APIResourceList",
        apiVersion: "v1",
        groupVersion: group ? `${group}/${version}` : version,
        resources: types.map((t) => ({
          name: t.plural,
          singularName: t.kind.toLowerCase(),
          namespaced: t.namespaced,
          kind: t.kind,
          ...(t.shortNames ? { shortNames: t.shortNames } : {}),
          verbs: ["get", "list", "watch", "create", "update", "patch", "delete"],
        })),
      });
    }
    let namespace: string | undefined;
    if (rest[0] === "namespaces" && rest.length > 2) {
      namespace = rest[1];
      rest = rest.slice(2);
    }
    const type = types.find((t) => t.plural === rest[0]);
    if (!type)
      return this.status(
        res,
        404,
        "NotFound",
        `the server could not find the requested resource ${url.pathname}`,
      );
    const name = rest[1];
    const sub = rest[2];
    if (type.plural === "pods" && name && sub === "log" && req.method === "GET")
      return this.servePodLog(namespace ?? "default", name, url, res);
    if (!name) {
      const table = wantsTable(req.headers["accept"]);
      if (req.method === "GET" && url.searchParams.get("watch") === "true")
        return this.watch(type, namespace, url, res, table);
      if (req.method === "GET") {
        const matches = labelMatcher(url.searchParams.get("labelSelector"));
        const fields = fieldMatcher(url.searchParams.get("fieldSelector"));
        const items = this.list(type.plural, namespace).filter(
          (o) => matches(o.metadata["labels"] as Record<string, string> | undefined) && fields(o),
        );
        if (table)
          return this.json(
            res,
            200,
            toTable(type.kind, items, new Date(), {
              resourceVersion: String(this.rv),
              includeObject: url.searchParams.get("includeObject"),
            }),
          );
        return this.json(res, 200, {
          kind: `${type.kind}List`,
          apiVersion: gv(type),
          metadata: { resourceVersion: String(this.rv) },
          items,
        });
      }
      if (req.method === "POST") {
        const obj = await this.body(req);
        obj.metadata.namespace ??= namespace;
        if (this.store.has(this.key(type.plural, obj.metadata.namespace, obj.metadata.name)))
          return this.status(
            res,
            409,
            "AlreadyExists",
            `${type.plural} "${obj.metadata.name}" already exists`,
          );
        return this.json(
          res,
          201,
          this.write(type.plural, { ...obj, apiVersion: gv(type), kind: type.kind }, "ADDED", true),
        );
      }
      return this.status(res, 405, "MethodNotAllowed", req.method ?? "");
    }
    const k = this.key(type.plural, namespace, name);
    const existing = this.store.get(k);
    if (req.method === "GET" && existing && wantsTable(req.headers["accept"]))
      return this.json(
        res,
        200,
        toTable(type.kind, [existing], new Date(), { includeObject: url.searchParams.get("includeObject") }),
      );
    if (req.method === "GET")
      return existing
        ? this.json(res, 200, existing)
        : this.status(res, 404, "NotFound", `${type.plural} "${name}" not found`);
    if (req.method === "DELETE") {
      if (!existing) return this.status(res, 404, "NotFound", `${type.plural} "${name}" not found`);
      this.remove(type.plural, existing);
      return this.json(res, 200, { kind: "Status", apiVersion: "v1", status: "Success" });
    }
    const body = await this.body(req);
    if (req.method === "PUT") {
      if (!existing) return this.status(res, 404, "NotFound", `${type.plural} "${name}" not found`);
      // An injected conflict (tests) and a stale resourceVersion answer alike, as the API server does.
      const rv = body.metadata?.resourceVersion;
      if (this.injectConflict(type.plural) || (rv && rv !== existing.metadata["resourceVersion"])) {
        const modified =
          "the object has been modified; please apply your changes to the latest version and try again";
        return this.status(
          res,
          409,
          "Conflict",
          `Operation cannot be fulfilled on ${type.plural} "${name}": ${modified}`,
        );
      }
      const next: Obj =
        sub === "status"
          ? { ...existing, status: body["status"] }
          : {
              ...body,
              apiVersion: gv(type),
              kind: type.kind,
              metadata: { ...body.metadata, namespace },
              ...(type.status ? { status: existing["status"] } : {}),
            };
      const written = this.write(type.plural, next, "MODIFIED", true);
      if (
        written.metadata["deletionTimestamp"] &&
        ((written.metadata["finalizers"] as string[] | undefined) ?? []).length === 0
      )
        this.remove(type.plural, written);
      return this.json(res, 200, written);
    }
    if (req.method === "PATCH") {
      const ct = req.headers["content-type"] ?? "";
      if (ct.startsWith("application/apply-patch")) {
        if (!url.searchParams.get("fieldManager"))
          return this.status(res, 422, "Invalid", "fieldManager is required for apply requests");
        if (sub === "status") {
          if (!existing) return this.status(res, 404, "NotFound", `${type.plural} "${name}" not found`);
          return this.json(
            res,
            200,
            this.write(type.plural, { ...existing, status: body["status"] }, "MODIFIED", true),
          );
        }
        // One field manager owns everything it applies: the applied object replaces its fields;
        // server-owned metadata and status survive.
        const next: Obj = {
          ...body,
          apiVersion: gv(type),
          kind: type.kind,
          metadata: { ...(existing?.metadata ?? {}), ...body.metadata, namespace },
          ...(existing && type.status && existing["status"] ? { status: existing["status"] } : {}),
        };
        if (
          existing &&
          JSON.stringify({
            ...existing,
            metadata: { ...existing.metadata, resourceVersion: "", generation: 0 },
          }) ===
            JSON.stringify({ ...next, metadata: { ...next.metadata, resourceVersion: "", generation: 0 } })
        ) {
          return this.json(res, 200, existing); // no-op apply: no new resourceVersion, no watch event
        }
        return this.json(
          res,
          existing ? 200 : 201,
          this.write(type.plural, next, existing ? "MODIFIED" : "ADDED", true),
        );
      }
      if (!existing) return this.status(res, 404, "NotFound", `${type.plural} "${name}" not found`);
      if (
        ct.startsWith("application/merge-patch+json") ||
        ct.startsWith("application/strategic-merge-patch+json")
      ) {
        const rv = (body.metadata as Record<string, unknown> | undefined)?.["resourceVersion"];
        if (rv && rv !== existing.metadata["resourceVersion"])
          return this.status(res, 409, "Conflict", "the object has been modified");
        const next = mergePatch(existing, sub === "status" ? { status: body["status"] } : body) as Obj;
        const written = this.write(type.plural, next, "MODIFIED", true);
        const fin = (written.metadata["finalizers"] as string[] | undefined) ?? [];
        if (written.metadata["deletionTimestamp"] && fin.length === 0) this.remove(type.plural, written);
        return this.json(res, 200, written);
      }
      return this.status(res, 415, "UnsupportedMediaType", ct);
    }
    return this.status(res, 405, "MethodNotAllowed", req.method ?? "");
  }

  private watch(
    type: ResourceType,
    namespace: string | undefined,
    url: URL,
    res: ServerResponse,
    table = false,
  ): void {
    const from = Number(url.searchParams.get("resourceVersion") ?? "0");
    if (from && from < this.compactedBefore - 1) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        `${JSON.stringify({ type: "ERROR", object: { kind: "Status", apiVersion: "v1", status: "Failure", reason: "Expired", code: 410, message: `too old resource version: ${from} (${this.compactedBefore})` } })}\n`,
      );
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    // `kubectl get -w` watches in the Table form: each event carries a one-row Table.
    const includeObject = url.searchParams.get("includeObject");
    const sendAll = (e: WatchEvent): void => {
      const object = table ? toTable(type.kind, [e.object], new Date(), { includeObject }) : e.object;
      res.write(`${JSON.stringify({ type: e.type, object })}\n`);
    };
    const matches = labelMatcher(url.searchParams.get("labelSelector"));
    const fields = fieldMatcher(url.searchParams.get("fieldSelector"));
    const send = (e: WatchEvent): void => {
      if (matches(e.object.metadata["labels"] as Record<string, string> | undefined) && fields(e.object))
        sendAll(e);
    };
    const w = { plural: type.plural, ...(namespace ? { namespace } : {}), res, send };
    for (const e of this.log)
      if (
        e.rv > from &&
        e.plural === type.plural &&
        (!namespace || e.object.metadata.namespace === namespace)
      )
        send(e);
    this.watchers.add(w);
    let bookmark: NodeJS.Timeout | undefined;
    if (url.searchParams.get("allowWatchBookmarks") === "true") {
      bookmark = setInterval(
        () =>
          res.write(
            `${JSON.stringify({ type: "BOOKMARK", object: { kind: type.kind, apiVersion: gv(type), metadata: { resourceVersion: String(this.rv) } } })}\n`,
          ),
        1000,
      );
    }
    res.on("close", () => {
      clearInterval(bookmark);
      this.watchers.delete(w);
    });
  }
}

/**
 * Equality-based label selectors as the API server reads them: `k=v`, `k==v`, `k!=v`, `k`, `!k`,
 * comma-separated (all must hold). Set-based selectors are not needed by the operator.
 */
export function labelMatcher(
  selector: string | null,
): (labels: Record<string, string> | undefined) => boolean {
  const terms = (selector ?? "")
    .split(",")
    .map((t) => t.trim())
    .filter(Boolean);
  return (labels = {}) =>
    terms.every((t) => {
      const ne = /^([^!=]+)!=(.*)$/.exec(t);
      if (ne) return labels[ne[1]!.trim()] !== ne[2]!.trim();
      const eq = /^([^=]+)==?(.*)$/.exec(t);
      if (eq) return labels[eq[1]!.trim()] === eq[2]!.trim();
      if (t.startsWith("!")) return !(t.slice(1) in labels);
      return t in labels;
    });
}

/**
 * Pure: a field selector as the API server reads it — `involvedObject.name=x,type!=Normal`, dotted
 * paths into the object compared as strings (what `kubectl describe` asks for an object's events).
 */
export function fieldMatcher(selector: string | null): (obj: Record<string, unknown>) => boolean {
  const terms = (selector ?? "")
    .split(",")
    .map((t) => /^([^!=]+)(!=|==|=)(.*)$/.exec(t.trim()))
    .filter((m): m is RegExpExecArray => m !== null);
  const at = (obj: unknown, path: string): string => {
    let v: unknown = obj;
    for (const p of path.split("."))
      v = v && typeof v === "object" ? (v as Record<string, unknown>)[p] : undefined;
    if (typeof v === "string") return v;
    if (typeof v === "number" || typeof v === "boolean") return String(v);
    return v === undefined || v === null ? "" : JSON.stringify(v);
  };

  return (obj) =>
    terms.every(([, path, op, value]) => (at(obj, path!.trim()) === value!.trim()) === (op !== "!="));
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!patch || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    target && typeof target === "object" && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}
