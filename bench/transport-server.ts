/**
 * A gRPC ModelInfer endpoint that does no work — decode the request, answer a constant — served by
 * grpc-js (`grpcjs`) or by bare node:http2 (`http2`): the transport's own ceiling on this machine,
 * which bench:model-server prints beside the model server's figures. Usage: transport-server KIND PORT.
 */
import * as http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  ModelInferRequestSchema,
  ModelInferResponseSchema,
} from "@valora/proto/inference/v2/grpc_predict_v2_pb";

const [kind, port] = process.argv.slice(2);
const reply = toBinary(
  ModelInferResponseSchema,
  create(ModelInferResponseSchema, {
    modelName: "homes",
    outputs: [{ name: "value", datatype: "FP32", shape: [1n, 1n], contents: { fp32Contents: [12.3] } }],
  }),
);
const path = "/inference.GRPCInferenceService/ModelInfer";

if (kind === "grpcjs") {
  const server = new grpc.Server();
  const method = {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: (b: Buffer) => fromBinary(ModelInferRequestSchema, b),
    responseSerialize: (b: Uint8Array) => Buffer.from(b),
    responseDeserialize: (b: Buffer) => b,
  };
  server.addService(
    { ModelInfer: method },
    { ModelInfer: (_call: unknown, cb: grpc.sendUnaryData<Uint8Array>) => cb(null, reply) },
  );
  server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), () =>
    console.log("transport server ready"),
  );
} else {
  const server = http2.createServer();
  server.on("stream", (stream) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => {
      fromBinary(ModelInferRequestSchema, Buffer.concat(chunks).subarray(5));
      const framed = Buffer.alloc(5 + reply.length);
      framed.writeUInt32BE(reply.length, 1);
      framed.set(reply, 5);
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(framed);
    });
  });
  server.listen(Number(port), "127.0.0.1", () => console.log("transport server ready"));
}
