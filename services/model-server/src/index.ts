export { createModelServer, type ModelServer, type ModelServerOptions } from "./app.js";
export { ModelRepository, type ModelSpec } from "./repository.js";
export { ModelSource, checkModelUri, sha256Hex, type ModelSourceOptions } from "./model-source.js";
export { Batcher, concatRows, splitRows, type BatchingOptions } from "./batcher.js";
export { decodeInputs, flatten, type Tensor, type TensorSpec, type RawInput } from "./tensors.js";
export { parseModelArgs, loadModelServerEnv } from "./config.js";
export { fetchModelToFile } from "./fetch.js";
