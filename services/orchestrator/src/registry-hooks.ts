import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { IngestService } from "@valora/proto/valora/v1/ingest_pb";
import { toValoraError, type Client, type Logger } from "@valora/kit";
import type { OrchestratorDeps } from "./service.js";

/**
 * The orchestrator's asset-registry lookups and outcome records over valora.v1.IngestService:
 * an unregistered asset is "not found" (undefined); outcome records are sent without holding the
 * answer back, and a failure to record is logged, never the valuation's failure.
 */
export function registryHooks(
  ingest: Client<typeof IngestService>,
  logger: Logger,
): Required<Pick<OrchestratorDeps, "assets" | "outcomes">> {
  return {
    async assets(assetClass, assetId) {
      try {
        const attributes: JsonObject | undefined = (await ingest.getAsset({ assetClass, assetId })).asset
          ?.attributes;
        return attributes;
      } catch (err) {
        if (toValoraError(err).code === "NOT_FOUND") return undefined;
        throw err;
      }
    },
    outcomes(valuations) {
      const valuedAt = timestampFromDate(new Date());
      ingest
        .recordValuations({ valuations: valuations.map((v) => ({ ...v, valuedAt })) })
        .catch((err: unknown) =>
          logger.warn(
            { err: toValoraError(err).message, count: valuations.length },
            "could not record valuations for outcome tracking",
          ),
        );
    },
  };
}
