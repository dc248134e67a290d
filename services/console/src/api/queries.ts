import { useQuery } from "@tanstack/react-query";
import { useSession } from "../session";
import { createApi, unwrap } from "./client";

// The console's configuration is public: it is read before anyone signs in, without a credential.
const publicApi = createApi(
  () => null,
  () => undefined,
);

/** What the console needs before sign-in (OIDC client, map tiles): read once per load. */
export function useConsoleConfig() {
  return useQuery({
    queryKey: ["console-config"],
    queryFn: () => unwrap(publicApi.GET("/v1/console/config")),
    staleTime: Infinity,
  });
}

/** The asset classes open to the caller, with their fields (the value form, CSV checks, key scopes). */
export function useAssetClasses() {
  const { api } = useSession();
  return useQuery({ queryKey: ["asset-classes"], queryFn: () => unwrap(api.GET("/v1/asset-classes")) });
}
