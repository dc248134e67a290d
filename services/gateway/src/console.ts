import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import fastifyStatic from "@fastify/static";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { okEnvelope } from "@valora/kit";
import { envelopeOf } from "./schemas.js";

export interface ConsoleOptions {
  /** The console's build output (index.html and hashed assets/). */
  dir: string;
  /** Sign-in with OIDC (authorization code + PKCE in the browser) when set; API keys always work. */
  oidc?: { issuer: string; clientId: string; scopes?: string; audience?: string };
  /** A raster tile template (`https://tiles.example/{z}/{x}/{y}.png`) under the valuation map; none by default. */
  tileUrl?: string;
}

/** Where the console's build lands in this repository and in the image (services/console/dist). */
export function defaultConsoleDir(): string {
  return fileURLToPath(new URL("../../console/dist/", import.meta.url));
}

const ConsoleConfig = z.object({
  oidc: z
    .object({ issuer: z.string(), clientId: z.string(), scopes: z.string(), audience: z.string().nullable() })
    .nullable(),
  tileUrl: z.string().nullable(),
});

/** Pure: the origin of a URL template, for the CSP (`{z}` placeholders are not part of it). */
function originOf(url: string | undefined): string {
  if (!url) return "";
  try {
    return new URL(url.replace(/\{[a-z]\}/g, "0")).origin;
  } catch {
    return "";
  }
}

/**
 * Pure: the console's Content-Security-Policy. Scripts come only from this origin (Vite emits no
 * inline script); styles may be inline because the component library sets CSS variables in a
 * style element; the API is same-origin; the OIDC issuer is reachable for discovery and tokens.
 */
export function consoleCsp(o: Pick<ConsoleOptions, "oidc" | "tileUrl">): string {
  const issuer = originOf(o.oidc?.issuer);
  const tiles = originOf(o.tileUrl);
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    `img-src 'self' data: blob:${tiles ? ` ${tiles}` : ""}`,
    `connect-src 'self'${issuer ? ` ${issuer}` : ""}`,
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    `form-action 'self'${issuer ? ` ${issuer}` : ""}`,
    "frame-ancestors 'none'",
  ].join("; ");
}

/** Paths that belong to the API or operations: an unknown one is a JSON 404, never the SPA. */
const API_PATHS = /^\/(v1|v2|docs|openapi\.json|healthz|readyz|metrics|assets)(\/|$|\?|:)/;

/**
 * Serves the console's static build at / (hashed assets cached for a year, index.html never
 * cached, every HTML answer with the CSP) and returns what sends the app's shell, for a page's
 * URL opened directly (the gateway's not-found handler asks `wantsConsolePage`). Without a build
 * the root says how to make one, and there is no shell to send.
 */
export async function consoleRoutes(
  app: FastifyInstance,
  o: ConsoleOptions,
): Promise<((reply: FastifyReply) => FastifyReply) | undefined> {
  const typed = app.withTypeProvider<ZodTypeProvider>();
  typed.get(
    "/v1/console/config",
    {
      schema: {
        tags: ["console"],
        summary: "What the web console needs before sign-in: OIDC issuer and client, map tiles",
        security: [],
        response: { 200: envelopeOf(ConsoleConfig) },
      },
    },
    async (req) =>
      okEnvelope(
        {
          oidc: o.oidc
            ? {
                issuer: o.oidc.issuer,
                clientId: o.oidc.clientId,
                scopes: o.oidc.scopes ?? "openid profile email",
                audience: o.oidc.audience ?? null,
              }
            : null,
          tileUrl: o.tileUrl ?? null,
        },
        req.id,
      ),
  );

  // Every HTML answer (the root, index.html, a page's URL) carries the same headers.
  const csp = consoleCsp(o);
  const htmlHeaders = {
    "content-security-policy": csp,
    "cache-control": "no-cache",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
  };
  if (!existsSync(join(o.dir, "index.html"))) {
    app.get("/", { schema: { hide: true } }, async (_req, reply) =>
      reply
        .headers(htmlHeaders)
        .type("text/plain; charset=utf-8")
        .send("The Valora console is not built here: run `npm run build` (API at /v1, docs at /docs).\n"),
    );
    return undefined;
  }
  await app.register(fastifyStatic, {
    root: o.dir,
    prefix: "/",
    index: ["index.html"],
    // Hashed file names change with their content: cache them for good. The HTML names them: never.
    cacheControl: false,
    setHeaders: (res, path) => {
      if (path.endsWith(".html")) res.headers(htmlHeaders);
      else
        res.headers({
          "cache-control": /[\\/]assets[\\/]/.test(path)
            ? "public, max-age=31536000, immutable"
            : "public, max-age=3600",
          "x-content-type-options": "nosniff",
        });
    },
  });
  return (reply) => reply.headers(htmlHeaders).sendFile("index.html");
}

/** Pure: should an unmatched request get the console's index.html (a page's URL opened directly)? */
export function wantsConsolePage(req: Pick<FastifyRequest, "method" | "url" | "headers">): boolean {
  if (req.method !== "GET" && req.method !== "HEAD") return false;
  if (API_PATHS.test(req.url)) return false;
  const accept = req.headers.accept ?? "";
  return accept.includes("text/html");
}

/** The console's options from the gateway's configuration (absent when turned off). */
export function consoleOptions(c: {
  CONSOLE_DIR?: string | undefined;
  CONSOLE_OIDC_CLIENT_ID?: string | undefined;
  CONSOLE_OIDC_SCOPES?: string | undefined;
  CONSOLE_TILE_URL?: string | undefined;
  OIDC_ISSUER?: string | undefined;
  OIDC_AUDIENCE?: string | undefined;
}): ConsoleOptions | undefined {
  if (c.CONSOLE_DIR === "off") return undefined;
  return {
    dir: c.CONSOLE_DIR ?? defaultConsoleDir(),
    ...(c.OIDC_ISSUER && c.CONSOLE_OIDC_CLIENT_ID
      ? {
          oidc: {
            issuer: c.OIDC_ISSUER,
            clientId: c.CONSOLE_OIDC_CLIENT_ID,
            ...(c.CONSOLE_OIDC_SCOPES ? { scopes: c.CONSOLE_OIDC_SCOPES } : {}),
            ...(c.OIDC_AUDIENCE ? { audience: c.OIDC_AUDIENCE } : {}),
          },
        }
      : {}),
    ...(c.CONSOLE_TILE_URL ? { tileUrl: c.CONSOLE_TILE_URL } : {}),
  };
}
