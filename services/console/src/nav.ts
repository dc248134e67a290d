import type { RoleName } from "./session";

/** The console's pages, who sees each (the API enforces the same roles) and where it lives. */
export interface Page {
  path: string;
  label: string;
  roles: readonly RoleName[];
}

export const PAGES: readonly Page[] = [
  { path: "/value", label: "Value an asset", roles: ["admin", "manager", "api"] },
  { path: "/jobs", label: "Bulk jobs", roles: ["admin", "manager", "viewer", "api"] },
  { path: "/models", label: "Models", roles: ["admin", "manager", "viewer", "api"] },
  { path: "/data", label: "Data", roles: ["admin", "manager", "viewer", "api"] },
  { path: "/market", label: "Market", roles: ["admin", "manager", "viewer", "api"] },
  { path: "/account", label: "Account", roles: ["admin", "manager", "auditor", "viewer"] },
];

/** Pure: the pages a principal with these roles sees, in menu order. */
export function pagesFor(roles: readonly RoleName[]): Page[] {
  return PAGES.filter((p) => p.roles.some((r) => roles.includes(r)));
}
