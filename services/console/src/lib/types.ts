import type { paths } from "../api/schema";

type Data<T> = T extends { content: { "application/json": { data: infer D } } } ? NonNullable<D> : never;

export type AssetClass = Data<paths["/v1/asset-classes"]["get"]["responses"][200]>[number];
export type Field = AssetClass["fields"][number];
export type Valuation = Data<paths["/v1/valuations"]["post"]["responses"][200]>;
export type Explanation = NonNullable<Valuation["explanation"]>;
export type Comparable = Valuation["comparables"][number];
export type ValuationRequest = paths["/v1/valuations"]["post"]["requestBody"]["content"]["application/json"];
export type Job = Data<paths["/v1/jobs/{id}"]["get"]["responses"][200]>;
export type JobPage = Data<paths["/v1/jobs"]["get"]["responses"][200]>;
export type Model = Data<paths["/v1/models"]["get"]["responses"][200]>[number];
export type ModelPerformance = Data<paths["/v1/models/{name}/performance"]["get"]["responses"][200]>;
export type Batch = Data<paths["/v1/ingest/batches"]["get"]["responses"][200]>[number];
export type Series = Data<paths["/v1/market/series"]["get"]["responses"][200]>[number];
export type SeriesPoints = Data<paths["/v1/market/series/{id}"]["get"]["responses"][200]>;
export type Usage = Data<paths["/v1/usage"]["get"]["responses"][200]>;
export type ApiKey = Data<paths["/v1/api-keys"]["get"]["responses"][200]>[number];
export type RoleName = ApiKey["roles"][number];
