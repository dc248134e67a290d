import { execFileSync, spawnSync } from "node:child_process";

export const NAMESPACE = process.env["VALORA_NAMESPACE"] ?? "valora";
export const CONTEXT = process.env["KIND_CONTEXT"] ?? "kind-valora";
export const REST = process.env["VALORA_E2E_URL"] ?? "http://127.0.0.1:8080";
export const GRPC = process.env["VALORA_E2E_GRPC"] ?? "127.0.0.1:9090";
export const KEY = process.env["VALORA_E2E_KEY"] ?? "vk_kindkindki_kindkindkindkindkindkindkindkind";

/** Why the kind suites cannot run here, or undefined when a cluster from `make kind-up` answers. */
export function skipReason(): string | undefined {
  if (spawnSync("docker", ["info"], { stdio: "ignore" }).status !== 0)
    return "no Docker engine is running (kind needs one): run `make kind-up` on a machine with Docker";
  if (
    spawnSync("kubectl", ["--context", CONTEXT, "-n", NAMESPACE, "get", "deploy/valora-gateway"], {
      stdio: "ignore",
    }).status !== 0
  )
    return `no Valora release in ${CONTEXT}/${NAMESPACE}: run \`make kind-up\` first`;
  return undefined;
}

export function kubectl(...args: string[]): string {
  return execFileSync("kubectl", ["--context", CONTEXT, "-n", NAMESPACE, ...args], { encoding: "utf8" });
}

export function kubectlApply(yaml: string): void {
  execFileSync("kubectl", ["--context", CONTEXT, "-n", NAMESPACE, "apply", "-f", "-"], {
    input: yaml,
    encoding: "utf8",
  });
}

export async function api<T>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: { data: T; error: { code: string } | null } }> {
  const res = await fetch(`${REST}${path}`, {
    method,
    headers: { authorization: `Bearer ${KEY}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, body: (await res.json()) as { data: T; error: { code: string } | null } };
}

export const CAR = {
  mileage: 8221,
  cylinder: 6,
  doors: 4,
  cruise: true,
  sound: true,
  leather: true,
  make: "Buick",
  body: "sedan",
};
export const HOUSE = {
  gr_liv_area: 1656,
  lot_area: 31770,
  total_bsmt_sf: 1080,
  year_built: 1960,
  latitude: 42.054035,
  longitude: -93.619754,
  garage_cars: 2,
  first_flr_sf: 1656,
};
