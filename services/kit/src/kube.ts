import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { ValoraError } from "./errors.js";

const SA = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface KubeReaderOptions {
  /** API server URL; in a pod, https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT. `kubectl proxy` or a test double: http://... */
  url?: string;
  /** Bearer token file (re-read, since projected tokens rotate); the pod's service account by default. */
  tokenFile?: string;
  /** CA bundle of the API server; the pod's service account CA by default. */
  caFile?: string;
  timeoutMs?: number;
}

export interface KubeReader {
  /** GET an object by API path; undefined when it does not exist (404). */
  get<T>(path: string): Promise<T | undefined>;
  /** GET a list by API path: its items. */
  list<T>(path: string): Promise<T[]>;
}

/**
 * Read-only access to the Kubernetes API for pods that follow custom resources (pipelines read
 * their ValuationModel's routing, the orchestrator its AssetPipelines): plain GETs with the pod's
 * service-account token, nothing else. The operator, which writes, uses @kubernetes/client-node.
 */
export function kubeReader(o: KubeReaderOptions = {}): KubeReader {
  const host = process.env["KUBERNETES_SERVICE_HOST"];
  const base =
    o.url ??
    (host
      ? `https://${host.includes(":") ? `[${host}]` : host}:${process.env["KUBERNETES_SERVICE_PORT"] ?? "443"}`
      : undefined);
  if (!base)
    throw new ValoraError(
      "FAILED_PRECONDITION",
      "no Kubernetes API: not in a pod and KUBE_API_URL is not set",
      { details: [{ field: "KUBE_API_URL", description: "e.g. http://127.0.0.1:8001 from kubectl proxy" }] },
    );
  const secure = base.startsWith("https:");
  const tokenFile = o.tokenFile ?? `${SA}/token`;
  const ca = secure ? readOptional(o.caFile ?? `${SA}/ca.crt`) : undefined;
  let token: { value: string | undefined; read: number } = { value: undefined, read: 0 };
  const bearer = () => {
    if (Date.now() - token.read > 60_000)
      token = { value: readOptional(tokenFile)?.toString().trim(), read: Date.now() };
    return token.value;
  };

  const get = (path: string): Promise<{ status: number; body: string }> =>
    new Promise((resolve, reject) => {
      const url = new URL(path, base);
      const t = bearer();
      const req = (secure ? httpsRequest : httpRequest)(
        url,
        {
          method: "GET",
          headers: { accept: "application/json", ...(t ? { authorization: `Bearer ${t}` } : {}) },
          ...(ca ? { ca } : {}),
          timeout: o.timeoutMs ?? 10_000,
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("timeout", () => req.destroy(new Error(`GET ${url.pathname} timed out`)));
      req.on("error", (err) =>
        reject(new ValoraError("UNAVAILABLE", `Kubernetes API unreachable: ${err.message}`, { cause: err })),
      );
      req.end();
    });

  const read = async <T>(path: string): Promise<T | undefined> => {
    const res = await get(path);
    if (res.status === 404) return undefined;
    if (res.status < 200 || res.status >= 300)
      throw new ValoraError(
        res.status === 401 || res.status === 403 ? "PERMISSION_DENIED" : "UNAVAILABLE",
        `Kubernetes API answered ${res.status} to GET ${path}: ${res.body.slice(0, 200)}`,
      );
    return JSON.parse(res.body) as T;
  };
  return {
    get: read,
    async list<T>(path: string) {
      return (await read<{ items?: T[] }>(path))?.items ?? [];
    },
  };
}

function readOptional(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}
