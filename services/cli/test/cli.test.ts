import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { EchoService } from "@valora/proto/valora/example/v1/echo_pb";
import { createClient } from "@valora/kit";

const bin = join(import.meta.dirname, "..", "dist", "bin.js");

describe.skipIf(!existsSync(bin))("valora command (built)", () => {
  it("lists its commands with --help", () => {
    const out = spawnSync(process.execPath, [bin, "--help"], { encoding: "utf8" });
    expect(out.status).toBe(0);
    expect(out.stdout).toContain("serve <service>");
    expect(out.stdout).toContain("up");
  });

  it.skipIf(!process.env["DATABASE_URL"])("migrates a database with one command, idempotently", async () => {
    const { freshDatabase } = await import("@valora/kit/testing");
    const db = await freshDatabase(process.env["DATABASE_URL"]!);
    try {
      const run = () =>
        spawnSync(process.execPath, [bin, "migrate"], {
          encoding: "utf8",
          env: { ...process.env, DATABASE_URL: db.url },
        });
      const first = run();
      expect(first.status, first.stderr).toBe(0);
      expect(first.stdout).toContain("001_tenants");
      expect(run().stdout).toContain("up to date");
    } finally {
      await db.drop();
    }
  });

  it("refuses an unknown service with exit code 2 and the list of known ones", () => {
    const out = spawnSync(process.execPath, [bin, "serve", "nope"], { encoding: "utf8" });
    expect(out.status).toBe(2);
    expect(out.stderr).toContain('unknown service "nope"');
    expect(out.stderr).toContain("echo");
  });

  it("fails fast on bad configuration with a clear message", () => {
    const out = spawnSync(process.execPath, [bin, "serve", "echo"], {
      encoding: "utf8",
      env: { ...process.env, GRPC_PORT: "not-a-port" },
    });
    expect(out.status).toBe(78);
    expect(out.stderr).toContain("GRPC_PORT");
  });

  it("serves a service until SIGTERM, then drains and exits 0", async () => {
    const child = spawn(process.execPath, [bin, "serve", "echo"], {
      env: { ...process.env, GRPC_PORT: "0", METRICS_PORT: "0", HOST: "127.0.0.1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines = createInterface({ input: child.stdout });
    const logs: Record<string, unknown>[] = [];
    const listening = new Promise<Record<string, unknown>>((resolve) => {
      lines.on("line", (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry["msg"] === "echo service listening") resolve(entry);
      });
    });
    const { grpcPort, opsPort } = (await listening) as { grpcPort: number; opsPort: number };
    const client = createClient(EchoService, `127.0.0.1:${grpcPort}`);
    expect((await client.echo({ message: "from test" })).message).toBe("from test");
    const metrics = await (await fetch(`http://127.0.0.1:${opsPort}/metrics`)).text();
    expect(metrics).toContain(
      'grpc_server_handled_total{grpc_service="valora.example.v1.EchoService",grpc_method="Echo",grpc_code="OK",service="echo"} 1',
    );
    client.close();
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(logs.some((l) => l["msg"] === "shutdown complete" && l["ok"] === true)).toBe(true);
  });
});

describe.skipIf(!existsSync(bin))("valora render and fetch-model (built)", () => {
  const root = join(import.meta.dirname, "..", "..", "..");
  it("renders the operator's objects for a manifest", () => {
    const out = spawnSync(
      process.execPath,
      [bin, "render", "-f", join(root, "manifests", "autos.yaml"), "-n", "valuation"],
      { encoding: "utf8" },
    );
    expect(out.status).toBe(0);
    expect(out.stdout).toContain("kind: Deployment");
    expect(out.stdout).toContain("namespace: valuation");
    expect(out.stdout).toContain("name: model-fetch");
  });

  it("fetches and verifies a model, and refuses hosts outside the allow-list", () => {
    const model = join(root, "models", "autos", "model.onnx");
    const sha = createHash("sha256").update(readFileSync(model)).digest("hex");
    const out = join(mkdtempSync(join(tmpdir(), "valora-fetch-")), "m.onnx");
    const ok = spawnSync(
      process.execPath,
      [bin, "fetch-model", "--uri", `file://${model}`, "--out", out, "--sha256", sha],
      { encoding: "utf8" },
    );
    expect(ok.status).toBe(0);
    expect(readFileSync(out).equals(readFileSync(model))).toBe(true);
    const wrong = spawnSync(
      process.execPath,
      [bin, "fetch-model", "--uri", `file://${model}`, "--out", out, "--sha256", "0".repeat(64)],
      { encoding: "utf8" },
    );
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain("sha256 mismatch");
    const ssrf = spawnSync(
      process.execPath,
      [bin, "fetch-model", "--uri", "https://169.254.169.254/latest", "--out", out],
      { encoding: "utf8" },
    );
    expect(ssrf.status).toBe(2);
    expect(ssrf.stderr).toContain("not in the allow-list");
  });

  it("trains from a CSV and reports a clear error for a bad target", () => {
    const out = spawnSync(
      process.execPath,
      [
        bin,
        "train",
        "--data",
        join(root, "models", "data", "car_prices.csv"),
        "--target",
        "Nope",
        "--out",
        "/tmp/x",
      ],
      { encoding: "utf8" },
    );
    expect(out.status).toBe(2);
    expect(out.stderr).toContain('target column "Nope" is not in the CSV header');
    const csv = join(root, "models", "data", "car_prices.csv");
    const folds = spawnSync(
      process.execPath,
      [bin, "train", "--data", csv, "--target", "Price", "--out", "/tmp/x", "--folds", "1"],
      { encoding: "utf8" },
    );
    expect(folds.status).toBe(2);
    expect(folds.stderr).toContain("--folds 1 is not an integer of at least 2");
  });
});

describe("valora value: attributes from the command line", () => {
  it("reads name=value pairs as JSON would type them, and names a pair without =", async () => {
    const { parseAttributes } = await import("../src/value.js");
    expect(parseAttributes(["mileage=8221", "cruise=true", "make=Saab", "zip=", "note=a=b"])).toEqual({
      mileage: 8221,
      cruise: true,
      make: "Saab",
      zip: "",
      note: "a=b",
    });
    expect(() => parseAttributes(["mileage"])).toThrow(/expected name=value, got "mileage"/);
  });

  it("refuses to run without an API key, with exit code 2", () => {
    const r = spawnSync(process.execPath, [bin, "value", "autos", "mileage=1"], {
      encoding: "utf8",
      env: { ...process.env, VALORA_API_KEY: "" },
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("no API key");
  });
});

describe.skipIf(!existsSync(bin))("valora train --help", () => {
  it("valora serve --help lists every service with an example", () => {
    const r = spawnSync(process.execPath, [bin, "serve", "--help"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    for (const service of ["gateway", "pipeline", "model-server", "operator"])
      expect(r.stdout).toContain(`  ${service} `);
    expect(r.stdout).toContain("Example:");
  });

  it("answers with its options and an example, exit code 0", () => {
    const r = spawnSync(process.execPath, [bin, "train", "--help"], { encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("usage: valora train --data FILE.csv --target COLUMN --out DIR");
    expect(r.stdout).toContain("--max-rounds");
    expect(r.stdout).toContain("[--folds K]");
    expect(r.stdout).toContain("example:");
  });

  it("every service answers --help with the environment it reads, without starting", () => {
    for (const [service, variable] of [
      ["gateway", "TENANT_PURGE_INTERVAL_MS (default 60000)"],
      ["tenants", "DATABASE_URL (required)"],
      ["model-server", "VALORA_MODELS"],
      ["operator", "VALORA_IMAGE"],
    ] as const) {
      const r = spawnSync(process.execPath, [bin, "serve", service, "--help"], {
        encoding: "utf8",
        timeout: 10_000,
      });
      expect(r.status, `${service}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(`Usage: valora serve ${service}`);
      expect(r.stdout).toContain(variable);
    }
  });
});

describe("a first run people can read", () => {
  it("writes for people only on a terminal, unless JSON is asked for", async () => {
    const { forPeople } = await import("../src/terminal.js");
    expect(forPeople({}, true)).toBe(true);
    expect(forPeople({}, undefined)).toBe(false);
    expect(forPeople({ VALORA_LOG_FORMAT: "json" }, true)).toBe(false);
  });

  it("boxes the URLs, the key and the kubectl line, with the curl to paste below", async () => {
    const { readyBox } = await import("../src/terminal.js");
    const text = readyBox({
      rest: "http://127.0.0.1:8080",
      grpc: "127.0.0.1:9090",
      kubernetes: "http://127.0.0.1:6443",
      apiKey: "vk_abc_def",
      curl: "curl -s http://127.0.0.1:8080/v1/valuations",
      database: "embedded PostgreSQL in .valora/pg",
      cache: "memory",
      assetClasses: ["autos@gm-v1"],
      readyInMs: 12_345,
    });
    const lines = text.split("\n");
    expect(lines[0]).toMatch(/^┌─+┐$/);
    expect(text).toContain("Valora is up in 12.3 s: autos@gm-v1");
    expect(text).toContain("export KEY=vk_abc_def");
    expect(text).toContain("kubectl --server http://127.0.0.1:6443 get vm,ap,deploy");
    expect(lines.at(-1)).toBe("  curl -s http://127.0.0.1:8080/v1/valuations");
    // Every line of the box is as wide as its border.
    const box = lines.slice(0, lines.findIndex((l) => l.startsWith("└")) + 1);
    expect(new Set(box.map((l) => l.length)).size).toBe(1);
  });
});
