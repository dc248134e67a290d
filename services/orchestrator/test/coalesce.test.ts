import { AsyncLocalStorage } from "node:async_hooks";
import { describe, expect, it } from "vitest";
import { VALUE_ONLY } from "@valora/kit";
import { coalescing, splitAnswers } from "../src/coalesce.js";
import type { Dispatch } from "../src/service.js";

type Items = Parameters<Dispatch>[1];
type Answers = Awaited<ReturnType<Dispatch>>;

const items = (...keys: string[]): Items => keys.map((assetKey) => ({ assetKey, attributes: {} }));
const valued = (i: Items): Answers =>
  i.map((item, index) => ({ index, valuation: { assetKey: item.assetKey } as never }));
const keys = (a: Answers) => a.map((x) => `${x.index}:${(x.valuation as { assetKey: string }).assetKey}`);

/** A pipeline whose calls are answered by hand: what each call carried, and its resolvers. */
function pipeline() {
  const calls: {
    assetClass: string;
    items: Items;
    parts: unknown;
    answer: () => void;
    fail: (e: Error) => void;
  }[] = [];
  const dispatch: Dispatch = (assetClass, i, options) =>
    new Promise((resolve, reject) =>
      calls.push({
        assetClass,
        items: i,
        parts: options?.parts,
        answer: () => resolve(valued(i)),
        fail: reject,
      }),
    );
  return { calls, dispatch };
}

describe("splitAnswers", () => {
  it("gives each request its own answers, indexed from 0, in any order and with gaps", () => {
    const answers: Answers = [
      { index: 4, valuation: { assetKey: "e" } as never },
      { index: 0, valuation: { assetKey: "a" } as never },
      { index: 2, error: { code: "INVALID_ARGUMENT", message: "x", violations: [] } },
      { index: 1, valuation: { assetKey: "b" } as never },
    ];
    const [first, second, third] = splitAnswers(answers, [2, 2, 1]);
    expect(first!.map((a) => a.index).sort()).toEqual([0, 1]);
    expect(second).toEqual([{ index: 0, error: { code: "INVALID_ARGUMENT", message: "x", violations: [] } }]);
    expect(third).toEqual([{ index: 0, valuation: { assetKey: "e" } }]);
  });
});

describe("coalescing pipeline calls", () => {
  it("sends at once when no call is in flight, with the request's own items", () => {
    const p = pipeline();
    const coalesced = coalescing(p.dispatch, { maxInFlight: 2, maxItems: 64 });
    void coalesced("real-estate", items("a"));
    expect(p.calls.map((c) => c.items)).toEqual([items("a")]);
  });

  it("queues requests while the calls in flight are out, then sends them in one call", async () => {
    const p = pipeline();
    const coalesced = coalescing(p.dispatch, { maxInFlight: 1, maxItems: 64 });
    const answers = ["a", "b", "c", "d", "e"].map((k) => coalesced("real-estate", items(k, `${k}2`)));
    expect(p.calls).toHaveLength(1);
    p.calls[0]!.answer();
    expect(keys(await answers[0]!)).toEqual(["0:a", "1:a2"]);
    expect(p.calls).toHaveLength(2);
    expect(p.calls[1]!.items.map((i) => i.assetKey)).toEqual(["b", "b2", "c", "c2", "d", "d2", "e", "e2"]);
    p.calls[1]!.answer();
    const rest = await Promise.all(answers.slice(1));
    expect(rest.map(keys)).toEqual(["b", "c", "d", "e"].map((k) => [`0:${k}`, `1:${k}2`]));
  });

  it("puts at most maxItems items in a call, but never splits a request", async () => {
    const p = pipeline();
    const coalesced = coalescing(p.dispatch, { maxInFlight: 1, maxItems: 4 });
    const all = [items("a"), items("b", "b2"), items("c", "c2"), items("d", "d2", "d3", "d4", "d5")].map(
      (i) => coalesced("real-estate", i),
    );
    for (const expected of [["a"], ["b", "b2", "c", "c2"], ["d", "d2", "d3", "d4", "d5"]]) {
      expect(p.calls.at(-1)!.items.map((i) => i.assetKey)).toEqual(expected);
      p.calls.at(-1)!.answer();
      await new Promise((r) => setImmediate(r));
    }
    expect(p.calls).toHaveLength(3);
    expect((await all[3]!).map((a) => a.index)).toEqual([0, 1, 2, 3, 4]);
  });

  it("never mixes asset classes or answer shapes in one call", async () => {
    const p = pipeline();
    const coalesced = coalescing(p.dispatch, { maxInFlight: 1, maxItems: 64 });
    const all = [
      coalesced("real-estate", items("a")),
      coalesced("real-estate", items("b")),
      coalesced("autos", items("c")),
      coalesced("real-estate", items("d"), { parts: VALUE_ONLY }),
      coalesced("real-estate", items("e")),
    ];
    // Three lanes, each with a call out at once: real-estate full, autos, real-estate value only.
    expect(p.calls.map((c) => [c.assetClass, c.items[0]!.assetKey, c.parts])).toEqual([
      ["real-estate", "a", undefined],
      ["autos", "c", undefined],
      ["real-estate", "d", VALUE_ONLY],
    ]);
    for (const c of [...p.calls]) c.answer();
    await all[0];
    expect(p.calls[3]!.items.map((i) => i.assetKey)).toEqual(["b", "e"]);
    p.calls[3]!.answer();
    expect((await Promise.all(all)).map(keys)).toEqual([["0:a"], ["0:b"], ["0:c"], ["0:d"], ["0:e"]]);
  });

  it("fails every request of a failed call, and goes on with the next", async () => {
    const p = pipeline();
    const coalesced = coalescing(p.dispatch, { maxInFlight: 1, maxItems: 64 });
    const first = coalesced("real-estate", items("a"));
    const shared = [coalesced("real-estate", items("b")), coalesced("real-estate", items("c"))];
    p.calls[0]!.answer();
    await first;
    p.calls[1]!.fail(new Error("UNAVAILABLE"));
    for (const s of shared) await expect(s).rejects.toThrow("UNAVAILABLE");
    const after = coalesced("real-estate", items("d"));
    p.calls[2]!.answer();
    expect(keys(await after)).toEqual(["0:d"]);
  });

  it("turns a dispatch that throws into a rejection and frees its slot", async () => {
    let n = 0;
    const coalesced = coalescing(
      (_c, i) => {
        if (n++ === 0) throw new Error("no address");
        return Promise.resolve(valued(i));
      },
      { maxInFlight: 1, maxItems: 64 },
    );
    await expect(coalesced("real-estate", items("a"))).rejects.toThrow("no address");
    expect(keys(await coalesced("real-estate", items("b")))).toEqual(["0:b"]);
  });

  it("makes the call in the context of the request it leads (its request id and trace)", async () => {
    const als = new AsyncLocalStorage<string>();
    const seen: (string | undefined)[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const coalesced = coalescing(
      async (_c, i) => {
        seen.push(als.getStore());
        if (seen.length === 1) await gate;
        return valued(i);
      },
      { maxInFlight: 1, maxItems: 64 },
    );
    const all = ["r1", "r2", "r3"].map((id) => als.run(id, () => coalesced("real-estate", items(id))));
    // r3's completion handler would run in r1's context; the shared call must still be r2's.
    release();
    await Promise.all(all);
    expect(seen).toEqual(["r1", "r2"]);
  });

  it("sends bulk jobs' chunks straight through: they neither queue behind nor hold up interactive requests", async () => {
    const p = pipeline();
    const coalesced = coalescing(p.dispatch, { maxInFlight: 1, maxItems: 64 });
    const chunks = [1, 2, 3].map((n) =>
      coalesced("real-estate", items(`job${n}`), { parts: VALUE_ONLY, bulk: true }),
    );
    const interactive = coalesced("real-estate", items("a"), { parts: VALUE_ONLY });
    expect(p.calls.map((c) => c.items[0]!.assetKey)).toEqual(["job1", "job2", "job3", "a"]);
    for (const c of p.calls) c.answer();
    expect((await Promise.all([...chunks, interactive])).map(keys)).toEqual([
      ["0:job1"],
      ["0:job2"],
      ["0:job3"],
      ["0:a"],
    ]);
  });

  it("is the dispatch itself with no calls in flight allowed", () => {
    const p = pipeline();
    expect(coalescing(p.dispatch, { maxInFlight: 0, maxItems: 64 })).toBe(p.dispatch);
  });
});
