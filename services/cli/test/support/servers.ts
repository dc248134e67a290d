import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { freePort } from "@valora/kit/testing";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The newest Debian PostgreSQL server binaries, or undefined where none is installed. */
export function postgresBin(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root).sort((a, b) => Number(a) - Number(b));
  const bin = versions.length ? join(root, versions.at(-1)!, "bin") : undefined;
  return bin && existsSync(join(bin, "initdb")) ? bin : undefined;
}

export const redisServerBin = (): string | undefined =>
  spawnSync("which", ["redis-server"], { encoding: "utf8" }).stdout.trim() || undefined;

/** PostgreSQL refuses to run as root: run its tools as the `postgres` user then. */
const asOwner = (cmd: string, args: string[]): [string, string[]] =>
  process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];

/**
 * A PostgreSQL server of this test's own, in a temporary directory on a free loopback port, that
 * the test can stop and start like an operator restarting the database (`pg_ctl stop -m fast`).
 */
export class PostgresServer {
  private constructor(
    private readonly bin: string,
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(bin: string): Promise<PostgresServer> {
    const dir = mkdtempSync(join(tmpdir(), "valora-chaos-pg-"));
    if (process.getuid?.() === 0)
      chownSync(dir, Number(execFileSync("id", ["-u", "postgres"]).toString()), 0);
    const server = new PostgresServer(bin, dir, await freePort());
    server.run("initdb", ["-D", join(dir, "data"), "-U", "valora", "--auth=trust", "-E", "UTF8"]);
    server.start();
    server.run("createdb", ["-h", "127.0.0.1", "-p", String(server.port), "-U", "valora", "valora"]);
    return server;
  }

  get url(): string {
    return `postgres://valora@127.0.0.1:${this.port}/valora`;
  }

  start(): void {
    const options = `-c listen_addresses=127.0.0.1 -p ${this.port} -c unix_socket_directories=${this.dir} -c fsync=off`;
    this.run("pg_ctl", [
      "-D",
      join(this.dir, "data"),
      "-l",
      join(this.dir, "pg.log"),
      "-w",
      "-o",
      options,
      "start",
    ]);
  }

  /** What a failover or a minor-version restart does: every connection is terminated. */
  stop(): void {
    this.run("pg_ctl", ["-D", join(this.dir, "data"), "-m", "fast", "-w", "stop"]);
  }

  destroy(): void {
    spawnSync(
      ...asOwner(join(this.bin, "pg_ctl"), ["-D", join(this.dir, "data"), "-m", "immediate", "stop"]),
    );
    rmSync(this.dir, { recursive: true, force: true });
  }

  private run(tool: string, args: string[]): void {
    const [cmd, argv] = asOwner(join(this.bin, tool), args);
    const r = spawnSync(cmd, argv, { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${tool} failed: ${r.stderr || r.stdout}`);
  }
}

/** A Redis server of this test's own on a free loopback port, stopped and started at will. */
export class RedisServer {
  private constructor(
    private readonly bin: string,
    readonly dir: string,
    readonly port: number,
  ) {}

  static async create(bin: string): Promise<RedisServer> {
    const server = new RedisServer(bin, mkdtempSync(join(tmpdir(), "valora-chaos-redis-")), await freePort());
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const args = ["--bind", "127.0.0.1", "--port", String(this.port), "--save", "", "--appendonly", "no"];
    execFileSync(this.bin, [...args, "--daemonize", "yes", "--dir", this.dir, "--pidfile", this.pidFile]);
    for (let i = 0; i < 50 && !this.pinged(); i++) await new Promise((r) => setTimeout(r, 100));
  }

  stop(): void {
    spawnSync("redis-cli", ["-p", String(this.port), "shutdown", "nosave"]);
  }

  destroy(): void {
    this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private get pidFile(): string {
    return join(this.dir, "redis.pid");
  }

  private pinged(): boolean {
    return (
      spawnSync("redis-cli", ["-p", String(this.port), "ping"], { encoding: "utf8" }).stdout.trim() === "PONG"
    );
  }
}
