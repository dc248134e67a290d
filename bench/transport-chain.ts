/**
 * The transport floor of a value-only valuation: the same three hops as `valora up`'s path — REST
 * into a fastify process, gRPC PipelineService/Run to a second, gRPC OIP ModelInfer to a third —
 * with the product's libraries (fastify, grpc-js, protobuf-es), its own messages and the kit's
 * grpc-js method definitions, and no other Valora code: each process decodes what it receives, the next hop's request is a constant, and the last
 * answers a constant. What this chain costs, no valuation path can cost less; bench:gateway runs it
 * beside the platform. A request without skipCache is answered by the REST process alone, the floor
 * of the cached path. The service map is the argv: `transport-chain platform PORT` starts the other
 * two as its children ("chain pipeline", "chain model-server", the roles bench/lib.ts counts CPU by).
 */
import { spawn } from "node:child_process";
import * as grpc from "@grpc/grpc-js";
import { create, type MessageShape } from "@bufbuild/protobuf";
import Fastify from "fastify";
import { serviceDefinition } from "@valora/kit";
import {
  GRPCInferenceService,
  ModelInferRequestSchema,
  ModelInferResponseSchema,
} from "@valora/proto/inference/v2/grpc_predict_v2_pb";
import { PipelineService, RunRequestSchema, RunResponseSchema } from "@valora/proto/valora/v1/pipeline_pb";
import { Route } from "@valora/proto/valora/v1/valuation_pb";

const FEATURES = 71;
const [role, portArg] = process.argv.slice(2);
const port = Number(portArg);

// The grpc-js method definitions Valora's clients and servers use (protobuf-es in and out).
const run = serviceDefinition(PipelineService)["run"]!;
const infer = serviceDefinition(GRPCInferenceService)["modelInfer"]!;

/** A unary call through a grpc-js generic client, as the kit's clients make them (deadline included). */
function unaryClient<Req, Res>(def: { path: string }, target: string) {
  const Ctor = grpc.makeGenericClientConstructor({ call: def } as unknown as grpc.ServiceDefinition, "chain");
  const client = new Ctor(target, grpc.credentials.createInsecure()) as unknown as {
    call(req: Req, md: grpc.Metadata, o: grpc.CallOptions, cb: (e: Error | null, r: Res) => void): void;
  };
  return (req: Req) =>
    new Promise<Res>((resolve, reject) =>
      client.call(req, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (e, r) =>
        e ? reject(e) : resolve(r),
      ),
    );
}

function serve(def: object, handler: (req: unknown) => Promise<unknown>): void {
  const server = new grpc.Server();
  server.addService({ call: def } as unknown as grpc.ServiceDefinition, {
    call: (c: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      handler(c.request).then((r) => cb(null, r), cb);
    },
  });
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => {
    if (e) throw e;
    console.log("chain ready");
  });
}

if (role === "model-server") {
  const answer = create(ModelInferResponseSchema, {
    modelName: "real-estate",
    outputs: [{ name: "value", datatype: "FP32", shape: [1n, 1n], contents: { fp32Contents: [12.1] } }],
  });
  serve(infer, () => Promise.resolve(answer));
} else if (role === "pipeline") {
  const model = unaryClient<MessageShape<typeof ModelInferRequestSchema>, unknown>(
    infer,
    `127.0.0.1:${port + 1}`,
  );
  const row = Array.from({ length: FEATURES }, (_, i) => i + 0.5);
  const request = create(ModelInferRequestSchema, {
    modelName: "real-estate",
    inputs: [
      { name: "features", datatype: "FP32", shape: [1n, BigInt(FEATURES)], contents: { fp32Contents: row } },
    ],
  });
  const answer = create(RunResponseSchema, {
    results: [
      {
        index: 0,
        outcome: {
          case: "valuation",
          value: {
            value: 181_000,
            currency: "USD",
            interval: { low: 162_000, high: 199_000, coverage: 0.8 },
            confidence: 0.8,
            model: { name: "real-estate", version: "1", route: Route.CHAMPION },
            assetKey: "k",
            assetClass: "real-estate",
          },
        },
      },
    ],
  });
  serve(run, async () => {
    await model(request);
    return answer;
  });
} else {
  const pipeline = unaryClient<unknown, MessageShape<typeof RunResponseSchema>>(run, `127.0.0.1:${port + 1}`);
  const children = (["pipeline", "model-server"] as const).map((child, i) =>
    spawn(process.execPath, [...process.execArgv, process.argv[1]!, child, String(port + 1 + i)], {
      stdio: ["ignore", "pipe", "inherit"],
    }),
  );
  process.once("SIGTERM", () => {
    for (const c of children) c.kill("SIGTERM");
    process.exit(0);
  });
  await Promise.all(children.map((c) => new Promise((resolve) => c.stdout.once("data", resolve))));
  const app = Fastify();
  // A request without skipCache stands for the cached path: the answer is the REST process's alone.
  const cached = { data: { value: 181_000, currency: "USD", interval: { low: 162_000, high: 199_000 } } };
  app.post("/v1/valuations", async (req) => {
    const body = req.body as { assetClass: string; attributes: Record<string, never>; skipCache?: boolean };
    if (!body.skipCache) return cached;
    const res = await pipeline(
      create(RunRequestSchema, {
        assetClass: body.assetClass,
        items: [{ assetKey: "k", attributes: body.attributes }],
        include: {},
      }),
    );
    const r = res.results[0]!.outcome;
    if (r.case !== "valuation") throw new Error("no valuation");
    const { value, currency, interval, model } = r.value;
    return {
      data: {
        value,
        currency,
        interval: { low: interval?.low, high: interval?.high, coverage: interval?.coverage },
        model: { name: model?.name, version: model?.version },
      },
    };
  });
  await app.listen({ port, host: "127.0.0.1" });
  console.log(JSON.stringify({ msg: "chain ready", rest: `http://127.0.0.1:${port}` }));
}
