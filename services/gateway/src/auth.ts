import { jwtVerify, type JWTVerifyGetKey } from "jose";
import { Role, type TenantService } from "@valora/proto/valora/v1/tenants_pb";
import { ValoraError, type Client } from "@valora/kit";

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
  now?: () => number;
}

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
  private readonly now: () => number;

  constructor(private readonly o: AuthenticatorOptions) {
    this.ttl = o.cacheTtlMs ?? 5000;
    this.now = o.now ?? Date.now;
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
    const hit = this.cache.get(key);
    if (hit && hit.expires > this.now()) return hit.principal;
    const { principal } = await this.o.tenants.authenticate({ apiKey: key, ip });
    if (!principal) throw unauthenticated("invalid API key");
    const p: Principal = {
      tenantId: principal.tenantId,
      tenantName: principal.tenantName,
      subject: principal.subject,
      roles: roleNames(principal.roles),
      assetClasses: principal.assetClasses,
      platformAdmin: principal.platformAdmin,
      plan: principal.plan,
    };
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(key, { principal: p, expires: this.now() + this.ttl });
    return p;
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
    const { principal } = await this.o.tenants.resolveSubject({ tenant, subject: sub, tokenRoles });
    if (!principal) throw unauthenticated("unknown subject");
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
}

/** Pure: may this principal call a route that needs one of `allowed`? */
export function hasRole(p: Principal, allowed: readonly RoleName[]): boolean {
  return p.roles.some((r) => allowed.includes(r));
}

/** Pure: may this principal value this asset class? */
export function mayValue(p: Principal, assetClass: string): boolean {
  return p.assetClasses.length === 0 || p.assetClasses.includes(assetClass);
}
