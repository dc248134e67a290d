import pretty from "pino-pretty";
import { createLogger, type Logger } from "@valora/kit";

/**
 * What a person at a terminal reads: one coloured line per event instead of JSON (pods and pipes
 * keep JSON: `VALORA_LOG_FORMAT=json` forces it here too).
 */
export function terminalLogger(service: string): {
  logger: Logger;
  /** Pods' JSON lines through the same printer (other lines pass as they are). */
  podOutput: (line: string) => void;
} {
  const destination = pretty({
    colorize: true,
    singleLine: true,
    translateTime: "HH:MM:ss",
    ignore: "pid,hostname,service,pod,container",
    messageFormat: "{if pod}[{pod}] {end}{msg}",
  });
  return {
    logger: createLogger({ service, destination }),
    podOutput: (line) => void destination.write(line),
  };
}

/** Whether to write for a person: a terminal, and no request for JSON. */
export const forPeople = (env: Record<string, string | undefined>, isTTY: boolean | undefined): boolean =>
  isTTY === true && env["VALORA_LOG_FORMAT"] !== "json";

export interface ReadySummary {
  rest: string;
  grpc: string;
  kubernetes: string;
  apiKey?: string;
  curl: string;
  database: string;
  cache: string;
  assetClasses: string[];
  readyInMs: number;
}

/** Pure: the box printed once the platform is ready, for a person to copy from. */
export function readyBox(s: ReadySummary): string {
  const lines = [
    `Valora is up in ${(s.readyInMs / 1000).toFixed(1)} s: ${s.assetClasses.join(", ")}`,
    "",
    `  console   ${s.rest}/   (sign in with the admin API key)`,
    `  REST      ${s.rest}/v1   (API docs: ${s.rest}/docs)`,
    `  gRPC      ${s.grpc}`,
    `  kubectl   kubectl --server ${s.kubernetes} get vm,ap,deploy`,
    `  data      ${s.database}; cache: ${s.cache}`,
    ...(s.apiKey
      ? ["", `  admin API key (shown once, store it): ${s.apiKey}`, `  export KEY=${s.apiKey}`]
      : []),
  ];
  const width = Math.max(...lines.map((l) => l.length)) + 2;
  const bar = "─".repeat(width);
  const box = [`┌${bar}┐`, ...lines.map((l) => `│ ${l.padEnd(width - 1)}│`), `└${bar}┘`];
  return [...box, "", "Try it:", `  ${s.curl}`].join("\n");
}
