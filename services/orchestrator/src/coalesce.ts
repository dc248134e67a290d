import { AsyncResource } from "node:async_hooks";
import { trace, type Span, type SpanContext } from "@opentelemetry/api";
import { z } from "zod";
import { partsSuffix, tracingOn, vars } from "@valora/kit";
import type { Dispatch } from "./service.js";

/** The orchestrator's (and `valora up`'s) settings for coalescing pipeline calls. */
export const PIPELINE_CALLS: CoalesceOptions = Object.freeze({ maxInFlight: 2, maxItems: 64 });

export const PipelineCallsEnv = z.object({
  /** Pipeline calls in flight per asset class and answer shape; 0 sends every request on its own. */
  PIPELINE_MAX_CALLS_IN_FLIGHT: vars.int(PIPELINE_CALLS.maxInFlight, 0),
  PIPELINE_MAX_ITEMS_PER_CALL: vars.int(PIPELINE_CALLS.maxItems, 1),
});

export const coalesceOptionsFrom = (c: z.infer<typeof PipelineCallsEnv>): CoalesceOptions => ({
  maxInFlight: c.PIPELINE_MAX_CALLS_IN_FLIGHT,
  maxItems: c.PIPELINE_MAX_ITEMS_PER_CALL,
});

type Answers = Awaited<ReturnType<Dispatch>>;

export interface CoalesceOptions {
  /** Pipeline calls in flight per asset class and answer shape; requests arriving meanwhile queue and share the next. */
  maxInFlight: number;
  /** Items in one call at most (a request larger than this still goes whole, alone). */
  maxItems: number;
}

interface Member {
  items: Parameters<Dispatch>[1];
  resolve: (a: Answers) => void;
  reject: (err: unknown) => void;
  /** The caller's async context (request id, trace), restored around the call it leads. */
  scope: AsyncResource;
  /** With tracing on: the wait for a call, and the span the call would be a child of. */
  queue?: Span;
  parent?: SpanContext;
}

interface Lane {
  assetClass: string;
  options: Parameters<Dispatch>[2];
  queue: Member[];
  inFlight: number;
}

/**
 * Pure: one call's answers back to the requests it carried, by their item counts and in their
 * order; indexes become the request's own again.
 */
export function splitAnswers(answers: Answers, sizes: number[]): Answers[] {
  let end = 0;
  const starts = sizes.map((n) => (end += n) - n);
  const out: Answers[] = sizes.map(() => []);
  for (const a of answers) {
    let m = sizes.length - 1;
    while (m > 0 && a.index < starts[m]!) m--;
    out[m]!.push({ ...a, index: a.index - starts[m]! });
  }
  return out;
}

/**
 * Ends each request's queue span as its call starts. The call is traced under the first request
 * (its PipelineService/Run span and the pipeline's and model server's under that); the others'
 * queue spans link to the span it hangs from, so every trace leads to the call that valued it.
 */
function started(members: Member[], items: number): void {
  const leader = members[0]!.parent;
  members.forEach((m, i) => {
    if (!m.queue) return;
    m.queue.setAttributes({
      "valora.pipeline.call.requests": members.length,
      "valora.pipeline.call.items": items,
      "valora.pipeline.call.leader": i === 0,
    });
    if (i > 0 && leader) m.queue.addLink({ context: leader });
    m.queue.end();
  });
}

/**
 * Request coalescing in front of the pipelines: concurrent valuations of one asset class and
 * answer shape share one PipelineService/Run, as the model server's batcher makes concurrent rows
 * share one onnxruntime run. An idle lane sends at once (no added delay); while `maxInFlight`
 * calls are out, requests queue and the next call takes them all (up to `maxItems`). One round
 * trip, one Run and one ModelInfer then carry several valuations: the per-hop gRPC work that
 * dominates an uncached valuation (see bench:gateway's floor) is paid once for them. Items fail
 * one by one as before; a failed call fails every request it carried. Bulk jobs' chunks are
 * batches already and go straight through: they neither wait for nor hold up interactive requests.
 */
export function coalescing(dispatch: Dispatch, o: CoalesceOptions): Dispatch {
  if (o.maxInFlight <= 0) return dispatch;
  const lanes = new Map<string, Lane>();
  const pump = (lane: Lane) => {
    while (lane.inFlight < o.maxInFlight && lane.queue.length > 0) {
      const members: Member[] = [lane.queue.shift()!];
      let n = members[0]!.items.length;
      while (lane.queue.length > 0 && n + lane.queue[0]!.items.length <= o.maxItems) {
        const m = lane.queue.shift()!;
        members.push(m);
        n += m.items.length;
      }
      lane.inFlight++;
      started(members, n);
      const items = members.length === 1 ? members[0]!.items : members.flatMap((m) => m.items);
      // In the first request's context, a throw included: an async function turns it into a rejection.
      // The slot is freed (and the next call sent) before the answers go back to their requests.
      const leader = members[0]!.scope;
      const free = () => {
        lane.inFlight--;
        pump(lane);
      };
      (async () => leader.runInAsyncScope(() => dispatch(lane.assetClass, items, lane.options)))().then(
        (answers) => {
          free();
          if (members.length === 1) return members[0]!.resolve(answers);
          const parts = splitAnswers(
            answers,
            members.map((m) => m.items.length),
          );
          members.forEach((m, i) => m.resolve(parts[i]!));
        },
        (err: unknown) => {
          free();
          for (const m of members) m.reject(err);
        },
      );
    }
  };
  return (assetClass, items, options) => {
    if (options?.bulk) return dispatch(assetClass, items, options);
    const key = `${assetClass}\u0000${options?.parts ? partsSuffix(options.parts) : ""}`;
    let lane = lanes.get(key);
    if (!lane) {
      lane = { assetClass, options, queue: [], inFlight: 0 };
      lanes.set(key, lane);
    }
    const l = lane;
    return new Promise<Answers>((resolve, reject) => {
      const member: Member = { items, resolve, reject, scope: new AsyncResource("valora.pipeline.coalesce") };
      if (tracingOn()) {
        member.parent = trace.getActiveSpan()?.spanContext();
        member.queue = trace.getTracer("valora-orchestrator").startSpan("pipeline.queue");
      }
      l.queue.push(member);
      pump(l);
    });
  };
}
