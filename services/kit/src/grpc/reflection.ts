import { createRegistry, toBinary, type DescFile, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  ServerReflection,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
  type ServerReflectionResponseSchema,
} from "@valora/proto/grpc/reflection/v1/reflection_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { status } from "@grpc/grpc-js";
import type { ServiceRegistration } from "./server.js";

type ResponseInit = MessageInitShape<typeof ServerReflectionResponseSchema>;

function withDependencies(file: DescFile, out: Map<string, DescFile> = new Map()): Map<string, DescFile> {
  if (out.has(file.name)) return out;
  out.set(file.name, file);
  for (const dep of file.dependencies) withDependencies(dep, out);
  return out;
}

/** Pure: the reflection answer for one request, given the services a server exposes. */
export function answerReflection(services: DescService[], req: ServerReflectionRequest): ResponseInit {
  const files = new Map<string, DescFile>();
  for (const s of services) withDependencies(s.file, files);
  const registry = createRegistry(...files.values());
  const filesResponse = (file: DescFile): ResponseInit => ({
    validHost: req.host,
    originalRequest: req,
    messageResponse: {
      case: "fileDescriptorResponse",
      value: {
        fileDescriptorProto: [...withDependencies(file).values()].map((f) =>
          toBinary(FileDescriptorProtoSchema, f.proto),
        ),
      },
    },
  });
  const notFound = (what: string): ResponseInit => ({
    validHost: req.host,
    originalRequest: req,
    messageResponse: {
      case: "errorResponse",
      value: { errorCode: status.NOT_FOUND, errorMessage: `${what} not found` },
    },
  });
  const r = req.messageRequest;
  switch (r.case) {
    case "listServices":
      return {
        validHost: req.host,
        originalRequest: req,
        messageResponse: {
          case: "listServicesResponse",
          value: { service: services.map((s) => ({ name: s.typeName })) },
        },
      };
    case "fileByFilename": {
      const file = files.get(r.value);
      return file ? filesResponse(file) : notFound(`file ${r.value}`);
    }
    case "fileContainingSymbol": {
      // A symbol may name a method or a field ("pkg.Service.Method"): fall back to its parent.
      const direct = registry.get(r.value);
      const parentName = r.value.slice(0, Math.max(0, r.value.lastIndexOf(".")));
      const desc = direct ?? registry.get(parentName);
      return desc ? filesResponse(desc.file) : notFound(`symbol ${r.value}`);
    }
    case "fileContainingExtension":
      return notFound(`extension ${r.value.containingType}(${r.value.extensionNumber})`);
    case "allExtensionNumbersOfType": {
      const type = registry.getMessage(r.value);
      if (!type) return notFound(`type ${r.value}`);
      return {
        validHost: req.host,
        originalRequest: req,
        messageResponse: {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: r.value, extensionNumber: [] },
        },
      };
    }
    default:
      return {
        validHost: req.host,
        originalRequest: req,
        messageResponse: {
          case: "errorResponse",
          value: { errorCode: status.INVALID_ARGUMENT, errorMessage: "empty request" },
        },
      };
  }
}

/**
 * Server reflection as grpc.reflection.v1 and, for older clients, v1alpha (the same messages under
 * another package name, so the v1 types serialize both).
 */
export function createReflectionServices(services: DescService[]): ServiceRegistration[] {
  const exposed = [...services, ServerReflection];
  const impl = {
    async *serverReflectionInfo(reqs: AsyncIterable<ServerReflectionRequest>): AsyncIterable<ResponseInit> {
      for await (const req of reqs) yield answerReflection(exposed, req);
    },
  };
  const v1alpha: DescService = Object.create(ServerReflection, {
    typeName: { value: "grpc.reflection.v1alpha.ServerReflection" },
  }) as DescService;
  return [
    { service: ServerReflection, impl },
    { service: v1alpha, impl },
  ];
}

export type { ServerReflectionResponse };
