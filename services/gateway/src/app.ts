import { randomUUID } from "node:crypto";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import type { JobService } from "@valora/proto/valora/v1/jobs_pb";
import type { TenantService } from "@valora/proto/valora/v1/tenants_pb";
import type { ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import type { BillingService } from "@valora/proto/valora/v1/billing_pb";
import type { MarketDataService } from "@valora/proto/valora/v1/market_pb";
import type { IngestService } from "@valora/proto/valora/v1/ingest_pb";
import type { UsageService } from "@valora/proto/valora/v1/usage_pb";
import {
  PlanCatalog,
  UNAVAILABLE_RETRY_AFTER_SECONDS,
  ValoraError,
  errorEnvelope,
  histogram,
  type Client,
  type ServiceBase,
  inSpan,
  observeWithTrace,
} from "@valora/kit";
import { hasRole, type Authenticator, type Principal, type RoleName } from "./auth.js";
import { bucketOf } from "./plans.js";
import { rateLimitHeaders, takeTenantTurn, type RateLimiter } from "./rate-limit.js";
import { requestSpan, traceRequests } from "./http-tracing.js";
import { trace } from "@opentelemetry/api";
import { NoQuery } from "./schemas.js";
import { LocalQuotaCounter, type QuotaCounter } from "./quota.js";
import { accountRoutes } from "./routes/account.js";
import { marketRoutes } from "./routes/market.js";
import { ingestRoutes } from "./routes/ingest.js";
import { adminRoutes } from "./routes/admin.js";
import { tenantRoutes } from "./routes/tenants.js";
import { TenantLifecycleOps, type TenantDataClients } from "./tenant-lifecycle.js";
import { jobRoutes } from "./routes/jobs.js";
import { catalogRoutes } from "./routes/catalog.js";
import { valuationRoutes } from "./routes/valuations.js";
import { consoleRoutes, wantsConsolePage, type ConsoleOptions } from "./console.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Roles that may call the route; a route without roles is public (health, docs). */
    roles?: readonly RoleName[];
    /** Only principals of a platform-admin tenant (creating tenants). */
    platformAdmin?: boolean;
  }
  interface FastifyRequest {
    principal?: Principal;
  }
}

export interface GatewayDeps {
  base: Pick<ServiceBase, "logger" | "registry" | "health" | "degraded">;
  valuations: Client<typeof ValuationService>;
  tenants: Client<typeof TenantService>;
  /** Bulk jobs (the orchestrator's JobService); the job routes are absent without it. */
  jobs?: Client<typeof JobService>;
  /** Largest CSV a job may be, in bytes. */
  jobBodyLimit?: number;
  /** Metered usage (GET /v1/usage); the route answers UNAVAILABLE without it. */
  usage?: Client<typeof UsageService>;
  /** Stripe billing; plan changes go straight to the tenants service without it. */
  billing?: Client<typeof BillingService>;
  /** Market series; the /v1/market routes are absent without it. */
  market?: Client<typeof MarketDataService>;
  /** Data feeds, lineage, the asset registry and realised accuracy; those routes are absent without it. */
  ingest?: Client<typeof IngestService>;
  /** Largest batch a feed may push, in bytes. */
  ingestBodyLimit?: number;
  auth: Authenticator;
  limiter: RateLimiter;
  /** Plans and their entitlements (rate, quota, jobs, asset classes); the defaults when absent. */
  plans?: PlanCatalog;
  /** Monthly valuation quotas; in-process counters when absent. */
  quota?: QuotaCounter;
  /** Every service holding tenant data: exports gather from them, erasures purge them. */
  tenantData?: TenantDataClients;
  /** A tenant's plan changed: drop cached principals (the default drops this replica's; main also tells the others over Redis). */
  tenantChanged?: (tenantId: string) => void;
  /** Largest accepted request body in bytes. */
  bodyLimit?: number;
  /** Deadline of calls to the orchestrator and tenants service. */
  upstreamTimeoutMs?: number;
  /**
   * Trust X-Forwarded-For from these proxies (true, or comma-separated addresses/CIDRs) for the
   * client address in audit rows; off by default so clients cannot spoof it.
   */
  trustProxy?: boolean | string;
  /** The web console at / (its build directory, OIDC client, map tiles); absent: no console. */
  console?: ConsoleOptions;
}

export interface RouteInfo {
  method: string;
  url: string;
  roles?: readonly RoleName[];
  platformAdmin?: boolean;
}

const STATUS_CODES: Record<number, ConstructorParameters<typeof ValoraError>[0]> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  414: "INVALID_ARGUMENT",
  405: "INVALID_ARGUMENT",
  406: "INVALID_ARGUMENT",
  413: "PAYLOAD_TOO_LARGE",
  415: "UNSUPPORTED_MEDIA_TYPE",
  429: "RESOURCE_EXHAUSTED",
};

/** Pure: anything fastify or a handler throws, as a ValoraError with the field at fault. */
export function toGatewayError(err: unknown): ValoraError {
  if (err instanceof ValoraError) return err;
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = (err as { validationContext?: string }).validationContext ?? "body";
    const details = err.validation.map((v) => {
      const path = v.instancePath.split("/").filter(Boolean).join(".");
      const extra = v.keyword === "unrecognized_keys" ? ((v.params as { keys?: string[] }).keys ?? []) : [];
      return extra.length > 0
        ? extra.map((k) => ({
            field: [where, path, k].filter(Boolean).join("."),
            description: "unknown field",
          }))
        : [{ field: [where, path].filter(Boolean).join("."), description: v.message ?? "invalid" }];
    });
    return new ValoraError("INVALID_ARGUMENT", `invalid ${where}`, { details: details.flat() });
  }
  const e = err as FastifyError;
  const code =
    e.statusCode !== undefined && e.statusCode < 500
      ? (STATUS_CODES[e.statusCode] ?? "INVALID_ARGUMENT")
      : undefined;
  if (code)
    return new ValoraError(code, e.message, {
      details:
        e.code === "FST_ERR_CTP_INVALID_JSON_BODY" || e.code === "FST_ERR_CTP_EMPTY_JSON_BODY"
          ? [{ field: "body", description: "not valid JSON" }]
          : [],
    });
  return new ValoraError("INTERNAL", "internal error", { cause: err });
}

/**
 * The REST edge. Every route declares the roles that may call it; one onRequest hook
 * authenticates, authorises and rate-limits before any body is read, so a refused request costs
 * nothing and writes nothing. Errors of every kind leave as the envelope with a stable code.
 */
export async function buildGateway(
  d: GatewayDeps,
): Promise<FastifyInstance & { valoraRoutes: RouteInfo[]; valoraLifecycle: TenantLifecycleOps }> {
  const plans = d.plans ?? new PlanCatalog();
  const app = Fastify({
    logger: false,
    bodyLimit: d.bodyLimit ?? 1024 * 1024,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    trustProxy: d.trustProxy ?? false,
    // Errors the router raises before any route (bad URL encoding, over-long parameters) get the envelope too.
    frameworkErrors: (err, req, reply) => {
      const { status, body } = errorEnvelope(toGatewayError(err), req.id);
      void (reply as unknown as FastifyReply).code(status).send(body);
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 300 },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  // JSON only: anything else is a 415 before a handler runs.
  app.removeContentTypeParser("text/plain");
  // Response schemas document the API; serialising needs no validation on the hot path.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));

  traceRequests(app, trace.getTracer("gateway"));
  const routes: RouteInfo[] = [];
  app.addHook("onRoute", (r) => {
    // The docs and the console's static files are public by nature; they are not API routes.
    if (r.url.startsWith("/docs") || r.url === "/" || r.url === "/*" || r.method === "HEAD") return;
    // Unknown query parameters are refused like unknown body fields.
    if (r.config?.roles && r.schema && !r.schema.querystring) r.schema.querystring = NoQuery;
    for (const method of [r.method].flat())
      routes.push({
        method,
        url: r.url,
        ...(r.config?.roles ? { roles: r.config.roles } : {}),
        ...(r.config?.platformAdmin ? { platformAdmin: true } : {}),
      });
  });

  const duration = histogram(
    d.base.registry,
    "http_server_request_duration_seconds",
    "REST request latency by route and status.",
    ["method", "route", "status"],
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    { exemplars: true },
  );
  app.addHook("onResponse", async (req, reply) => {
    observeWithTrace(
      duration,
      { method: req.method, route: req.routeOptions.url ?? "unmatched", status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
      requestSpan(req),
    );
  });
  app.addHook("onSend", async (req, reply) => {
    void reply.header("x-request-id", req.id);
  });

  app.addHook("onRequest", async (req: FastifyRequest, reply: FastifyReply) => {
    const cfg = req.routeOptions.config;
    if (!cfg.roles) return;
    const principal = await inSpan("auth", () => d.auth.authenticate(req.headers.authorization, req.ip));
    if (!hasRole(principal, cfg.roles) || (cfg.platformAdmin && !principal.platformAdmin)) {
      throw new ValoraError(
        "PERMISSION_DENIED",
        `this call needs one of the roles ${cfg.roles.join(", ")}${cfg.platformAdmin ? " in a platform tenant" : ""}`,
      );
    }
    req.principal = principal;
    const bucket = bucketOf(plans.of(principal.plan));
    const decision = await takeTenantTurn(d.limiter, principal, bucket);
    void reply.headers(rateLimitHeaders(decision, bucket));
    if (!decision.allowed)
      throw new ValoraError(
        "RESOURCE_EXHAUSTED",
        `rate limit of the ${principal.plan} plan exceeded: retry in ${decision.retryAfter} s`,
      );
  });

  app.setErrorHandler((err, req, reply) => {
    const e = toGatewayError(err);
    if (e.code === "INTERNAL")
      d.base.logger.error({ err: e.cause ?? e, requestId: req.id, url: req.url }, "request failed");
    // An outage fails many requests alike: one line per 30 s with a count, the detail in it.
    if (e.code === "UNAVAILABLE")
      d.base.degraded.note("rest", "requests failing: a dependency is unavailable", e.cause ?? e);
    const { status, body } = errorEnvelope(e, req.id);
    // A dependency is down: tell clients when to come back rather than have them hammer it.
    if (e.code === "UNAVAILABLE") void reply.header("retry-after", String(UNAVAILABLE_RETRY_AFTER_SECONDS));
    return reply.code(status).send(body);
  });
  // Set once the console's routes are registered (after the OpenAPI plugin, so its config route is documented).
  let consoleShell: ((reply: FastifyReply) => FastifyReply) | undefined;
  app.setNotFoundHandler((req, reply) => {
    // A console page's URL opened directly (or reloaded): the SPA's shell routes it.
    if (consoleShell && wantsConsolePage(req)) return consoleShell(reply);
    const { status, body } = errorEnvelope(
      new ValoraError("NOT_FOUND", `no route ${req.method} ${req.url.split("?")[0]}`),
      req.id,
    );
    return reply.code(status).send(body);
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "Valora API",
        version: "1.0.0",
        description:
          "Valuations of hard assets (homes, vehicles, any declared asset class) and tenant administration. Every response is the envelope `{data, meta: {requestId, timestamp}, error}`.",
      },
      components: {
        securitySchemes: {
          bearer: {
            type: "http",
            scheme: "bearer",
            description: "An API key (vk_...) or an OIDC access token",
          },
        },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  app.get("/healthz", { schema: { hide: true } }, async () => ({ status: "ok" }));
  app.get("/readyz", { schema: { hide: true } }, async (_req, reply) => {
    const report = await d.base.health.report();
    // This port is public: name what is down, not its address (the ops port's /readyz has the detail).
    const degraded = report.degraded.map((c) => ({ dependency: c.name, status: "unavailable" }));
    const status = report.ready ? (degraded.length > 0 ? "degraded" : "ready") : "not ready";
    return reply.code(report.ready ? 200 : 503).send({ status, degraded });
  });
  app.get("/metrics", { schema: { hide: true } }, async (_req, reply) =>
    reply.type(d.base.registry.contentType).send(await d.base.registry.metrics()),
  );

  if (d.console) consoleShell = await consoleRoutes(app, d.console);

  const timeoutMs = d.upstreamTimeoutMs ?? 10_000;
  const quota = d.quota ?? new LocalQuotaCounter();
  await app.register(valuationRoutes, {
    quota,
    plans,
    valuations: d.valuations,
    tenants: d.tenants,
    timeoutMs,
    logger: d.base.logger,
  });
  await app.register(catalogRoutes, {
    valuations: d.valuations,
    ...(d.ingest ? { ingest: d.ingest } : {}),
    timeoutMs,
  });
  const tenantChanged = d.tenantChanged ?? ((id: string) => d.auth.invalidateTenant(id));
  await app.register(adminRoutes, { tenants: d.tenants, timeoutMs, tenantChanged });
  const lifecycle = new TenantLifecycleOps({
    tenants: d.tenants,
    ...(d.jobs ? { jobs: d.jobs } : {}),
    ...(d.tenantData ? { data: d.tenantData } : {}),
    tenantChanged,
    logger: d.base.logger,
    timeoutMs,
  });
  await app.register(tenantRoutes, {
    tenants: d.tenants,
    ...(d.usage ? { usage: d.usage } : {}),
    ops: lifecycle,
    timeoutMs,
  });
  if (d.jobs)
    await app.register(jobRoutes, {
      jobs: d.jobs,
      quota,
      plans,
      timeoutMs,
      maxBytes: d.jobBodyLimit ?? 15 * 1024 * 1024,
    });
  await app.register(accountRoutes, {
    plans,
    tenants: d.tenants,
    ...(d.usage ? { usage: d.usage } : {}),
    ...(d.billing ? { billing: d.billing } : {}),
    tenantChanged,
    timeoutMs,
    logger: d.base.logger,
  });
  if (d.market) await app.register(marketRoutes, { market: d.market, timeoutMs });
  if (d.ingest)
    await app.register(ingestRoutes, {
      ingest: d.ingest,
      timeoutMs,
      maxBytes: d.ingestBodyLimit ?? 20 * 1024 * 1024,
    });
  await app.ready();
  return Object.assign(app, { valoraRoutes: routes, valoraLifecycle: lifecycle });
}
