import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import type { Logger } from "@valora/kit";

export interface ChildService {
  child: ChildProcess;
  /** The log line that said it was ready. */
  ready: Record<string, unknown>;
  /** The earlier line carrying its ports. */
  listening: Record<string, unknown>;
  stop(): Promise<void>;
}

/**
 * Runs `valora serve <service> ...` as a child process, as a pod would run it, forwarding its
 * JSON log lines; resolves once it logs `readyMessage`. Separate processes let `valora up` use
 * every core (TreeSHAP and onnxruntime on one, the edge on another), as pods do in a cluster.
 */
export function startChildService(args: string[], env: Record<string, string | undefined>, o: { readyMessage: string; listeningMessage: string; failMessage?: string; logger: Logger; timeoutMs?: number }): Promise<ChildService> {
  const bin = fileURLToPath(new URL("./bin.js", import.meta.url));
  const child = spawn(process.execPath, [bin, "serve", ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  let listening: Record<string, unknown> = {};
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args[0]} not ready after ${o.timeoutMs ?? 120_000} ms`)), o.timeoutMs ?? 120_000);
    const early = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`${args[0]} exited with ${code} before it was ready`));
    };
    child.once("exit", early);
    createInterface({ input: child.stdout }).on("line", (line) => {
      process.stdout.write(`${line}\n`);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (parsed["msg"] === o.listeningMessage) listening = parsed;
      if (o.failMessage && parsed["msg"] === o.failMessage) {
        clearTimeout(timer);
        child.off("exit", early);
        child.kill("SIGTERM");
        reject(new Error(`${args[0]}: ${o.failMessage}`));
        return;
      }
      if (parsed["msg"] !== o.readyMessage) return;
      clearTimeout(timer);
      child.off("exit", early);
      let stopping = false;
      child.once("exit", (code, signal) => {
        if (!stopping) o.logger.error({ service: args[0], code, signal }, "child service exited; requests that need it fall back or fail");
      });
      resolve({
        child,
        ready: parsed,
        listening,
        stop: () =>
          new Promise<void>((done) => {
            stopping = true;
            if (child.exitCode !== null || child.signalCode !== null) return done();
            child.once("exit", () => done());
            child.kill("SIGTERM");
          }),
      });
    });
  });
}
