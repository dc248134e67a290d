import { jwtVerify, type JWTVerifyGetKey } from "jose";
import {
  Role,
  type Principal as ProtoPrincipal,
  type TenantService,
} from "@valora/proto/valora/v1/tenants_pb";
import { ValoraError, type Client, type DegradedLog } from "@valora/kit";

export type RoleName = "admin" | "manager" | "viewer" | "api" | "auditor";

/** Who may call what: every route names one of these sets. */
export const ROLE_SETS = {
  any: ["admin", "manager", "viewer", "api", "auditor"],
  read: ["admin", "manager", "viewer", "api"],
  value: ["admin", "manager", "api"],
  admin: ["admin"],
  audit: ["admin", "auditor"],
  hooks: ["admin", "manager"],
  usage: ["admin", "viewer"],
} as const satisfies Record<string, readonly RoleName[]>;

export interface Principal {
  tenantId: string;
  tenantName: string;
  subject: string;
  roles: RoleName[];
  /** Asset classes this principal may value; empty means all. */
  assetClasses: string[];
  platformAdmin: boolean;
  plan: string;
}

export interface OidcOptions {
  issuer: string;
  audience?: string;
  /** JWKS of the issuer (jose's createRemoteJWKSet in production, a local set in tests). */
  keys: JWTVerifyGetKey;
  /** Claim naming the tenant (id or name). */
  tenantClaim: string;
  /** Claim carrying role names, used when the tenant has no user record for the subject. */
  rolesClaim: string;
}

export interface AuthenticatorOptions {
  tenants: Pick<Client<typeof TenantService>, "authenticate" | "resolveSubject">;
  oidc?: OidcOptions;
  /** How long a resolved API key is trusted before asking the tenants service again. */
  cacheTtlMs?: number;
  /**
   * Stale-if-error: how long past its TTL a resolved credential keeps working while the tenants
   * service (or its database) cannot answer (default 5 minutes; 0 refuses at once).
   */
  staleIfErrorMs?: number;
  /** Told about each request let in on a stale credential (rate-limited warnings, a metric). */
  degraded?: DegradedLog;
  now?: () => number;
}

/** Errors that say the tenants service could not answer, as opposed to a refused credential. */
const OUTAGE_CODES = new Set(["UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL"]);

const unauthenticated = (message: string) => new ValoraError("UNAUTHENTICATED", message);

/** Pure: role names of proto roles (unknown values dropped). */
export const roleNames = (roles: Role[]): RoleName[] =>
  roles
    .map((r) => Role[r]?.toLowerCase())
    .filter((r): r is RoleName => r !== undefined && r !== "unspecified");
/** Pure: the proto role of a role name, any case; undefined for an unknown name. */
export const roleEnum = (name: string): Role | undefined => {
  const r = Role[name.toUpperCase() as keyof typeof Role];
  return typeof r === "number" && r !== Role.UNSPECIFIED ? r : undefined;
};

/**
 * Resolves `Authorization: Bearer <credential>` to a principal: API keys (`vk_...`) through the
 * tenants service, cached for a few seconds so a request costs no round trip (a revoked key stops
 * working within that TTL); anything else is verified as an OIDC JWT against the issuer's JWKS.
 */
export class Authenticator {
  private readonly cache = new Map<string, { principal: Principal; expires: number }>();
  private readonly ttl: number;
  private readonly staleMs: number;
  private readonly now: () => number;

  constructor(private readonly o: AuthenticatorOptions) {
    this.ttl = o.cacheTtlMs ?? 5000;
    this.staleMs = o.staleIfErrorMs ?? 300_000;
    this.now = o.now ?? Date.now;
  }

  /**
   * Resolves `key` through the cache: fresh hits at once, misses by `resolve`; when `resolve`
   * fails for want of the tenants service, a hit at most `staleIfErrorMs` past its TTL still
   * answers (an outage must not lock out callers already known), anything older is refused.
   */
  private async cached(key: string, ttl: number, resolve: () => Promise<Principal>): Promise<Principal> {
    const hit = this.cache.get(key);
    const now = this.now();
    if (hit && hit.expires > now) return hit.principal;
    let principal: Principal;
    try {
      principal = await resolve();
    } catch (err) {
      const outage = err instanceof ValoraError ? OUTAGE_CODES.has(err.code) : true;
      if (!outage || !hit || now - hit.expires > this.staleMs) throw err;
      this.o.degraded?.note("tenants", "tenants service unavailable: serving resolved credentials", err);
      return hit.principal;
    }
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { principal, expires: now + ttl });
    return principal;
  }

  async authenticate(authorization: string | undefined, ip: string): Promise<Principal> {
    if (!authorization)
      throw unauthenticated("missing Authorization header: send `Authorization: Bearer <api key or token>`");
    const m = /^Bearer\s+(\S+)$/i.exec(authorization.trim());
    if (!m) throw unauthenticated("Authorization must be `Bearer <api key or token>`");
    const credential = m[1]!;
    return credential.startsWith("vk_") ? this.apiKey(credential, ip) : this.jwt(credential);
  }

  private async apiKey(key: string, ip: string): Promise<Principal> {
    return this.cached(key, this.ttl, async () => {
      const { principal } = await this.o.tenants.authenticate({ apiKey: key, ip });
      if (!principal) throw unauthenticated("invalid API key");
      return toPrincipal(principal);
    });
  }

  /** Forgets the cached principals of a tenant (its plan or keys changed): the next request asks again. */
  invalidateTenant(tenantId: string): void {
    for (const [key, hit] of this.cache) if (hit.principal.tenantId === tenantId) this.cache.delete(key);
  }

  private async jwt(token: string): Promise<Principal> {
    const oidc = this.o.oidc;
    if (!oidc) throw unauthenticated("not an API key, and no OIDC issuer is configured for bearer tokens");
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, oidc.keys, {
        issuer: oidc.issuer,
        ...(oidc.audience ? { audience: oidc.audience } : {}),
      }));
    } catch (err) {
      throw unauthenticated(`invalid token: ${err instanceof Error ? err.message : "verification failed"}`);
    }
    const tenant = payload[oidc.tenantClaim];
    const sub = payload["sub"];
    if (typeof tenant !== "string" || typeof sub !== "string" || sub === "")
      throw unauthenticated(`token lacks the "${oidc.tenantClaim}" or "sub" claim`);
    const rawRoles = payload[oidc.rolesClaim];
    const tokenRoles = (
      Array.isArray(rawRoles) ? rawRoles : typeof rawRoles === "string" ? rawRoles.split(" ") : []
    )
      .map((r) => roleEnum(String(r)))
      .filter((r): r is Role => r !== undefined);
    // The token was verified above. Its subject is resolved on every request (a role change applies
    // at once), and the last answer is kept only to serve through an outage (stale-if-error).
    return this.cached(`oidc:${tenant}:${sub}:${tokenRoles.join(",")}`, 0, async () => {
      const { principal } = await this.o.tenants.resolveSubject({ tenant, subject: sub, tokenRoles });
      if (!principal) throw unauthenticated("unknown subject");
      return toPrincipal(principal);
    });
  }
}

/** Pure: the gateway's principal of the tenants service's answer. */
function toPrincipal(principal: ProtoPrincipal): Principal {
  return {
    tenantId: principal.tenantId,
    tenantName: principal.tenantName,
    subject: principal.subject,
    roles: roleNames(principal.roles),
    assetClasses: principal.assetClasses,
    platformAdmin: principal.platformAdmin,
    plan: principal.plan,
  };
}

/** Pure: may this principal call a route that needs one of `allowed`? */
export function hasRole(p: Principal, allowed: readonly RoleName[]): boolean {
  return p.roles.some((r) => allowed.includes(r));
}

/** Pure: may this principal value this asset class? */
export function mayValue(p: Principal, assetClass: string): boolean {
  return p.assetClasses.length === 0 || p.assetClasses.includes(assetClass);
}
