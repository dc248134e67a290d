import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

/**
 * A real model server (`valora serve model-server`) on loopback serving each model file as the
 * version given, resolved once it says it is ready.
 */
export async function startModelServer(
  bin: string,
  models: { name: string; file: string; version: string }[],
  grpcPort: number,
): Promise<ChildProcess> {
  const server = spawn(
    process.execPath,
    [
      bin,
      "serve",
      "model-server",
      ...models.flatMap((m) => ["--model", `${m.name}=file://${m.file}`]),
      ...models.flatMap((m) => ["--model-version", m.version]),
      "--grpc-port",
      String(grpcPort),
      "--http-port",
      "0",
    ],
    { env: { ...process.env, HOST: "127.0.0.1", LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "inherit"] },
  );
  await new Promise<void>((resolve) =>
    createInterface({ input: server.stdout }).on(
      "line",
      (l) => l.includes("model server ready") && resolve(),
    ),
  );
  return server;
}
