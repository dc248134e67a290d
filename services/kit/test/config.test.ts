import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, vars, z } from "@valora/kit";

const Schema = z.object({
  PORT: vars.port(8080),
  DATABASE_URL: vars.url().optional(),
  DEBUG: vars.bool(false),
  MODELS: vars.list(["a"]),
  LOG_LEVEL: vars.logLevel(),
});

describe("loadConfig", () => {
  it("applies defaults and coerces types", () => {
    expect(loadConfig(Schema, {})).toEqual({ PORT: 8080, DEBUG: false, MODELS: ["a"], LOG_LEVEL: "info" });
    expect(
      loadConfig(Schema, { PORT: "9000", DEBUG: "true", MODELS: "x, y,,z", DATABASE_URL: "postgres://h/db" }),
    ).toEqual({
      PORT: 9000,
      DEBUG: true,
      MODELS: ["x", "y", "z"],
      LOG_LEVEL: "info",
      DATABASE_URL: "postgres://h/db",
    });
  });

  it("treats empty variables as unset", () => {
    expect(loadConfig(Schema, { PORT: "" }).PORT).toBe(8080);
  });

  it("fails fast, naming every bad variable and its value", () => {
    let error: unknown;
    try {
      loadConfig(Schema, { PORT: "99999", DEBUG: "maybe", DATABASE_URL: "not a url", LOG_LEVEL: "loud" });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join("\n");
    for (const name of ["PORT", "DEBUG", "DATABASE_URL", "LOG_LEVEL"]) expect(problems).toContain(name);
    expect(problems).toContain('"99999"');
    expect((error as ConfigError).message).toMatch(/^invalid configuration:/);
  });
});
