import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { ApiError, createApi, unwrap, type Api, type TokenSource } from "./api/client";
import type { paths } from "./api/schema";

/** A credential kept for this browser tab only (session storage): never in a URL, never logged. */
export interface Credential {
  token: string;
  kind: "apiKey" | "oidc";
  /** Epoch ms after which an OIDC token is no longer tried. */
  expiresAt?: number;
}

const KEY = "valora.credential";

export function loadCredential(storage: Storage = sessionStorage): Credential | null {
  try {
    const c = JSON.parse(storage.getItem(KEY) ?? "null") as Credential | null;
    if (!c?.token || (c.expiresAt !== undefined && c.expiresAt < Date.now())) return null;
    return c;
  } catch {
    return null;
  }
}

export function saveCredential(c: Credential | null, storage: Storage = sessionStorage): void {
  if (c) storage.setItem(KEY, JSON.stringify(c));
  else storage.removeItem(KEY);
}

export type Tenant = NonNullable<
  paths["/v1/tenant"]["get"]["responses"][200]["content"]["application/json"]["data"]
>;
export type RoleName = Tenant["principal"]["roles"][number];

interface Session {
  api: Api;
  token: TokenSource;
  credential: Credential | null;
  tenant: Tenant | undefined;
  /** The principal is being resolved. */
  tenantLoading: boolean;
  /** Why the last credential was refused (shown on the sign-in page). */
  refusal: unknown;
  signIn: (c: Credential) => void;
  signOut: () => void;
  /** Does the principal hold one of these roles? (The API enforces it; the console only hides.) */
  can: (...roles: RoleName[]) => boolean;
}

const SessionContext = createContext<Session | null>(null);

export function SessionProvider({ children }: { children: ReactNode }) {
  const [credential, setCredential] = useState<Credential | null>(() => loadCredential());
  const queryClient = useQueryClient();
  const signOut = useCallback(() => {
    saveCredential(null);
    setCredential(null);
    queryClient.clear();
  }, [queryClient]);
  const token = useCallback<TokenSource>(() => loadCredential()?.token ?? null, []);
  // A credential accepted earlier and refused now (revoked, expired): the session ends, saying why.
  const accepted = useRef(false);
  const [refusal, setRefusal] = useState<unknown>(null);
  const api = useMemo(
    () =>
      createApi(token, () => {
        if (!accepted.current) return;
        accepted.current = false;
        setRefusal(
          new ApiError(401, "UNAUTHENTICATED", "your session ended: the credential is no longer accepted"),
        );
        signOut();
      }),
    [token, signOut],
  );
  const tenant = useQuery({
    queryKey: ["tenant", credential?.token],
    enabled: credential !== null,
    queryFn: () => unwrap(api.GET("/v1/tenant")),
    staleTime: 60_000,
    retry: false,
  });
  accepted.current = tenant.data !== undefined;
  // A refused credential is forgotten at once; why stays on the sign-in page.
  useEffect(() => {
    if (!credential || !tenant.error) return;
    setRefusal(tenant.error);
    saveCredential(null);
    setCredential(null);
  }, [credential, tenant.error]);
  const value = useMemo<Session>(
    () => ({
      api,
      token,
      credential,
      tenant: tenant.data,
      tenantLoading: tenant.isLoading,
      refusal,
      signIn: (c) => {
        setRefusal(null);
        saveCredential(c);
        setCredential(c);
      },
      signOut,
      can: (...roles) => roles.some((r) => tenant.data?.principal.roles.includes(r)),
    }),
    [api, token, credential, tenant.data, tenant.isLoading, refusal, signOut],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (!s) throw new Error("useSession outside SessionProvider");
  return s;
}
