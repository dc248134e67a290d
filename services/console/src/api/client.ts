import createClient, { type Middleware } from "openapi-fetch";
import type { paths } from "./schema";

export type { paths };

/** One field the API named as the cause of an error. */
export interface FieldProblem {
  field: string;
  description: string;
}

/** An error answer of the API: its stable code, its message and the fields at fault. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: FieldProblem[] = [],
    readonly requestId?: string,
  ) {
    super(message);
  }

  /** Pure: the error an answer carries (the envelope's error, or a description of a bare status). */
  static of(status: number, body: unknown): ApiError {
    const env = body as
      | {
          error?: { code?: string; message?: string; details?: FieldProblem[] };
          meta?: { requestId?: string };
        }
      | undefined;
    const e = env?.error;
    if (e?.code)
      return new ApiError(status, e.code, e.message ?? e.code, e.details ?? [], env?.meta?.requestId);
    return new ApiError(
      status,
      status === 0 ? "NETWORK" : "HTTP_" + status,
      status === 0 ? "the gateway cannot be reached" : `the gateway answered ${status}`,
    );
  }
}

/** Where the credential lives: read at each request so signing out takes effect at once. */
export type TokenSource = () => string | null;

/** A typed client of the REST API (types generated from the gateway's OpenAPI document). */
export function createApi(token: TokenSource, onUnauthenticated: () => void) {
  const client = createClient<paths>({ baseUrl: globalThis.location?.origin ?? "" });
  const auth: Middleware = {
    onRequest({ request }) {
      const t = token();
      if (t) request.headers.set("authorization", `Bearer ${t}`);
      return request;
    },
    onResponse({ response }) {
      if (response.status === 401) onUnauthenticated();
      return response;
    },
  };
  client.use(auth);
  return client;
}
export type Api = ReturnType<typeof createApi>;

/** The envelope's data of a typed call, or its error thrown as an ApiError. */
export async function unwrap<T>(
  call: Promise<{ data?: { data: T | null } | undefined; error?: unknown; response: Response }>,
): Promise<NonNullable<T>> {
  let r: Awaited<typeof call>;
  try {
    r = await call;
  } catch {
    throw ApiError.of(0, undefined);
  }
  if (r.error !== undefined || !r.response.ok || !r.data || r.data.data === null)
    throw ApiError.of(r.response.status, r.error);
  return r.data.data as NonNullable<T>;
}

/** fetch with the bearer credential, for what the typed client does not carry (CSV, streams). */
export async function authorisedFetch(
  token: TokenSource,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  const t = token();
  if (t) headers.set("authorization", `Bearer ${t}`);
  let res: Response;
  try {
    res = await fetch(path, { ...init, headers });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw ApiError.of(0, undefined);
  }
  if (!res.ok) throw ApiError.of(res.status, await res.json().catch(() => undefined));
  return res;
}
