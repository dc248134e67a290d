import { DegradedLog, Health, createLogger, createRegistry } from "@valora/kit";
import { buildGateway, type GatewayDeps } from "./app.js";
import { Authenticator } from "./auth.js";
import { LocalRateLimiter } from "./rate-limit.js";

/**
 * The gateway's OpenAPI document without any service behind it: every optional route group is
 * present (clients that are never called), so the document is the whole public API. The console's
 * API types are generated from it (`npm run api -w @valora/console`).
 */
export async function openApiDocument(): Promise<Record<string, unknown>> {
  const never = new Proxy(
    {},
    { get: () => () => Promise.reject(new Error("the OpenAPI document's gateway calls nothing")) },
  ) as never;
  const logger = createLogger({ service: "openapi", level: "silent" });
  const registry = createRegistry({ service: "openapi" });
  const deps: GatewayDeps = {
    base: { logger, registry, health: new Health(), degraded: new DegradedLog({ logger, registry }) },
    valuations: never,
    tenants: never,
    jobs: never,
    usage: never,
    billing: never,
    market: never,
    ingest: never,
    auth: new Authenticator({ tenants: never }),
    limiter: new LocalRateLimiter(),
    console: { dir: "/nonexistent" },
  };
  const app = await buildGateway(deps);
  await app.ready();
  const doc = app.swagger() as unknown as Record<string, unknown>;
  await app.close();
  return doc;
}
