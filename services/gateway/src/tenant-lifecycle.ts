import { gzipSync } from "node:zlib";
import type { JobService } from "@valora/proto/valora/v1/jobs_pb";
import type { TenantDataService } from "@valora/proto/valora/v1/tenant_data_pb";
import type { TenantService } from "@valora/proto/valora/v1/tenants_pb";

/** Who acts (a platform administrator), for the audit log. */
export interface ActorInit {
  tenantId: string;
  subject: string;
  ip: string;
}
import { toValoraError, type Client, type DegradedLog, type Logger } from "@valora/kit";

/** Every service holding tenant data, as the gateway reaches them. */
export interface TenantDataClients {
  /** The tenants service's: purged last (it checks the erasure is due and records it). */
  tenants: Pick<Client<typeof TenantDataService>, "exportTenantData" | "purgeTenantData">;
  /** Jobs, ingest, usage, billing (distinct addresses; in one process, none: the tenants' covers all). */
  others: Pick<Client<typeof TenantDataService>, "exportTenantData" | "purgeTenantData">[];
}

export interface LifecycleDeps {
  tenants: Pick<
    Client<typeof TenantService>,
    | "suspendTenant"
    | "resumeTenant"
    | "eraseTenant"
    | "cancelErasure"
    | "startExport"
    | "finishExport"
    | "listTenants"
  >;
  jobs?: Pick<Client<typeof JobService>, "holdTenant">;
  data?: TenantDataClients;
  /** Drop cached principals of the tenant on every gateway replica (its credentials changed). */
  tenantChanged: (tenantId: string) => void;
  logger: Logger;
  timeoutMs: number;
}

/**
 * A tenant's state changes as the platform carries them out: the tenants service records the
 * change, then the jobs are held or released and every gateway replica forgets the tenant's cached
 * principals (so suspension and erasure take effect at once, not after the auth cache's TTL).
 */
export class TenantLifecycleOps {
  constructor(private readonly d: LifecycleDeps) {}

  private async settle(tenantId: string, status: string): Promise<void> {
    await this.d.jobs?.holdTenant({ tenantId, held: status !== "active" }, { timeoutMs: this.d.timeoutMs });
    this.d.tenantChanged(tenantId);
  }

  async suspend(actor: ActorInit, tenantId: string, reason: string) {
    const { tenant } = await this.d.tenants.suspendTenant(
      { actor, tenantId, reason },
      { timeoutMs: this.d.timeoutMs },
    );
    await this.settle(tenantId, tenant!.status);
    return tenant!;
  }

  async resume(actor: ActorInit, tenantId: string) {
    const { tenant } = await this.d.tenants.resumeTenant(
      { actor, tenantId },
      { timeoutMs: this.d.timeoutMs },
    );
    await this.settle(tenantId, tenant!.status);
    return tenant!;
  }

  async erase(actor: ActorInit, tenantId: string, graceSeconds?: number) {
    const { tenant } = await this.d.tenants.eraseTenant(
      { actor, tenantId, ...(graceSeconds !== undefined ? { graceSeconds: BigInt(graceSeconds) } : {}) },
      { timeoutMs: this.d.timeoutMs },
    );
    await this.settle(tenantId, tenant!.status);
    return tenant!;
  }

  async cancelErasure(actor: ActorInit, tenantId: string) {
    const { tenant } = await this.d.tenants.cancelErasure(
      { actor, tenantId },
      { timeoutMs: this.d.timeoutMs },
    );
    await this.settle(tenantId, tenant!.status);
    return tenant!;
  }

  /**
   * Starts an export and gathers it in the background: every service's sections, as one gzip'd
   * JSON document stored with the export. Returns the export as started (status running).
   */
  async startExport(actor: ActorInit, tenantId: string) {
    const { export: started } = await this.d.tenants.startExport(
      { actor, tenantId },
      { timeoutMs: this.d.timeoutMs },
    );
    void this.gather(started!.id, tenantId);
    return started!;
  }

  /** Gathers an export; its outcome (archive or error) is stored either way. */
  async gather(exportId: string, tenantId: string): Promise<void> {
    const data = this.d.data;
    try {
      if (!data) throw new Error("no tenant data services are configured");
      const opts = { timeoutMs: Math.max(this.d.timeoutMs, 120_000) };
      const answers = await Promise.all(
        [...data.others, data.tenants].map((c) => c.exportTenantData({ tenantId }, opts)),
      );
      const sections: Record<string, unknown[]> = {};
      const counts: Record<string, bigint> = {};
      for (const s of answers.flatMap((a) => a.sections)) {
        const text = Buffer.from(s.ndjson).toString();
        sections[s.name] = text
          ? text
              .trimEnd()
              .split("\n")
              .map((l) => JSON.parse(l) as unknown)
          : [];
        counts[s.name] = s.rows;
      }
      const archive = gzipSync(
        JSON.stringify({
          format: "valora.tenant-export/v1",
          tenantId,
          exportedAt: new Date().toISOString(),
          counts: Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, Number(v)])),
          sections,
        }),
      );
      await this.d.tenants.finishExport({ id: exportId, archive, counts }, { timeoutMs: this.d.timeoutMs });
      this.d.logger.info({ tenantId, exportId, bytes: archive.length }, "tenant export ready");
    } catch (err) {
      const e = toValoraError(err);
      this.d.logger.error({ tenantId, exportId, err: e }, "tenant export failed");
      await this.d.tenants
        .finishExport({ id: exportId, error: e.message || "export failed" }, { timeoutMs: this.d.timeoutMs })
        .catch(() => undefined);
    }
  }

  /**
   * Purges every tenant whose erasure is due: each other service first, then the tenants service,
   * which checks the erasure is due, deletes the tenant's rows and records the erasure with counts.
   * Idempotent: a purge cut short is finished by the next run. Returns the tenants purged.
   */
  async purgeDue(): Promise<string[]> {
    const data = this.d.data;
    if (!data) return [];
    const { tenants } = await this.d.tenants.listTenants(
      { dueForErasure: true },
      { timeoutMs: this.d.timeoutMs },
    );
    const purged: string[] = [];
    for (const t of tenants) {
      try {
        const opts = { timeoutMs: Math.max(this.d.timeoutMs, 120_000) };
        const elsewhere = (
          await Promise.all(data.others.map((c) => c.purgeTenantData({ tenantId: t.id }, opts)))
        ).flatMap((r) => r.counts);
        const { counts } = await data.tenants.purgeTenantData(
          { tenantId: t.id, purgedElsewhere: elsewhere },
          opts,
        );
        const rows = [...elsewhere, ...counts].reduce((n, c) => n + Number(c.rows), 0);
        this.d.logger.info({ tenant: t.name, rows }, "tenant erased");
        purged.push(t.id);
      } catch (err) {
        this.d.logger.warn(
          { tenant: t.name, err: toValoraError(err) },
          "tenant erasure not finished; retried next run",
        );
      }
    }
    return purged;
  }
}

/**
 * Runs purgeDue every `intervalMs` (the first a few seconds after start, once the services are up)
 * until stopped. A sweep that cannot run (the tenants service is away) is a degraded-mode line,
 * at most one per 30 s, not a stack trace per attempt.
 */
export function startPurger(
  ops: TenantLifecycleOps,
  intervalMs: number,
  degraded: Pick<DegradedLog, "note">,
  firstAfterMs = Math.min(intervalMs, 5000),
): { stop(): void } {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const run = async () => {
    await ops
      .purgeDue()
      .catch((err: unknown) =>
        degraded.note("erasure-sweep", "tenant erasure sweep could not run; retried next run", err),
      );
    if (!stopped) timer = setTimeout(() => void run(), intervalMs).unref();
  };
  timer = setTimeout(() => void run(), firstAfterMs).unref();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
