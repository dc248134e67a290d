import { createHash, randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { exportJWK, generateKeyPair, SignJWT, type JWK } from "jose";

/**
 * An OpenID provider on loopback for the console's sign-in test, speaking the parts of the
 * protocol a public client uses: discovery, the authorization endpoint (it consents at once for
 * `claims`), the token endpoint with PKCE (S256) verified, and the JWKS. Real identity providers
 * (Keycloak, Dex, Auth0) cannot run here; this one keeps to RFC 6749/7636 and OIDC Discovery.
 */
export async function startOidcProvider(claims: Record<string, unknown>): Promise<{
  issuer: string;
  clientId: string;
  /** Authorization requests seen (their query), to check what the console sent. */
  requests: URLSearchParams[];
  close: () => Promise<void>;
}> {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: "k1", alg: "RS256", use: "sig" };
  const codes = new Map<string, { challenge: string; redirect: string; clientId: string }>();
  const requests: URLSearchParams[] = [];
  const clientId = "valora-console";
  let issuer = "";
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", issuer);
    const json = (status: number, body: unknown) => {
      res.writeHead(status, {
        "content-type": "application/json",
        // The console calls discovery and the token endpoint from its own origin.
        "access-control-allow-origin": "*",
        "access-control-allow-headers": "content-type",
      });
      res.end(JSON.stringify(body));
    };
    if (req.method === "OPTIONS") return json(204, {});
    if (url.pathname === "/.well-known/openid-configuration")
      return json(200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/.well-known/jwks.json`,
        response_types_supported: ["code"],
        code_challenge_methods_supported: ["S256"],
      });
    if (url.pathname === "/.well-known/jwks.json") return json(200, { keys: [jwk] });
    if (url.pathname === "/authorize") {
      const q = url.searchParams;
      requests.push(q);
      const redirect = q.get("redirect_uri") ?? "";
      if (
        q.get("client_id") !== clientId ||
        q.get("response_type") !== "code" ||
        q.get("code_challenge_method") !== "S256"
      )
        return json(400, { error: "invalid_request" });
      const code = randomBytes(16).toString("hex");
      codes.set(code, { challenge: q.get("code_challenge") ?? "", redirect, clientId });
      res.writeHead(302, {
        location: `${redirect}?code=${code}&state=${encodeURIComponent(q.get("state") ?? "")}`,
      });
      return res.end();
    }
    if (url.pathname === "/token" && req.method === "POST") {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        const f = new URLSearchParams(body);
        const grant = codes.get(f.get("code") ?? "");
        codes.delete(f.get("code") ?? "");
        const verifier = f.get("code_verifier") ?? "";
        const challenge = createHash("sha256").update(verifier).digest("base64url");
        if (
          !grant ||
          grant.challenge !== challenge ||
          grant.redirect !== f.get("redirect_uri") ||
          f.get("client_id") !== clientId
        )
          return json(400, {
            error: "invalid_grant",
            error_description: "code, verifier or redirect does not match",
          });
        void new SignJWT(claims)
          .setProtectedHeader({ alg: "RS256", kid: "k1" })
          .setIssuer(issuer)
          .setIssuedAt()
          .setExpirationTime("10m")
          .sign(privateKey)
          .then((token) => json(200, { access_token: token, token_type: "Bearer", expires_in: 600 }));
      });
      return;
    }
    json(404, { error: "not_found" });
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { issuer, clientId, requests, close: () => new Promise((ok) => server.close(() => ok())) };
}
