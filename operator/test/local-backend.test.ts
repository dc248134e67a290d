import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { get } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "@valora/kit";
import { LocalApiServer, type Obj } from "../src/local/apiserver.js";
import { LocalProcessBackend } from "../src/local/backend.js";
import { PodPorts, ephemeralRange, podPortRange } from "../src/local/ports.js";
import { kubectl } from "./support/kubectl.js";
import {
  containerEnv,
  localReplicas,
  rewritePaths,
  rolloutStep,
  templateHash,
  type Container,
} from "../src/local/pod-spec.js";

describe("local pods, pure parts", () => {
  it("rewrites container paths to local folders in one pass, on whole segments", () => {
    const mounts = {
      "/etc/valora": "/tmp/run/p1/volumes/config",
      "/tmp": "/tmp/run/p1/volumes/tmp",
      "/opt/valora/models": "/home/me/valora/models",
    };
    expect(rewritePaths("/etc/valora/pipeline.yaml", mounts)).toBe(
      "/tmp/run/p1/volumes/config/pipeline.yaml",
    );
    expect(rewritePaths("file:///opt/valora/models/autos/model.onnx", mounts)).toBe(
      "file:///home/me/valora/models/autos/model.onnx",
    );
    expect(rewritePaths("--out=/tmp/x", mounts)).toBe("--out=/tmp/run/p1/volumes/tmp/x");
    expect(rewritePaths("/tmpfile", mounts)).toBe("/tmpfile");
    expect(rewritePaths("see /etc/valora", mounts)).toBe("see /etc/valora");
    // A model URI may name this machine's file (where `valora train --out /tmp/x` wrote it) rather
    // than one in the pod's /tmp volume: the file that exists wins, the pod's first.
    const files = new Set(["/tmp/x/model.onnx", "/tmp/run/p1/volumes/tmp/fetched.onnx"]);
    const exists = (p: string) => files.has(p);
    expect(rewritePaths("file:///tmp/x/model.onnx", mounts, exists)).toBe("file:///tmp/x/model.onnx");
    expect(rewritePaths("file:///tmp/fetched.onnx", mounts, exists)).toBe(
      "file:///tmp/run/p1/volumes/tmp/fetched.onnx",
    );
    expect(rewritePaths("autos=file:///tmp/nowhere.onnx", mounts, exists)).toBe(
      "autos=file:///tmp/run/p1/volumes/tmp/nowhere.onnx",
    );
  });

  it("builds a container's environment as the kubelet does, with declared ports mapped to local ones", () => {
    const c: Container = {
      name: "app",
      envFrom: [{ secretRef: { name: "env" } }, { configMapRef: { name: "missing", optional: true } }],
      env: [
        { name: "GRPC_PORT", value: "9090" },
        { name: "OTHER_PORT", value: "1234" },
        { name: "NS", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
        { name: "POD", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
        { name: "CONFIG", value: "/etc/valora/pipeline.yaml" },
        { name: "DATABASE_URL", value: "overridden by env" },
        // The kubelet's $(VAR): variables defined before, escaped with $$, unknown ones left as written.
        { name: "ATTRS", value: "k8s.pod.name=$(POD),ns=$(NS),x=$(LATER),lit=$$(POD)" },
        { name: "LATER", value: "l" },
      ],
      ports: [{ name: "grpc", containerPort: 9090 }],
    };
    const env = containerEnv(
      c,
      {
        namespace: "ns1",
        podName: "p-1",
        secret: (n) => (n === "env" ? { DATABASE_URL: "postgres://x", MARKET: "m:1" } : undefined),
        configMap: () => undefined,
      },
      new Map([[9090, 41000]]),
      { "/etc/valora": "/local/config" },
    );
    expect(env).toEqual({
      DATABASE_URL: "overridden by env",
      MARKET: "m:1",
      GRPC_PORT: "41000",
      OTHER_PORT: "1234",
      NS: "ns1",
      POD: "p-1",
      CONFIG: "/local/config/pipeline.yaml",
      ATTRS: "k8s.pod.name=p-1,ns=ns1,x=$(LATER),lit=$(POD)",
      LATER: "l",
    });
    expect(() =>
      containerEnv(
        { name: "x", envFrom: [{ secretRef: { name: "nope" } }] },
        { namespace: "n", podName: "p", secret: () => undefined, configMap: () => undefined },
        new Map(),
        {},
      ),
    ).toThrow(/nope not found/);
  });

  it("rolls like a Deployment with maxSurge 1 and maxUnavailable 0", () => {
    expect(rolloutStep([], "h2", 1)).toEqual({ start: 1, stop: [] });
    // New template: surge one, keep the old pod serving until the new one is ready.
    expect(rolloutStep([{ name: "old", hash: "h1", ready: true }], "h2", 1)).toEqual({ start: 1, stop: [] });
    expect(
      rolloutStep(
        [
          { name: "old", hash: "h1", ready: true },
          { name: "new", hash: "h2", ready: false },
        ],
        "h2",
        1,
      ),
    ).toEqual({ start: 0, stop: [] });
    expect(
      rolloutStep(
        [
          { name: "old", hash: "h1", ready: true },
          { name: "new", hash: "h2", ready: true },
        ],
        "h2",
        1,
      ),
    ).toEqual({ start: 0, stop: ["old"] });
    expect(
      rolloutStep(
        [
          { name: "a", hash: "h2", ready: true },
          { name: "b", hash: "h2", ready: true },
        ],
        "h2",
        1,
      ),
    ).toEqual({ start: 0, stop: ["b"] });
    expect(
      localReplicas({ metadata: { name: "d" }, spec: { template: { spec: { containers: [] } } } }, 3, 1),
    ).toBe(1);
    expect(
      localReplicas(
        { metadata: { name: "d" }, spec: { replicas: 0, template: { spec: { containers: [] } } } },
        3,
        1,
      ),
    ).toBe(0);
    expect(templateHash({ metadata: { labels: { a: "1", b: "2" } }, spec: { containers: [] } })).toBe(
      templateHash({ spec: { containers: [] }, metadata: { labels: { b: "2", a: "1" } } }),
    );
  });
});

/** A tiny HTTP server standing in for a container image: ready once its config is read, /crash exits. */
const APP = `
const http = require("node:http");
const fs = require("node:fs");
const message = fs.readFileSync(process.env.CONFIG, "utf8").trim();
const server = http.createServer((req, res) => {
  if (req.url === "/crash") { res.end("bye"); setTimeout(() => process.exit(3), 10); return; }
  res.end(JSON.stringify({ version: process.env.VERSION, message, secret: process.env.TOKEN, host: process.env.HOST, tmp: process.env.TMPDIR }));
}).listen(Number(process.env.PORT), process.env.HOST, () => console.log("demo " + process.env.VERSION + " listening"));
// Drains as Valora's services do: no new connections, idle keep-alive ones closed, then exit.
process.on("SIGTERM", () => { server.close(() => process.exit(0)); server.closeIdleConnections(); });
`;

describe("the local process backend (Deployments as processes, Services as loopback proxies)", () => {
  const dir = mkdtempSync(join(tmpdir(), "valora-backend-"));
  const api = new LocalApiServer();
  let backend: LocalProcessBackend;
  const app = join(dir, "app.cjs");
  writeFileSync(app, APP);
  // Pods' ports as the backend gets them, except that a test may hand the next pod a taken one.
  const realPorts = new PodPorts();
  let forced: number | undefined;
  const ports = {
    reserve: async () => {
      const p = forced;
      forced = undefined;
      return p ?? realPorts.reserve();
    },
    release: (p: number) => realPorts.release(p),
  };

  const deployment = (version: string): Obj => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "demo", namespace: "ns" },
    spec: {
      selector: { matchLabels: { app: "demo" } },
      template: {
        metadata: { labels: { app: "demo" } },
        spec: {
          terminationGracePeriodSeconds: 2,
          volumes: [
            { name: "config", configMap: { name: "demo-config" } },
            { name: "tmp", emptyDir: {} },
          ],
          containers: [
            {
              name: "app",
              image: "demo:1",
              env: [
                { name: "PORT", value: "8080" },
                { name: "VERSION", value: version },
                { name: "CONFIG", value: "/etc/demo/message" },
                { name: "TMPDIR", value: "/tmp" },
              ],
              envFrom: [{ secretRef: { name: "demo-env" } }],
              ports: [{ name: "http", containerPort: 8080 }],
              readinessProbe: { httpGet: { path: "/", port: "http" } },
              // The image's entrypoint lives under /tmp here, like a checkout in /tmp: it must not be remapped.
              volumeMounts: [
                { name: "config", mountPath: "/etc/demo" },
                { name: "tmp", mountPath: "/tmp" },
              ],
            },
          ],
        },
      },
    },
  });
  /** One request on a new connection (what the proxy routes is connections, not requests). */
  const proxied = async (
    path = "/",
  ): Promise<{ version: string; message: string; secret: string; host: string; tmp: string } | string> => {
    const map = JSON.parse(readFileSync(backend.serviceMapFile, "utf8")) as Record<string, string>;
    return new Promise((resolve) => {
      const req = get(`http://${map["demo.ns:80"]}${path}`, { agent: false, timeout: 1000 }, (res) => {
        let body = "";
        res.on("data", (c: Buffer) => (body += c.toString()));
        res.on("end", () =>
          resolve(
            path === "/"
              ? (JSON.parse(body) as {
                  version: string;
                  message: string;
                  secret: string;
                  host: string;
                  tmp: string;
                })
              : body,
          ),
        );
        res.on("error", (err) => resolve(`unreachable: ${err.message}`));
      });
      req.on("error", (err) => resolve(`unreachable: ${err.message}`));
      req.on("timeout", () => req.destroy(new Error("timeout")));
    });
  };
  const status = () =>
    api.get("deployments", "ns", "demo")?.["status"] as
      { readyReplicas?: number; replicas?: number; updatedReplicas?: number } | undefined;

  let server = "";
  beforeAll(async () => {
    const url = await api.start();
    server = url;
    backend = new LocalProcessBackend({
      api,
      apiUrl: url,
      runDir: join(dir, "run"),
      entrypoint: [process.execPath, app],
      imagePaths: {},
      logger: createLogger({ service: "test", level: "silent" }),
      probePeriodMs: 100,
      ports,
    });
    await backend.start();
    api.put({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "demo-config", namespace: "ns" },
      data: { message: "hello from a ConfigMap" },
    });
    api.put({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "demo-env", namespace: "ns" },
      data: { TOKEN: Buffer.from("s3cret").toString("base64") },
    });
    api.put({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: "demo", namespace: "ns" },
      spec: { selector: { app: "demo" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
    });
  });
  afterAll(async () => {
    await backend.stop();
    await api.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs a Deployment's pod, reports it ready in the status, and serves it through its Service", async () => {
    api.put(deployment("v1"));
    await expect.poll(() => status()?.readyReplicas, { timeout: 10_000 }).toBe(1);
    const answer = await proxied();
    expect(answer).toMatchObject({
      version: "v1",
      message: "hello from a ConfigMap",
      secret: "s3cret",
      host: "127.0.0.1",
    });
    expect((answer as { tmp: string }).tmp).toBe(
      join(dir, "run", "pods", backend.podsOf("ns/demo")[0]!.name, "volumes", "tmp"),
    );
  });

  it("shows its pods to kubectl: get pods, logs (deploy/ and pod), describe with events, delete restarts", async () => {
    const [pod] = backend.podsOf("ns/demo");
    const got = await kubectl(server, ["get", "pods", "-n", "ns"]);
    expect(got.stdout).toMatch(/NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE/);
    expect(got.stdout).toMatch(new RegExp(`${pod!.name}\\s+1/1\\s+Running\\s+0\\s`));
    const logs = await kubectl(server, ["logs", "-n", "ns", "deploy/demo"]);
    expect(logs.status, logs.stderr).toBe(0);
    expect(logs.stdout).toContain("demo v1 listening");
    const described = await kubectl(server, ["describe", "pod", "-n", "ns", pod!.name]);
    expect(described.stdout).toMatch(/Status:\s+Running/);
    expect(described.stdout).toMatch(/Controlled By:\s+Deployment\/demo/);
    expect(described.stdout).toMatch(
      /Events:[\s\S]*Scheduled[\s\S]*Started\s+\S+\s+kubelet\s+Started container app/,
    );
    // Deleted, the pod is replaced (another name), as its ReplicaSet would.
    expect((await kubectl(server, ["delete", "pod", "-n", "ns", pod!.name, "--wait=false"])).status).toBe(0);
    await expect
      .poll(() => backend.podsOf("ns/demo").map((p) => p.name), { timeout: 10_000 })
      .not.toContain(pod!.name);
    await expect.poll(() => status()?.readyReplicas, { timeout: 10_000 }).toBe(1);
    expect(api.list("pods", "ns").map((p) => p.metadata.name)).toEqual(
      backend.podsOf("ns/demo").map((p) => p.name),
    );
  });

  it("rolls a template change: the new pod serves before the old one stops", async () => {
    api.put(deployment("v2"));
    const seen = new Set<string>();
    await expect
      .poll(
        async () => {
          const r = await proxied();
          seen.add(typeof r === "string" ? "unreachable" : r.version);
          return typeof r === "string" ? r : r.version;
        },
        { timeout: 10_000, interval: 50 },
      )
      .toBe("v2");
    expect(seen.has("unreachable")).toBe(false);
    await expect.poll(() => backend.podsOf("ns/demo").length, { timeout: 10_000 }).toBe(1);
    expect(status()).toMatchObject({ replicas: 1, updatedReplicas: 1, readyReplicas: 1 });
  });

  it("restarts a container that exits, reporting the pod unready meanwhile", async () => {
    expect(await proxied("/crash")).toBe("bye");
    await expect.poll(() => status()?.readyReplicas, { timeout: 5000, interval: 20 }).toBe(0);
    await expect.poll(() => status()?.readyReplicas, { timeout: 10_000 }).toBe(1);
    expect(await proxied()).toMatchObject({ version: "v2" });
    // kubectl sees the restart: its count, the previous run's log, the back-off event.
    const [pod] = backend.podsOf("ns/demo");
    await expect
      .poll(async () => (await kubectl(server, ["get", "pods", "-n", "ns", "--no-headers"])).stdout, {
        timeout: 5000,
      })
      .toMatch(new RegExp(`${pod!.name}\\s+1/1\\s+Running\\s+1 \\(`));
    const previous = await kubectl(server, ["logs", "-n", "ns", pod!.name, "--previous"]);
    expect(previous.stdout).toContain("demo v2 listening");
    expect((await kubectl(server, ["get", "events", "-n", "ns"])).stdout).toMatch(
      /Warning\s+BackOff\s+pod\/\S+\s+Back-off restarting failed container app/,
    );
  });

  it("moves a pod whose port something else took to another port; its Service follows", async () => {
    const held = await realPorts.reserve();
    const squatter = createServer().listen(held, "127.0.0.1");
    try {
      forced = held;
      api.put(deployment("v3"));
      await expect
        .poll(
          async () => {
            const r = await proxied();
            return typeof r === "string" ? r : r.version;
          },
          { timeout: 20_000, interval: 100 },
        )
        .toBe("v3");
      const [pod] = backend.podsOf("ns/demo");
      expect(pod!.ports.get(8080)).not.toBe(held);
    } finally {
      squatter.close();
    }
  });

  it("says why a pod cannot start: an init container's failure is a Warning event with its last words", async () => {
    const said = {
      level: "error",
      msg: "cannot fetch the model",
      err: { message: "ENOENT: no such file /models/cars.onnx" },
    };
    const fail = `console.log(${JSON.stringify(JSON.stringify(said))}); process.exit(1)`;
    api.put({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "broken", namespace: "ns" },
      spec: {
        selector: { matchLabels: { app: "broken" } },
        template: {
          metadata: { labels: { app: "broken" } },
          spec: {
            initContainers: [
              { name: "model-fetch", image: "demo:1", command: [process.execPath, "-e", fail] },
            ],
            containers: [{ name: "app", image: "demo:1" }],
          },
        },
      },
    });
    await expect
      .poll(
        async () =>
          (await kubectl(server, ["get", "events", "-n", "ns", "--field-selector", "reason=Failed"])).stdout,
        {
          timeout: 10_000,
        },
      )
      .toMatch(
        /Warning\s+Failed\s+pod\/broken-\S+\s+init container model-fetch exited with 1: cannot fetch the model: ENOENT: no such file \/models\/cars.onnx/,
      );
    api.delete("deployments", "ns", "broken");
  });

  it("stops the pods of a deleted Deployment; its Service then refuses connections", async () => {
    api.delete("deployments", "ns", "demo");
    await expect.poll(() => backend.podsOf("ns/demo").length, { timeout: 5000 }).toBe(0);
    await expect.poll(async () => typeof (await proxied()) === "string", { timeout: 5000 }).toBe(true);
  });
});

describe("pods' ports (pure)", () => {
  it("come from outside the kernel's ephemeral range, so no listen(0) of ours can take one first", () => {
    expect(ephemeralRange(() => "32768\t60999\n")).toEqual([32768, 60999]);
    expect(ephemeralRange(() => "garbage")).toEqual([49152, 65535]);
    expect(podPortRange([32768, 60999])).toEqual([20000, 32767]);
    expect(podPortRange([10000, 60000])).toEqual([60001, 65535]);
  });

  it("are never handed to two pods at once", async () => {
    const ports = new PodPorts([29000, 29003]);
    const got = await Promise.all([ports.reserve(), ports.reserve(), ports.reserve(), ports.reserve()]);
    expect(new Set(got).size).toBe(4);
    await expect(ports.reserve()).rejects.toThrow(/no free port/);
    ports.release(got[0]);
    expect(await ports.reserve()).toBe(got[0]);
  });
});
