import { createRemoteJWKSet } from "jose";
import type { OidcOptions } from "./auth.js";

/**
 * OIDC bearer tokens from the standard variables (the gateway's and `valora up`'s): the issuer's
 * JWKS at OIDC_JWKS_URL or `<issuer>/.well-known/jwks.json`; none without OIDC_ISSUER.
 */
export function oidcOptions(c: {
  OIDC_ISSUER?: string | undefined;
  OIDC_JWKS_URL?: string | undefined;
  OIDC_AUDIENCE?: string | undefined;
  OIDC_TENANT_CLAIM?: string | undefined;
  OIDC_ROLES_CLAIM?: string | undefined;
}): OidcOptions | undefined {
  if (!c.OIDC_ISSUER) return undefined;
  const issuer = c.OIDC_ISSUER.endsWith("/") ? c.OIDC_ISSUER : `${c.OIDC_ISSUER}/`;
  return {
    issuer: c.OIDC_ISSUER,
    keys: createRemoteJWKSet(new URL(c.OIDC_JWKS_URL ?? new URL(".well-known/jwks.json", issuer).href)),
    tenantClaim: c.OIDC_TENANT_CLAIM ?? "tenant",
    rolesClaim: c.OIDC_ROLES_CLAIM ?? "roles",
    ...(c.OIDC_AUDIENCE ? { audience: c.OIDC_AUDIENCE } : {}),
  };
}
