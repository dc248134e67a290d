import { loadConfig, vars, z } from "../config.js";
import { createGrpcServer } from "../grpc/server.js";
import { createOpsServer } from "../ops-server.js";
import { createServiceBase } from "../service.js";
import { echoService } from "./echo.js";

const EchoConfig = z.object({
  GRPC_PORT: vars.port(9090),
  METRICS_PORT: vars.port(9464),
  HOST: vars.host("0.0.0.0"),
  LOG_LEVEL: vars.logLevel(),
  SHUTDOWN_DRAIN_DELAY_MS: vars.int(0),
});

/** `valora serve echo`: wiring from configuration only. */
export async function main(env: Record<string, string | undefined> = process.env): Promise<void> {
  const config = loadConfig(EchoConfig, env);
  const base = createServiceBase({
    name: "echo",
    logLevel: config.LOG_LEVEL,
    drainDelayMs: config.SHUTDOWN_DRAIN_DELAY_MS,
    exit: (code) => process.exit(code),
  });
  const grpc = createGrpcServer({ ...base, services: [echoService()] });
  const ops = createOpsServer(base);
  const grpcPort = await grpc.listen(`${config.HOST}:${config.GRPC_PORT}`);
  const opsPort = await ops.listen(config.METRICS_PORT, config.HOST);
  base.shutdown.register("grpc", () => grpc.shutdown());
  base.shutdown.register("ops-http", () => ops.close());
  base.shutdown.installSignalHandlers();
  base.logger.info({ grpcPort, opsPort }, "echo service listening");
}
