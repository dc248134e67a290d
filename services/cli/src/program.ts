import { resolve } from "node:path";
import { Command, CommanderError } from "commander";
import { ConfigHelp } from "@valora/kit";

/**
 * Every service the `valora` command can run in this process. Each entry loads the service's
 * `main` lazily so `valora --help` does not pay for onnxruntime, pg or fastify.
 */
export const SERVICES: Record<
  string,
  { description: string; load: () => Promise<(argv: string[]) => Promise<void>> }
> = {
  operator: {
    description: "the Kubernetes operator (ValuationModel controller, leader-elected)",
    load: async () => {
      const { main } = await import("@valora/operator/main");
      return () => main();
    },
  },
  "model-server": {
    description: "Open Inference Protocol model server (gRPC + REST) for ONNX models",
    load: async () => (await import("@valora/model-server/main")).main,
  },
  gateway: {
    description: "the REST + gRPC edge (auth, roles, rate limits, OpenAPI)",
    load: async () => {
      const { main } = await import("@valora/gateway/main");
      return () => main();
    },
  },
  tenants: {
    description: "tenants, users, API keys, audit log and webhooks (gRPC, Postgres)",
    load: async () => {
      const { main } = await import("@valora/tenants/main");
      return () => main();
    },
  },
  orchestrator: {
    description:
      "valora.v1.ValuationService + JobService for the namespace's AssetPipelines (reads CRs, dispatches to pipeline pods)",
    load: async () => {
      const { main } = await import("@valora/orchestrator/main");
      return () => main();
    },
  },
  pipeline: {
    description:
      "the generic asset pipeline of one AssetPipeline (PIPELINE_CONFIG), following its ValuationModel's routing",
    load: async () => {
      const { main } = await import("@valora/pipeline/main");
      return () => main();
    },
  },
  ingest: {
    description:
      "data feeds: sales and listings through bronze/silver/gold under each AssetPipeline's contract, lineage, asset registry, realised accuracy (gRPC, Postgres)",
    load: async () => {
      const { main } = await import("@valora/ingest/main");
      return () => main();
    },
  },
  usage: {
    description: "usage metering per tenant, asset class and day (gRPC, Postgres)",
    load: async () => {
      const { main } = await import("@valora/usage/main");
      return () => main();
    },
  },
  billing: {
    description: "plans and billing with Stripe: subscriptions, metered usage, webhooks (gRPC, Postgres)",
    load: async () => {
      const { main } = await import("@valora/billing/main");
      return () => main();
    },
  },
  "market-data": {
    description: "validated monthly market series from files, HTTP feeds and the platform's own sales (gRPC)",
    load: async () => {
      const { main } = await import("@valora/market-data/main");
      return () => main();
    },
  },
  "job-worker": {
    description: "bulk-job workers (claim CSV job chunks from Postgres, value them through the orchestrator)",
    load: async () => {
      const { main } = await import("@valora/orchestrator/worker-main");
      return () => main();
    },
  },
  echo: {
    description: "the kit's example gRPC service (health, reflection, metrics)",
    load: async () => {
      const { main } = await import("@valora/kit/example");
      return () => main();
    },
  },
};

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

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
      if (name === "--help" || name === "-h") {
        const rows = Object.entries(SERVICES).map(([n, s]) => `  ${n.padEnd(14)} ${s.description}`);
        process.stdout.write(
          `Usage: valora serve <service> [service options]\n\nRuns one service in this process, as its pod does;` +
            ` configuration comes from the environment (a bad value exits with 78 naming it).\n\n` +
            `Services:\n${rows.join("\n")}\n\nExample:\n  GRPC_PORT=8001 valora serve model-server` +
            ` --model homes=file://$PWD/models/real-estate/model.onnx\n`,
        );
        return;
      }
      const entry = SERVICES[name];
      if (!entry) {
        throw new CommanderError(
          2,
          "valora.unknownService",
          `unknown service "${name}"; expected one of: ${Object.keys(SERVICES).join(", ")}`,
        );
      }
      const main = await entry.load();
      const rest = cmd.args.slice(1);
      if (rest.includes("--help") || rest.includes("-h")) {
        // The service's own configuration, read from the schema it loads its environment with.
        process.env["VALORA_CONFIG_HELP"] = "1";
        try {
          await main(rest.filter((a) => a !== "--help" && a !== "-h"));
        } catch (err) {
          if (!(err instanceof ConfigHelp)) throw err;
          process.stdout.write(
            `Usage: valora serve ${name}\n\n${entry.description}; configured by the environment.\n\n${err.text}`,
          );
          return;
        } finally {
          delete process.env["VALORA_CONFIG_HELP"];
        }
        return;
      }
      await main(rest);
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
    .command("render")
    .description(
      "print the Kubernetes objects the operator would create for ValuationModel / AssetPipeline YAML (GitOps review)",
    )
    .requiredOption("-f, --file <file>", "YAML file with Valora resources ('-' for stdin)")
    .option("-n, --namespace <ns>", "namespace for resources that name none", "default")
    .option("--image <image>", "Valora image the pods run", "ghcr.io/valora/valora:0.1.0")
    .action(async (opts: { file: string; namespace: string; image: string }) => {
      const { readFile } = await import("node:fs/promises");
      const { renderObjects, renderYaml } = await import("@valora/operator");
      const text =
        opts.file === "-"
          ? await readStdin()
          : await readFile(opts.file, "utf8").catch((err: NodeJS.ErrnoException) => {
              throw new CommanderError(
                2,
                "valora.noFile",
                `cannot read ${opts.file}: ${err.code ?? err.message}`,
              );
            });
      process.stdout.write(renderYaml(renderObjects(text, { image: opts.image }, opts.namespace)));
    });

  program
    .command("fetch-model")
    .description("download and verify a model file (the model-fetch init step of model-server pods)")
    .requiredOption("--uri <uri>", "file://, https:// or s3:// location")
    .requiredOption("--out <file>", "where to write the model")
    .option("--sha256 <hex>", "expected sha256; the file is refused when it differs")
    .action(async (opts: { uri: string; out: string; sha256?: string }) => {
      const { fetchModelToFile } = await import("@valora/model-server");
      const result = await fetchModelToFile(opts, process.env);
      process.stdout.write(`${opts.out}: sha256 ${result.sha256}${result.cached ? " (cached)" : ""}\n`);
    });

  program
    .command("value")
    .description(
      "value one asset over gRPC (valora.v1.ValuationService/Value) and print the valuation as JSON",
    )
    .argument("<asset-class>", "asset class, e.g. real-estate or autos")
    .argument("[attributes...]", "name=value pairs, e.g. gr_liv_area=1656 neighborhood=North_Ames")
    .option(
      "--grpc <address>",
      "gateway gRPC address (VALORA_GRPC)",
      process.env["VALORA_GRPC"] ?? "127.0.0.1:9090",
    )
    .option("--key <key>", "API key (VALORA_API_KEY)", process.env["VALORA_API_KEY"])
    .option("--asset-id <id>", "value an asset of the registry by its id")
    .option("--skip-cache", "value afresh instead of answering from the cache", false)
    .action(
      async (
        assetClass: string,
        pairs: string[],
        opts: { grpc: string; key?: string; assetId?: string; skipCache: boolean },
      ) => {
        if (!opts.key)
          throw new CommanderError(2, "valora.noKey", "no API key: pass --key or set VALORA_API_KEY");
        const { valueOverGrpc } = await import("./value.js");
        const { assetId, grpc, key, skipCache } = opts;
        const valuation = await valueOverGrpc({
          assetClass,
          pairs,
          grpc,
          key,
          skipCache,
          ...(assetId ? { assetId } : {}),
        });
        process.stdout.write(`${JSON.stringify(valuation, null, 2)}\n`);
      },
    );

  const jobs = program.command("jobs").description("bulk valuation jobs through the REST API");
  jobs
    .command("submit")
    .description("submit a CSV of assets to value; with --wait, follow its progress and write the results")
    .argument("<file>", "CSV with a header row naming the asset class's input fields")
    .requiredOption("--asset-class <name>", "asset class of every row")
    .option("--wait", "follow progress and download the results when done", false)
    .option("--out <file>", "results file (default <job id>.results.csv)")
    .option("--url <url>", "gateway URL (VALORA_URL)", process.env["VALORA_URL"] ?? "http://127.0.0.1:8080")
    .option("--key <key>", "API key (VALORA_API_KEY)", process.env["VALORA_API_KEY"])
    .option("--idempotency-key <key>", "makes a retried submission return the same job")
    .action(
      async (
        file: string,
        opts: {
          assetClass: string;
          wait: boolean;
          out?: string;
          url: string;
          key?: string;
          idempotencyKey?: string;
        },
      ) => {
        if (!opts.key)
          throw new CommanderError(2, "valora.noKey", "no API key: pass --key or set VALORA_API_KEY");
        const { submitJob } = await import("./jobs-submit.js");
        const job = await submitJob({
          file,
          assetClass: opts.assetClass,
          url: opts.url,
          key: opts.key,
          wait: opts.wait,
          ...(opts.out ? { out: opts.out } : {}),
          ...(opts.idempotencyKey ? { idempotencyKey: opts.idempotencyKey } : {}),
        });
        process.stdout.write(`${JSON.stringify(job)}\n`);
      },
    );

  program
    .command("migrate")
    .description(
      "apply every pending database migration (tenants, sales, jobs, usage, billing) to DATABASE_URL; services also run theirs at start-up",
    )
    .action(async () => {
      const url = process.env["DATABASE_URL"];
      if (!url) throw new CommanderError(2, "valora.noDatabase", "DATABASE_URL is not set");
      const { createPgPool } = await import("@valora/kit");
      const { migrateTenants } = await import("@valora/tenants");
      const { migrateSales } = await import("@valora/comparables");
      const { migrateJobs } = await import("@valora/orchestrator");
      const { migrateUsage } = await import("@valora/usage");
      const { migrateBilling } = await import("@valora/billing");
      const { migrateIngest } = await import("@valora/ingest");
      const pool = createPgPool({ url, max: 1 });
      try {
        const applied = await migrateTenants(pool);
        await migrateSales(pool);
        applied.push(...(await migrateJobs(pool)).map((m) => `jobs/${m}`));
        applied.push(...(await migrateUsage(pool)).map((m) => `usage/${m}`));
        applied.push(...(await migrateBilling(pool)).map((m) => `billing/${m}`));
        applied.push(...(await migrateIngest(pool)).map((m) => `ingest/${m}`));
        process.stdout.write(
          applied.length > 0 ? `applied: ${applied.join(", ")}\n` : "database is up to date\n",
        );
      } finally {
        await pool.end();
      }
    });

  program
    .command("up")
    .description(
      "run the whole platform on this machine (embedded Postgres and cache unless DATABASE_URL / REDIS_URL are set)",
    )
    .option(
      "--models-dir <dir>",
      "the image's /opt/valora/models here: <asset-class>/{model.onnx,model-card.json} and data/",
      "models",
    )
    .option(
      "--manifests <dir>",
      "ValuationModels and AssetPipelines to reconcile, followed as they change (VALORA_MANIFESTS)",
      process.env["VALORA_MANIFESTS"] ?? "manifests",
    )
    .option(
      "--data-dir <dir>",
      "where the embedded database and model cache live (VALORA_DATA_DIR)",
      process.env["VALORA_DATA_DIR"] ?? ".valora",
    )
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option("--port <port>", "REST gateway port (PORT)", process.env["PORT"] ?? "8080")
    .option("--grpc-port <port>", "gRPC ValuationService port", "9090")
    .option(
      "--kube-port <port>",
      "the local Kubernetes API (kubectl --server http://127.0.0.1:<port>); 0 picks a free port",
      "6443",
    )
    .action(
      async (opts: {
        modelsDir: string;
        manifests: string;
        dataDir: string;
        host: string;
        port: string;
        grpcPort: string;
        kubePort: string;
      }) => {
        const { up } = await import("./up.js");
        await up({
          modelsDir: resolve(opts.modelsDir),
          manifestsDir: resolve(opts.manifests),
          dataDir: resolve(opts.dataDir),
          host: opts.host,
          port: Number(opts.port),
          grpcPort: Number(opts.grpcPort),
          kubePort: Number(opts.kubePort),
        });
      },
    );

  return program;
}
