import { EventEmitter } from "node:events";

export interface CheckResult {
  name: string;
  ok: boolean;
  message?: string;
}

export interface HealthReport {
  live: boolean;
  ready: boolean;
  checks: CheckResult[];
  /** Dependencies that are down while the instance still serves (degraded, yet ready). */
  degraded: CheckResult[];
}

export type ReadinessCheck = () => boolean | Promise<boolean>;

/**
 * Liveness and readiness of one service instance. Readiness is the conjunction of named checks
 * (models loaded, database reachable, ...) and turns false for good once shutdown begins, so load
 * balancers stop sending new work before servers stop accepting it.
 */
export class Health extends EventEmitter<{ change: [boolean] }> {
  private readonly checks = new Map<string, ReadinessCheck>();
  private readonly dependencies = new Map<string, ReadinessCheck>();
  private shuttingDown = false;
  private lastReady: boolean | undefined;
  private checkTimeoutMs: number;

  constructor(options: { checkTimeoutMs?: number } = {}) {
    super();
    this.checkTimeoutMs = options.checkTimeoutMs ?? 2000;
  }

  addCheck(name: string, check: ReadinessCheck): this {
    this.checks.set(name, check);
    return this;
  }

  removeCheck(name: string): void {
    this.checks.delete(name);
  }

  /**
   * A dependency the instance can serve without for a while (cached answers, buffered writes): when
   * its check fails the report lists it under `degraded` and readiness stays as the checks say, so
   * an outage of it does not take every replica out of its Service at once.
   */
  addDependency(name: string, check: ReadinessCheck): this {
    this.dependencies.set(name, check);
    return this;
  }

  setShuttingDown(): void {
    this.shuttingDown = true;
    this.publish(false);
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  async report(): Promise<HealthReport> {
    const [checks, dependencies] = await Promise.all([
      Promise.all([...this.checks].map(([name, check]) => this.run(name, check))),
      Promise.all([...this.dependencies].map(([name, check]) => this.run(name, check))),
    ]);
    if (this.shuttingDown) checks.push({ name: "shutdown", ok: false, message: "shutting down" });
    const ready = checks.every((c) => c.ok);
    this.publish(ready);
    return { live: true, ready, checks, degraded: dependencies.filter((d) => !d.ok) };
  }

  async ready(): Promise<boolean> {
    return (await this.report()).ready;
  }

  private publish(ready: boolean): void {
    if (ready !== this.lastReady) {
      this.lastReady = ready;
      this.emit("change", ready);
    }
  }

  private async run(name: string, check: ReadinessCheck): Promise<CheckResult> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${this.checkTimeoutMs} ms`)),
          this.checkTimeoutMs,
        );
      });
      const ok = await Promise.race([Promise.resolve(check()), timeout]);
      return ok ? { name, ok } : { name, ok, message: "not ready" };
    } catch (err) {
      return { name, ok: false, message: err instanceof Error ? err.message : String(err) };
    } finally {
      clearTimeout(timer);
    }
  }
}
