import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { Health } from "./health.js";
import type { Logger } from "./logger.js";

export interface OpsServerOptions {
  registry: Registry;
  health: Health;
  logger: Logger;
}

export interface OpsServer {
  server: Server;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

/**
 * The operational HTTP endpoints every pod exposes: `/metrics` (Prometheus text format),
 * `/healthz` (liveness) and `/readyz` (readiness, with the checks as JSON).
 * Services that already run fastify mount the same handlers there instead.
 */
export function createOpsServer(options: OpsServerOptions): OpsServer {
  const { registry, health, logger } = options;
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (status: number, type: string, body: string): void => {
      res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "text/plain", "method not allowed\n");
    const handle = async (): Promise<void> => {
      switch (path) {
        case "/metrics":
          return send(200, registry.contentType, await registry.metrics());
        case "/healthz":
        case "/livez":
          return send(200, "application/json", JSON.stringify({ live: true }));
        case "/readyz": {
          const report = await health.report();
          return send(report.ready ? 200 : 503, "application/json", JSON.stringify(report));
        }
        default:
          return send(404, "text/plain", "not found\n");
      }
    };
    handle().catch((err: unknown) => {
      logger.error({ err, path }, "ops endpoint failed");
      if (!res.headersSent) send(500, "text/plain", "internal error\n");
    });
  });
  return {
    server,
    listen: (port, host = "0.0.0.0") =>
      new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => {
          server.off("error", reject);
          resolve((server.address() as AddressInfo).port);
        });
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
