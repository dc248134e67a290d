import { Command, CommanderError } from "commander";

/**
 * Every service the `valora` command can run in this process. Each entry loads the service's
 * `main` lazily so `valora --help` does not pay for onnxruntime, pg or fastify.
 */
export const SERVICES: Record<string, { description: string; load: () => Promise<(argv: string[]) => Promise<void>> }> = {
  "model-server": {
    description: "Open Inference Protocol model server (gRPC + REST) for ONNX models",
    load: async () => (await import("@valora/model-server/main")).main,
  },
  echo: {
    description: "the kit's example gRPC service (health, reflection, metrics)",
    load: async () => {
      const { main } = await import("@valora/kit/example");
      return () => main();
    },
  },
};

export function buildProgram(): Command {
  const program = new Command("valora")
    .description("Valora: serve valuation models on Kubernetes, or on one machine")
    .showHelpAfterError()
    .exitOverride();

  program
    .command("serve")
    .description("run one service in this process (as a pod does)")
    .argument("<service>", `one of: ${Object.keys(SERVICES).join(", ")}`)
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .helpOption(false)
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const entry = SERVICES[name];
      if (!entry) {
        throw new CommanderError(2, "valora.unknownService", `unknown service "${name}"; expected one of: ${Object.keys(SERVICES).join(", ")}`);
      }
      const main = await entry.load();
      await main(cmd.args.slice(1));
    });

  program
    .command("train")
    .description("train a gradient-boosted tree model from a CSV into ONNX with a model card")
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .helpOption(false)
    .action(async (_opts: unknown, cmd: Command) => {
      const { main } = await import("@valora/trainer/main");
      await main(cmd.args);
    });

  program
    .command("up")
    .description("run the platform on this machine with embedded defaults (what exists so far)")
    .action(async () => {
      const main = await SERVICES["echo"]!.load();
      await main([]);
    });

  return program;
}
