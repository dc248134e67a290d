import { toJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { ValuationSchema, ValuationService } from "@valora/proto/valora/v1/valuation_pb";
import { createClient, ValoraError } from "@valora/kit";

export interface ValueOptions {
  assetClass: string;
  /** `name=value` pairs as typed on the command line. */
  pairs: string[];
  grpc: string;
  key: string;
  assetId?: string;
  skipCache: boolean;
}

/** A typed command-line value: numbers and booleans as JSON reads them, anything else a string. */
function parseValue(text: string): JsonValue {
  if (text === "true" || text === "false") return text === "true";
  const n = Number(text);
  return text.trim() !== "" && Number.isFinite(n) ? n : text;
}

/** `name=value` pairs into attributes (pure); a pair without `=` is a usage error naming it. */
export function parseAttributes(pairs: string[]): JsonObject {
  const attributes: JsonObject = {};
  for (const pair of pairs) {
    const at = pair.indexOf("=");
    if (at <= 0) {
      throw new ValoraError("INVALID_ARGUMENT", `expected name=value, got "${pair}"`, {
        details: [{ field: pair, description: "attributes are name=value pairs" }],
      });
    }
    attributes[pair.slice(0, at)] = parseValue(pair.slice(at + 1));
  }
  return attributes;
}

/** Values one asset over gRPC (`valora.v1.ValuationService/Value`) and returns it as JSON. */
export async function valueOverGrpc(opts: ValueOptions): Promise<unknown> {
  const client = createClient(ValuationService, opts.grpc, { timeoutMs: 30_000 });
  try {
    const request = {
      assetClass: opts.assetClass,
      attributes: parseAttributes(opts.pairs),
      skipCache: opts.skipCache,
      ...(opts.assetId ? { assetId: opts.assetId } : {}),
    };
    const metadata = { authorization: `Bearer ${opts.key}` };
    const { valuation } = await client.value(request, { metadata });
    return valuation ? toJson(ValuationSchema, valuation) : null;
  } finally {
    client.close();
  }
}
