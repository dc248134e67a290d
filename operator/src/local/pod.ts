import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  type WriteStream,
} from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { HealthCheckResponse_ServingStatus, Health } from "@valora/proto/grpc/health/v1/health_pb";
import { createClient, type Logger } from "@valora/kit";
import { PodPorts } from "./ports.js";
import type { ContainerState, PodFacts } from "./pod-object.js";
import {
  containerEnv,
  rewritePaths,
  targetPort,
  type Container,
  type EnvSources,
  type PodTemplate,
  type Probe,
} from "./pod-spec.js";

export interface PodRuntime {
  /** The image's ENTRYPOINT on this machine, e.g. [node, services/cli/dist/bin.js]. */
  entrypoint: string[];
  /** Folders of the image as folders here (e.g. /opt/valora/models → ./models). */
  imagePaths: Record<string, string>;
  /** What every container gets besides its own environment (PATH, KUBE_API_URL, ...). */
  baseEnv: Record<string, string>;
  sources: Omit<EnvSources, "podName">;
  logger: Logger;
  /** Where containers' output lines go (JSON lines with the pod added); stdout / stderr by default. */
  output?: (line: string, stream: "stdout" | "stderr") => void;
  probePeriodMs: number;
  /** Events of what happens to the pod (Scheduled, Started, BackOff, Killing, Unhealthy), as a kubelet records them. */
  event?: (pod: LocalPod, reason: string, message: string, type: "Normal" | "Warning") => void;
  /** Bytes a container's log file may reach before it is rotated (the previous one kept). */
  logLimitBytes?: number;
  /** Where pods' ports come from (one per process: no two pods get the same port). */
  ports?: { reserve(): Promise<number>; release(port: number): void };
}

const defaultPorts = new PodPorts();

/**
 * One pod run as processes on this machine: volumes as folders (emptyDir, ConfigMap and Secret
 * files), init containers in order, then the containers with restart-always and back-off, each
 * declared container port given its own loopback port, a readiness probe polled (httpGet, grpc,
 * tcpSocket). Logs are the containers' JSON lines with the pod's name added.
 */
export class LocalPod {
  ready = false;
  /** containerPort → port on loopback. */
  readonly ports = new Map<number, number>();
  private children = new Map<string, ChildProcess>();
  private stopping = false;
  private probeTimer: NodeJS.Timeout | undefined;
  private restarts = 0;
  /** Containers whose last run could not bind a port (EADDRINUSE): they get new ports on restart. */
  private bindFailed = new Set<string>();
  private src?: EnvSources;
  private mounts: Record<string, string> = {};
  readonly uid = randomUUID();
  readonly createdAt = new Date().toISOString();
  private startedAt: string | undefined;
  /** Each container's state, restart count and last termination, by name. */
  private readonly states = new Map<string, ContainerState>();
  private readonly logs = new Map<string, { stream: WriteStream; bytes: number }>();
  /** Each container's last output line: what an init container that failed said last. */
  private readonly lastLine = new Map<string, string>();

  constructor(
    readonly name: string,
    readonly hash: string,
    readonly labels: Record<string, string>,
    readonly template: PodTemplate,
    private readonly dir: string,
    private readonly rt: PodRuntime,
    private readonly onReadyChange: () => void,
  ) {}

  /** The namespace the pod runs in. */
  get namespace(): string {
    return this.rt.sources.namespace;
  }

  get declaredPorts() {
    return this.template.spec.containers.flatMap((c) => c.ports ?? []);
  }

  private get portSource() {
    return this.rt.ports ?? defaultPorts;
  }

  /** What `v1` Pod object this pod is (see podObject). */
  facts(namespace: string, owner?: PodFacts["owner"]): PodFacts {
    const waiting = (c: Container): ContainerState => ({
      name: c.name,
      image: c.image ?? "",
      restartCount: 0,
      ready: false,
      state: { waiting: { reason: "PodInitializing" } },
    });
    const spec = this.template.spec;
    return {
      name: this.name,
      namespace,
      uid: this.uid,
      labels: this.labels,
      ...(owner ? { owner } : {}),
      spec: spec,
      createdAt: this.createdAt,
      ...(this.startedAt ? { startedAt: this.startedAt } : {}),
      ready: this.ready,
      stopping: this.stopping,
      initContainers: (spec.initContainers ?? []).map((c) => this.states.get(c.name) ?? waiting(c)),
      containers: spec.containers.map((c) => {
        const st = this.states.get(c.name) ?? waiting(c);
        return { ...st, ready: this.ready && "running" in st.state };
      }),
    };
  }

  /** A container's log file (the one before its last restart with `previous`), when it has one. */
  logFile(container: string | undefined, previous = false): string | undefined {
    const name = container ?? this.template.spec.containers[0]?.name;
    if (!name) return undefined;
    const file = join(this.dir, "logs", `${name}${previous ? ".previous" : ""}.log`);
    return existsSync(file) ? file : undefined;
  }

  private setState(name: string, change: (prev: ContainerState | undefined) => ContainerState): void {
    this.states.set(name, change(this.states.get(name)));
    this.onReadyChange();
  }

  async start(): Promise<void> {
    this.startedAt = new Date().toISOString();
    this.rt.event?.(this, "Scheduled", `Successfully assigned ${this.name} to local`, "Normal");
    for (const p of this.declaredPorts)
      if (!this.ports.has(p.containerPort)) this.ports.set(p.containerPort, await this.portSource.reserve());
    const mounts = this.prepareVolumes();
    const src: EnvSources = { ...this.rt.sources, podName: this.name };
    this.src = src;
    this.mounts = mounts;
    for (const init of this.template.spec.initContainers ?? []) {
      if (this.stopping) return;
      const code = await this.runToEnd(init, containerEnv(init, src, this.ports, mounts), mounts);
      if (code !== 0) {
        const said = lastWords(this.lastLine.get(init.name));
        const message = `init container ${init.name} exited with ${code}${said ? `: ${said}` : ""}`;
        this.rt.event?.(this, "Failed", message, "Warning");
        throw new Error(`${message} (pod ${this.name})`);
      }
    }
    for (const c of this.template.spec.containers)
      this.run(c, containerEnv(c, src, this.ports, mounts), mounts);
    const probe = this.template.spec.containers.find((c) => c.readinessProbe);
    this.probeTimer = setInterval(
      () => void this.probe(probe?.readinessProbe, probe?.ports ?? []),
      this.rt.probePeriodMs,
    );
    void this.probe(probe?.readinessProbe, probe?.ports ?? []);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const name of this.children.keys())
      this.rt.event?.(this, "Killing", `Stopping container ${name}`, "Normal");
    clearInterval(this.probeTimer);
    this.setReady(false);
    const grace = (this.template.spec.terminationGracePeriodSeconds ?? 30) * 1000;
    await Promise.all(
      [...this.children.values()].map(
        (child) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            const kill = setTimeout(() => child.kill("SIGKILL"), grace);
            child.once("exit", () => {
              clearTimeout(kill);
              done();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
    for (const port of this.ports.values()) this.portSource.release(port);
    for (const l of this.logs.values()) l.stream.end();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private prepareVolumes(): Record<string, string> {
    // The pod's folder is its containers' working directory, volumes or not.
    mkdirSync(this.dir, { recursive: true });
    const volumeDirs = new Map<string, string>();
    for (const v of this.template.spec.volumes ?? []) {
      const dir = join(this.dir, "volumes", v.name);
      mkdirSync(dir, { recursive: true });
      const data = v.configMap
        ? this.rt.sources.configMap(v.configMap.name)
        : v.secret
          ? this.rt.sources.secret(v.secret.secretName)
          : undefined;
      if ((v.configMap && !v.configMap.optional && !data) || (v.secret && !v.secret.optional && !data))
        throw new Error(`volume ${v.name}: ${v.configMap?.name ?? v.secret?.secretName} not found`);
      for (const [file, content] of Object.entries(data ?? {})) writeFileSync(join(dir, file), content);
      volumeDirs.set(v.name, dir);
    }
    // One mount table for the pod: the containers of these pods mount volumes at the same paths.
    const mounts: Record<string, string> = { ...this.rt.imagePaths };
    for (const c of [...(this.template.spec.initContainers ?? []), ...this.template.spec.containers]) {
      for (const m of c.volumeMounts ?? []) {
        const dir = volumeDirs.get(m.name);
        if (dir) mounts[m.mountPath] = dir;
      }
    }
    return mounts;
  }

  private spawn(c: Container, env: Record<string, string>, mounts: Record<string, string>): ChildProcess {
    // Paths in the pod spec name the container's filesystem and are mapped; the image's own
    // entrypoint is a path on this machine (which may well lie under /tmp) and is not.
    const argv = [
      ...(c.command?.map((a) => rewritePaths(a, mounts, existsSync)) ?? this.rt.entrypoint),
      ...(c.args ?? []).map((a) => rewritePaths(a, mounts, existsSync)),
    ];
    const child = spawn(argv[0]!, argv.slice(1), {
      env: { ...this.rt.baseEnv, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      cwd: this.dir,
    });
    const write =
      this.rt.output ??
      ((line: string, stream: "stdout" | "stderr") =>
        (stream === "stdout" ? process.stdout : process.stderr).write(line));
    this.openLog(c.name);
    const forward = (input: NodeJS.ReadableStream, stream: "stdout" | "stderr") =>
      createInterface({ input }).on("line", (line) => {
        if (line.includes("EADDRINUSE")) this.bindFailed.add(c.name);
        if (line.trim()) this.lastLine.set(c.name, line);
        this.appendLog(c.name, `${line}\n`);
        write(
          line.startsWith("{") && line.endsWith("}")
            ? `{"pod":${JSON.stringify(this.name)},"container":${JSON.stringify(c.name)},${line.slice(1)}\n`
            : `[${this.name}/${c.name}] ${line}\n`,
          stream,
        );
      });
    forward(child.stdout, "stdout");
    forward(child.stderr, "stderr");
    return child;
  }

  /** A container's run starts a new log; the one before is kept as `.previous` (what `kubectl logs -p` reads). */
  private openLog(container: string): void {
    const dir = join(this.dir, "logs");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `${container}.log`);
    this.logs.get(container)?.stream.end();
    if (existsSync(file) && statSync(file).size > 0) renameSync(file, join(dir, `${container}.previous.log`));
    this.logs.set(container, { stream: createWriteStream(file, { flags: "a" }), bytes: 0 });
  }

  private appendLog(container: string, text: string): void {
    const log = this.logs.get(container);
    if (!log) return;
    log.bytes += Buffer.byteLength(text);
    // Bounded on disk: past the limit the file starts again, the full one kept as the previous.
    if (log.bytes > (this.rt.logLimitBytes ?? 10 * 1024 * 1024)) this.openLog(container);
    this.logs.get(container)!.stream.write(text);
  }

  private runToEnd(
    c: Container,
    env: Record<string, string>,
    mounts: Record<string, string>,
  ): Promise<number | null> {
    const child = this.spawn(c, env, mounts);
    this.children.set(c.name, child);
    const startedAt = new Date().toISOString();
    this.setState(c.name, () => ({
      name: c.name,
      image: c.image ?? "",
      restartCount: 0,
      ready: false,
      state: { running: { startedAt } },
    }));
    return new Promise((resolve) => {
      const done = (code: number | null) => {
        this.children.delete(c.name);
        this.setState(c.name, (prev) => ({
          ...prev!,
          state: {
            terminated: {
              exitCode: code ?? 1,
              reason: code === 0 ? "Completed" : "Error",
              startedAt,
              finishedAt: new Date().toISOString(),
            },
          },
        }));
        resolve(code);
      };
      child.once("error", (err) => {
        this.lastLine.set(c.name, `cannot start: ${err.message}`);
        done(127);
      });
      child.once("exit", done);
    });
  }

  /** restartPolicy Always: a container that exits is started again after a growing back-off. */
  private run(c: Container, env: Record<string, string>, mounts: Record<string, string>): void {
    const child = this.spawn(c, env, mounts);
    this.children.set(c.name, child);
    const started = Date.now();
    this.setState(c.name, (prev) => ({
      name: c.name,
      image: c.image ?? "",
      restartCount: prev ? prev.restartCount + 1 : 0,
      ready: false,
      state: { running: { startedAt: new Date(started).toISOString() } },
      ...(prev?.lastState ? { lastState: prev.lastState } : {}),
    }));
    this.rt.event?.(this, "Started", `Started container ${c.name}`, "Normal");
    child.once("exit", (code, signal) => {
      if (this.stopping) return;
      this.setReady(false);
      if (Date.now() - started > 60_000) this.restarts = 0;
      const delay = Math.min(1000 * 2 ** this.restarts++, 30_000);
      const finishedAt = new Date().toISOString();
      const reason = signal ? `Signal ${signal}` : code === 0 ? "Completed" : "Error";
      this.setState(c.name, (prev) => ({
        ...prev!,
        lastState: { terminated: { exitCode: code ?? 128, reason, finishedAt } },
        state: {
          waiting: {
            reason: "CrashLoopBackOff",
            message: `back-off ${delay / 1000}s restarting failed container=${c.name} pod=${this.name}`,
          },
        },
      }));
      this.rt.event?.(
        this,
        "BackOff",
        `Back-off restarting failed container ${c.name} in pod ${this.name}`,
        "Warning",
      );
      this.rt.logger.warn(
        { pod: this.name, container: c.name, code, signal, restartInMs: delay },
        "container exited; restarting (CrashLoopBackOff)",
      );
      setTimeout(() => void this.restart(c, env, mounts), delay).unref();
    });
  }

  /**
   * Starts a container again; one that could not bind its port gets new ports first (the pod's
   * port map changes, and Services and the service map follow it), rather than crash-looping on a
   * port something else holds.
   */
  private async restart(
    c: Container,
    env: Record<string, string>,
    mounts: Record<string, string>,
  ): Promise<void> {
    if (this.stopping) return;
    if (this.bindFailed.delete(c.name) && this.src) {
      for (const p of c.ports ?? []) {
        const old = this.ports.get(p.containerPort);
        const port = await this.portSource.reserve();
        this.ports.set(p.containerPort, port);
        if (old !== undefined) this.portSource.release(old);
        this.rt.logger.warn(
          { pod: this.name, container: c.name, containerPort: p.containerPort, from: old, to: port },
          "port taken: container moved to another port",
        );
      }
      env = containerEnv(c, this.src, this.ports, this.mounts);
      this.onReadyChange();
    }
    if (!this.stopping) this.run(c, env, mounts);
  }

  private async probe(p: Probe | undefined, declared: Container["ports"] & object): Promise<void> {
    if (this.stopping) return;
    const running = [...this.children.values()].every((ch) => ch.exitCode === null && ch.signalCode === null);
    let ok = running;
    if (ok && p) {
      try {
        if (p.httpGet) {
          const port = targetPort(p.httpGet.port, declared, this.ports);
          const res = await fetch(`http://127.0.0.1:${port}${p.httpGet.path ?? "/"}`, {
            signal: AbortSignal.timeout(1000),
          });
          ok = res.status >= 200 && res.status < 400;
        } else if (p.grpc) {
          const client = createClient(Health, `127.0.0.1:${targetPort(p.grpc.port, declared, this.ports)}`, {
            timeoutMs: 1000,
          });
          try {
            ok =
              (await client.check({ service: p.grpc.service ?? "" })).status ===
              HealthCheckResponse_ServingStatus.SERVING;
          } finally {
            client.close();
          }
        } else if (p.tcpSocket) {
          const port = targetPort(p.tcpSocket.port, declared, this.ports);
          ok = await new Promise<boolean>((r) => {
            const s = connect(port ?? 0, "127.0.0.1", () => (s.end(), r(true)));
            s.once("error", () => r(false));
          });
        }
      } catch {
        ok = false;
      }
    }
    if (!this.stopping) this.setReady(ok);
  }

  private setReady(ready: boolean): void {
    if (this.ready === ready) return;
    if (
      !ready &&
      this.ready &&
      !this.stopping &&
      [...this.children.values()].every((ch) => ch.exitCode === null)
    )
      this.rt.event?.(this, "Unhealthy", "Readiness probe failed", "Warning");
    this.ready = ready;
    this.rt.logger.info({ pod: this.name, ready }, ready ? "pod ready" : "pod not ready");
    this.onReadyChange();
  }
}

/** Pure: a container's last output line for people — a JSON log line's message and error, else the line. */
export function lastWords(line: string | undefined): string | undefined {
  if (!line) return undefined;
  try {
    const o = JSON.parse(line) as { msg?: unknown; err?: { message?: unknown }; error?: unknown };
    const err =
      typeof o.err?.message === "string" ? o.err.message : typeof o.error === "string" ? o.error : "";
    const msg = typeof o.msg === "string" ? o.msg : "";
    return [msg, err].filter(Boolean).join(": ") || line;
  } catch {
    return line.slice(0, 500);
  }
}
