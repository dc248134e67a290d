import { SpanKind, SpanStatusCode, context, trace, type Span, type Tracer } from "@opentelemetry/api";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { extractFromHeaders, tracingOn } from "@valora/kit";

const spans = new WeakMap<FastifyRequest, Span>();

/** The request's server span, to add what the handler learns (the tenant, the asset class). */
export const requestSpan = (req: FastifyRequest): Span | undefined => spans.get(req);

/**
 * A server span per REST request (OpenTelemetry HTTP semantic conventions), child of the caller's
 * W3C `traceparent` when it sends one, active for the hooks and the handler so every call the
 * request makes (auth, quota, the orchestrator) is its child. Registered first, so it also times
 * refusals. Nothing is done when the process records no spans.
 */
export function traceRequests(app: FastifyInstance, tracer: Tracer): void {
  if (!tracingOn()) return;
  app.addHook("onRequest", (req, _reply, done) => {
    const route = req.routeOptions.url;
    const parent = extractFromHeaders(req.headers);
    const span = tracer.startSpan(
      route ? `${req.method} ${route}` : req.method,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "http.request.method": req.method,
          "url.path": req.url.split("?")[0]!,
          "url.scheme": req.protocol,
          ...(route ? { "http.route": route } : {}),
          "client.address": req.ip,
          ...(req.headers["user-agent"] ? { "user_agent.original": req.headers["user-agent"] } : {}),
          "valora.request_id": req.id,
        },
      },
      parent,
    );
    spans.set(req, span);
    context.with(trace.setSpan(parent, span), done);
  });
  app.addHook("onResponse", (req, reply, done) => {
    const span = spans.get(req);
    if (span) {
      span.setAttribute("http.response.status_code", reply.statusCode);
      if (req.principal) span.setAttribute("valora.tenant_id", req.principal.tenantId);
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    }
    done();
  });
}
