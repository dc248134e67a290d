import { createConnection, createServer, type AddressInfo, type Socket } from "node:net";

/**
 * A loopback TCP proxy between a service and its database: what a load balancer or a NAT in
 * between does when it drops connections (`dropAll` resets every connection it carries).
 */
export class TcpProxy {
  private readonly sockets = new Set<Socket>();
  private readonly server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: this.targetPort });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("close", () => this.sockets.delete(s));
      s.on("error", () => undefined);
    }
    client.pipe(upstream).pipe(client);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end);
    upstream.on("close", end);
  });

  constructor(private readonly targetPort: number) {}

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as AddressInfo).port;
  }

  /** Connections currently carried (each side counts once). */
  get connections(): number {
    return this.sockets.size / 2;
  }

  /** Resets every connection at once (RST), as a dropped NAT entry or a failed-over proxy would. */
  dropAll(): number {
    const n = this.connections;
    for (const s of this.sockets) s.resetAndDestroy();
    return n;
  }

  async close(): Promise<void> {
    this.dropAll();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
