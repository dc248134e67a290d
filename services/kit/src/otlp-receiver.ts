import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import * as grpc from "@grpc/grpc-js";
import { BinaryReader, type WireType } from "@bufbuild/protobuf/wire";

/** One span as an OTLP collector received it, with its resource's and scope's names. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  /** "" for a root span. */
  parentSpanId: string;
  name: string;
  /** OTLP SpanKind: 1 internal, 2 server, 3 client, 4 producer, 5 consumer. */
  kind: number;
  service: string;
  resource: Record<string, unknown>;
  scope: string;
  attributes: Record<string, unknown>;
  links: { traceId: string; spanId: string }[];
  /** OTLP StatusCode: 0 unset, 1 ok, 2 error. */
  status: number;
  startNanos: bigint;
  endNanos: bigint;
  /** How the export arrived. */
  encoding: "protobuf" | "json" | "grpc";
}

export interface OtlpReceiver {
  /** OTEL_EXPORTER_OTLP_ENDPOINT for http/protobuf and http/json (the exporter appends /v1/traces). */
  httpEndpoint: string;
  /** OTEL_EXPORTER_OTLP_ENDPOINT for grpc. */
  grpcEndpoint: string;
  spans: ReceivedSpan[];
  /** Export requests received, by encoding. */
  requests: { protobuf: number; json: number; grpc: number };
  /** Resolves once `n` spans (matching `where`) have arrived, or rejects after `timeoutMs`. */
  waitFor(n: number, where?: (s: ReceivedSpan) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

const serviceName = (resource: Record<string, unknown>): string => {
  const name = resource["service.name"];
  return typeof name === "string" ? name : "";
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

// Decoding follows opentelemetry-proto's trace.proto, common.proto and resource.proto field numbers.
type Reader = BinaryReader;

function fields(bytes: Uint8Array, each: (field: number, r: Reader, wire: WireType) => void): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [field, wire] = r.tag();
    const before = r.pos;
    each(field, r, wire);
    if (r.pos === before) r.skip(wire, field);
  }
}

function anyValue(bytes: Uint8Array): unknown {
  let v: unknown;
  fields(bytes, (f, r) => {
    if (f === 1) v = r.string();
    else if (f === 2) v = r.bool();
    else if (f === 3) v = Number(r.int64());
    else if (f === 4) v = r.double();
    else if (f === 5) {
      const items: unknown[] = [];
      fields(r.bytes(), (g, rr) => {
        if (g === 1) items.push(anyValue(rr.bytes()));
      });
      v = items;
    } else if (f === 7) v = hex(r.bytes());
  });
  return v;
}

function keyValues(list: Uint8Array[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list) {
    let key = "";
    let value: unknown;
    fields(kv, (f, r) => {
      if (f === 1) key = r.string();
      else if (f === 2) value = anyValue(r.bytes());
    });
    out[key] = value;
  }
  return out;
}

function decodeSpan(bytes: Uint8Array): Omit<ReceivedSpan, "service" | "resource" | "scope" | "encoding"> {
  const s = {
    traceId: "",
    spanId: "",
    parentSpanId: "",
    name: "",
    kind: 0,
    links: [] as { traceId: string; spanId: string }[],
    status: 0,
    startNanos: 0n,
    endNanos: 0n,
  };
  const attrs: Uint8Array[] = [];
  fields(bytes, (f, r) => {
    if (f === 1) s.traceId = hex(r.bytes());
    else if (f === 2) s.spanId = hex(r.bytes());
    else if (f === 4) s.parentSpanId = hex(r.bytes());
    else if (f === 5) s.name = r.string();
    else if (f === 6) s.kind = r.int32();
    else if (f === 7) s.startNanos = BigInt(r.fixed64());
    else if (f === 8) s.endNanos = BigInt(r.fixed64());
    else if (f === 9) attrs.push(r.bytes());
    else if (f === 13) {
      const link = { traceId: "", spanId: "" };
      fields(r.bytes(), (g, rr) => {
        if (g === 1) link.traceId = hex(rr.bytes());
        else if (g === 2) link.spanId = hex(rr.bytes());
      });
      s.links.push(link);
    } else if (f === 15)
      fields(r.bytes(), (g, rr) => {
        if (g === 3) s.status = rr.int32();
      });
  });
  return { ...s, attributes: keyValues(attrs) };
}

/** Pure: the spans of an OTLP ExportTraceServiceRequest in protobuf. */
export function decodeOtlpProtobuf(
  body: Uint8Array,
  encoding: "protobuf" | "grpc" = "protobuf",
): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  fields(body, (f, r) => {
    if (f !== 1) return;
    let resource: Record<string, unknown> = {};
    const scopes: Uint8Array[] = [];
    fields(r.bytes(), (g, rr) => {
      if (g === 1) {
        const attrs: Uint8Array[] = [];
        fields(rr.bytes(), (h, rrr) => {
          if (h === 1) attrs.push(rrr.bytes());
        });
        resource = keyValues(attrs);
      } else if (g === 2) scopes.push(rr.bytes());
    });
    for (const scopeSpans of scopes) {
      let scope = "";
      fields(scopeSpans, (g, rr) => {
        if (g === 1)
          fields(rr.bytes(), (h, rrr) => {
            if (h === 1) scope = rrr.string();
          });
        else if (g === 2)
          out.push({
            ...decodeSpan(rr.bytes()),
            service: serviceName(resource),
            resource,
            scope,
            encoding,
          });
      });
    }
  });
  return out;
}

interface JsonAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  arrayValue?: { values?: JsonAnyValue[] };
}
type JsonKeyValue = { key: string; value?: JsonAnyValue };

const jsonValue = (v: JsonAnyValue | undefined): unknown =>
  v === undefined
    ? undefined
    : (v.stringValue ??
      v.boolValue ??
      (v.intValue !== undefined ? Number(v.intValue) : undefined) ??
      v.doubleValue ??
      v.arrayValue?.values?.map(jsonValue));
const jsonAttributes = (list: JsonKeyValue[] | undefined): Record<string, unknown> =>
  Object.fromEntries((list ?? []).map((kv) => [kv.key, jsonValue(kv.value)]));

/** Pure: the spans of an OTLP ExportTraceServiceRequest in JSON (ids in hex, as OTLP/JSON writes them). */
export function decodeOtlpJson(body: string): ReceivedSpan[] {
  const req = JSON.parse(body) as {
    resourceSpans?: {
      resource?: { attributes?: JsonKeyValue[] };
      scopeSpans?: {
        scope?: { name?: string };
        spans?: {
          traceId: string;
          spanId: string;
          parentSpanId?: string;
          name: string;
          kind?: number;
          startTimeUnixNano?: string | number;
          endTimeUnixNano?: string | number;
          attributes?: JsonKeyValue[];
          links?: { traceId: string; spanId: string }[];
          status?: { code?: number };
        }[];
      }[];
    }[];
  };
  return (req.resourceSpans ?? []).flatMap((rs) => {
    const resource = jsonAttributes(rs.resource?.attributes);
    return (rs.scopeSpans ?? []).flatMap((ss) =>
      (ss.spans ?? []).map((s) => ({
        traceId: s.traceId,
        spanId: s.spanId,
        parentSpanId: s.parentSpanId ?? "",
        name: s.name,
        kind: s.kind ?? 0,
        service: serviceName(resource),
        resource,
        scope: ss.scope?.name ?? "",
        attributes: jsonAttributes(s.attributes),
        links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
        status: s.status?.code ?? 0,
        startNanos: BigInt(s.startTimeUnixNano ?? 0),
        endNanos: BigInt(s.endTimeUnixNano ?? 0),
        encoding: "json" as const,
      })),
    );
  });
}

const readBody = (req: IncomingMessage): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });

/**
 * An OpenTelemetry collector's trace intake on loopback, for tests: OTLP/HTTP (`POST /v1/traces`,
 * protobuf or JSON) and OTLP/gRPC (`TraceService/Export`), each request decoded from the wire.
 */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const requests = { protobuf: 0, json: 0, grpc: 0 };
  const waiters = new Set<() => void>();
  const take = (got: ReceivedSpan[]) => {
    spans.push(...got);
    for (const w of waiters) w();
  };
  const http: Server = createServer((req, res) => {
    void readBody(req).then((body) => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      const json = (req.headers["content-type"] ?? "").includes("json");
      try {
        take(json ? decodeOtlpJson(body.toString("utf8")) : decodeOtlpProtobuf(body));
      } catch {
        res.writeHead(400).end();
        return;
      }
      requests[json ? "json" : "protobuf"]++;
      res.writeHead(200, { "content-type": json ? "application/json" : "application/x-protobuf" });
      res.end(json ? "{}" : Buffer.alloc(0));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const server = new grpc.Server();
  const identity = (b: Buffer) => b;
  server.addService(
    {
      Export: {
        path: "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        requestStream: false,
        responseStream: false,
        requestSerialize: identity,
        requestDeserialize: identity,
        responseSerialize: identity,
        responseDeserialize: identity,
      },
    },
    {
      Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        requests.grpc++;
        take(decodeOtlpProtobuf(call.request, "grpc"));
        callback(null, Buffer.alloc(0));
      },
    },
  );
  const grpcPort = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  return {
    httpEndpoint: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    grpcEndpoint: `http://127.0.0.1:${grpcPort}`,
    spans,
    requests,
    waitFor: (n, where = () => true, timeoutMs = 15_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const got = spans.filter(where);
          if (got.length < n) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(got);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`waited ${timeoutMs} ms for ${n} spans; ${spans.filter(where).length} arrived`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: async () => {
      server.forceShutdown();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
