/**
 * OIDC sign-in in the browser: authorization code with PKCE (no client secret in the bundle).
 * The verifier and state wait in session storage between the redirect and the callback.
 */
export interface OidcConfig {
  issuer: string;
  clientId: string;
  scopes: string;
  audience: string | null;
}

interface Discovery {
  authorization_endpoint: string;
  token_endpoint: string;
}

const PENDING = "valora.oidc.pending";
export const CALLBACK_PATH = "/auth/callback";

const b64url = (bytes: Uint8Array) =>
  btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");

async function discover(issuer: string): Promise<Discovery> {
  const res = await fetch(`${issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  if (!res.ok) throw new Error(`the identity provider's discovery document answered ${res.status}`);
  return (await res.json()) as Discovery;
}

/** Sends the browser to the identity provider; comes back to CALLBACK_PATH. */
export async function startOidcSignIn(c: OidcConfig, returnTo: string): Promise<void> {
  const d = await discover(c.issuer);
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = b64url(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))),
  );
  sessionStorage.setItem(PENDING, JSON.stringify({ verifier, state, returnTo }));
  const url = new URL(d.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: c.clientId,
    redirect_uri: location.origin + CALLBACK_PATH,
    scope: c.scopes,
    state,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...(c.audience ? { audience: c.audience } : {}),
  }).toString();
  location.assign(url.href);
}

/** Exchanges the callback's code for an access token; throws with the provider's reason. */
export async function finishOidcSignIn(
  c: OidcConfig,
  params: URLSearchParams,
): Promise<{ token: string; expiresAt: number; returnTo: string }> {
  const pending = JSON.parse(sessionStorage.getItem(PENDING) ?? "null") as {
    verifier: string;
    state: string;
    returnTo: string;
  } | null;
  sessionStorage.removeItem(PENDING);
  if (params.get("error"))
    throw new Error(`sign-in refused: ${params.get("error_description") ?? params.get("error")}`);
  if (!pending || params.get("state") !== pending.state)
    throw new Error("sign-in answer does not match this tab's request");
  const d = await discover(c.issuer);
  const res = await fetch(d.token_endpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: params.get("code") ?? "",
      redirect_uri: location.origin + CALLBACK_PATH,
      client_id: c.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const body = (await res.json().catch(() => ({}))) as {
    access_token?: string;
    expires_in?: number;
    error_description?: string;
  };
  if (!res.ok || !body.access_token)
    throw new Error(`token exchange failed: ${body.error_description ?? res.status}`);
  return {
    token: body.access_token,
    expiresAt: Date.now() + (body.expires_in ?? 3600) * 1000,
    returnTo: pending.returnTo,
  };
}
