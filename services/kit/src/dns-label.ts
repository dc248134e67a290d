/** A DNS-1123 label from free text, at most 63 characters, stable for the same input. */
export function dnsLabel(...parts: string[]): string {
  const raw = parts
    .join("-")
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/-+/g, "-")
    .replace(/^-|-$/g, "");
  if (raw.length <= 63) return raw;
  let h = 0;
  for (const c of raw) h = (Math.imul(h, 31) + c.charCodeAt(0)) >>> 0;
  return `${raw.slice(0, 54).replace(/-$/, "")}-${h.toString(16).padStart(8, "0")}`;
}
