import {
  makeInformer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from "@kubernetes/client-node";
import type { Logger } from "@valora/kit";

export type ObjectHandler<T> = (type: "add" | "update" | "delete", obj: T) => void;

/**
 * List-watch with a local cache on top of client-node's informer, which re-lists on 410 Gone but
 * stops on any other error: this wrapper restarts it with capped exponential backoff, so a dropped
 * connection or an API server restart only delays events. Handlers see every change once.
 */
export class ResilientInformer<T extends KubernetesObject> {
  private readonly informer: ReturnType<typeof makeInformer<T>>;
  private readonly handlers: ObjectHandler<T>[] = [];
  private stopped = false;
  private backoffMs = 250;
  private synced = false;
  private syncWaiters: (() => void)[] = [];
  private restarts = 0;

  constructor(
    kc: KubeConfig,
    readonly path: string,
    list: () => Promise<KubernetesListObject<T>>,
    private readonly logger: Logger,
    labelSelector?: string,
  ) {
    this.informer = makeInformer<T>(kc, path, list, labelSelector);
    this.informer.on("add", (o) => this.emit("add", o));
    this.informer.on("update", (o) => this.emit("update", o));
    this.informer.on("delete", (o) => this.emit("delete", o));
    this.informer.on("connect", () => {
      this.backoffMs = 250;
      if (!this.synced) {
        this.synced = true;
        for (const w of this.syncWaiters) w();
        this.syncWaiters = [];
      }
    });
    this.informer.on("error", (err: unknown) => {
      if (this.stopped) return;
      const delay = this.backoffMs;
      this.backoffMs = Math.min(this.backoffMs * 2, 30_000);
      this.restarts++;
      this.logger.warn(
        { path, err: err instanceof Error ? err.message : String(err), retryInMs: delay },
        "watch failed; restarting informer",
      );
      setTimeout(() => {
        if (!this.stopped) void this.informer.start().catch(() => undefined);
      }, delay);
    });
  }

  get restartCount(): number {
    return this.restarts;
  }

  onChange(handler: ObjectHandler<T>): void {
    this.handlers.push(handler);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.informer.start();
  }

  /** Resolves once the first list has filled the cache. */
  waitForSync(): Promise<void> {
    return this.synced ? Promise.resolve() : new Promise((r) => this.syncWaiters.push(r));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.informer.stop();
  }

  get(namespace: string, name: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.informer.list(namespace);
  }

  private emit(type: "add" | "update" | "delete", obj: T): void {
    for (const h of this.handlers) h(type, obj);
  }
}
