import { Role } from "@valora/proto/valora/v1/tenants_pb";
import { ValoraError } from "@valora/kit";

export const ROLE_NAMES = ["admin", "manager", "viewer", "api", "auditor"] as const;
export type RoleName = (typeof ROLE_NAMES)[number];

export function roleName(role: Role): RoleName {
  const name = Role[role]?.toLowerCase();
  if (!name || !(ROLE_NAMES as readonly string[]).includes(name))
    throw new ValoraError("INVALID_ARGUMENT", `unknown role ${role}`, {
      details: [{ field: "roles", description: `one of ${ROLE_NAMES.join(", ")}` }],
    });
  return name as RoleName;
}

export function roleOf(name: string): Role {
  const r = Role[name.toUpperCase() as keyof typeof Role];
  if (typeof r !== "number" || r === Role.UNSPECIFIED)
    throw new ValoraError("INVALID_ARGUMENT", `unknown role "${name}"`, {
      details: [{ field: "roles", description: `one of ${ROLE_NAMES.join(", ")}` }],
    });
  return r;
}
