export {
  LocalApiServer,
  labelMatcher,
  mergePatch,
  type LocalApiServerOptions,
  type Obj,
} from "./apiserver.js";
export { LocalProcessBackend, type LocalBackendOptions } from "./backend.js";
export { ManifestSync, parseManifest, SOURCE_ANNOTATION } from "./manifests.js";
