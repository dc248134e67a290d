import { join } from "node:path";
import { createServiceBase, loadConfig } from "@valora/kit";
import { JobResultsEnv, PipelineCallsEnv, coalesceOptionsFrom, jobResultsFrom } from "@valora/orchestrator";
import { consoleOptions, oidcOptions } from "@valora/gateway";
import { startPlatform } from "./platform.js";
import { forPeople, readyBox, terminalLogger } from "./terminal.js";

export interface UpOptions {
  modelsDir: string;
  manifestsDir: string;
  dataDir: string;
  host: string;
  port: number;
  grpcPort: number;
  kubePort: number;
}

/** `valora up` (npm start): the platform on this machine, then the URLs, the key and a curl to paste. */
export async function up(o: UpOptions, env: Record<string, string | undefined> = process.env): Promise<void> {
  const started = Date.now();
  let failed = false;
  const terminal = forPeople(env, process.stdout.isTTY) ? terminalLogger("valora") : undefined;
  const base = createServiceBase({
    name: "valora",
    exit: (code) => process.exit(failed ? 1 : code),
    ...(terminal ? { logger: terminal.logger } : {}),
  });
  base.shutdown.installSignalHandlers();
  const jobResults = jobResultsFrom(loadConfig(JobResultsEnv, env));
  const oidc = oidcOptions(env);
  const pipelineCalls = coalesceOptionsFrom(loadConfig(PipelineCallsEnv, env));
  const p = await startPlatform(base, {
    pipelineCalls,
    ...(jobResults ? { jobResults } : {}),
    ...(terminal ? { podOutput: terminal.podOutput } : {}),
    ...o,
    ...(env["DATABASE_URL"] ? { databaseUrl: env["DATABASE_URL"] } : {}),
    ...(env["REDIS_URL"] ? { redisUrl: env["REDIS_URL"] } : {}),
    ...(env["VALORA_BOOTSTRAP_API_KEY"] ? { bootstrapApiKey: env["VALORA_BOOTSTRAP_API_KEY"] } : {}),
    ...(env["VALORA_PLANS"] ? { plans: env["VALORA_PLANS"] } : {}),
    // The gateway's own variables: the console (CONSOLE_*) and OIDC sign-in (OIDC_*).
    console: consoleOptions(env) ?? null,
    ...(oidc ? { oidc } : {}),
    ...(env["VALORA_JOB_WORKERS"] && Number(env["VALORA_JOB_WORKERS"]) > 0
      ? { jobWorkers: Number(env["VALORA_JOB_WORKERS"]) }
      : {}),
    ...(env["STRIPE_SECRET_KEY"]
      ? {
          stripe: {
            secretKey: env["STRIPE_SECRET_KEY"],
            webhookSecret: env["STRIPE_WEBHOOK_SECRET"] ?? "",
            prices: (env["STRIPE_PRICES"] ?? "").split(",").filter((x) => x.trim() !== ""),
            ...(env["STRIPE_METERED_PRICE"] ? { meteredPrice: env["STRIPE_METERED_PRICE"] } : {}),
            ...(env["STRIPE_METER_EVENT"] ? { meterEventName: env["STRIPE_METER_EVENT"] } : {}),
          },
        }
      : {}),
  }).catch(async (err: unknown) => {
    failed = true;
    base.logger.error({ err: err instanceof Error ? err.message : String(err) }, "valora could not start");
    await base.shutdown.trigger("could not start");
    throw err;
  });
  const key =
    p.generatedKey ?? env["VALORA_BOOTSTRAP_API_KEY"] ?? "<the bootstrap key printed on the first start>";
  const example = p.assetClasses[0]!;
  const body = JSON.stringify({ assetClass: example.name, attributes: example.sample });
  const curl = `curl -s ${p.restUrl}/v1/valuations -H "authorization: Bearer $KEY" -H 'content-type: application/json' -d '${body}'`;
  const database =
    p.database === "embedded" ? `embedded PostgreSQL in ${join(o.dataDir, "pg")}` : "DATABASE_URL";
  base.logger.info(
    {
      rest: p.restUrl,
      console: `${p.restUrl}/`,
      docs: `${p.restUrl}/docs`,
      grpc: p.grpcAddress,
      kubernetes: p.kubernetesUrl,
      kubectl: `kubectl --server ${p.kubernetesUrl} get valuationmodels,assetpipelines`,
      manifests: `${o.manifestsDir} (edit a CR file: the operator reconciles it)`,
      database: p.database === "embedded" ? `embedded (${join(o.dataDir, "pg")})` : "DATABASE_URL",
      cache: p.cache,
      assetClasses: p.assetClasses.map((c) => `${c.name}@${c.version}`),
      ...(p.generatedKey
        ? {
            apiKey: p.generatedKey,
            apiKeyNote:
              "admin key of tenant 'default', shown once: store it (or set VALORA_BOOTSTRAP_API_KEY)",
          }
        : {}),
      readyInMs: Date.now() - started,
      try: `curl -s ${p.restUrl}/v1/valuations -H 'authorization: Bearer ${key}' -H 'content-type: application/json' -d '${body}'`,
    },
    "valora is up",
  );
  if (terminal)
    process.stdout.write(
      `\n${readyBox({
        rest: p.restUrl,
        grpc: p.grpcAddress,
        kubernetes: p.kubernetesUrl,
        ...(p.generatedKey ? { apiKey: p.generatedKey } : {}),
        curl,
        database,
        cache: p.cache,
        assetClasses: p.assetClasses.map((c) => `${c.name}@${c.version}`),
        readyInMs: Date.now() - started,
      })}\n\n`,
    );
}
