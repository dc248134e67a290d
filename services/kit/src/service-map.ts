import { readFileSync, statSync } from "node:fs";

/**
 * Where Kubernetes would resolve a Service name, `valora up` has loopback proxies: its process
 * backend writes `{ "<name>.<namespace>:<port>": "127.0.0.1:<local port>" }` to the file named by
 * VALORA_SERVICE_MAP (re-read when it changes). Every gRPC client resolves its address through
 * here, so the same endpoints the operator writes into status work in a cluster and on a laptop.
 * Without the variable, or for any other address, the address is returned as given.
 */
export function resolveServiceAddress(
  address: string,
  env: Record<string, string | undefined> = process.env,
): string {
  const file = env["VALORA_SERVICE_MAP"];
  if (!file) return address;
  const key = serviceKey(address);
  if (!key) return address;
  return readMap(file)[key] ?? address;
}

/** Pure: "<name>.<namespace>:<port>" for a Service address (name.ns[.svc[.cluster.local]]:port); undefined for anything else. */
export function serviceKey(address: string): string | undefined {
  const m = /^([a-z0-9-]+)\.([a-z0-9-]+)(?:\.svc(?:\.cluster\.local)?)?:(\d+)$/.exec(
    address.replace(/^dns:(\/\/\/)?/, ""),
  );
  return m ? `${m[1]}.${m[2]}:${m[3]}` : undefined;
}

let cached: { file: string; mtimeMs: number; map: Record<string, string> } | undefined;

function readMap(file: string): Record<string, string> {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(file).mtimeMs;
  } catch {
    return {};
  }
  if (cached?.file !== file || cached.mtimeMs !== mtimeMs) {
    try {
      cached = { file, mtimeMs, map: JSON.parse(readFileSync(file, "utf8")) as Record<string, string> };
    } catch {
      return cached?.file === file ? cached.map : {}; // mid-write: the previous map
    }
  }
  return cached.map;
}
