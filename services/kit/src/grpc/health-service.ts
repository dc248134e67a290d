import { on } from "node:events";
import {
  HealthCheckResponse_ServingStatus as ServingStatus,
  Health as HealthService,
} from "@valora/proto/grpc/health/v1/health_pb";
import { ValoraError } from "../errors.js";
import type { Health } from "../health.js";
import { implement, type ServiceRegistration } from "./server.js";

/**
 * grpc.health.v1.Health backed by the instance's readiness checks: "" is the whole server, and
 * every registered service name reports the same status (one process, one readiness).
 */
export function createHealthService(health: Health, serviceNames: string[]): ServiceRegistration {
  const known = new Set(["", HealthService.typeName, ...serviceNames]);
  const statusOf = async (): Promise<ServingStatus> =>
    (await health.ready()) ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;

  return implement(HealthService, {
    async check(req) {
      if (!known.has(req.service))
        throw new ValoraError("NOT_FOUND", `unknown service ${JSON.stringify(req.service)}`);
      return { status: await statusOf() };
    },
    async *watch(req, call) {
      if (!known.has(req.service)) {
        yield { status: ServingStatus.SERVICE_UNKNOWN };
        return;
      }
      let last = await statusOf();
      yield { status: last };
      // A readiness change is published whenever a report is computed; poll as well so checks
      // that flip silently (a database going away) still reach watchers.
      const poll = setInterval(() => void health.report(), 1000);
      try {
        for await (const [ready] of on(health, "change", { signal: call.signal })) {
          const next = ready ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
          if (next !== last) {
            last = next;
            yield { status: next };
          }
        }
      } catch (err) {
        if (!call.signal.aborted) throw err;
      } finally {
        clearInterval(poll);
      }
    },
  });
}
