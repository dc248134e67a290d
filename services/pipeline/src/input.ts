// Input normalisation is shared with the orchestrator (which validates at the edge): it lives in the kit.
export { normaliseAttributes, type InputField, type Normalised } from "@valora/kit";
