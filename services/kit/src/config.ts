import { z } from "zod";

/** Thrown when the environment does not describe a runnable service; lists every problem at once. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
    this.problems = problems;
  }
}

type Env = Record<string, string | undefined>;

/** Thrown by loadConfig when asked for help (VALORA_CONFIG_HELP): the text to print, then exit 0. */
export class ConfigHelp extends Error {
  constructor(readonly text: string) {
    super("configuration help");
    this.name = "ConfigHelp";
  }
}

/** Pure: a config schema's variables with their defaults and descriptions, one per line. */
export function describeConfig(schema: z.ZodObject): string {
  const rows = Object.entries(schema.shape).map(([name, field]) => {
    const f = field as z.ZodType;
    const parsed = f.safeParse(undefined);
    const def =
      parsed.success && parsed.data !== undefined ? ` (default ${JSON.stringify(parsed.data)})` : "";
    const required = !parsed.success ? " (required)" : "";
    return `  ${name}${def}${required}${f.description ? `\n      ${f.description}` : ""}`;
  });
  return `Environment variables:\n${rows.join("\n")}\n`;
}

/**
 * Parses environment variables with a zod object schema whose keys are the variable names.
 * Empty strings count as unset, so `FOO=` falls back to the default instead of failing oddly.
 */
export function loadConfig<S extends z.ZodObject>(schema: S, env: Env = process.env): z.infer<S> {
  if (env["VALORA_CONFIG_HELP"]) throw new ConfigHelp(describeConfig(schema));
  const input: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== "") input[key] = value;
  }
  const result = schema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => {
        const name = issue.path.join(".");
        const got = name in input ? ` (got ${JSON.stringify(input[name])})` : "";
        return `${name}: ${issue.message}${got}`;
      }),
    );
  }
  return result.data;
}

/** Reusable variable types. */
export const vars = {
  port: (def: number) => z.coerce.number().int().min(0).max(65535).default(def),
  int: (def: number, min = 0) => z.coerce.number().int().min(min).default(def),
  number: (def: number) => z.coerce.number().default(def),
  bool: (def: boolean) =>
    z
      .enum(["true", "false", "1", "0", "yes", "no"], { message: "expected true or false" })
      .transform((v) => v === "true" || v === "1" || v === "yes")
      .prefault(def ? "true" : "false"),
  url: () => z.url({ message: "expected a URL" }),
  list: (def: string[] = []) =>
    z
      .string()
      .transform((v) =>
        v
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s.length > 0),
      )
      .prefault(def.join(",")),
  logLevel: () => z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  host: (def: string) => z.string().min(1).default(def),
};

export { z };
