import { PipelineService } from "@valora/proto/valora/v1/pipeline_pb";
import { createClient, isFull, type Client, type Registry } from "@valora/kit";
import type { Dispatch } from "./service.js";

/**
 * Dispatch to pipeline Services over gRPC: one client per address (a Service name, resolved by the
 * cluster's DNS or `valora up`'s service map), created on first use and kept.
 */
export function pipelineDispatch(o: {
  addressOf: (assetClass: string) => string;
  timeoutMs: number;
  registry?: Registry;
}): { dispatch: Dispatch; close(): void } {
  const clients = new Map<string, Client<typeof PipelineService>>();
  const dispatch: Dispatch = async (assetClass, items, options) => {
    const address = o.addressOf(assetClass);
    let client = clients.get(address);
    if (!client) {
      client = createClient(PipelineService, address, {
        timeoutMs: o.timeoutMs,
        ...(o.registry ? { registry: o.registry } : {}),
      });
      clients.set(address, client);
    }
    const { results } = await client.run({
      assetClass,
      items: items.map((i) => ({ assetKey: i.assetKey, attributes: i.attributes as never })),
      // Full answers need no include (an older pipeline reads none); lean tells one the value alone.
      ...(options?.parts && !isFull(options.parts)
        ? { include: options.parts, lean: !options.parts.explanation && !options.parts.comparables }
        : {}),
    });
    return results.map((r) =>
      r.outcome.case === "valuation"
        ? { index: r.index, valuation: r.outcome.value }
        : { index: r.index, ...(r.outcome.case === "error" ? { error: r.outcome.value } : {}) },
    );
  };
  return {
    dispatch,
    close() {
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}
