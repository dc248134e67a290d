import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "@valora/kit";
import { selects, targetPort, type ContainerPort } from "./pod-spec.js";

export interface Endpoint {
  labels: Record<string, string>;
  ready: boolean;
  declaredPorts: ContainerPort[];
  ports: Map<number, number>;
}

export interface ServiceLike {
  metadata: { name: string; namespace?: string };
  spec?: {
    selector?: Record<string, string>;
    ports?: { name?: string; port: number; targetPort?: number | string }[];
  };
}

interface Listener {
  server: Server;
  localPort: number;
  service: ServiceLike;
  port: { port: number; targetPort?: number | string };
  next: number;
  sockets: Set<Socket>;
}

/**
 * kube-proxy and cluster DNS for one machine: every Service port gets a loopback port whose
 * connections go round-robin to the ready pods its selector picks, and the map
 * "<name>.<namespace>:<port>" → "127.0.0.1:<local port>" is written to a file every Valora process
 * reads (VALORA_SERVICE_MAP, see the kit's resolveServiceAddress). Local ports are kept across
 * restarts when they are still free, so addresses in logs stay meaningful.
 */
export class ServiceProxies {
  private listeners = new Map<string, Listener>();
  private previous: Record<string, string>;

  constructor(
    readonly mapFile: string,
    private readonly endpoints: () => Endpoint[],
    private readonly logger: Logger,
  ) {
    try {
      this.previous = JSON.parse(readFileSync(mapFile, "utf8")) as Record<string, string>;
    } catch {
      this.previous = {};
    }
    this.write();
  }

  /** Makes the proxies match the Services (called on every Service change). */
  async sync(services: ServiceLike[]): Promise<void> {
    const wanted = new Map<
      string,
      { service: ServiceLike; port: { port: number; targetPort?: number | string } }
    >();
    for (const s of services)
      for (const p of s.spec?.ports ?? [])
        wanted.set(`${s.metadata.name}.${s.metadata.namespace ?? "default"}:${p.port}`, {
          service: s,
          port: p,
        });
    for (const [key, l] of this.listeners) {
      if (!wanted.has(key)) {
        this.listeners.delete(key);
        for (const s of l.sockets) s.destroy();
        l.server.close();
      }
    }
    for (const [key, w] of wanted) {
      const existing = this.listeners.get(key);
      if (existing) {
        existing.service = w.service;
        existing.port = w.port;
        continue;
      }
      this.listeners.set(key, await this.listen(key, w.service, w.port));
    }
    this.write();
  }

  async close(): Promise<void> {
    for (const l of this.listeners.values()) {
      for (const s of l.sockets) s.destroy();
      await new Promise((r) => l.server.close(r));
    }
    this.listeners.clear();
  }

  private async listen(key: string, service: ServiceLike, port: Listener["port"]): Promise<Listener> {
    const l: Listener = {
      server: createServer((socket) => this.forward(l, socket)),
      localPort: 0,
      service,
      port,
      next: 0,
      sockets: new Set(),
    };
    const remembered = Number(this.previous[key]?.split(":")[1] ?? 0);
    const bind = (p: number) =>
      new Promise<number>((resolve, reject) => {
        l.server.once("error", reject);
        l.server.listen(p, "127.0.0.1", () => {
          l.server.off("error", reject);
          resolve((l.server.address() as { port: number }).port);
        });
      });
    l.localPort = await bind(remembered).catch(() => bind(0));
    this.logger.info({ svc: key, address: `127.0.0.1:${l.localPort}` }, "service proxy listening");
    return l;
  }

  private forward(l: Listener, client: Socket): void {
    const ready = this.endpoints().filter((e) => e.ready && selects(l.service.spec?.selector, e.labels));
    const target = ready.length > 0 ? ready[l.next++ % ready.length]! : undefined;
    const port = target
      ? targetPort(l.port.targetPort ?? l.port.port, target.declaredPorts, target.ports)
      : undefined;
    if (!port) {
      client.destroy(); // no ready endpoint: the client sees the connection fail, as with an empty Service
      return;
    }
    l.sockets.add(client);
    // Nagle's algorithm off both ways, as kube-proxy's kernel forwarding never delays a segment: a gRPC
    // answer is two small writes (headers and data, then trailers), and with Nagle on the second waited
    // for the client's delayed ACK — 40 ms on each hop of every call in `valora up`.
    client.setNoDelay(true);
    const upstream = connect({ port, host: "127.0.0.1", noDelay: true });
    client.pipe(upstream).pipe(client);
    const end = () => {
      l.sockets.delete(client);
      client.destroy();
      upstream.destroy();
    };
    client.once("error", end).once("close", end);
    upstream.once("error", end).once("close", end);
  }

  private write(): void {
    const map: Record<string, string> = {};
    for (const [key, l] of this.listeners) map[key] = `127.0.0.1:${l.localPort}`;
    mkdirSync(dirname(this.mapFile), { recursive: true });
    writeFileSync(`${this.mapFile}.tmp`, JSON.stringify(map, null, 1));
    renameSync(`${this.mapFile}.tmp`, this.mapFile);
  }
}
