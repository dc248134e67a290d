import type { CoordinationV1Api, V1Lease } from "@kubernetes/client-node";
import type { Logger } from "@valora/kit";

export interface LeaderElectionOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewIntervalMs?: number;
  logger: Logger;
  now?: () => Date;
}

const httpCode = (err: unknown): number | undefined => (err as { code?: number }).code;

/**
 * Leader election on a coordination.k8s.io/v1 Lease: take it when free or expired, renew it while
 * leading, and step down when a renewal fails or another holder appears. Writes carry the Lease's
 * resourceVersion, so two candidates racing for it cannot both win (one gets 409 Conflict).
 */
export class LeaderElector {
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly duration: number;
  private readonly now: () => Date;
  onStartedLeading: () => void = () => undefined;
  onStoppedLeading: () => void = () => undefined;

  constructor(private readonly o: LeaderElectionOptions) {
    this.duration = o.leaseDurationSeconds ?? 15;
    this.now = o.now ?? (() => new Date());
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.stopped = false;
    const loop = async (): Promise<void> => {
      if (this.stopped) return;
      const won = await this.tryAcquireOrRenew().catch((err: unknown) => {
        this.o.logger.warn(
          { err: err instanceof Error ? err.message : String(err) },
          "leader election round failed",
        );
        return false;
      });
      if (won && !this.leading) {
        this.leading = true;
        this.o.logger.info({ identity: this.o.identity, lease: this.o.name }, "became leader");
        this.onStartedLeading();
      } else if (!won && this.leading) {
        this.leading = false;
        this.o.logger.warn({ identity: this.o.identity }, "lost leadership");
        this.onStoppedLeading();
      }
      if (!this.stopped) this.timer = setTimeout(() => void loop(), this.o.renewIntervalMs ?? 2000);
    };
    void loop();
  }

  /** Stops renewing and releases the Lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
      if (lease.spec?.holderIdentity === this.o.identity) {
        lease.spec.holderIdentity = undefined;
        lease.spec.renewTime = undefined;
        await this.o.api.replaceNamespacedLease({
          name: this.o.name,
          namespace: this.o.namespace,
          body: lease,
        });
      }
    } catch {
      // Best effort: the Lease expires on its own.
    }
    this.onStoppedLeading();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const now = this.now();
    let lease: V1Lease;
    try {
      lease = await this.o.api.readNamespacedLease({ name: this.o.name, namespace: this.o.namespace });
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
      try {
        await this.o.api.createNamespacedLease({
          namespace: this.o.namespace,
          body: {
            apiVersion: "coordination.k8s.io/v1",
            kind: "Lease",
            metadata: { name: this.o.name, namespace: this.o.namespace },
            spec: {
              holderIdentity: this.o.identity,
              leaseDurationSeconds: this.duration,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        return true;
      } catch (e) {
        if (httpCode(e) === 409) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity;
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = !holder || renewed + (spec.leaseDurationSeconds ?? this.duration) * 1000 < now.getTime();
    if (holder !== this.o.identity && !expired) return false;
    lease.spec = {
      ...spec,
      holderIdentity: this.o.identity,
      leaseDurationSeconds: this.duration,
      renewTime: now,
      ...(holder !== this.o.identity
        ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 }
        : {}),
    };
    try {
      await this.o.api.replaceNamespacedLease({
        name: this.o.name,
        namespace: this.o.namespace,
        body: lease,
      });
      return true;
    } catch (err) {
      if (httpCode(err) === 409) return false;
      throw err;
    }
  }
}
