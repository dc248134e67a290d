import { trace } from "@opentelemetry/api";
import { create, fromBinary, toBinary, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Route,
  ValuationService,
  ValuationSchema,
  ValuationWarningSchema,
  type Valuation,
  type ValuationResultSchema,
} from "@valora/proto/valora/v1/valuation_pb";
import {
  FULL_PARTS,
  ValoraError,
  counter,
  isFull,
  partsOf,
  partsSuffix,
  type ValuationParts,
  implement,
  isErrorCode,
  knownCategories,
  normaliseWithKey,
  toValoraError,
  type InputField,
  type ValuationWarning,
  type Normalised,
  type Registry,
  type ServiceRegistration,
} from "@valora/kit";
import { DecodedMemo, type ValuationCache } from "./cache.js";
import { PerformanceTracker } from "./performance.js";

export interface AssetClassEntry {
  /** ValuationModel name. */
  model: string;
  currency: string;
  fields: InputField[];
  /** Comparables found by location: the fields holding it and the H3 resolution of their grid. */
  geo?: { latitude: string; longitude: string; h3Resolution: number };
  cacheTtlSeconds: number;
  /** The champion version now serving, part of every cache key (a promotion invalidates the cache). */
  championVersion(): string | undefined;
  /** Current routing (ValuationModel status.routing): who serves which share of traffic. */
  routes(): { version: string; role: "champion" | "canary" | "shadow"; weight: number }[];
  /** Candidate strategy when a rollout is in progress ("Canary" | "Shadow"). */
  candidateStrategy?(): string | undefined;
  /** The operator's status of the candidate: its phase and last analysis. */
  candidateStatus?(): CandidateStatusObject | undefined;
}

/** ValuationModel status.candidate, as far as the catalog reports it. */
export interface CandidateStatusObject {
  version: string;
  phase: string;
  lastAnalysis?: {
    passed: boolean;
    message: string;
    at: string;
    pairs?: number;
    biasPct?: number;
    medianAbsDeltaPct?: number;
    absDeltaP90Pct?: number;
  };
}

type ResultInit = MessageInitShape<typeof ValuationResultSchema>;

/** Sends normalised items to the asset class's pipeline (valora.v1.PipelineService/Run). */
export type Dispatch = (
  assetClass: string,
  items: { assetKey: string; attributes: Normalised }[],
  /** bulk: a bulk job's chunk, a batch already (never queued behind or with interactive requests). */
  options?: { parts?: ValuationParts; bulk?: boolean },
) => Promise<
  {
    index: number;
    valuation?: Valuation;
    error?: { code: string; message: string; violations: { field: string; description: string }[] };
  }[]
>;

/** Per-tenant quota, checked before any work (issue 9 brings plans; this is the hook). */
export type QuotaCheck = (tenantId: string, units: number) => Promise<void>;

export interface OrchestratorDeps {
  catalog: (assetClass: string) => AssetClassEntry | undefined;
  /** Every asset class served (for ListAssetClasses / ListModels). */
  assetClasses: () => string[];
  dispatch: Dispatch;
  cache: ValuationCache;
  quota?: QuotaCheck;
  /**
   * Meters valued items (cached answers included; failed items are free). Resolves once the
   * usage is durable. Calls marked `x-valora-usage: job` are metered by the job worker instead.
   */
  usage?: (tenantId: string, assetClass: string, units: number) => Promise<void>;
  /**
   * The asset registry: an item naming an assetId is valued from the attributes registered for
   * it (its own attributes, when given, take precedence).
   */
  assets?: (assetClass: string, assetId: string) => Promise<JsonObject | undefined>;
  /** Valuations of identified assets, kept to be scored when the asset sells. Not awaited. */
  outcomes?: (valuations: ValuedAsset[]) => void;
  registry?: Registry;
  maxBatch?: number;
  performance?: PerformanceTracker;
}

export interface ValuedAsset {
  assetClass: string;
  assetId: string;
  model: string;
  modelVersion: string;
  value: number;
  tenantId: string;
}

type Metadata = { get(key: string): (string | Buffer)[] };
const tenantOf = (m: Metadata): string => String(m.get("x-tenant-id")[0] ?? "default");
const metered = (m: Metadata): boolean => m.get("x-valora-usage")[0] !== "job";

const cacheKey = (assetClass: string, version: string, key: string): string =>
  `${assetClass}:${version}:${key}`;

/** Pure: an answer cut to the parts asked for (a full cached answer serves every combination). */
const cut = (v: Valuation, parts: ValuationParts): Valuation =>
  isFull(parts)
    ? v
    : {
        ...v,
        ...(parts.comparables ? {} : { comparables: [] }),
        ...(parts.explanation ? {} : { explanation: undefined }),
      };

/**
 * valora.v1.ValuationService: validates and normalises each item against its asset class's input
 * schema, enforces the quota, answers from the cache (keyed by normalised attributes and champion
 * version), and dispatches the rest to the pipeline in one call. Items fail one by one in a batch.
 */
export function valuationService(d: OrchestratorDeps): ServiceRegistration {
  const maxBatch = d.maxBatch ?? 100;
  const perf = d.performance ?? new PerformanceTracker();
  const decoded = new DecodedMemo((bytes) => fromBinary(ValuationSchema, bytes));
  const hits = d.registry
    ? counter(d.registry, "valora_valuation_cache_total", "Valuation cache lookups by result.", [
        "asset_class",
        "result",
      ])
    : undefined;

  const entryFor = (assetClass: string): AssetClassEntry => {
    const entry = d.catalog(assetClass);
    if (!entry)
      throw new ValoraError("NOT_FOUND", `unknown asset class "${assetClass}"`, {
        details: [{ field: "asset_class", description: "no AssetPipeline with this name" }],
      });
    return entry;
  };

  const valueMany = async (
    assetClass: string,
    items: { attributes?: JsonObject; assetId: string }[],
    skipCache: boolean,
    tenantId: string,
    meter: boolean,
    parts: ValuationParts = FULL_PARTS,
    /** Answers are written to the cache (bulk jobs' are not: a job's rows would crowd everyone out). */
    cacheAnswers = true,
  ): Promise<ResultInit[]> => {
    const entry = entryFor(assetClass);
    if (items.length === 0)
      throw new ValoraError("INVALID_ARGUMENT", "no items", {
        details: [{ field: "items", description: "at least one item" }],
      });
    if (items.length > maxBatch)
      throw new ValoraError(
        "INVALID_ARGUMENT",
        `${items.length} items is more than the ${maxBatch} a batch may hold`,
        { details: [{ field: "items", description: `at most ${maxBatch}` }] },
      );
    if (d.quota) await d.quota(tenantId, items.length);
    const version = entry.championVersion() ?? "unknown";
    const results = new Array<ResultInit>(items.length);
    const pending: { index: number; assetKey: string; attributes: Normalised; key: string }[] = [];
    // Deprecated attribute names per item: warned in the answer, cached or not (the cache key is the normalised asset).
    const deprecations = new Map<number, ValuationWarning[]>();
    await Promise.all(
      items.map(async (item, index) => {
        try {
          const given = item.attributes ?? {};
          const registered = item.assetId && d.assets ? await d.assets(assetClass, item.assetId) : undefined;
          if (item.assetId && d.assets && !registered && Object.keys(given).length === 0) {
            throw new ValoraError(
              "NOT_FOUND",
              `asset "${item.assetId}" is not in the registry; send its attributes`,
              { details: [{ field: "assetId", description: "not registered" }] },
            );
          }
          const { attributes, key, warnings } = normaliseWithKey(
            entry.fields,
            registered ? { ...registered, ...given } : given,
            item.assetId || undefined,
          );
          if (warnings) deprecations.set(index, warnings);
          const full = cacheKey(assetClass, version, key);
          // Entries are kept per combination of parts; a full one answers any combination.
          const ck = full + partsSuffix(parts);
          let found: { key: string; bytes: Uint8Array } | undefined;
          if (!skipCache) {
            const exact = await d.cache.get(ck);
            const bytes = exact ?? (ck === full ? undefined : await d.cache.get(full));
            if (bytes) found = { key: exact ? ck : full, bytes };
          }
          hits?.inc({ asset_class: assetClass, result: skipCache ? "skipped" : found ? "hit" : "miss" });
          if (found) {
            // A copy of the shared decoded message: the memo's stays as cached.
            const v = { ...cut(decoded.get(found.key, found.bytes), parts), cached: true };
            results[index] = { index, outcome: { case: "valuation", value: v } };
          } else pending.push({ index, assetKey: key, attributes: attributes(), key: ck });
        } catch (err) {
          const e = toValoraError(err);
          results[index] = {
            index,
            outcome: { case: "error", value: { code: e.code, message: e.message, violations: e.details } },
          };
        }
      }),
    );
    const span = trace.getActiveSpan();
    if (span?.isRecording())
      span.setAttributes({
        "valora.asset_class": assetClass,
        "valora.items": items.length,
        "valora.cache.result": skipCache ? "skipped" : pending.length === 0 ? "hit" : "miss",
        "valora.cache.misses": pending.length,
      });
    if (pending.length > 0) {
      const started = performance.now();
      const answers = await d.dispatch(
        assetClass,
        pending.map((p) => ({ assetKey: p.assetKey, attributes: p.attributes })),
        isFull(parts) && meter
          ? undefined
          : { ...(isFull(parts) ? {} : { parts }), ...(meter ? {} : { bulk: true }) },
      );
      const ms = performance.now() - started;
      for (const a of answers) {
        const m = a.valuation?.model;
        if (!m) perf.record(entry.model, version, "champion", ms, "error");
        else if (m.route === Route.FALLBACK) perf.record(entry.model, "fallback", "fallback", ms, "fallback");
        else perf.record(entry.model, m.version, m.route === Route.CANARY ? "canary" : "champion", ms, "ok");
      }
      await Promise.all(
        answers.map(async (a) => {
          const p = pending[a.index]!;
          if (a.valuation) {
            results[p.index] = { index: p.index, outcome: { case: "valuation", value: a.valuation } };
            // Fallback answers are not cached: the model may be back for the next request. A partial
            // answer is kept under its combination's key: a full request never gets one.
            if (a.valuation.model?.route !== Route.FALLBACK && cacheAnswers)
              await d.cache.set(p.key, toBinary(ValuationSchema, a.valuation), entry.cacheTtlSeconds);
          } else {
            results[p.index] = {
              index: p.index,
              outcome: {
                case: "error",
                value: a.error ?? { code: "INTERNAL", message: "pipeline returned nothing", violations: [] },
              },
            };
          }
        }),
      );
    }
    for (const [index, warnings] of deprecations) {
      const r = results[index]!;
      if (r.outcome?.case !== "valuation") continue;
      // Cached and dispatched answers alike are decoded messages.
      const v = r.outcome.value as Valuation;
      const added = warnings.map((w) => create(ValuationWarningSchema, w));
      r.outcome = { case: "valuation", value: { ...v, warnings: [...v.warnings, ...added] } };
    }
    if (d.outcomes) {
      const valued = items.flatMap((item, i): ValuedAsset[] => {
        const r = results[i]?.outcome;
        const m = r?.case === "valuation" ? r.value.model : undefined;
        return item.assetId && r?.case === "valuation" && m && m.route !== Route.FALLBACK
          ? [
              {
                assetClass,
                assetId: item.assetId,
                model: entry.model,
                modelVersion: m.version ?? "",
                value: r.value.value ?? 0,
                tenantId,
              },
            ]
          : [];
      });
      if (valued.length > 0) d.outcomes(valued);
    }
    if (meter && d.usage) {
      const valued = results.reduce((n, r) => n + (r.outcome?.case === "valuation" ? 1 : 0), 0);
      await d.usage(tenantId, assetClass, valued);
    }
    return results;
  };

  return implement(ValuationService, {
    async value(req, call) {
      const [r] = await valueMany(
        req.assetClass,
        [{ attributes: req.attributes, assetId: req.assetId }],
        req.skipCache,
        tenantOf(call.metadata),
        metered(call.metadata),
        partsOf(req.include),
      );
      if (r?.outcome?.case === "valuation") return { valuation: r.outcome.value };
      const e = r?.outcome?.case === "error" ? r.outcome.value : undefined;
      const code = e?.code && isErrorCode(e.code) ? e.code : "INTERNAL";
      throw new ValoraError(code, e?.message ?? "no result", {
        details: (e?.violations ?? []).map((v) => ({
          field: v.field ?? "",
          description: v.description ?? "",
        })),
      });
    },
    async valueBatch(req, call) {
      return {
        results: await valueMany(
          req.assetClass,
          req.items,
          req.skipCache,
          tenantOf(call.metadata),
          metered(call.metadata),
          partsOf(req.include, req.lean),
          !req.lean,
        ),
      };
    },
    async listAssetClasses() {
      return {
        assetClasses: d.assetClasses().flatMap((name) => {
          const e = d.catalog(name);
          if (!e) return [];
          return [
            {
              name,
              model: e.model,
              currency: e.currency,
              ...(e.geo
                ? {
                    geo: {
                      latitudeField: e.geo.latitude,
                      longitudeField: e.geo.longitude,
                      h3Resolution: e.geo.h3Resolution,
                    },
                  }
                : {}),
              fields: e.fields.map((f) => ({
                name: f.name,
                type: f.type,
                required: f.required,
                enum: f.enum ?? [],
                feature: f.feature ?? "",
                ...(f.min !== undefined ? { min: f.min } : {}),
                ...(f.max !== undefined ? { max: f.max } : {}),
                ...(f.training?.min !== undefined ? { trainingMin: f.training.min } : {}),
                ...(f.training?.max !== undefined ? { trainingMax: f.training.max } : {}),
                categories: knownCategories(f) ?? [],
                strict: f.strict ?? false,
                deprecatedAliases: Object.keys(f.aliases ?? {}),
                defaultJson: f.default !== undefined ? JSON.stringify(f.default) : "",
              })),
            },
          ];
        }),
      };
    },
    async listModels() {
      return {
        models: d.assetClasses().flatMap((name) => {
          const e = d.catalog(name);
          if (!e) return [];
          const routes = e.routes();
          const candidate = routes.find((r) => r.role !== "champion");
          const served = new Map(routes.map((r) => [r.version, r.role] as const));
          return [
            {
              name: e.model,
              assetClass: name,
              championVersion: e.championVersion() ?? "",
              candidateVersion: candidate?.version ?? "",
              candidateStrategy: candidate
                ? (e.candidateStrategy?.() ?? (candidate.role === "shadow" ? "Shadow" : "Canary"))
                : "",
              candidateTrafficPercent:
                candidate && candidate.role !== "shadow"
                  ? Math.round(
                      (100 * candidate.weight) /
                        Math.max(
                          1,
                          routes.filter((r) => r.role !== "shadow").reduce((s, r) => s + r.weight, 0),
                        ),
                    )
                  : 0,
              ...candidateAnalysisOf(e.candidateStatus?.()),
              performance: perf.of(e.model).map((p) => ({
                ...p,
                role: served.get(p.version) ?? p.role,
                requests: BigInt(p.requests),
                errors: BigInt(p.errors),
                fallbacks: BigInt(p.fallbacks),
                medianAbsDeltaPct: 0,
              })),
            },
          ];
        }),
      };
    },
  });
}

/** Pure: the ListModels candidate_analysis of a ValuationModel's status.candidate (none without one). */
function candidateAnalysisOf(c: CandidateStatusObject | undefined) {
  if (!c) return {};
  const a = c.lastAnalysis;
  return {
    candidateAnalysis: {
      version: c.version,
      phase: c.phase,
      passed: a?.passed ?? false,
      message: a?.message ?? "",
      at: a?.at ?? "",
      pairs: a?.pairs ?? 0,
      biasPct: a?.biasPct ?? 0,
      medianAbsDeltaPct: a?.medianAbsDeltaPct ?? 0,
      absDeltaP90Pct: a?.absDeltaP90Pct ?? 0,
    },
  };
}
