import { mkdtempSync, readFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@valora/kit";
import { ServiceProxies } from "../src/local/service-proxy.js";

/**
 * An answer in two small writes, as HTTP/2 sends a gRPC response (headers and data, then the
 * trailers). Through a proxy socket with Nagle's algorithm on, the second write waits for the
 * client's delayed ACK of the first: 40 ms a call on Linux, for every call of `valora up`.
 */
function twoWriteServer(): Server {
  return createServer((s) => {
    s.setNoDelay(true);
    s.on("data", () => {
      s.write("head");
      setTimeout(() => s.write("tail\n"), 2);
    });
  });
}

describe("the local Service proxy", () => {
  let upstream: Server;
  let proxies: ServiceProxies;
  let client: Socket;

  beforeAll(async () => {
    upstream = twoWriteServer();
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", r));
    const podPort = (upstream.address() as { port: number }).port;
    const mapFile = join(mkdtempSync(join(tmpdir(), "valora-proxy-")), "services.json");
    proxies = new ServiceProxies(
      mapFile,
      () => [
        {
          labels: { app: "m" },
          ready: true,
          declaredPorts: [{ containerPort: 9000 }],
          ports: new Map([[9000, podPort]]),
        },
      ],
      createLogger({ service: "test", level: "warn" }),
    );
    await proxies.sync([
      {
        metadata: { name: "m", namespace: "valora" },
        spec: { selector: { app: "m" }, ports: [{ port: 80, targetPort: 9000 }] },
      },
    ]);
    const address = (JSON.parse(readFileSync(mapFile, "utf8")) as Record<string, string>)["m.valora:80"]!;
    const [host, port] = address.split(":");
    client = connect({ host: host!, port: Number(port), noDelay: true });
    await new Promise((r) => client.once("connect", r));
  });
  afterAll(async () => {
    client.destroy();
    await proxies.close();
    await new Promise((r) => upstream.close(r));
  });

  it("forwards small writes at once both ways (no Nagle stall of a response's second write)", async () => {
    const roundTrip = () =>
      new Promise<number>((resolve) => {
        const started = performance.now();
        let got = "";
        const onData = (b: Buffer) => {
          got += b.toString();
          if (!got.endsWith("\n")) return;
          client.off("data", onData);
          expect(got).toBe("headtail\n");
          resolve(performance.now() - started);
        };
        client.on("data", onData);
        client.write("ping\n");
      });
    const times: number[] = [];
    for (let i = 0; i < 15; i++) times.push(await roundTrip());
    times.sort((a, b) => a - b);
    // A stalled write costs the delayed-ACK timeout (40 ms on Linux); a loopback round trip a fraction of a millisecond.
    expect(times[7]).toBeLessThan(20);
  });
});
