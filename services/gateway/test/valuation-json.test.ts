import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Route, ValuationSchema } from "@valora/proto/valora/v1/valuation_pb";
import { okEnvelope, okEnvelopeText, seededRandom } from "@valora/kit";
import { valuationJson, valuationText } from "../src/valuation-json.js";

describe("REST valuation text", () => {
  it("is JSON.stringify of the REST shape, for cached and fresh valuations, and stays so when a cached one is served again", () => {
    const rnd = seededRandom(3);
    for (let i = 0; i < 50; i++) {
      const full = i % 3 !== 0;
      const v = create(ValuationSchema, {
        assetClass: "real-estate",
        assetKey: `attr:${i}`,
        value: rnd() * 1e6,
        currency: "USD",
        ...(i % 5 === 0 ? {} : { interval: { low: rnd(), high: 1 + rnd(), coverage: 0.8 } }),
        confidence: rnd(),
        comparables: full
          ? Array.from({ length: i % 9 }, (_, k) => ({
              id: `c${k}`,
              price: rnd() * 1e5,
              adjustedPrice: rnd() * 1e5,
              distanceKm: rnd() * 3,
              similarity: rnd(),
              ...(k % 2 ? { soldAt: timestampFromDate(new Date(Date.UTC(2009, k, 15))) } : {}),
              attributes: { lot_area: 1000 + k, note: 'a "quoted" \\ value' },
            }))
          : [],
        ...(full
          ? {
              explanation: {
                baseValue: 12,
                output: 12 + rnd(),
                method: "tree_shap",
                contributions: [{ feature: "Lot_Area", value: 3.5, contribution: -rnd() }],
              },
            }
          : {}),
        ...(i % 4 === 0
          ? {}
          : { model: { name: "real-estate", version: "v1", route: i % 2 ? Route.CANARY : Route.FALLBACK } }),
        cached: i % 2 === 0,
        fallbackReason: i % 7 === 0 ? "MODEL_UNAVAILABLE" : "",
        fallbackMessage: i % 7 === 0 ? "the model is unavailable; valued from comparable sales" : "",
      });
      const expected = JSON.stringify(valuationJson(v));
      expect(valuationText(v)).toBe(expected);
      expect(valuationText({ ...v })).toBe(expected); // a hit: a copy sharing the cached message's parts
      expect(JSON.parse(expected)).toMatchObject({ assetKey: `attr:${i}`, cached: i % 2 === 0 });
    }
    const now = new Date("2026-11-23T10:00:00Z");
    expect(okEnvelopeText('{"a":[1,2]}', "req-1", now)).toBe(
      JSON.stringify(okEnvelope({ a: [1, 2] }, "req-1", now)),
    );
  });
});
