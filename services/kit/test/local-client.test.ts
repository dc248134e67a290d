import { describe, expect, it } from "vitest";
import { EchoService } from "@valora/proto/valora/example/v1/echo_pb";
import { createLocalClient, echoService, implement, type ValoraError } from "../src/index.js";

describe("in-process client (createLocalClient)", () => {
  it("calls the handler with the call's metadata and answers typed messages, unary and streaming", async () => {
    const seen: string[] = [];
    const reg = implement(EchoService, {
      async echo(req, call) {
        seen.push(String(call.metadata.get("x-tenant-id")[0]), call.peer);
        return { message: req.message.toUpperCase() };
      },
      async *count(req) {
        for (let i = 1; i <= req.n; i++) yield { value: i };
      },
    });
    const client = createLocalClient(EchoService, reg);
    const res = await client.echo({ message: "hi" }, { metadata: { "x-tenant-id": "t-1" } });
    expect(res.$typeName).toBe("valora.example.v1.EchoResponse");
    expect(res.message).toBe("HI");
    expect(seen).toEqual(["t-1", "in-process"]);
    const values: number[] = [];
    for await (const v of client.count({ n: 4 })) values.push(v.value);
    expect(values).toEqual([1, 2, 3, 4]);
  });

  it("raises the handler's errors as ValoraError and enforces deadlines through the call's signal", async () => {
    const client = createLocalClient(EchoService, echoService());
    const failed = (await client
      .echo({ message: "x", failWith: "NOT_FOUND" })
      .catch((e: unknown) => e)) as ValoraError;
    expect(failed.code).toBe("NOT_FOUND");
    const bad = (await client
      .echo({ message: "x", failWith: "NOPE" })
      .catch((e: unknown) => e)) as ValoraError;
    expect(bad.details[0]?.field).toBe("fail_with");
    const slow = (await client
      .echo({ message: "x", delayMs: 5_000 }, { timeoutMs: 50 })
      .catch((e: unknown) => e)) as ValoraError;
    expect(slow.code).toBe("DEADLINE_EXCEEDED");
    await expect(async () => {
      for await (const _ of client.count({ n: -1 })) void _;
    }).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(() =>
      createLocalClient(EchoService, { service: { typeName: "other.Service" } as never, impl: {} }),
    ).toThrow(/not valora.example/);
  });

  it("aborts the handler's signal at the deadline or when the caller cancels, whenever the handler first looks at it", async () => {
    const reasons: string[] = [];
    const reg = implement(EchoService, {
      async echo(req, call) {
        const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
        if (req.message === "late") await wait(80); // looks only after the deadline passed
        const signal = call.signal;
        if (!signal.aborted) await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
        reasons.push(`${req.message}: ${(signal.reason as Error).message}`);
        return { message: req.message };
      },
      async *count() {},
    });
    const client = createLocalClient(EchoService, reg);
    await expect(client.echo({ message: "early" }, { timeoutMs: 30 })).rejects.toMatchObject({
      code: "DEADLINE_EXCEEDED",
    });
    await expect(client.echo({ message: "late" }, { timeoutMs: 30 })).rejects.toMatchObject({
      code: "DEADLINE_EXCEEDED",
    });
    const caller = new AbortController();
    const call = client.echo({ message: "cancelled" }, { timeoutMs: 5_000, signal: caller.signal });
    caller.abort();
    await expect(call).resolves.toMatchObject({ message: "cancelled" });
    await new Promise((r) => setTimeout(r, 100));
    expect(reasons.sort()).toEqual([
      "cancelled: call cancelled",
      "early: deadline exceeded",
      "late: deadline exceeded",
    ]);
  });
});
