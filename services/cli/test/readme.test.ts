import { execFile, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bin, root, stop, up, type Banner } from "./support/platform.js";

const run = promisify(execFile);

/** The shell blocks of a Markdown document whose fence says `sh runnable` (pure). */
function runnableBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```sh runnable\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** A block as written, pointed at this run's ports instead of the defaults `npm start` uses (pure). */
function atPorts(block: string, banner: Banner): string {
  const rest = new URL(banner.rest).host;
  const kube = new URL(banner.kubernetes).host;
  return block
    .replaceAll("127.0.0.1:8080", rest)
    .replaceAll("127.0.0.1:9090", banner.grpc)
    .replaceAll("127.0.0.1:6443", kube);
}

const readme = readFileSync(join(root, "README.md"), "utf8");

describe("README", () => {
  it("has the two commands and the tour's runnable blocks", () => {
    expect(readme).toContain("```sh\nnpm ci && npm start\n```");
    expect(readme).toContain("```sh\nnpm ci && npm test\n```");
    expect(runnableBlocks(readme).length).toBeGreaterThanOrEqual(6);
    expect(readme.split("\n").length, "the README stays a newcomer's page").toBeLessThan(160);
  });

  it("links only to files that exist", () => {
    for (const [, target] of readme.matchAll(/\]\(([^)#:]+)(#[^)]*)?\)/g)) {
      expect(existsSync(join(root, target!)), `README links to ${target}`).toBe(true);
    }
  });
});

describe.skipIf(!existsSync(bin))("the README's tour, run as written against valora up", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "valora-readme-"));
  const manifests = join(dataDir, "manifests");
  cpSync(join(root, "manifests"), manifests, { recursive: true });
  let child: ChildProcess;
  let banner: Banner;
  const outputs: string[] = [];

  beforeAll(async () => {
    ({ child, banner } = await up(dataDir, { VALORA_MANIFESTS: manifests }));
  }, 120_000);
  afterAll(async () => {
    if (child.exitCode === null) await stop(child);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("runs every runnable block with the printed key: each exits 0", async () => {
    const env = { ...process.env, KEY: banner.apiKey!, VALORA_API_KEY: undefined };
    for (const block of runnableBlocks(readme)) {
      const script = `set -euo pipefail\n${atPorts(block, banner)}`;
      const result = await run("bash", ["-c", script], { cwd: root, env, timeout: 60_000 }).catch(
        (err: { code: number; stdout: string; stderr: string }) => err,
      );
      expect("code" in result ? result.code : 0, `${block}\n${result.stderr}${result.stdout}`).toBe(0);
      outputs.push(result.stdout);
    }
  }, 180_000);

  it("shows what the tour promises: a house valued by REST, a car by gRPC, the objects, the canary", () => {
    const [house, classes, car, unseen, objects, canary, , tenant] = outputs;
    const valued = JSON.parse(house!) as {
      data: { value: number; comparables: unknown[]; explanation: unknown };
    };
    expect(valued.data.value).toBeGreaterThan(50_000);
    expect(valued.data.comparables.length).toBeGreaterThan(0);
    const catalog = JSON.parse(classes!) as { data: { name: string }[] };
    expect(catalog.data.map((c) => c.name)).toContain("real-estate");
    expect((JSON.parse(car!) as { value: number }).value).toBeGreaterThan(1_000);
    expect(objects).toContain("valuationmodel.valora.dev/real-estate");
    expect(objects).toContain("deployment.apps/real-estate-ames-v1");
    // kubectl's columns, printed by the local API server (server-side printing, as a cluster's does).
    expect(objects).toMatch(/NAME\s+CHAMPION\s+CANDIDATE\s+TRAFFIC\s+PHASE\s+BIAS%/);
    expect(objects).toMatch(/NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE/);
    expect(objects).toMatch(/valuationmodel\.valora\.dev\/real-estate\s+ames-v1\s/);
    expect(canary).toContain('"version":"ames-v2"');
    // The car beyond the training data: valued, warned, a wider interval than the known one.
    const far = JSON.parse(unseen!) as {
      value: number;
      interval: { low: number; high: number };
      warnings: { field: string; code: string }[];
    };
    const near = JSON.parse(car!) as { interval: { low: number; high: number } };
    expect(far.value).toBeGreaterThan(1_000);
    expect(far.warnings).toEqual([
      expect.objectContaining({ field: "attributes.mileage", code: "OUTSIDE_TRAINING_RANGE" }),
    ]);
    expect(far.interval.high / far.interval.low).toBeGreaterThan(near.interval.high / near.interval.low);
    // Pods as kubectl shows them, and a pod's log.
    expect(objects).toMatch(/NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/);
    expect(objects).toMatch(/pod\/pipeline-real-estate-\S+\s+1\/1\s+Running/);
    // A new tenant with its first admin key, shown once.
    const onboarded = JSON.parse(tenant!) as {
      data: { tenant: { name: string }; apiKey: { secret: string } };
    };
    expect(onboarded.data.tenant.name).toBe("acme");
    expect(onboarded.data.apiKey.secret).toMatch(/^vk_/);
  });
});
