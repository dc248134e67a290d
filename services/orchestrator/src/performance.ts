import { quantile } from "@valora/kit";

interface VersionWindow {
  role: string;
  requests: number;
  errors: number;
  fallbacks: number;
  latencies: Float64Array;
  next: number;
  filled: number;
}

export interface VersionPerformanceOut {
  version: string;
  role: string;
  requests: number;
  errors: number;
  fallbacks: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
}

/**
 * Live per-version counts and latency quantiles over a sliding window of the last `window`
 * requests, as this orchestrator saw them. Cheap to record (one array write), computed on read.
 */
export class PerformanceTracker {
  private readonly versions = new Map<string, VersionWindow>();

  constructor(private readonly window = 2048) {}

  record(
    model: string,
    version: string,
    role: string,
    latencyMs: number,
    outcome: "ok" | "error" | "fallback",
  ): void {
    const key = `${model}\u0000${version}`;
    let w = this.versions.get(key);
    if (!w) {
      w = {
        role,
        requests: 0,
        errors: 0,
        fallbacks: 0,
        latencies: new Float64Array(this.window),
        next: 0,
        filled: 0,
      };
      this.versions.set(key, w);
    }
    w.role = role;
    w.requests++;
    if (outcome === "error") w.errors++;
    if (outcome === "fallback") w.fallbacks++;
    w.latencies[w.next] = latencyMs;
    w.next = (w.next + 1) % this.window;
    w.filled = Math.min(this.window, w.filled + 1);
  }

  of(model: string): VersionPerformanceOut[] {
    const out: VersionPerformanceOut[] = [];
    for (const [key, w] of this.versions) {
      const [m, version] = key.split("\u0000") as [string, string];
      if (m !== model) continue;
      const sorted = w.latencies.slice(0, w.filled).sort();
      out.push({
        version,
        role: w.role,
        requests: w.requests,
        errors: w.errors,
        fallbacks: w.fallbacks,
        latencyP50Ms: w.filled ? quantile(sorted, 0.5) : 0,
        latencyP99Ms: w.filled ? quantile(sorted, 0.99) : 0,
      });
    }
    return out.sort((a, b) => a.version.localeCompare(b.version));
  }
}
