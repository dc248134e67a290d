import { createGrpcServer, type ServiceRegistration } from "./grpc/server.js";
import { createOpsServer, type OpsServer } from "./ops-server.js";
import type { ServiceBase } from "./service.js";

/**
 * What every gRPC service pod does at start: serve its services on `grpcPort` (stopped first at
 * shutdown: readiness fails, in-flight calls drain) and `/metrics`, `/healthz`, `/readyz` on
 * `metricsPort`. Register `ops.close()` as the last shutdown step, so probes and metrics answer
 * until the end.
 */
export async function serveGrpc(
  base: ServiceBase,
  o: { services: ServiceRegistration[]; host: string; grpcPort: number; metricsPort: number },
): Promise<{ port: number; opsPort: number; ops: OpsServer }> {
  const server = createGrpcServer({ ...base, services: o.services });
  const port = await server.listen(`${o.host}:${o.grpcPort}`);
  base.shutdown.register("grpc", () => server.shutdown());
  const ops = createOpsServer(base);
  const opsPort = await ops.listen(o.metricsPort, o.host);
  return { port, opsPort, ops };
}
