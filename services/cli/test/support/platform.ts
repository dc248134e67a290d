import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";

export const root = join(import.meta.dirname, "..", "..", "..", "..");
export const bin = join(root, "services", "cli", "dist", "bin.js");

export interface Banner {
  rest: string;
  grpc: string;
  kubernetes: string;
  apiKey?: string;
  try: string;
}

/** Starts `valora up` as a user would and resolves with its start-up banner. */
export function up(
  dataDir: string,
  env: Record<string, string | undefined> = {},
  args: string[] = [],
): Promise<{ child: ChildProcess; banner: Banner; lines: Record<string, unknown>[] }> {
  const child = spawn(
    process.execPath,
    [bin, "up", "--data-dir", dataDir, "--port", "0", "--grpc-port", "0", "--kube-port", "0", ...args],
    {
      cwd: root,
      env: {
        ...process.env,
        DATABASE_URL: undefined,
        REDIS_URL: undefined,
        VALORA_BOOTSTRAP_API_KEY: undefined,
        ...env,
      },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  const lines: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    child.once("exit", (code) =>
      reject(new Error(`valora up exited with ${code}: ${JSON.stringify(lines.slice(-3))}`)),
    );
    createInterface({ input: child.stdout }).on("line", (l) => {
      if (!l.startsWith("{")) return; // a pod's plain output line
      const line = JSON.parse(l) as Record<string, unknown>;
      lines.push(line);
      if (line["msg"] === "valora is up") resolve({ child, banner: line as unknown as Banner, lines });
    });
  });
}

export const stop = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => {
    child.removeAllListeners("exit");
    child.once("exit", (code) => resolve(code));
    child.kill("SIGTERM");
  });
