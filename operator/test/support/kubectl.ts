import { spawn } from "node:child_process";
import { join } from "node:path";

const script = join(import.meta.dirname, "..", "..", "..", "scripts", "kubectl.mjs");

/**
 * The real kubectl (1.34, from the npm package that ships it) against a server of this process:
 * run alongside, never blocking the event loop that serves it.
 */
export function kubectl(
  server: string,
  args: string[],
  input?: string,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [script, "--server", server, ...args], { timeout: 30_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("close", (status) => resolve({ status, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}
