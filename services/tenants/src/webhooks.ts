import { createHmac, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import {
  DegradedLog,
  ValoraError,
  counter,
  withTransaction,
  type Logger,
  type Pool,
  type Registry,
} from "@valora/kit";

export const WEBHOOK_EVENTS = ["valuation.completed", "job.completed", "model.promoted"] as const;

/**
 * Pure: the `Valora-Signature` header for a body sent at `timestamp` (seconds): `t=<ts>,v1=<hex>`
 * where v1 is HMAC-SHA256 over `<ts>.<body>` with the webhook's secret. Receivers recompute it and
 * refuse old timestamps, which stops replays (the scheme Stripe uses for its own webhooks).
 */
export function signWebhook(secret: string, body: string, timestamp: number): string {
  return `t=${timestamp},v1=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/** Pure: checks a signature header as a receiver would, with a tolerance in seconds. */
export function verifyWebhook(
  secret: string,
  body: string,
  header: string,
  nowSeconds: number,
  toleranceSeconds = 300,
): boolean {
  const parts = Object.fromEntries(header.split(",").map((p) => p.split("=", 2) as [string, string]));
  const t = Number(parts["t"]);
  if (!Number.isFinite(t) || Math.abs(nowSeconds - t) > toleranceSeconds || !parts["v1"]) return false;
  const expected = Buffer.from(signWebhook(secret, body, t).split("v1=")[1]!, "hex");
  const given = Buffer.from(parts["v1"], "hex");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Pure: seconds before attempt n+1 after n failed attempts (exponential, capped at an hour). */
export function retryDelaySeconds(attempts: number, baseSeconds = 5): number {
  return Math.min(3600, baseSeconds * 2 ** Math.max(0, attempts - 1));
}

const PRIVATE_V4 = [
  /^10\./,
  /^127\./,
  /^169\.254\./,
  /^192\.168\./,
  /^172\.(1[6-9]|2\d|3[01])\./,
  /^0\./,
  /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./,
];

/**
 * Pure: refuses webhook URLs that would let a tenant make the platform call inside its own
 * network (SSRF): https only, and no loopback, link-local or private literal addresses, unless the
 * operator allows them (local development, tests). Names are resolved at delivery by the HTTP
 * client; a DNS name pointing inside is not caught here (egress NetworkPolicy covers that).
 */
export function checkWebhookUrl(raw: string, options: { allowHttp: boolean; allowPrivate: boolean }): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ValoraError("INVALID_ARGUMENT", "webhook url is not a URL", {
      details: [{ field: "url", description: "an absolute https URL" }],
    });
  }
  const bad = (description: string) =>
    new ValoraError("INVALID_ARGUMENT", `webhook url refused: ${description}`, {
      details: [{ field: "url", description }],
    });
  if (url.protocol !== "https:" && !(options.allowHttp && url.protocol === "http:")) throw bad("https only");
  if (url.username || url.password) throw bad("no credentials in the URL");
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const internal =
    host === "localhost" ||
    host.endsWith(".localhost") ||
    (isIP(host) === 4 && PRIVATE_V4.some((r) => r.test(host))) ||
    (isIP(host) === 6 && (host === "::1" || /^f[cd]|^fe80/i.test(host)));
  if (internal && !options.allowPrivate)
    throw bad("private, loopback and link-local addresses are not allowed");
  return url.toString();
}

export interface DeliveryWorkerOptions {
  pool: Pool;
  logger: Logger;
  /** Rate-limited warnings while the database is away (default: one of its own on `logger`). */
  degraded?: DegradedLog;
  registry?: Registry;
  fetch?: typeof fetch;
  /** Attempts before a delivery is marked failed. */
  maxAttempts?: number;
  baseDelaySeconds?: number;
  timeoutMs?: number;
  /** Seconds a claimed delivery stays invisible to other workers (crash → it is retried). */
  leaseSeconds?: number;
  pollMs?: number;
}

interface Claimed {
  id: string;
  attempts: number;
  url: string;
  secret: string;
  event_id: string;
  type: string;
  data: unknown;
  created_at: Date;
}

/**
 * Delivers queued webhook events: claims due deliveries with FOR UPDATE SKIP LOCKED (several
 * replicas share the queue), leases them, POSTs the signed JSON, and records the outcome — retried
 * with exponential backoff until maxAttempts. A delivery is at-least-once: receivers dedupe by
 * the `Valora-Event-Id` header.
 */
export class DeliveryWorker {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private readonly outcomes;
  private readonly degraded: DegradedLog;

  constructor(private readonly o: DeliveryWorkerOptions) {
    this.degraded =
      o.degraded ?? new DegradedLog({ logger: o.logger, ...(o.registry ? { registry: o.registry } : {}) });
    this.outcomes = o.registry
      ? counter(o.registry, "valora_webhook_deliveries_total", "Webhook delivery attempts by outcome.", [
          "outcome",
        ])
      : undefined;
  }

  start(): void {
    if (this.timer !== undefined) return;
    const tick = () => {
      this.running = this.drain()
        .then(
          () => undefined,
          (err: unknown) => this.degraded.note("webhook-deliveries", "webhook delivery pass failed", err),
        )
        .finally(() => {
          if (this.timer !== undefined) this.timer = setTimeout(tick, this.o.pollMs ?? 1000);
        });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Delivers everything due now; returns how many attempts were made. */
  async drain(): Promise<number> {
    let total = 0;
    for (;;) {
      const batch = await this.claim(10);
      if (batch.length === 0) return total;
      await Promise.all(batch.map((d) => this.attempt(d)));
      total += batch.length;
    }
  }

  private async claim(limit: number): Promise<Claimed[]> {
    return withTransaction(this.o.pool, async (c) => {
      const { rows } = await c.query(
        `SELECT d.id, d.attempts, w.url, w.secret, d.event_id, e.type, e.data, e.created_at
           FROM webhook_deliveries d
           JOIN webhooks w ON w.id = d.webhook_id
           JOIN webhook_events e ON e.tenant_id = d.tenant_id AND e.event_id = d.event_id
           JOIN tenants t ON t.id = d.tenant_id AND t.status = 'active'
          WHERE d.status = 'pending' AND d.next_attempt_at <= now()
          ORDER BY d.next_attempt_at LIMIT $1 FOR UPDATE OF d SKIP LOCKED`,
        [limit],
      );
      if (rows.length > 0)
        await c.query(
          "UPDATE webhook_deliveries SET next_attempt_at = now() + make_interval(secs => $2) WHERE id = ANY($1)",
          [rows.map((r: Claimed) => r.id), this.o.leaseSeconds ?? 60],
        );
      return rows as Claimed[];
    });
  }

  private async attempt(d: Claimed): Promise<void> {
    const body = JSON.stringify({
      id: d.event_id,
      type: d.type,
      createdAt: d.created_at.toISOString(),
      data: d.data,
    });
    const attempts = d.attempts + 1;
    let status = 0;
    let error = "";
    try {
      const res = await (this.o.fetch ?? fetch)(d.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "Valora-Webhooks/1",
          "valora-event-id": d.event_id,
          "valora-event-type": d.type,
          "valora-signature": signWebhook(d.secret, body, Math.floor(Date.now() / 1000)),
        },
        body,
        redirect: "manual",
        signal: AbortSignal.timeout(this.o.timeoutMs ?? 5000),
      });
      status = res.status;
      await res.body?.cancel();
      if (status < 200 || status >= 300) error = `HTTP ${status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const ok = error === "";
    const gaveUp = !ok && attempts >= (this.o.maxAttempts ?? 8);
    this.outcomes?.inc({ outcome: ok ? "delivered" : gaveUp ? "failed" : "retry" });
    await this.o.pool.query(
      `UPDATE webhook_deliveries SET attempts = $2, last_status_code = $3, last_error = $4, status = $5,
              delivered_at = CASE WHEN $5 = 'delivered' THEN now() END,
              next_attempt_at = now() + make_interval(secs => $6)
        WHERE id = $1`,
      [
        d.id,
        attempts,
        status,
        error,
        ok ? "delivered" : gaveUp ? "failed" : "pending",
        ok || gaveUp ? 0 : retryDelaySeconds(attempts, this.o.baseDelaySeconds),
      ],
    );
    if (!ok)
      this.o.logger.warn({ delivery: d.id, url: d.url, attempts, error, gaveUp }, "webhook delivery failed");
  }
}
