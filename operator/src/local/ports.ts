import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** The kernel's ephemeral range (ports it hands to `listen(0)`), Linux's default when unreadable. */
export function ephemeralRange(
  read: () => string = () => readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8"),
): [number, number] {
  try {
    const [low, high] = read().trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low! > 0 && high! >= low!) return [low!, high!];
  } catch {
    // not Linux: the IANA dynamic range, which macOS and Windows use
  }
  return [49152, 65535];
}

/**
 * Pure: the ports pods may get — the widest stretch outside the ephemeral range (at or above
 * 20000), so no `listen(0)` of this machine (the platform's own gRPC servers included) can be
 * handed a port a pod was given between its check and its bind.
 */
export function podPortRange([low, high]: [number, number]): [number, number] {
  const below: [number, number] = [20000, low - 1];
  const above: [number, number] = [high + 1, 65535];
  return below[1] - below[0] >= above[1] - above[0] ? below : above;
}

const canBind = (port: number) =>
  new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });

/**
 * Ports for pods: from outside the ephemeral range, each checked free and kept out of every other
 * pod's hands until released. Something else on the machine may still take one first; a pod whose
 * container then fails to bind is given another (LocalPod).
 */
export class PodPorts {
  private readonly taken = new Set<number>();
  private readonly range: [number, number];

  constructor(range: [number, number] = podPortRange(ephemeralRange())) {
    this.range = range;
  }

  async reserve(): Promise<number> {
    const [low, high] = this.range;
    const size = high - low + 1;
    const start = Math.floor(Math.random() * size);
    for (let i = 0; i < Math.min(size, 2000); i++) {
      const port = low + ((start + i) % size);
      if (this.taken.has(port)) continue;
      this.taken.add(port);
      if (await canBind(port)) return port;
      this.taken.delete(port);
    }
    throw new Error(`no free port for a pod in ${low}-${high}`);
  }

  release(port: number): void {
    this.taken.delete(port);
  }
}
