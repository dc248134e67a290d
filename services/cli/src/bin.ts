#!/usr/bin/env node
import { CommanderError } from "commander";
import { ConfigError, ValoraError } from "@valora/kit";
import { buildProgram } from "./program.js";

// A reader that went away (`valora up | head`, a closed terminal, a supervisor's pipe) costs the
// log lines, not the platform: a write to a closed pipe must not crash every valuation with it.
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code !== "EPIPE") throw err;
  });

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (
      err.exitCode !== 0 &&
      !["commander.helpDisplayed", "commander.version", "commander.help"].includes(err.code)
    ) {
      if (err.code.startsWith("valora.")) process.stderr.write(`valora: ${err.message}\n`);
    }
    process.exit(err.exitCode);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`valora: ${err.message}\n`);
    process.exit(78);
  }
  if (err instanceof ValoraError) {
    process.stderr.write(`valora: ${err.message}\n`);
    process.exit(err.httpStatus < 500 ? 2 : 1);
  }
  if (err instanceof Error && "code" in err && String(err.code).startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`valora: ${err.message}\n`);
    process.exit(2);
  }
  throw err;
}
