import type { Notification, Pool, PoolClient } from "pg";
import type { DegradedLog } from "./degraded.js";

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  /** A number in [0, 1): the jitter's source (Math.random unless a test fixes it). */
  random?: () => number;
}

/**
 * Pure: how long to wait before reconnect attempt `attempt` (0-based): "full jitter" exponential
 * backoff, a uniform draw below min(max, initial × 2^attempt), so replicas that lost the database
 * together do not come back in lock-step.
 */
export function backoffDelayMs(attempt: number, o: BackoffOptions = {}): number {
  const ceiling = Math.min(o.maxMs ?? 10_000, (o.initialMs ?? 200) * 2 ** Math.min(attempt, 30));
  return Math.floor((o.random ?? Math.random)() * ceiling);
}

export interface ListenOptions extends BackoffOptions {
  pool: Pool;
  channels: string[];
  onNotification: (n: Notification) => void;
  /**
   * Called after every (re)connection once LISTEN is in place: notifications sent while the
   * connection was down are never redelivered, so this is where a follower catches up.
   */
  onListening?: () => void;
  degraded?: DegradedLog;
}

export interface PgListener {
  /** Whether LISTEN is currently in place. */
  readonly listening: boolean;
  stop(): Promise<void>;
}

/**
 * A dedicated LISTEN connection that outlives database restarts: when the connection fails it is
 * discarded, a new one is opened with backoff and jitter, LISTEN is issued again and
 * `onListening` runs so the caller reads what it missed.
 */
export function listenWithReconnect(o: ListenOptions): PgListener {
  let client: PoolClient | undefined;
  let stopped = false;
  let attempt = 0;
  let timer: NodeJS.Timeout | undefined;
  let connecting: Promise<void> | undefined;

  const schedule = () => {
    if (stopped || timer) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        connecting = connect();
      },
      backoffDelayMs(attempt++, o),
    );
    timer.unref();
  };

  const lost = (broken: PoolClient, err: unknown) => {
    if (client !== broken) return;
    client = undefined;
    broken.release(true);
    o.degraded?.note("postgres-listen", "LISTEN connection lost; reconnecting", err);
    schedule();
  };

  const connect = async (): Promise<void> => {
    let next: PoolClient | undefined;
    try {
      next = await o.pool.connect();
      const current = next;
      current.on("notification", o.onNotification);
      current.on("error", (err) => lost(current, err));
      current.on("end", () => lost(current, new Error("connection ended")));
      client = current;
      for (const channel of o.channels) await current.query(`LISTEN ${channel}`);
      if (stopped) return;
      attempt = 0;
      o.degraded?.recovered("postgres-listen", "LISTEN connection restored");
      o.onListening?.();
    } catch (err) {
      if (next && client === next) lost(next, err);
      else if (next) next.release(true);
      else {
        o.degraded?.note("postgres-listen", "LISTEN connection unavailable; retrying", err);
        schedule();
      }
    }
  };

  connecting = connect();
  return {
    get listening() {
      return client !== undefined;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await connecting;
      const last = client;
      client = undefined;
      last?.release(true);
    },
  };
}
