import { createServer, type AddressInfo } from "node:net";
import { Writable } from "node:stream";
import type { Tree, TreeEnsemble, TreeNode } from "./onnx/tree-ensemble.js";
import { seededRandom } from "./random.js";

export { seededRandom };
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { createLogger, type Logger } from "./logger.js";
import { setupTracing } from "./tracing.js";

let exporter: InMemorySpanExporter | undefined;

/** Installs (once per process) a tracer provider that keeps finished spans in memory for assertions. */
export function useInMemoryTracing(): InMemorySpanExporter {
  if (!exporter) {
    exporter = new InMemorySpanExporter();
    setupTracing({ service: "test", processors: [new SimpleSpanProcessor(exporter)] });
  }
  return exporter;
}

/** A logger whose JSON lines are kept in memory, parsed. */
export function captureLogs(service = "test"): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n"))
        if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ service, level: "debug", destination }), lines };
}

/**
 * A random tree ensemble with consistent covers (children's covers sum to their parent's),
 * mixed split modes and missing-value routing: the subject of TreeSHAP and model-server tests.
 */
export function randomEnsemble(
  seed: number,
  options: { trees?: number; depth?: number; features?: number } = {},
): TreeEnsemble {
  const rnd = seededRandom(seed);
  const features = options.features ?? 4;
  const depth = options.depth ?? 3;
  const modes = ["BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT"] as const;
  const trees: Tree[] = [];
  for (let t = 0; t < (options.trees ?? 3); t++) {
    const nodes: TreeNode[] = [];
    const grow = (level: number, cover: number): number => {
      const id = nodes.length;
      const leaf = level >= depth || (level > 0 && rnd() < 0.2);
      nodes.push({
        mode: leaf ? "LEAF" : modes[Math.floor(rnd() * modes.length)]!,
        feature: Math.floor(rnd() * features),
        threshold: Math.fround(rnd() * 10),
        trueChild: 0,
        falseChild: 0,
        missingTracksTrue: rnd() < 0.5,
        value: leaf ? Math.fround(rnd() * 4 - 2) : 0,
        cover,
      });
      if (!leaf) {
        const share = Math.max(1, Math.round(cover * (0.2 + 0.6 * rnd())));
        const trueChild = grow(level + 1, share);
        const falseChild = grow(level + 1, Math.max(1, cover - share));
        nodes[id]!.trueChild = trueChild;
        nodes[id]!.falseChild = falseChild;
        nodes[id]!.cover = nodes[trueChild]!.cover + nodes[falseChild]!.cover;
      }
      return id;
    };
    grow(0, 100 + Math.floor(rnd() * 900));
    trees.push({ nodes });
  }
  return {
    trees,
    baseValue: Math.fround(rnd()),
    aggregate: "SUM",
    featureCount: features,
    coverSource: "recorded",
  };
}

/**
 * A new, empty database on the server at `url` for one test file, so suites running in parallel
 * never see each other's tables; `drop()` removes it.
 */
export async function freshDatabase(url: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const { default: pg } = await import("pg");
  const name = `valora_test_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A loopback port free a moment ago (for a server a test must restart on the same port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export {
  decodeOtlpJson,
  decodeOtlpProtobuf,
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan,
} from "./otlp-receiver.js";
