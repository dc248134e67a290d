import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createInterface } from "node:readline";

/** Helpers shared by the benchmark scripts: load generators run as separate processes (wrk, h2load). */
export function requireTool(name: string, pkg: string): void {
  try {
    execFileSync("which", [name], { stdio: "ignore" });
  } catch {
    console.error(`${name} is not installed: apt-get install -y ${pkg}`);
    process.exit(2);
  }
}

export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

const toMs = (v: string, unit: string): number => Number(v) * ({ us: 0.001, ms: 1, s: 1000 }[unit] ?? 1);

/** wrk with a POST body; percentiles from --latency. */
export function wrk(
  url: string,
  body: string | string[],
  connections: number,
  seconds: number,
  threads = 1,
  headers: Record<string, string> = {},
): LoadResult {
  const script = `/tmp/valora-wrk-${process.pid}.lua`;
  const head = Object.entries({ "Content-Type": "application/json", ...headers })
    .map(([k, v]) => `wrk.headers[${JSON.stringify(k)}] = ${JSON.stringify(v)}\n`)
    .join("");
  // Several bodies: each request takes the next one (a different asset each time).
  const bodies = Array.isArray(body)
    ? `local bodies = {${body.map((b) => JSON.stringify(b)).join(",")}}\nlocal i = 0\nrequest = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, nil, nil, bodies[i])\nend\n`
    : `wrk.body = ${JSON.stringify(body)}\n`;
  writeFileSync(script, `wrk.method = "POST"\n${head}${bodies}`);
  const out = execFileSync(
    "wrk",
    [
      "-t",
      String(Math.min(threads, connections)),
      "-c",
      String(connections),
      "-d",
      `${seconds}s`,
      "--latency",
      "-s",
      script,
      url,
    ],
    { encoding: "utf8" },
  );
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0);
  const pct = (p: string): number => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    return m ? toMs(m[1]!, m[2]!) : Number.NaN;
  };
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (socketErrors ? socketErrors.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p50Ms: pct("50"), p99Ms: pct("99"), errors };
}

/**
 * h2load posting a length-prefixed protobuf message as gRPC (HTTP/2 POST, content-type
 * application/grpc, te: trailers). Percentiles come from the per-request log it writes.
 */
export function h2loadGrpc(
  url: string,
  message: Uint8Array,
  connections: number,
  streams: number,
  seconds: number,
): LoadResult {
  const data = `/tmp/valora-h2load-${process.pid}.bin`;
  const log = `/tmp/valora-h2load-${process.pid}.log`;
  const framed = Buffer.alloc(5 + message.byteLength);
  framed.writeUInt8(0, 0);
  framed.writeUInt32BE(message.byteLength, 1);
  Buffer.from(message).copy(framed, 5);
  writeFileSync(data, framed);
  const out = execFileSync(
    "h2load",
    [
      "-c",
      String(connections),
      "-m",
      String(streams),
      "-D",
      String(seconds),
      "-d",
      data,
      "-H",
      "content-type: application/grpc",
      "-H",
      "te: trailers",
      "--log-file",
      log,
      url,
    ],
    { encoding: "utf8" },
  );
  const done =
    /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(out);
  const latencies = readFileSync(log, "utf8")
    .trim()
    .split("\n")
    .map((line) => Number(line.split("\t")[2]) / 1000)
    .filter((v) => Number.isFinite(v))
    .sort((a, b) => a - b);
  const q = (p: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return {
    rps: Number(finished?.[2] ?? 0),
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    errors: Number(done?.[3] ?? 0) + Number(done?.[4] ?? 0),
  };
}

/** Starts `node services/cli/dist/bin.js ...` and resolves once it logs `readyMessage`. */
export async function startService(
  args: string[],
  env: Record<string, string | undefined>,
  readyMessage: string,
  onReady?: (line: string) => void,
  cwd?: string,
): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["services/cli/dist/bin.js", ...args], {
    env: { ...process.env, ...env },
    ...(cwd ? { cwd } : {}),
    stdio: ["ignore", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout });
  await new Promise<void>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`service exited with ${code} before it was ready`)));
    lines.on("line", (line) => {
      if (line.includes(readyMessage)) {
        onReady?.(line);
        resolve();
      }
    });
  });
  return child;
}

export function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** Resident memory of a process and all its descendants (`valora up` runs model servers as children). */
export function rssTreeMb(pid: number): number {
  return processTree(pid).reduce((sum, p) => {
    try {
      return sum + rssMb(p);
    } catch {
      return sum;
    }
  }, 0);
}

export function table(rows: Record<string, string | number>[]): void {
  const cols = Object.keys(rows[0] ?? {});
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c]).length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padStart(width[i]!)).join("  ");
  console.log(line(cols));
  for (const r of rows) console.log(line(cols.map((c) => String(r[c]))));
}

/** A house as clients send it (the real-estate AssetPipeline's field names) from a row of the bundled Ames data. */
export const amesHouse = (r: Record<string, string>) => ({
  gr_liv_area: Number(r["Gr_Liv_Area"]),
  lot_area: Number(r["Lot_Area"]),
  total_bsmt_sf: Number(r["Total_Bsmt_SF"]),
  first_flr_sf: Number(r["First_Flr_SF"]),
  latitude: Number(r["Latitude"]),
  longitude: Number(r["Longitude"]),
  year_built: Number(r["Year_Built"]),
  neighborhood: r["Neighborhood"],
});

/** Every process of a tree (`valora up` and the pods it runs), root first. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i++) {
    try {
      all.push(
        ...readFileSync(`/proc/${all[i]}/task/${all[i]}/children`, "utf8")
          .trim()
          .split(/\s+/)
          .filter(Boolean)
          .map(Number),
      );
    } catch {
      /* gone meanwhile */
    }
  }
  return all;
}

/** Which part of Valora a process of `valora up`'s tree is: the platform process, a pipeline, a model server. */
export function roleOf(pid: number, root: number): "platform" | "pipelines" | "model servers" | "other" {
  if (pid === root) return "platform";
  let cmd = "";
  try {
    cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
  } catch {
    return "other";
  }
  // bench/transport-chain.ts's processes stand in for the same roles.
  return /serve pipeline|transport-chain\.ts pipeline/.test(cmd)
    ? "pipelines"
    : /serve model-server|transport-chain\.ts model-server/.test(cmd)
      ? "model servers"
      : "other";
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU time (user + system, ms) of one process so far, from /proc/<pid>/stat. */
export function cpuMs(pid: number | "self-children"): number {
  const stat = readFileSync(`/proc/${pid === "self-children" ? "self" : pid}/stat`, "utf8");
  // Fields after the command's closing parenthesis; utime/stime are the 14th/15th fields, cutime/cstime the 16th/17th.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return pid === "self-children"
    ? (Number(f[13]) + Number(f[14])) * TICK_MS
    : (Number(f[11]) + Number(f[12])) * TICK_MS;
}

/** A figure summed per role over a process tree (processes gone meanwhile are missed: pods are long-lived). */
function byRole(root: number, read: (pid: number) => number): Map<string, number> {
  const out = new Map<string, number>();
  for (const pid of processTree(root)) {
    try {
      const role = roleOf(pid, root);
      out.set(role, (out.get(role) ?? 0) + read(pid));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** CPU ms per role of a process tree. */
export const cpuByRole = (root: number): Map<string, number> => byRole(root, cpuMs);

/** Proportional set size (MB) per role: memory shared between processes counted once, shared fairly. */
export const pssByRole = (root: number): Map<string, number> =>
  byRole(
    root,
    (pid) =>
      Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"))?.[1] ?? 0) / 1024,
  );
